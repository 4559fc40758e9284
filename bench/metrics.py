"""Per-strategy figures from raw run records: median and interquartile range over seeds.

Every run's regret curve is recorded on the same cost grid (``checkpoints``, in target-run units), so
seeds aggregate point by point. Per strategy:

- cost to reach 1% and 0.25% regret: the first checkpoint at which the recommendation's regret is at or
  below the threshold (``inf`` when never reached within the budget; the grid's resolution is its log step);
- regret at budgets 1x / 3x / 10x / 30x (:data:`BUDGET_MARKS`, those within the run's budget);
- worker busy fraction, cost as wall time x workers (``end_time * workers``: what a reserved cluster pays,
  idle workers included; the budget counts busy workers only), scheduler CPU seconds (ask/tell calls),
  recommendation CPU seconds, trials.

Quantiles treat ``inf`` as larger than everything (a median of mostly "not reached" is ``inf``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

THRESHOLDS = (1.0, 0.25)
#: budgets (target runs) at which regret is reported, those within the run's budget; the cost grid holds them
BUDGET_MARKS = (1.0, 3.0, 10.0, 30.0)
#: regret levels (%) of the speed-up table: looser ones too, so strategies that never reach 1% compare
SPEEDUP_LEVELS = (10.0, 5.0, 2.0, 1.0, 0.25)


def strategy_label(record: dict[str, Any]) -> str:
    """The name a run is tabulated under: the strategy, plus its constructor options when it had any
    (so variants of one strategy, e.g. from ``--options``, stay apart in a merged report)."""
    options = record.get("options") or {}
    label = str(record["strategy"])
    if options:
        label += " " + ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    if record.get("tag"):   # the run folder's tag from `bench report --tags` (e.g. a commit: before / after)
        label += f" [{record['tag']}]"
    return label


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range of a figure over seeds."""

    median: float
    q25: float
    q75: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        v = sorted(float(x) for x in values)
        return cls(quantile(v, 0.5), quantile(v, 0.25), quantile(v, 0.75), len(v))


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of ascending values that may end in ``inf``."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_values[lo], sorted_values[hi]
    if lo == hi or a == b:
        return a
    if math.isinf(b):
        return math.inf
    return a + (pos - lo) * (b - a)


def cost_to_reach(checkpoints: Sequence[float], regret: Sequence[float], threshold: float) -> float:
    for c, r in zip(checkpoints, regret):
        if r <= threshold:
            return float(c)
    return math.inf


def regret_at(checkpoints: Sequence[float], regret: Sequence[float], cost: float) -> float:
    """Regret of the recommendation standing at ``cost`` (the last checkpoint at or below it)."""
    out = math.nan
    for c, r in zip(checkpoints, regret):
        if c <= cost + 1e-9:
            out = float(r)
    return out


def reserved_cost(record: dict[str, Any]) -> float:
    """Cost of a run as wall time x workers (target runs): what a reserved cluster pays, idle workers too."""
    return float(record["end_time"]) * int(record["workers"])


def best_so_far(regret: Sequence[float]) -> list[float]:
    """Running minimum of regret: the best recommendation seen up to each checkpoint."""
    return np.minimum.accumulate(np.asarray(regret, dtype=float)).tolist() if len(regret) else []


@dataclass
class StrategySummary:
    strategy: str
    origin: str
    runs: int
    failed_runs: int
    cost_to: dict[float, Spread] = field(default_factory=dict)       # threshold -> cost
    reached: dict[float, int] = field(default_factory=dict)          # threshold -> runs that reached it
    regret_at: dict[float, Spread] = field(default_factory=dict)     # budget mark -> regret
    final_regret: Spread | None = None
    busy_fraction: Spread | None = None
    reserved_cost: Spread | None = None                              # wall time x workers, target runs
    scheduler_cpu_s: Spread | None = None
    recommend_cpu_s: Spread | None = None
    trials: Spread | None = None
    errors: list[str] = field(default_factory=list)


def summarise(records: Sequence[dict[str, Any]]) -> list[StrategySummary]:
    """One :class:`StrategySummary` per strategy, in first-appearance order. Crashed runs count in
    ``failed_runs`` and their errors are kept; figures come from the runs that completed."""
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_strategy.setdefault(strategy_label(r), []).append(r)
    out = []
    for name, runs in by_strategy.items():
        ok = [r for r in runs if not r.get("error")]
        s = StrategySummary(name, runs[0].get("origin", ""), len(runs), len(runs) - len(ok),
                            errors=sorted({r["error"].splitlines()[0] for r in runs if r.get("error")}))
        if ok:
            budget = min(float(r["budget"]) for r in ok)
            for thr in THRESHOLDS:
                costs = [cost_to_reach(r["checkpoints"], r["regret"], thr) for r in ok]
                s.cost_to[thr] = Spread.of(costs)
                s.reached[thr] = sum(1 for c in costs if math.isfinite(c))
            for mark in BUDGET_MARKS:
                if mark <= budget + 1e-9:
                    s.regret_at[mark] = Spread.of(regret_at(r["checkpoints"], r["regret"], mark) for r in ok)
            s.final_regret = Spread.of(r["final_regret"] for r in ok)
            s.busy_fraction = Spread.of(r["busy_fraction"] for r in ok)
            reserved = [reserved_cost(r) for r in ok if r.get("end_time") is not None]
            s.reserved_cost = Spread.of(reserved) if reserved else None
            s.scheduler_cpu_s = Spread.of(r["scheduler_cpu_s"] for r in ok)
            s.recommend_cpu_s = Spread.of(r["recommend_cpu_s"] for r in ok)
            s.trials = Spread.of(r["n_trials"] for r in ok)
        out.append(s)
    return out


def regret_band(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(cost, median, q25, q75)`` of regret over the completed runs of one strategy, on the shared grid
    (each ``n_checkpoints``-long)."""
    ok = [r for r in records if not r.get("error") and r["regret"]]
    n = min(len(r["regret"]) for r in ok)
    cost = np.asarray(ok[0]["checkpoints"][:n], dtype=float)
    curves = [sorted(col) for col in zip(*(r["regret"][:n] for r in ok))]
    band = [np.asarray([quantile(col, q) for col in curves]) for q in (0.5, 0.25, 0.75)]
    return cost, band[0], band[1], band[2]


def speedups(records: Sequence[dict[str, Any]], reference: str,
             levels: Sequence[float] = SPEEDUP_LEVELS) -> dict[str, dict[float, tuple[float, float]]]:
    """Per strategy and regret level: (median cost to reach it over the completed runs, that cost divided by
    ``reference``'s median cost to reach it). The ratio is how many times more compute the strategy needs
    than the reference for the same quality (> 1: the reference is faster); ``inf`` cost: the median run
    never got there; ratio ``nan`` when the reference's median never got there."""
    costs: dict[str, dict[float, float]] = {}
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if not r.get("error") and r.get("regret"):
            by_strategy.setdefault(strategy_label(r), []).append(r)
    for name, runs in by_strategy.items():
        costs[name] = {lv: Spread.of(cost_to_reach(r["checkpoints"], r["regret"], lv) for r in runs).median
                       for lv in levels}
    ref = costs.get(reference, {})
    out: dict[str, dict[float, tuple[float, float]]] = {}
    for name, per_level in costs.items():
        out[name] = {}
        for lv, c in per_level.items():
            rc = ref.get(lv, math.nan)
            ratio = math.nan if not math.isfinite(rc) or rc <= 0 else (math.inf if math.isinf(c) else c / rc)
            out[name][lv] = (c, ratio)
    return out
