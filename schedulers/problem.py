"""What is being tuned: the search space, the fidelity ladder (steps x model size), the target and the cost.

Steps ``s`` are continuable (a trial reports along the way and continues from a checkpoint); model size
``m`` is a discrete ladder (a new model per size). The target is the fidelity ``(s*, m*)`` at which the
user wants the best hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from schedulers.errors import InvalidProblemError
from schedulers.objectives import Direction, ObjectiveDef, Objectives
from schedulers.space import SearchSpace


@dataclass(frozen=True)
class ModelSize:
    """One rung of the model-size ladder, with the resources one trial of that size asks for."""

    name: str
    params: float
    cpus: float = 1.0
    gpus: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FidelityLadder:
    """Training steps ``min_steps..max_steps`` reported every ``report_every``; sizes sorted by ``params``."""

    min_steps: int
    max_steps: int
    report_every: int
    sizes: tuple[ModelSize, ...]

    def __post_init__(self) -> None:
        if self.min_steps < 1 or self.max_steps < self.min_steps:
            raise InvalidProblemError(
                f"steps need 1 <= min_steps ({self.min_steps}) <= max_steps ({self.max_steps})",
                field="fidelity.steps")
        if self.report_every < 1:
            raise InvalidProblemError("report_every must be >= 1", field="fidelity.steps.report_every")
        if not self.sizes:
            raise InvalidProblemError("the model-size ladder is empty", field="fidelity.sizes")
        names = [s.name for s in self.sizes]
        if len(set(names)) != len(names):
            raise InvalidProblemError(f"duplicate model size names in {names}", field="fidelity.sizes")
        counts = [s.params for s in self.sizes]
        if any(b <= a for a, b in zip(counts, counts[1:])):
            raise InvalidProblemError(
                f"model sizes must be sorted by strictly increasing parameter count, got {counts}",
                field="fidelity.sizes")
        if any(c <= 0 for c in counts):
            raise InvalidProblemError("model parameter counts must be > 0", field="fidelity.sizes")

    def size(self, name: str) -> ModelSize:
        for s in self.sizes:
            if s.name == name:
                return s
        raise InvalidProblemError(f"unknown model size {name!r}; ladder has {[s.name for s in self.sizes]}",
                                  field="size")

    def index(self, name: str) -> int:
        return [s.name for s in self.sizes].index(self.size(name).name)

    @property
    def report_steps(self) -> list[int]:
        """The steps at which a trial running to ``max_steps`` reports."""
        steps = list(range(self.report_every, self.max_steps + 1, self.report_every))
        if not steps or steps[-1] != self.max_steps:
            steps.append(self.max_steps)
        return [s for s in steps if s >= min(self.min_steps, self.report_every)]


@dataclass(frozen=True)
class Target:
    steps: int
    size: str


@dataclass
class Problem:
    """Everything a scheduler needs to know about a study, independent of how trials are executed."""

    space: SearchSpace
    ladder: FidelityLadder
    target: Target
    cost_model: "CostModel"  # noqa: F821 - see schedulers.cost
    direction: Direction = Direction.MINIMIZE
    #: the most the study may spend, in target runs (the service's ``budget.max_cost``, the benchmark's
    #: budget); ``None`` when there is no cost limit. A scheduler may plan with it (the flagship verifies its
    #: recommendation at the target before it runs out) but never enforces it: its caller does.
    budget: float | None = None
    #: the objectives (primary first) and outcome constraints (``schedulers.objectives``); by default one
    #: objective in ``direction``. ``direction`` is always the primary objective's.
    objectives: Objectives | None = None

    def __post_init__(self) -> None:
        if self.objectives is None:
            self.objectives = Objectives((ObjectiveDef("loss", self.direction),))
        self.direction = self.objectives.primary.direction
        names = [s.name for s in self.ladder.sizes]
        if self.target.size not in names:
            raise InvalidProblemError(
                f"target size {self.target.size!r} is not on the model-size ladder {names}", field="target.size")
        if not (self.ladder.min_steps <= self.target.steps <= self.ladder.max_steps):
            raise InvalidProblemError(
                f"target steps {self.target.steps} outside the ladder's [{self.ladder.min_steps}, "
                f"{self.ladder.max_steps}]", field="target.steps")
        if self.budget is not None and not self.budget > 0:
            raise InvalidProblemError(f"the budget must be > 0 target runs, got {self.budget}", field="budget.max_cost")
        if getattr(self.cost_model, "anchor", False) is None:
            # a learned cost model keeps the target's cost fixed, so budgets in target runs stay meaningful
            self.cost_model.anchor = (self.target.steps, self.ladder.size(self.target.size))

    @property
    def target_cost(self) -> float:
        """Cost of one run at the target fidelity: the benchmark's unit of cost."""
        return self.cost_model.cost(self.target.steps, self.ladder.size(self.target.size))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Problem":
        """Build from the JSON shape of the wire contract (``space``, ``fidelity``, ``target``, ``cost``,
        ``direction``, ``budget``, and optionally ``objectives`` and ``constraints``)."""
        from schedulers.cost import make_cost_model

        fid = raw["fidelity"]
        st = fid["steps"]
        ladder = FidelityLadder(
            min_steps=int(st["min"]), max_steps=int(st["max"]), report_every=int(st.get("report_every", st["min"])),
            sizes=tuple(ModelSize(name=s["name"], params=float(s["params"]), cpus=float(s.get("cpus", 1.0)),
                                  gpus=float(s.get("gpus", 0.0)), extra=dict(s.get("extra", {})))
                        for s in fid["sizes"]))
        tgt = raw.get("target") or {}
        target = Target(steps=int(tgt.get("steps", ladder.max_steps)), size=str(tgt.get("size", ladder.sizes[-1].name)))
        return cls(space=SearchSpace.from_dicts(raw["space"]), ladder=ladder, target=target,
                   cost_model=make_cost_model(raw.get("cost") or {}),
                   direction=Direction(raw.get("direction", "minimize")),
                   budget=_optional_float((raw.get("budget") or {}).get("max_cost")),
                   objectives=Objectives.from_dict(raw))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def sizes_from(items: Sequence[tuple[str, float]]) -> tuple[ModelSize, ...]:
    return tuple(ModelSize(name=n, params=p) for n, p in items)
