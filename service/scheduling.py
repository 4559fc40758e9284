"""Drives the ``schedulers`` ask/tell interface for one study inside one request's transaction.

Per request: the study row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), the scheduler is taken from the per-process :class:`SchedulerCache` when its event count matches
the study's, else rebuilt by ``make_scheduler(...).replay(events)`` from the persisted log; the call is
applied; the new events, trials and measurements are written in the same transaction; and the live instance
goes back to the cache only after the commit (a rolled-back request leaves nothing stale behind: the next
one replays).

NaN cannot go into JSON columns, so event payloads carry non-finite floats as the strings
``"nan"``/``"inf"``/``"-inf"`` (:func:`encode_event` / :func:`decode_event`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from api.schemas import (Decision, MeasurementCreate, ParetoPoint, Recommendation, ReportResult, RoundResult,
                         StudySpec, StudyState, TrialState)
from schedulers import InvalidProblemError, InvalidSpaceError, Problem, Scheduler, make_cost_model, make_scheduler
from schedulers.base import Decision as SchedulerDecision
from schedulers.playbook import PlaybookRound
from service.adaptation import StudyAdaptation, build_adaptive
from service.errors import ConflictError, InvalidArgumentError
from service.models import StudyRow, TrialRow, utcnow
from service.repositories import EventRepository, MeasurementRepository, TrialRepository
from workers.workloads import BUILTIN_ONLY, WorkloadPolicy, check_workload


# ----------------------------------------------------------------------------------------- encoding
def wire_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def encode_event(value: Any) -> Any:
    """Make an event (or any JSON-able value) safe for a JSON column: non-finite floats become strings."""
    if type(value) is dict and value.get("kind") == "report" and len(value) == 4:
        # the bulk of every log: {"kind", "trial_id", "step", "value"} with one float (fast path)
        v = value["value"]
        return value if math.isfinite(v) else {**value, "value": wire_float(v)}
    if isinstance(value, float):
        return wire_float(value)
    if isinstance(value, dict):
        return {k: encode_event(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_event(v) for v in value]
    return value


def decode_event(payload: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_event` for the float fields the replay reads (a report's ``value``, and a
    multi-objective report's ``metrics``)."""
    if payload.get("kind") != "report":
        return payload
    if isinstance(payload.get("value"), str):
        payload = {**payload, "value": float(payload["value"])}
    metrics = payload.get("metrics")
    if metrics and any(isinstance(v, str) for v in metrics.values()):
        payload = {**payload, "metrics": {k: float(v) for k, v in metrics.items()}}
    return payload


# ----------------------------------------------------------------------------------------- building
def _space_field(field: str | None) -> str:
    return "space" if not field or field == "space" else f"space.{field}"


#: longest cost formula taken: the scheduler library parses and evaluates it recursively, and a deeply
#: nested one (5,000 operators) overflowed the interpreter's stack as a 500 (issue 14)
MAX_FORMULA_LENGTH = 500


