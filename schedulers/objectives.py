"""Several objectives and outcome constraints: the rules every scheduler and the service share.

A study has one or more objectives (a metric name and a direction) and optionally outcome constraints
(``latency <= 20``). The first objective is the *primary* one: a report's ``value`` is its value, every
single-objective scheduler (the baselines) optimises it alone, and a study with one objective and no
constraint is exactly the single-objective study it always was. The other objectives and the constrained
metrics arrive with each report as named ``metrics``.

This module is the one home of:

- which metrics a report must carry (:meth:`Objectives.missing`),
- objective vectors in minimisation units (:meth:`Objectives.vector`) and feasibility
  (:meth:`Objectives.feasible`),
- Pareto dominance (:func:`pareto_mask`), hypervolume (:func:`hypervolume`) and the random augmented
  Chebyshev scalarisation of ParEGO (:func:`sample_weights`, :func:`chebyshev`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from schedulers.errors import InvalidProblemError


class Direction(str, enum.Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class ConstraintOp(str, enum.Enum):
    LE = "<="
    GE = ">="


@dataclass(frozen=True)
class ObjectiveDef:
    metric: str
    direction: Direction = Direction.MINIMIZE

    def to_min(self, value: float) -> float:
        return value if self.direction is Direction.MINIMIZE else -value


@dataclass(frozen=True)
class OutcomeConstraint:
    """``metric op bound``, e.g. ``latency <= 20``."""

    metric: str
    op: ConstraintOp
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` is on the wrong side of the bound (0 when satisfied; NaN stays NaN)."""
        gap = value - self.bound if self.op is ConstraintOp.LE else self.bound - value
        return max(gap, 0.0) if not math.isnan(gap) else math.nan

    def __str__(self) -> str:
        return f"{self.metric} {self.op.value} {self.bound:g}"


@dataclass(frozen=True)
class Objectives:
    """The objectives (primary first) and the outcome constraints of a problem."""

    defs: tuple[ObjectiveDef, ...] = (ObjectiveDef("loss"),)
    constraints: tuple[OutcomeConstraint, ...] = ()

    def __post_init__(self) -> None:
        if not self.defs:
            raise InvalidProblemError("a study needs at least one objective", field="objectives")
        names = [d.metric for d in self.defs]
        if len(set(names)) != len(names):
            raise InvalidProblemError(f"duplicate objective metrics in {names}", field="objectives")
        for i, c in enumerate(self.constraints):
            if not math.isfinite(c.bound):
                raise InvalidProblemError(f"constraint {c.metric!r}: the bound must be finite",
                                          field=f"constraints[{i}].bound")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Objectives":
        """From the problem dict: ``objectives`` (list of ``{metric, direction}``), ``constraints`` (list of
        ``{metric, op, bound}``); without ``objectives``, one objective in ``direction``."""
        try:
            items = raw.get("objectives") or [{"metric": raw.get("metric", "loss"),
                                                "direction": raw.get("direction", "minimize")}]
            defs = tuple(ObjectiveDef(str(o["metric"]), Direction(o.get("direction", "minimize"))) for o in items)
            cons = tuple(OutcomeConstraint(str(c["metric"]), ConstraintOp(c["op"]), float(c["bound"]))
                         for c in raw.get("constraints") or ())
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidProblemError(f"malformed objectives or constraints: {e}", field="objectives") from None
        return cls(defs, cons)

    @property
    def primary(self) -> ObjectiveDef:
        return self.defs[0]

    @property
    def is_multi(self) -> bool:
        """Whether anything beyond the primary objective matters (several objectives or a constraint)."""
        return len(self.defs) > 1 or bool(self.constraints)

    @property
    def names(self) -> list[str]:
        return [d.metric for d in self.defs]

    @property
    def reported_metrics(self) -> list[str]:
        """The metrics a report carries besides ``value`` (the primary): other objectives, constrained ones."""
        out = [d.metric for d in self.defs[1:]]
        out += [c.metric for c in self.constraints if c.metric not in out and c.metric != self.primary.metric]
        return out

    def missing(self, metrics: Mapping[str, float] | None) -> list[str]:
        """The metrics a report with a finite ``value`` must carry and ``metrics`` lacks."""
        metrics = metrics or {}
        return [m for m in self.reported_metrics if m not in metrics]

    def outcomes(self, value: float, metrics: Mapping[str, float] | None) -> dict[str, float]:
        """Every objective's and constrained metric's value (user units) of one report (NaN when absent)."""
        metrics = metrics or {}
        out = {self.primary.metric: float(value)}
        for m in self.reported_metrics:
            v = metrics.get(m)
            out[m] = float(v) if v is not None else math.nan
        return out

    def vector(self, outcomes: Mapping[str, float]) -> np.ndarray:
        """The objectives of one report in minimisation units (``k``)."""
        return np.asarray([d.to_min(float(outcomes.get(d.metric, math.nan))) for d in self.defs], dtype=float)

    def violations(self, outcomes: Mapping[str, float]) -> np.ndarray:
        """Each constraint's violation (0 when satisfied)."""
        return np.asarray([c.violation(float(outcomes.get(c.metric, math.nan))) for c in self.constraints],
                          dtype=float)

    def feasible(self, outcomes: Mapping[str, float]) -> bool:
        v = self.violations(outcomes)
        return bool(np.all(v == 0.0))

    def in_user_units(self, Y: np.ndarray) -> np.ndarray:
        """Minimisation-unit objective rows (``n x k``) back in each objective's direction."""
        signs = np.asarray([1.0 if d.direction is Direction.MINIMIZE else -1.0 for d in self.defs])
        return np.asarray(Y, dtype=float) * signs


