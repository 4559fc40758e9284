"""Paired comparisons of each strategy against a reference (the flagship by default), over shared seeds.

Seed ``k`` of two strategies runs on the same problem with the same noise streams, so the runs pair up by
seed; a paired test removes the seed-to-seed spread that a comparison of two medians carries. For each
strategy, each regret level of :data:`bench.metrics.SPEEDUP_LEVELS` (the cost to reach it) and the final
regret, over the seeds both strategies completed:

- the differences ``d_k = strategy_k - reference_k`` (lower is better for both quantities, so ``d > 0``
  means the reference did better on that seed);
- a two-sided Wilcoxon signed-rank test of ``median(d) = 0`` (``scipy.stats.wilcoxon``, ``zero_method=
  "zsplit"``: a seed where both did equally well, e.g. neither reached the level, counts as half a win for
  each side rather than being dropped, which would overstate the evidence of the other seeds);
- a paired bootstrap 95% percentile interval of the median difference (:data:`N_BOOTSTRAP` resamples of the
  seeds with a fixed generator, so a report is reproducible);
- a :class:`Verdict`: :attr:`Verdict.NOISE` ("not distinguishable from noise") when ``p >= ALPHA``.

'Not reached' (a level never reached within the budget ``B``, or a recommendation that diverged at the
target: infinite final regret) is **censored at twice the largest possible finite value**: cost ``2 B``,
final regret ``2 M`` with ``M`` = max(1, the largest finite final regret of the paired runs). Then every
censored value ranks above every finite one, and for finite values in ``[0, M]``
``|2M - x| >= M >= |x_1 - x_2|``: the ranks of ``|d|``, and with them the Wilcoxon p-value, do not depend
on the factor (any factor >= 2 gives the same ranks, up to ties at exactly ``M``); only the bootstrap
interval's numbers do (a bound beyond ``+-B`` involves a censored run). No correction for multiple comparisons is
made: with six quantities per strategy and many strategies, a few ``p < 0.05`` are expected by chance.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import wilcoxon

from bench.metrics import SPEEDUP_LEVELS, cost_to_reach, strategy_label

ALPHA = 0.05
N_BOOTSTRAP = 10_000
CONFIDENCE = 0.95
#: a censored ('not reached') value counts as this factor times the largest possible finite value
CENSOR_FACTOR = 2.0
BOOTSTRAP_SEED = 20250101


class Quantity(str, enum.Enum):
    """What is compared: the cost to reach a regret level, or the final regret."""

    COST_TO_LEVEL = "cost to level"
    FINAL_REGRET = "final regret"


class Verdict(str, enum.Enum):
    """Outcome of one paired comparison (``reference`` is the strategy compared against)."""

    NOISE = "not distinguishable from noise"
    REFERENCE_BETTER = "reference better"
    STRATEGY_BETTER = "strategy better"
    NO_PAIRS = "no paired seeds"


@dataclass(frozen=True)
class PairedComparison:
    """One strategy against the reference on one quantity, over ``n`` paired seeds.

    ``median_diff`` and the interval ``[ci_low, ci_high]`` are of ``strategy - reference`` with censored
    values as in the module docstring; ``p`` is the Wilcoxon signed-rank p-value (1 when every difference
    is zero, ``nan`` without pairs)."""

    quantity: Quantity
    level: float | None      # regret level (%) for COST_TO_LEVEL, None for FINAL_REGRET
    n: int
    median_diff: float
    ci_low: float
    ci_high: float
    p: float
    verdict: Verdict


def _censor(values: np.ndarray, ceiling: float) -> np.ndarray:
    out = values.astype(float).copy()
    out[~np.isfinite(out)] = CENSOR_FACTOR * ceiling
    return out


def bootstrap_median_ci(diffs: np.ndarray, n_boot: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                        seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile interval of the median of ``diffs`` over ``n_boot`` resamples of the pairs."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diffs), size=(n_boot, len(diffs)))
    medians = np.median(diffs[idx], axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(medians, [tail, 100.0 - tail])
    return float(lo), float(hi)


def compare(strategy: Sequence[float], reference: Sequence[float], ceiling: float, quantity: Quantity,
            level: float | None = None) -> PairedComparison:
    """Paired comparison of two equally long sequences (seed ``k`` at index ``k``; lower is better);
    non-finite values are 'not reached' and censored at ``CENSOR_FACTOR * ceiling``."""
    a, b = np.asarray(strategy, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.shape} and {b.shape}")
    if a.size == 0:
        return PairedComparison(quantity, level, 0, math.nan, math.nan, math.nan, math.nan, Verdict.NO_PAIRS)
    d = _censor(a, ceiling) - _censor(b, ceiling)
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(wilcoxon(d, zero_method="zsplit", alternative="two-sided").pvalue)
    median = float(np.median(d))
    lo, hi = bootstrap_median_ci(d)
    if not p < ALPHA:
        verdict = Verdict.NOISE
    else:
        # the side that wins: the median difference's sign, or the mean's when the median is 0
        side = median if median != 0 else float(np.mean(d))
        verdict = Verdict.REFERENCE_BETTER if side > 0 else Verdict.STRATEGY_BETTER
    return PairedComparison(quantity, level, int(a.size), median, lo, hi, p, verdict)


def _completed(records: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        if not r.get("error") and r.get("regret") and r.get("seed") is not None:
            out.setdefault(strategy_label(r), {})[int(r["seed"])] = r
    return out


def paired_comparisons(records: Sequence[dict[str, Any]], reference: str,
                       levels: Sequence[float] = SPEEDUP_LEVELS) -> dict[str, list[PairedComparison]]:
    """For every strategy other than ``reference`` (in first-appearance order): its comparisons on the cost
    to reach each of ``levels`` and on the final regret, over the seeds both completed. Empty when the
    reference has no completed run."""
    runs = _completed(records)
    ref = runs.get(reference)
    if not ref:
        return {}
    out: dict[str, list[PairedComparison]] = {}
    for name, by_seed in runs.items():
        if name == reference:
            continue
        seeds = sorted(set(by_seed) & set(ref))
        pairs = [(by_seed[s], ref[s]) for s in seeds]
        budget = min((float(r["budget"]) for pair in pairs for r in pair), default=math.nan)
        rows = []
        for lv in levels:
            a = [cost_to_reach(x["checkpoints"], x["regret"], lv) for x, _ in pairs]
            b = [cost_to_reach(y["checkpoints"], y["regret"], lv) for _, y in pairs]
            rows.append(compare(a, b, budget, Quantity.COST_TO_LEVEL, lv))
        a = [float(x["final_regret"]) for x, _ in pairs]
        b = [float(y["final_regret"]) for _, y in pairs]
        finite = [v for v in a + b if math.isfinite(v)]
        rows.append(compare(a, b, max([abs(v) for v in finite] + [1.0]), Quantity.FINAL_REGRET))
        out[name] = rows
    return out