def _non_finite_field(value: Any, path: str) -> str | None:
    """The path of the first NaN/inf float in ``value`` (a dumped spec), or ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) \
        else ()
    for key, item in items:
        found = _non_finite_field(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")
        if found is not None:
            return found
    return None


def check_finite(spec: StudySpec) -> None:
    """JSON ``Infinity``/``NaN`` anywhere in a study is a 422 naming the field, on every database (PostgreSQL
    refused them with an SQL error, SQLite stored ``null`` and broke the SDK's schema). A parameter's field
    is named as the space parser names it (``space.lr``), the message says where in it."""
    for p in spec.space:
        if (found := _non_finite_field(p.model_dump(), f"space.{p.name}")) is not None:
            raise InvalidArgumentError(f"parameter {p.name!r}: {found} is not a finite number (NaN and infinity "
                                       "are not accepted)", field=f"space.{p.name}")
    for name, value in spec.model_dump(exclude={"space"}).items():
        if (found := _non_finite_field(value, name)) is not None:
            raise InvalidArgumentError(f"{found} is not a finite number (NaN and infinity are not accepted)",
                                       field=found)


def build_problem(spec: StudySpec) -> Problem:
    """The scheduler library's :class:`Problem` for a study; its validation errors become 422s."""
    check_finite(spec)
    raw = spec.problem_dict()
    formula = raw["cost"].get("formula")
    if isinstance(formula, str) and len(formula) > MAX_FORMULA_LENGTH:
        raise InvalidArgumentError(f"cost formula is {len(formula)} characters long; at most "
                                   f"{MAX_FORMULA_LENGTH} are accepted", field="cost.formula")
    try:  # the cost model first, so that arithmetic in a user formula is blamed on the formula
        make_cost_model(raw["cost"])
    except InvalidProblemError as e:
        raise InvalidArgumentError(e.message, field=e.field or "cost") from None
    except (ArithmeticError, TypeError, ValueError) as e:
        raise InvalidArgumentError(f"cost model: {e}", field="cost") from None
    except RecursionError:  # nesting within the length limit can still be too deep to parse
        raise InvalidArgumentError("cost formula is nested too deeply", field="cost.formula") from None
    try:
        return Problem.from_dict(raw)
    except InvalidSpaceError as e:
        raise InvalidArgumentError(e.message, field=_space_field(e.field)) from None
    except InvalidProblemError as e:
        raise InvalidArgumentError(e.message, field=e.field) from None
    except (ArithmeticError, KeyError, TypeError, ValueError) as e:
        raise InvalidArgumentError(f"malformed study: {e}") from None


def build_scheduler(spec: StudySpec, problem: Problem) -> Scheduler:
    """The study's scheduler; a study with a ``round`` runs its scheduler inside a :class:`PlaybookRound`."""
    try:
        if spec.round is not None:
            return PlaybookRound(problem, seed=spec.scheduler.seed, inner=spec.scheduler.name,
                                 inner_options=spec.scheduler.options, **spec.round.model_dump())
        return make_scheduler(spec.scheduler.name, problem, seed=spec.scheduler.seed, **spec.scheduler.options)
    except (InvalidProblemError, InvalidSpaceError) as e:
        raise InvalidArgumentError(e.message, field=e.field or "scheduler") from None
    except TypeError as e:
        raise InvalidArgumentError(f"scheduler {spec.scheduler.name!r}: {e}", field="scheduler.options") from None


def validate_spec(spec: StudySpec, workloads: WorkloadPolicy = BUILTIN_ONLY) -> None:
    """Everything the scheduler library checks, checked at create time (422 naming the field), including
    a cost model that cannot price some rung of the ladder (which would otherwise fail at the first report),
    and the workload (a misspelt built-in name or a missing entrypoint module would otherwise fail every
    trial, and an entrypoint outside ``workloads``, the deployment's ``Settings.workload_policy``, is code
    the tenant may not run; :func:`workers.workloads.check_workload`)."""
    if spec.workload is not None:
        check_workload(name=spec.workload.name, entrypoint=spec.workload.entrypoint, policy=workloads)
    problem = build_problem(spec)
    try:
        for size in problem.ladder.sizes:
            for steps in (problem.ladder.min_steps, problem.ladder.max_steps):
                cost = problem.cost_model.cost(steps, size)
                if not (math.isfinite(cost) and cost > 0):
                    raise InvalidProblemError(f"cost model gives {cost} for {steps} steps of size {size.name!r}; "
                                              "costs must be positive and finite", field="cost")
    except InvalidProblemError as e:
        raise InvalidArgumentError(e.message, field=e.field or "cost") from None
    except (ArithmeticError, RecursionError, ValueError) as e:  # e.g. a formula dividing by zero or taking log of 0
        raise InvalidArgumentError(f"cost model cannot price the ladder: {e}", field="cost") from None
    build_scheduler(spec, problem)
    build_adaptive(spec, problem)


class SchedulerCache:
    """Live scheduler instances per study, valid while their event count equals the study's.

    A request *takes* the instance out (so two threads never share one) and *puts* it back after commit.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, Scheduler] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, study_id: int, n_events: int) -> Scheduler | None:
        with self._lock:
            sched = self._items.pop(study_id, None)
        return sched if sched is not None and len(sched.events) == n_events else None

    def put(self, study_id: int, sched: Scheduler) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[study_id] = sched
            self._items.move_to_end(study_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def discard(self, study_id: int) -> None:
        with self._lock:
            self._items.pop(study_id, None)


# ----------------------------------------------------------------------------------------- runtime
_DECISION = {SchedulerDecision.CONTINUE: Decision.CONTINUE, SchedulerDecision.PAUSE: Decision.PAUSE,
             SchedulerDecision.STOP: Decision.STOP}


def decision_for_state(state: TrialState) -> Decision:
    """What a worker holding a trial in ``state`` should do."""
    if state.is_live:
        return Decision.CONTINUE
    return Decision.PAUSE if state is TrialState.PAUSED else Decision.STOP


@dataclass
class ReportOutcome:
    """What a report call did: the decision per trial after its last measurement, the full answer to the
    last measurement, how many measurements were new, and (lazily, as :attr:`results`) the answer to each."""

    decisions: dict[int, Decision]
    last: ReportResult
    inserted: int
    #: per item: (trial id, step, decision, diverged, duplicate), as decided when it was told
    items: list[tuple[int, int, Decision, bool, bool]]
    trial_states: dict[int, TrialState]
    #: an adaptive study's trial id -> mixture after its last measurement (empty otherwise)
    adapted: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def results(self) -> list[ReportResult]:
        """One :class:`ReportResult` per measurement, in order (built on demand: the batch path skips it)."""
        out = []
        for trial_id, step, decision, diverged, duplicate in self.items:
            state = self.trial_states[trial_id]
            if decision is Decision.CONTINUE and state.is_final:
                decision = Decision.STOP
            out.append(ReportResult(trial_id=trial_id, step=step, decision=decision, trial_state=state,
                                    diverged=diverged, duplicate=duplicate))
        if out:
            out[-1] = self.last
        return out


class StudyRuntime:
    """One locked study within one transaction: the scheduler plus the rows that mirror it."""

    def __init__(self, session: Session, study: StudyRow, cache: SchedulerCache) -> None:
        self.session = session
        self.study = study
        self.cache = cache
        self.spec = StudySpec.model_validate(study.spec)
        self.trials = TrialRepository(session)
        self._sched: Scheduler | None = None
        self._problem: Problem | None = None
        self._adaptation: StudyAdaptation | None = None

    # -- the scheduler -------------------------------------------------------------------------
    @property
    def problem(self) -> Problem:
        if self._sched is not None:
            return self._sched.problem
        if self._problem is None:
            self._problem = build_problem(self.spec)
        return self._problem

    @property
    def sched(self) -> Scheduler:
        """The study's live scheduler: taken from the cache, or rebuilt from the event log. It goes back to
        the cache when this transaction commits (read-only uses included); after a rollback it does not."""
        if self._sched is None:
            sched = self.cache.take(self.study.id, self.study.n_events)
            if sched is None:
                events = [decode_event(p) for p in EventRepository(self.session).load(self.study.id)]
                sched = build_scheduler(self.spec, self.problem).replay(events)
            self._sched = sched
            study_id = self.study.id
            sa_event.listen(self.session, "after_commit", lambda _s: self.cache.put(study_id, sched), once=True)
        return self._sched

    @property
    def adaptation(self) -> StudyAdaptation | None:
        """The study's in-trial adaptation policy (``None`` when it adapts nothing)."""
        if self._adaptation is None and self.spec.adaptive is not None:
            setup = build_adaptive(self.spec, self.problem)
            self._adaptation = StudyAdaptation(self.session, self.study.id, setup, self.spec.scheduler.seed)
        return self._adaptation

    def persist(self) -> None:
        """Write the events the scheduler (and the adaptation policy) recorded since they were loaded, and the
        study's counters."""
        if self._adaptation is not None:
            self._adaptation.persist()
        if self._sched is None:
            return
        sched, study = self._sched, self.study
        new = sched.events[study.n_events:]
        if new:
            EventRepository(self.session).append(study.id, study.n_events, [encode_event(e) for e in new])
            study.n_events = len(sched.events)
            study.n_trials = len(sched.trials)
            study.cost_spent = sched.cost_spent / self.problem.target_cost

    def _sync(self, row: TrialRow, now: datetime) -> None:
        """Copy the scheduler's view of a trial onto its row."""
        t = self.sched.trials[row.number]
        row.state = TrialState(t.state.value)
        row.steps = t.steps
        row.start_step = t.segment_start
        if t.curve:
            step, value = t.curve[-1]
            row.last_step = int(step)
            row.last_value = float(value) if math.isfinite(value) else None
        row.failure = t.failure
        if row.state.is_final and row.finished_at is None:
            row.finished_at = now

    # -- budget --------------------------------------------------------------------------------
    def _budget_spent(self, now: datetime) -> bool:
        b = self.spec.budget
        if b.max_cost is not None and self.study.cost_spent >= b.max_cost - 1e-12:
            return True
        if (b.max_wall_clock_seconds is not None and self.study.started_at is not None
                and (now - self.study.started_at).total_seconds() >= b.max_wall_clock_seconds):
            return True
        return False

    def _trial_budget_left(self) -> int | None:
        b = self.spec.budget
        return None if b.max_trials is None else max(b.max_trials - len(self.sched.trials), 0)

    def finish(self, state: StudyState, now: datetime, error: str | None = None) -> None:
        """End the study: every unfinished trial is stopped (or completed, if it already reached its steps)."""
        self.study.state = state
        self.study.finished_at = now
        self.study.error = error
        for row in self.trials.unfinished(self.study.id):
            reached_end = row.state.is_live and row.last_step is not None and row.last_step >= row.steps
            row.state = TrialState.COMPLETED if reached_end else TrialState.STOPPED
            row.finished_at = now

    def enforce_budget(self, now: datetime | None = None) -> bool:
        """Complete the study when a budget limit is reached; True if it is (now) over."""
        now = now or utcnow()
        if self.study.state.is_final:
            return True
        if self.study.state in (StudyState.RUNNING, StudyState.PAUSED) and self._budget_spent(now):
            self.finish(StudyState.COMPLETED, now)
            return True
        return False

    def _trials_exhausted(self) -> bool:
        """Nothing is live and nothing new will be handed out: the trial budget is used up, or the
        scheduler is done (a playbook round whose seeds ended)."""
        if any(t.state.is_live for t in self.sched.trials.values()):
            return False
        return self.sched.done or self._trial_budget_left() == 0

    def _study_exhausted(self) -> bool:
        """:meth:`_trials_exhausted` with no paused trial left to resume (a done scheduler resumes none)."""
        return self._trials_exhausted() and (self.sched.done or not any(
            t.state is TrialState.PAUSED for t in self.trials.unfinished(self.study.id)))

    # -- ask -----------------------------------------------------------------------------------
    def suggest(self, client_id: str, count: int, lease_seconds: float | None = None) -> list[TrialRow]:
        """Trials for ``client_id``: its live ones first (idempotent ask), then resumed, then new ones. With
        ``lease_seconds``, live trials nobody reported on for that long are reclaimed first
        (:meth:`reclaim`)."""
        study, now = self.study, utcnow()
        if study.state is StudyState.PENDING:
            raise ConflictError(f"study {study.id} is pending; start it before asking for trials",
                                field="study_id")
        if self.enforce_budget(now) or study.state is not StudyState.RUNNING:
            return []
        if lease_seconds is not None:
            self.reclaim(now - timedelta(seconds=lease_seconds), now)
        out = self.trials.live_for_client(study.id, client_id)[:count]
        need = count - len(out)
        resumed = []
        while need > 0:
            s = self.sched.resume()
            if s is None:
                break
            resumed.append(s.trial_id)
            need -= 1
        for number, row in self.trials.by_numbers(study.id, resumed).items():
            row.client_id = client_id
            row.updated_at = now
            self._sync(row, now)
            out.append(row)
        left = self._trial_budget_left()
        if need > 0 and (left is None or left > 0):
            adaptation = self.adaptation
            for s in self.sched.suggest(need if left is None else min(need, left)):
                size = self.problem.ladder.size(s.size)
                adapted = adaptation.start(s.trial_id, s.params) if adaptation is not None else None
                out.append(self.trials.add(TrialRow(
                    study_id=study.id, number=s.trial_id, params=encode_event(s.params), size=s.size,
                    steps=s.steps, start_step=s.start_step, replicate=s.replicate, state=TrialState.PENDING,
                    client_id=client_id, cpus=size.cpus, gpus=size.gpus, adapted=adapted, created_at=now,
                    updated_at=now)))
        # nothing to hand out, nothing running and no resume to give (it was just asked): done
        if not out and self._trials_exhausted():
            self.finish(StudyState.COMPLETED, now)
        self.persist()
        self.session.flush()
        return out

    def reclaim(self, silent_since: datetime, now: datetime) -> list[TrialRow]:
        """Abandon the live trials whose row nobody touched since ``silent_since`` (the lease is derived
        from ``updated_at``, which every hand-out, measurement and heartbeat sets): the scheduler pauses
        them at their last step, or stops them if they never reported (``Scheduler.abandon``)."""
        lost = [row for row in self.trials.unfinished(self.study.id)
                if row.state.is_live and row.updated_at is not None and row.updated_at < silent_since]
        for row in sorted(lost, key=lambda r: r.number):
            self.sched.abandon(row.number)
            self._sync(row, now)
            row.updated_at = now
        if lost:
            self.persist()
        return lost

    def heartbeat(self, row: TrialRow, segment_start: int | None = None) -> TrialRow:
        """The worker still runs the trial's segment: its lease starts again. For an ended segment (the
        trial was reclaimed or paused meanwhile) a 409 tells the worker to give up."""
        if self._stale(row, segment_start) or not row.state.is_live:
            raise ConflictError(f"trial {row.id} is {row.state.value} from step {row.start_step}; this worker's "
                                f"segment ended", field="trial_id")
        row.updated_at = utcnow()
        return row

    # -- tell ----------------------------------------------------------------------------------
    def report(self, items: Sequence[tuple[TrialRow, MeasurementCreate]]) -> ReportOutcome:
        """Record measurements in order and tell the scheduler: one pass, one bulk insert.

        This is the ingest hot path (the batch endpoint), so it builds plain rows and answers one decision
        per trial (after its last measurement) plus a full :class:`ReportResult` for the last item only.

        A measurement for a trial that was already finished is a 422, unless it repeats a stored step (a
        retried report: answered with the trial's decision). A trial that ends within the batch keeps the
        rest of its batch as data, but the scheduler is not told about them.
        """
        study, now = self.study, utcnow()
        if study.state is StudyState.PENDING:
            raise ConflictError(f"study {study.id} is pending; it has no trials to measure", field="study_id")
        finished_before = {row.id for row, _ in items if row.state.is_final}
        paused_before = {row.id for row, _ in items if row.state is TrialState.PAUSED}
        self._check_steps(items, finished_before, paused_before)
        self._check_metrics(items)
        adaptation = self.adaptation
        if adaptation is not None:
            for i, (_, m) in enumerate(items):
                adaptation.check_domains(m.domains, f"measurements[{i}].domains" if len(items) > 1 else "domains")
            adaptation.load(row.number for row, _ in items)
        adapted: dict[int, dict[str, float]] = {}
        target_cost = self.problem.target_cost
        quiet = finished_before | paused_before  # only retries of stored steps can reach these
        sched = self.sched if len(quiet) < len({r.id for r, _ in items}) else None
        rows: list[dict[str, Any]] = []
        decisions: dict[int, Decision] = {}
        ended: dict[int, Decision] = {}
        touched: dict[int, TrialRow] = {}
        told: list[tuple[int, int, Decision, bool, bool]] = []
        duplicate = False
        ids = {id(row): (row.id, row.number) for row, _ in items}  # plain ints: ORM attributes are slow here
        study_cost = study.cost_spent
        for row, m in items:
            trial_id, number = ids[id(row)]
            step = m.step
            value = float(m.value)
            finite = math.isfinite(value)
            cost = 0.0
            told_now = False
            if trial_id in finished_before or trial_id in paused_before:
                decision, duplicate = decision_for_state(row.state), True
            elif trial_id in ended:
                decision, duplicate = ended[trial_id], False
            else:
                before = sched.cost_spent
                t = sched.trials[number]
                duplicate = bool(t.curve) and step <= t.curve[-1][0]
                decision = _DECISION[sched.report(number, step, value, m.elapsed_seconds, m.metrics)]
                study_cost = sched.cost_spent / target_cost
                cost = (sched.cost_spent - before) / target_cost
                touched[trial_id] = row
                told_now = not duplicate
                if decision is not Decision.CONTINUE:
                    ended[trial_id] = decision
            if adaptation is not None:
                if told_now and m.domains:
                    adapted[trial_id] = row.adapted = adaptation.observe(number, step, m.domains)
                else:  # a retry answers what it was answered then; no per-domain values change nothing
                    adapted[trial_id] = adaptation.mixture(number, step if duplicate else None) or {}
            if m.checkpoint is not None:
                row.checkpoint = m.checkpoint
                touched[trial_id] = row
            decisions[trial_id] = decision
            told.append((trial_id, step, decision, not finite, duplicate))
            rows.append({
                "trial_id": trial_id, "step": step,
                "value": value if finite else None, "non_finite": None if finite else wire_float(value),
                "metrics": encode_event(m.metrics) if m.metrics else None,
                "domains": encode_event(m.domains) if m.domains else None,
                "elapsed_seconds": m.elapsed_seconds, "cost": cost, "study_cost": study_cost, "created_at": now,
            })
        for row in touched.values():
            row.updated_at = now
            if sched is not None and row.id not in quiet:
                self._sync(row, now)
        self.persist()
        inserted = MeasurementRepository(self.session).insert_many(rows)
        study.n_measurements = (study.n_measurements or 0) + inserted
        if study.state is StudyState.RUNNING:
            self.enforce_budget(now)
            if study.state is StudyState.RUNNING and sched is not None and self._study_exhausted():
                self.finish(StudyState.COMPLETED, now)
        # the answer per trial reflects the study ending, too
        states = {row.id: row.state for row, _ in items}
        for trial_id, decision in decisions.items():
            if decision is Decision.CONTINUE and states[trial_id].is_final:
                decisions[trial_id] = Decision.STOP
        last_row, last_m = items[-1]
        last = ReportResult(trial_id=last_row.id, step=last_m.step, decision=decisions[last_row.id],
                            trial_state=last_row.state, diverged=not math.isfinite(float(last_m.value)),
                            duplicate=duplicate or (len(items) == 1 and inserted == 0),
                            adapted=adapted.get(last_row.id))
        return ReportOutcome(decisions, last, inserted, told, states, adapted)

    def _check_steps(self, items: Sequence[tuple[TrialRow, MeasurementCreate]], finished: set[int],
                     paused: set[int]) -> None:
        """Every measurement is either new (after the trial's last reported step, inside its segment and on
        the study's grid: :meth:`api.schemas.StepRange.report_step_error`) or a retry of a stored step.
        Anything else would be stored without the scheduler ever seeing it, or charged for steps no
        segment asked for, so it is a 422 naming ``step``."""
        grid = self.spec.fidelity.steps
        last = {row.id: row.last_step for row, _ in items}  # advances through the batch
        retries: list[tuple[int, int, int]] = []            # (item index, trial id, step)
        for i, (row, m) in enumerate(items):
            prefix = f"measurements[{i}]." if len(items) > 1 else ""
            prev = last[row.id]
            if prev is not None and m.step <= prev:
                retries.append((i, row.id, m.step))
                continue
            if row.id in finished:
                raise InvalidArgumentError(
                    f"trial {row.id} is {row.state.value}; it takes no more measurements (got step {m.step})",
                    field=prefix + "trial_id")
            if self._stale(row, m.segment_start):
                raise ConflictError(f"trial {row.id} was handed out again from step {row.start_step}; the segment "
                                    f"from step {m.segment_start} ended (its lease ran out, or it was paused), so "
                                    f"this worker's step {m.step} is not taken", field=prefix + "segment_start")
            if row.id in paused:
                # continuing a paused trial goes through ask (resume), which sets its new step budget
                raise ConflictError(f"trial {row.id} is paused at step {row.last_step}; it continues only when "
                                    f"an ask hands it out again (got step {m.step})", field=prefix + "trial_id")
            error = grid.report_step_error(m.step, row.start_step, row.steps)
            if error is not None:
                raise InvalidArgumentError(f"trial {row.id}: {error}", field=prefix + "step")
            last[row.id] = m.step
        if not retries:
            return
        # a retry repeats a stored step, or one sent earlier in this batch
        known = MeasurementRepository(self.session).existing({t for _, t, _ in retries}, {s for _, _, s in retries})
        first = {}
        for i, (row, m) in enumerate(items):
            first.setdefault((row.id, m.step), i)
        for i, trial_id, step in retries:
            if (trial_id, step) not in known and first[(trial_id, step)] == i:
                prefix = f"measurements[{i}]." if len(items) > 1 else ""
                raise InvalidArgumentError(
                    f"trial {trial_id}: step {step} was never reported and is not after the trial's last "
                    f"reported step; steps must increase", field=prefix + "step")

    def _check_metrics(self, items: Sequence[tuple[TrialRow, MeasurementCreate]]) -> None:
        """A multi-objective study's measurement with a finite value carries every other objective and
        constrained metric in ``metrics`` (``Objectives.missing``), else a 422 naming the first one missing."""
        objectives = self.problem.objectives
        if not objectives.is_multi:
            return
        for i, (_, m) in enumerate(items):
            missing = objectives.missing(m.metrics) if math.isfinite(float(m.value)) else []
            if missing:
                prefix = f"measurements[{i}]." if len(items) > 1 else ""
                raise InvalidArgumentError(
                    f"this study's objectives and constraints need the metric {missing[0]!r} with every "
                    f"measurement (got {sorted(m.metrics) or 'none'})", field=f"{prefix}metrics.{missing[0]}")

    @staticmethod
    def _stale(row: TrialRow, segment_start: int | None) -> bool:
        """Whether a worker's call is about a segment that already ended: a segment is named by its start
        step, which grows with every resume (a trial pauses only on a report, after its start)."""
        return segment_start is not None and segment_start != row.start_step

    def complete(self, row: TrialRow, checkpoint: str | None = None, segment_start: int | None = None) -> TrialRow:
        """The worker finished the trial's segment. Completing a stopped or completed trial is a no-op, and so
        is completing an earlier segment (:meth:`_stale`): the trial was handed out again meanwhile, and the
        call must not end (or set the checkpoint of) the segment another worker now runs."""
        now = utcnow()
        if self._stale(row, segment_start):
            return row
        if checkpoint is not None:
            row.checkpoint = checkpoint
        if row.state is TrialState.FAILED:
            raise ConflictError(f"trial {row.id} failed; it cannot be completed", field="trial_id")
        if row.state.is_final:
            return row
        self.sched.complete(row.number)
        self._sync(row, now)
        row.updated_at = now
        self.persist()
        self._after_trial_end(now)
        return row

    def fail(self, row: TrialRow, reason: str, segment_start: int | None = None) -> TrialRow:
        """The worker's run of the trial crashed; an earlier segment's failure changes nothing (see
        :meth:`complete`)."""
        now = utcnow()
        if self._stale(row, segment_start) or row.state is TrialState.FAILED:
            return row
        if row.state.is_final:
            raise ConflictError(f"trial {row.id} is {row.state.value}; it cannot fail now", field="trial_id")
        self.sched.fail(row.number, reason or "failed by the worker")
        self._sync(row, now)
        row.updated_at = now
        self.persist()
        self._after_trial_end(now)
        return row

    def _after_trial_end(self, now: datetime) -> None:
        if self.study.state is StudyState.RUNNING and not self.enforce_budget(now) and self._study_exhausted():
            self.finish(StudyState.COMPLETED, now)

    # -- results -------------------------------------------------------------------------------
    def recommend(self) -> Recommendation:
        rec = self.sched.recommend()
        trial_id = None
        if rec.trial_id is not None:
            row = self.trials.by_numbers(self.study.id, [rec.trial_id]).get(rec.trial_id)
            trial_id = row.id if row is not None else None
        predicted = None if rec.predicted is None else float(rec.predicted)
        std = None if rec.std is None or not math.isfinite(rec.std) else float(rec.std)
        pareto = None
        if self.problem.objectives.is_multi:
            front = self.sched.pareto()
            ids = self.trials.by_numbers(self.study.id, [p.trial_id for p in front if p.trial_id is not None])
            pareto = [ParetoPoint(params=dict(p.params), values=dict(p.values), stds=None if p.stds is None else {
                          k: float(v) for k, v in p.stds.items() if math.isfinite(v)},
                          trial_id=ids[p.trial_id].id if p.trial_id in ids else None) for p in front]
        return Recommendation(study_id=self.study.id, params=dict(rec.params), size=rec.size,
                              steps=int(rec.steps), predicted=predicted, std=std, trial_id=trial_id,
                              warnings=list(rec.warnings), objectives=self.problem.objectives.names,
                              pareto=pareto)

    def round_result(self) -> RoundResult:
        """A playbook round's answer; a study without ``round`` is a 409."""
        sched = self.sched
        if not isinstance(sched, PlaybookRound):
            raise ConflictError(f"study {self.study.id} is not a playbook round (its spec has no 'round')",
                                field="round")
        return RoundResult.model_validate({**asdict(sched.round_result()), "study_id": self.study.id})