# ----------------------------------------------------------------------------------------- Pareto sets
def pareto_mask(Y: np.ndarray) -> np.ndarray:
    """Which rows of ``n x k`` (minimised) are not dominated by another row; rows with a non-finite entry
    are never on the front, and of identical rows only the first is."""
    Y = np.asarray(Y, dtype=float)
    n = len(Y)
    mask = np.zeros(n, dtype=bool)
    if not n:
        return mask
    ok = np.flatnonzero(np.all(np.isfinite(Y), axis=1))
    # in lexicographic order (stable: identical rows by index) no row is dominated by a later one, so one
    # pass against the front so far decides each row
    front: list[int] = []
    for i in ok[np.lexsort(Y[ok].T[::-1])]:
        F = Y[front]
        if front and np.any(np.all(F <= Y[i], axis=1)):
            continue  # dominated by, or equal to, a row already on the front
        front.append(int(i))
    mask[front] = True
    return mask


def hypervolume(Y: np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by the rows of ``n x k`` (minimised) and bounded by ``reference``: exact, by
    slicing along the first objective (fine for the small fronts of a study; ``k`` of 2 is a sweep)."""
    ref = np.asarray(reference, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if not len(Y):
        return 0.0
    Y = Y[np.all(np.isfinite(Y), axis=1) & np.all(Y < ref, axis=1)]
    if not len(Y):
        return 0.0
    if Y.shape[1] == 1:
        return float(ref[0] - Y[:, 0].min())
    Y = Y[np.lexsort(Y.T[::-1])]
    if Y.shape[1] == 2:  # a sweep: by the first objective, each point adds the strip below the last best
        total, best = 0.0, ref[1]
        for i in range(len(Y)):
            if Y[i, 1] < best:
                total += (ref[0] - Y[i, 0]) * (best - Y[i, 1])
                best = Y[i, 1]
        return float(total)
    Y = Y[pareto_mask(Y)]
    total = 0.0
    for i in range(len(Y)):
        upper = Y[i + 1, 0] if i + 1 < len(Y) else ref[0]
        width = upper - Y[i, 0]
        if width > 0:
            total += width * hypervolume(Y[: i + 1, 1:], ref[1:])
    return float(total)


# ----------------------------------------------------------------------------------------- ParEGO
#: weight of the sum in the augmented Chebyshev scalarisation (Knowles 2006 uses 0.05)
CHEBYSHEV_RHO = 0.05


def sample_weights(rng: np.random.Generator, k: int) -> np.ndarray:
    """A weight vector drawn uniformly from the simplex (Dirichlet(1, ..., 1))."""
    w = rng.dirichlet(np.ones(k))
    return np.asarray(w, dtype=float)


@dataclass
class Normaliser:
    """Maps each column of minimisation-unit rows to [0, 1] by the range of the rows it was built from."""

    low: np.ndarray
    span: np.ndarray

    @classmethod
    def of(cls, Y: np.ndarray) -> "Normaliser":
        Y = np.asarray(Y, dtype=float)
        finite = np.where(np.isfinite(Y), Y, np.nan)
        with np.errstate(all="ignore"):
            low = np.nanmin(finite, axis=0) if len(Y) else np.zeros(Y.shape[1])
            high = np.nanmax(finite, axis=0) if len(Y) else np.ones(Y.shape[1])
        low = np.where(np.isfinite(low), low, 0.0)
        high = np.where(np.isfinite(high), high, low + 1.0)
        span = np.where(high - low > 1e-12, high - low, 1.0)
        return cls(low, span)

    def __call__(self, Y: np.ndarray) -> np.ndarray:
        return (np.asarray(Y, dtype=float) - self.low) / self.span


def chebyshev(Z: np.ndarray, weights: np.ndarray, rho: float = CHEBYSHEV_RHO) -> np.ndarray:
    """Augmented Chebyshev scalarisation ``max_i w_i z_i + rho sum_i w_i z_i`` of normalised rows ``n x k``."""
    WZ = np.asarray(Z, dtype=float) * np.asarray(weights, dtype=float)
    return WZ.max(axis=1) + rho * WZ.sum(axis=1)


@dataclass(frozen=True)
class ParetoPoint:
    """One configuration of the Pareto set at the target: its values per objective (user units), their
    predicted standard deviations (``None`` when measured, not predicted) and the trial it comes from."""

    params: dict[str, Any]
    values: dict[str, float]
    stds: dict[str, float] | None = None
    trial_id: int | None = None
    feasible: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def pareto_front(points: Sequence[ParetoPoint], objectives: Objectives) -> list[ParetoPoint]:
    """The points of ``points`` not dominated in ``objectives`` (by their ``values``), in order of the
    primary objective (best first)."""
    if not points:
        return []
    Y = np.asarray([objectives.vector(p.values) for p in points])
    front = [p for p, keep in zip(points, pareto_mask(Y)) if keep]
    return sorted(front, key=lambda p: objectives.primary.to_min(p.values[objectives.primary.metric]))
