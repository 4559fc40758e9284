"""The wire contract of the ScaleLadder REST API (``/v1``), as pydantic v2 models.

Shapes follow OSS Vizier in spirit: a *study* owns *trials*, a trial owns *measurements* (one per reported
step). Both the service and the SDK import these models, so the contract lives in exactly one place.

The search-space, fidelity-ladder, target and cost shapes are the plain-dict shapes the ``schedulers``
package parses (``schedulers/space.py``, ``schedulers/problem.py``, ``schedulers/cost.py``); this module only
types them, the semantic checks (log scale needs ``low > 0``, sizes sorted, target on the ladder ...) are
the scheduler library's, so a rule is written once and the service turns its errors into 422 responses.

Non-finite floats: JSON has no NaN/inf, so they travel as the strings ``"nan"``, ``"inf"`` and ``"-inf"``
(:data:`WireFloat` accepts both those strings and real floats, and serialises non-finite values as strings).
"""

from __future__ import annotations

import enum
import math
import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (BaseModel, ConfigDict, Field, PlainSerializer, SerializerFunctionWrapHandler, model_serializer,
                      model_validator)


def _float_to_wire(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


#: A float that may be NaN or +-inf; serialised to JSON as ``"nan"`` / ``"inf"`` / ``"-inf"``.
WireFloat = Annotated[float, PlainSerializer(_float_to_wire, when_used="json")]

#: Ids, steps and counts are stored as 32-bit integers.
INT32_MAX = 2 ** 31 - 1
Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Step = Annotated[int, Field(ge=0, le=INT32_MAX)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


# ------------------------------------------------------------------------------------------- enums
class ErrorCode(str, enum.Enum):
    """``error.code`` of every error answer; ``service.errors`` maps each error type to one (and its status)."""

    INVALID_ARGUMENT = "invalid_argument"        # 422: names the field
    UNAUTHENTICATED = "unauthenticated"          # 401
    NOT_FOUND = "not_found"                      # 404 (another tenant's study too)
    METHOD_NOT_ALLOWED = "method_not_allowed"    # 405
    FAILED_PRECONDITION = "failed_precondition"  # 409: an illegal state transition, a stale segment
    ABORTED = "aborted"                          # 409: a concurrent request won a race; retry
    PAYLOAD_TOO_LARGE = "payload_too_large"      # 413
    UNAVAILABLE = "unavailable"                  # 503: retry after Retry-After
    HTTP_ERROR = "http_error"                    # another status raised by the HTTP framework
    INTERNAL = "internal"                        # 500: a bug


class StudyState(str, enum.Enum):
    PENDING = "pending"        # created, not started
    RUNNING = "running"        # handing out trials
    PAUSED = "paused"          # accepts measurements of running trials, hands out no new ones
    COMPLETED = "completed"    # budget spent (or trial budget used up)
    FAILED = "failed"          # the executor gave up
    CANCELLED = "cancelled"    # stopped by the user

    @property
    def is_final(self) -> bool:
        return self in (StudyState.COMPLETED, StudyState.FAILED, StudyState.CANCELLED)


class BudgetLimit(str, enum.Enum):
    """The budget limit a study's progress is measured against (``Progress.progress_limit``)."""

    COST = "cost"              # cost spent / max_cost
    TRIALS = "trials"          # finished trials / max_trials
    WALL_CLOCK = "wall_clock"  # elapsed / max_wall_clock_seconds, only when it is the study's one limit


class TrialState(str, enum.Enum):
    """Mirrors ``schedulers.TrialState`` value for value (this package does not import ``schedulers``)."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (TrialState.STOPPED, TrialState.COMPLETED, TrialState.FAILED)

    @property
    def is_live(self) -> bool:
        return self in (TrialState.PENDING, TrialState.RUNNING)


class Decision(str, enum.Enum):
    """The scheduler's answer to a measurement: keep training, pause (keep the checkpoint) or stop."""

    CONTINUE = "continue"
    PAUSE = "pause"
    STOP = "stop"


class Direction(str, enum.Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class ConstraintOp(str, enum.Enum):
    """An outcome constraint's comparison (mirrors ``schedulers.objectives.ConstraintOp`` value for value)."""

    LE = "<="
    GE = ">="


class ParamType(str, enum.Enum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"
    ORDINAL = "ordinal"
    MIXTURE = "mixture"
    FIXED = "fixed"


class ParamRole(str, enum.Enum):
    """Tuning-playbook roles: scientific and nuisance parameters are searched, fixed ones are not; a study
    with a ``round`` tunes the nuisance parameters once per value of the scientific ones (``RoundSpec``)."""

    SCIENTIFIC = "scientific"
    NUISANCE = "nuisance"
    FIXED = "fixed"


class AdaptivePolicyKind(str, enum.Enum):
    """In-trial adaptation policies (mirrors ``schedulers.adaptive.PolicyKind`` value for value)."""

    EXP3 = "exp3"                      # Online Data Mixing: an EXP3 bandit whose reward is the domain's loss
    LEARNABLE_LOSS = "learnable_loss"  # domains weighted by remaining learnable loss from per-domain laws


class RoundPhase(str, enum.Enum):
    """Where a playbook round is (mirrors ``schedulers.playbook.RoundPhase``)."""

    SEARCH = "search"            # tuning the nuisance parameters of every scientific value
    CONFIRMING = "confirming"    # re-running each value's best config at the target with other seeds
    DONE = "done"                # every seed ended


class RoundTest(str, enum.Enum):
    """The test a round tells differences from seed noise with (mirrors ``schedulers.playbook.RoundTest``)."""

    WELCH_T = "welch_t"          # two-sided Welch t-test of a value's seeds against the best value's


class CostKind(str, enum.Enum):
    ANALYTIC = "analytic"
    TABLE = "table"
    FORMULA = "formula"
    LEARNED = "learned"


# ------------------------------------------------------------------------------------------- study spec
class Condition(_Model):
    """The parameter is active only when ``parent`` takes one of ``values``."""

    parent: str
    values: list[Any] = Field(min_length=1)


class ParamSpec(_Model):
    """One parameter, in the dict shape of ``schedulers/space.py``. Which fields apply depends on ``type``."""

    # a NaN/inf bound must reach the space parser as such (and be rejected there by name), not as null
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    name: str = Field(min_length=1)
    type: ParamType
    role: ParamRole | None = None
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    choices: list[Any] | None = None
    values: list[Any] | None = None
    components: list[str] | None = None
    value: Any = None
    condition: Condition | None = None

    @model_serializer(mode="wrap")
    def _without_unused_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the fields that do not apply to this type are None: leave them out, as in the documented shapes
        return {k: v for k, v in handler(self).items() if getattr(self, k, None) is not None}

    def to_scheduler_dict(self) -> dict[str, Any]:
        """The plain dict ``schedulers.SearchSpace.from_dicts`` takes (unset fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class Objective(_Model):
    metric: str = Field(default="loss", min_length=1)
    direction: Direction = Direction.MINIMIZE


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(<=|>=)\s*(\S+)\s*$")


class OutcomeConstraint(_Model):
    """A metric every recommended configuration must satisfy at the target, e.g. ``latency <= 20``
    (written so, or as ``{"metric": "latency", "op": "<=", "bound": 20}``)."""

    metric: str = Field(min_length=1)
    op: ConstraintOp
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _CONSTRAINT.match(value)
            if match is None:
                raise ValueError(f"constraint {value!r} is not of the form 'metric <= bound' or 'metric >= bound'")
            return {"metric": match[1], "op": match[2], "bound": match[3]}
        return value


class StepRange(_Model):
    """The step ladder, and the reporting grid: when ``report_every`` is declared, a segment reports at its
    multiples and at the segment's own end (a step budget need not be a multiple). This class is the one
    home of that rule: the service validates reports with :meth:`report_step_error`, the SDK and workers
    walk :meth:`segment_steps`."""

    min: int = Field(ge=1, le=INT32_MAX)
    max: int = Field(ge=1, le=INT32_MAX)
    report_every: int | None = Field(default=None, ge=1, le=INT32_MAX)

    @property
    def cadence(self) -> int:
        """How often a worker reports: ``report_every``, else ``min`` (as the scheduler library's ladder)."""
        return self.report_every or self.min

    def segment_steps(self, start_step: int, steps: int) -> list[int]:
        """The steps a segment from ``start_step`` to ``steps`` reports at: every :attr:`cadence`, and the end."""
        every = self.cadence
        out = list(range((start_step // every + 1) * every, steps, every))
        return out + [steps] if steps > start_step else out

    def report_step_error(self, step: int, start_step: int, steps: int) -> str | None:
        """Why a new report at ``step`` does not belong to the segment ``(start_step, steps]``, or ``None``.
        Off the grid is an error only where the study declared one (``report_every``)."""
        if not start_step < step <= steps:
            return (f"step {step} is outside the trial's segment ({start_step}, {steps}]: a report must lie "
                    f"after the segment's start step and within its step budget")
        if self.report_every is not None and step != steps and step % self.report_every:
            return (f"step {step} is off the study's reporting grid: report at multiples of report_every "
                    f"({self.report_every}) or at the segment's last step ({steps})")
        return None


class SizeSpec(_Model):
    """One rung of the model-size ladder and the resources one trial of it needs."""

    name: str = Field(min_length=1)
    params: float = Field(description="parameter count")
    cpus: float = Field(default=1.0, ge=0)
    gpus: float = Field(default=0.0, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)


class FidelitySpec(_Model):
    steps: StepRange
    sizes: list[SizeSpec] = Field(min_length=1)


class TargetSpec(_Model):
    """The fidelity (s*, m*) to tune for; defaults to the largest size at the maximum steps."""

    steps: int | None = Field(default=None, ge=1, le=INT32_MAX)
    size: str | None = None


class CostSpec(BaseModel):
    """``{"kind": ..., **options}``, exactly as ``schedulers.cost.make_cost_model`` takes it."""

    model_config = ConfigDict(extra="allow")

    kind: CostKind = CostKind.ANALYTIC


class BudgetSpec(_Model):
    """When the study is done: whichever limit is hit first. ``None`` means no limit of that kind.

    ``max_cost`` is in units of the cost of one run at the target fidelity (``target_cost``), so a budget
    of 10 buys as much compute as ten full-size trainings.
    """

    max_cost: float | None = Field(default=None, gt=0)
    max_trials: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_wall_clock_seconds: float | None = Field(default=None, gt=0)


class SchedulerSpec(_Model):
    name: str = Field(default="random", min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    #: seeds numpy's generators, which take non-negative integers only (a negative one failed every ask)
    seed: int = Field(default=0, ge=0, le=2 ** 63 - 1)


_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class WorkloadSpec(_Model):
    """What a trial runs: a built-in workload ``name`` or an importable ``module:function``, plus fixed args."""

    name: str | None = None
    entrypoint: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of_name_or_entrypoint(self) -> "WorkloadSpec":
        if (self.name is None) == (self.entrypoint is None):
            raise ValueError("give exactly one of 'name' (a built-in workload) or 'entrypoint' (module:function)")
        if self.entrypoint is not None and not _ENTRYPOINT.match(self.entrypoint):
            raise ValueError(f"entrypoint {self.entrypoint!r} is not of the form 'module:function'")
        return self


class AdaptiveSpec(_Model):
    """A mixture group adapted inside each trial while it trains (``schedulers/adaptive``).

    The trial's value of the group (searched by the scheduler like any mixture) is its initial mixture; at
    each report carrying per-domain losses (``MeasurementCreate.domains``) the policy answers the mixture
    to train on from then on (``ReportResult.adapted``). ``tuned`` maps a policy hyperparameter to a
    numeric parameter of the space, so the scheduler tunes it too (e.g. ``{"lr": "odm_lr"}``)."""

    policy: AdaptivePolicyKind
    group: str = Field(min_length=1, description="the name of a mixture parameter of the space")
    options: dict[str, float] = Field(default_factory=dict, description="policy hyperparameters for every trial")
    tuned: dict[str, str] = Field(default_factory=dict,
                                  description="policy hyperparameter -> the space parameter it is read from")


class RoundSpec(_Model):
    """A playbook round (``schedulers/playbook.py``; docs/usage.md, "Playbook rounds"): which value of the
    space's scientific parameters is best, with the nuisance parameters tuned for each by the study's
    scheduler. ``seeds`` x values target runs of ``budget.max_cost`` are set aside to re-run each value's
    best config at the target; the rest is searched, in equal shares."""

    seeds: int = Field(3, ge=1, le=100, description="re-runs of each value's best config at the target")
    design_points: int = Field(3, ge=1, le=16, description="values studied of each float scientific parameter")
    alpha: float = Field(0.05, gt=0, lt=1, description="level of the test against the best value")


class StudySpec(_Model):
    """What a user submits to create a study (``POST /v1/studies``). The tenant comes from the token."""

    name: str = Field(min_length=1, max_length=200)
    objective: Objective = Field(default_factory=Objective)
    objectives: list[Objective] | None = Field(default=None, min_length=1, max_length=8, description=(
        "several objectives, primary first: a measurement's value is the primary's, the others come in its "
        "metrics by name; the recommendation then carries the Pareto set. `objective` is the primary"))
    constraints: list[OutcomeConstraint] = Field(default_factory=list, max_length=16, description=(
        "outcome constraints on reported metrics (each measurement carries them in metrics)"))
    space: list[ParamSpec]
    fidelity: FidelitySpec
    target: TargetSpec = Field(default_factory=TargetSpec)
    cost: CostSpec = Field(default_factory=CostSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    workload: WorkloadSpec | None = None
    adaptive: AdaptiveSpec | None = None
    round: RoundSpec | None = None

    @model_validator(mode="after")
    def _primary_objective(self) -> "StudySpec":
        # one home for the primary objective: ``objective`` is ``objectives[0]`` when both are given
        if self.objectives is not None:
            if "objective" in self.model_fields_set and self.objective != self.objectives[0]:
                raise ValueError("objective must be objectives[0] (the primary objective) when both are given")
            names = [o.metric for o in self.objectives]
            if len(set(names)) != len(names):
                raise ValueError(f"objectives name the metric {sorted(n for n in names if names.count(n) > 1)[0]!r} "
                                 "twice")
            self.objective = self.objectives[0]
        if self.round is not None and (len(self.all_objectives) > 1 or self.constraints):
            raise ValueError("a playbook round compares its values on one objective: it takes neither several "
                             "objectives nor constraints")
        return self

    @property
    def all_objectives(self) -> list[Objective]:
        """The objectives, primary first (one for a single-objective study)."""
        return list(self.objectives) if self.objectives is not None else [self.objective]

    def problem_dict(self) -> dict[str, Any]:
        """The dict ``schedulers.Problem.from_dict`` takes."""
        steps = self.fidelity.steps.model_dump(exclude_none=True)
        return {
            "space": [p.to_scheduler_dict() for p in self.space],
            "fidelity": {"steps": steps, "sizes": [s.model_dump(mode="json") for s in self.fidelity.sizes]},
            "target": self.target.model_dump(exclude_none=True),
            "cost": self.cost.model_dump(mode="json"),
            "direction": self.objective.direction.value,
            "budget": {"max_cost": self.budget.max_cost},
            "objectives": [o.model_dump(mode="json") for o in self.all_objectives],
            "constraints": [c.model_dump(mode="json") for c in self.constraints],
        }


class Study(StudySpec):
    """A study as the service returns it."""

    id: int
    tenant: str
    state: StudyState
    n_trials: int = 0
    cost_spent: float = Field(0.0, description="in units of one target run")
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


# ------------------------------------------------------------------------------------------- trials
class Resources(_Model):
    cpu: float = 1.0
    gpu: float = 0.0


class Trial(_Model):
    """One training run (possibly continued over several segments) of one configuration at one size.

    ``number`` is the scheduler's trial id within the study; ``id`` is global and names the trial in URLs.
    The current segment runs from ``start_step`` (0, or the checkpoint's step) to ``steps``.
    """

    id: int
    study_id: int
    number: int
    params: dict[str, Any]
    size: str
    steps: int
    start_step: int = 0
    replicate: int = 0
    state: TrialState
    client_id: str | None = None
    resources: Resources = Field(default_factory=Resources)
    checkpoint: str | None = None
    last_step: int | None = None
    last_value: WireFloat | None = None
    failure: str | None = None
    #: the adaptive parameters' current values (the mixture to train on from ``last_step`` on); ``None``
    #: when the study adapts nothing
    adapted: dict[str, float] | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def current_params(self) -> dict[str, Any]:
        """``params`` with the adapted values in place: what to train on now."""
        return {**self.params, **(self.adapted or {})}


class SuggestRequest(_Model):
    """Ask for work. The same ``client_id`` asking again gets its live trials back (idempotent ask)."""

    client_id: str = Field(min_length=1, max_length=200)
    count: int = Field(default=1, ge=1, le=1000)


class SuggestResponse(_Model):
    trials: list[Trial]
    study_state: StudyState

    @property
    def done(self) -> bool:
        return self.study_state.is_final


# ------------------------------------------------------------------------------------------- measurements
class _SegmentRequest(_Model):
    segment_start: int | None = Field(
        default=None, ge=0,
        description="the start_step of the segment the worker ran (the SDK sends it): once the trial was "
                    "handed out again (resumed, for this or another worker), a late or retried complete or fail "
                    "for an earlier segment changes nothing and answers the trial as it is, and a new "
                    "measurement for it is a 409")


class MeasurementCreate(_SegmentRequest):
    """A reported objective ``value`` at ``step`` (NaN/inf allowed: the trial is recorded as diverged)."""

    step: Step
    value: WireFloat
    metrics: dict[str, WireFloat] = Field(default_factory=dict)
    domains: dict[str, WireFloat] = Field(default_factory=dict, description=(
        "the objective per data domain (e.g. validation loss per component of the mixture); an adaptive "
        "study's policy adapts the mixture from these"))
    elapsed_seconds: float | None = Field(default=None, ge=0)
    checkpoint: str | None = Field(default=None, description="where the worker saved the model at this step")


class BatchMeasurement(MeasurementCreate):
    trial_id: Id


class MeasurementBatch(_Model):
    measurements: list[BatchMeasurement] = Field(min_length=1, max_length=100_000)


class Measurement(_Model):
    trial_id: int
    step: int
    value: WireFloat
    metrics: dict[str, WireFloat] = Field(default_factory=dict)
    domains: dict[str, WireFloat] = Field(default_factory=dict)
    elapsed_seconds: float | None = None
    cost: float = Field(0.0, description="cost charged for this step, in units of one target run")
    created_at: datetime


class ReportResult(_Model):
    """The answer to one measurement: what the worker should do next."""

    trial_id: int
    step: int
    decision: Decision
    trial_state: TrialState
    diverged: bool = False
    duplicate: bool = False
    adapted: dict[str, float] | None = Field(default=None, description=(
        "an adaptive study's answer: the mixture to train on from this step on (for a retried step, what "
        "it was answered then); None when the study adapts nothing"))

    @property
    def should_stop(self) -> bool:
        return self.decision is not Decision.CONTINUE


class BatchResult(_Model):
    inserted: int
    duplicates: int
    decisions: dict[int, Decision] = Field(description="trial id -> decision after its last measurement")
    study_state: StudyState
    adapted: dict[int, dict[str, float]] = Field(
        default_factory=dict, description="an adaptive study's trial id -> mixture after its last measurement")


class HeartbeatRequest(_SegmentRequest):
    """The worker still runs the trial's segment (``segment_start``)."""


class CompleteRequest(_SegmentRequest):
    checkpoint: str | None = None


class FailRequest(_SegmentRequest):
    reason: str = Field(default="", max_length=10_000)


class ShouldStop(_Model):
    trial_id: int
    should_stop: bool
    decision: Decision
    trial_state: TrialState


# ------------------------------------------------------------------------------------------- results
class ParetoPoint(_Model):
    """One configuration of the Pareto set at the target: its value per objective (and constrained metric),
    predicted by the scheduler's model (``stds`` set) or measured at the target (``stds`` null)."""

    params: dict[str, Any]
    values: dict[str, WireFloat]
    stds: dict[str, float] | None = None
    trial_id: int | None = None


class Recommendation(_Model):
    """The best parameters for the target fidelity, with the predicted value and its standard deviation.
    A study with several objectives also answers ``pareto``: the Pareto set at the target, best in the
    primary objective first (``params`` and ``predicted`` are its first point's)."""

    study_id: int
    params: dict[str, Any]
    size: str
    steps: int
    predicted: WireFloat | None = None
    std: float | None = None
    trial_id: int | None = None
    warnings: list[str] = Field(default_factory=list)
    objectives: list[str] = Field(default_factory=list, description="the objectives' metrics, primary first")
    pareto: list[ParetoPoint] | None = None


class RoundPoint(_Model):
    """One value of the scientific parameters in a round: its best config and the seeds that re-ran it."""

    values: dict[str, Any] = Field(description="the scientific parameters' values")
    params: dict[str, Any] = Field(description="its best config (the one its seeds run)")
    predicted: WireFloat | None = Field(None, description="the scheduler's prediction at the target")
    predicted_std: float | None = None
    search_trials: int
    search_cost: float = Field(description="spent tuning it, in target runs")
    confirmations: list[WireFloat] = Field(description="the ended seeds' values at the target")
    failed: int = 0
    pending: int = 0
    mean: WireFloat | None = None
    std: float | None = Field(None, description="sample std of the confirmations: the seed spread")
    best: bool = False
    difference: WireFloat | None = Field(None, description="mean - the best value's mean")
    p_value: float | None = None
    distinguishable: bool | None = Field(None, description="p_value < alpha; null: the best, or too few seeds")
    warnings: list[str] = Field(default_factory=list, description="search-border warnings of its nuisance parameters")


class RoundResult(_Model):
    """A playbook round's answer (``GET /v1/studies/{id}/round``)."""

    study_id: int
    scientific: list[str]
    phase: RoundPhase
    seeds: int
    alpha: float
    test: RoundTest
    points: list[RoundPoint]
    best: int | None = Field(None, description="index into points")
    search_budget: float = Field(description="target runs for the search (max_cost less the seeds)")
    warnings: list[str] = Field(default_factory=list)


class ProgressPoint(_Model):
    cost: float = Field(description="cumulative cost, in units of one target run")
    best: float


class Progress(_Model):
    study_id: int
    state: StudyState
    n_trials: int
    trials_by_state: dict[TrialState, int]
    n_measurements: int
    cost_spent: float
    max_cost: float | None = None
    max_trials: int | None = None
    elapsed_seconds: float | None = None
    max_wall_clock_seconds: float | None = None
    fraction_done: float | None = Field(None, description=(
        "budget spent: the larger of cost spent / max_cost and finished trials / max_trials (elapsed / "
        "max_wall_clock_seconds only when that is the one limit); 1 once completed, None with no limit"))
    progress_limit: BudgetLimit | None = Field(None, description="the limit fraction_done is measured against")
    best_value: float | None = Field(None, description="best value measured at the target fidelity")
    best_trial_id: int | None = None
    best_over_cost: list[ProgressPoint] = Field(default_factory=list)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_page_token`` back as ``page_token`` for the next one."""

    items: list[T]
    next_page_token: str | None = None


class ErrorBody(_Model):
    code: ErrorCode
    message: str
    field: str | None = None
    retryable: bool = False


class ErrorResponse(_Model):
    error: ErrorBody


class TokenCreated(_Model):
    tenant: str
    token: str


__all__ = [
    "AdaptivePolicyKind", "AdaptiveSpec",
    "BatchMeasurement", "BatchResult", "BudgetLimit", "BudgetSpec", "CompleteRequest", "Condition", "ConstraintOp", "CostKind", "CostSpec",
    "Decision", "Direction", "ErrorBody", "ErrorCode", "ErrorResponse", "FailRequest", "FidelitySpec", "Measurement",
    "MeasurementBatch", "MeasurementCreate", "Objective", "OutcomeConstraint", "Page", "ParetoPoint", "ParamRole", "ParamSpec", "ParamType",
    "Progress", "ProgressPoint", "Recommendation", "ReportResult", "Resources", "SchedulerSpec", "ShouldStop",
    "SizeSpec", "Step", "StepRange", "Study", "StudySpec", "StudyState", "SuggestRequest", "SuggestResponse",
    "TargetSpec", "TokenCreated", "Trial", "TrialState", "WireFloat", "WorkloadSpec",
]
