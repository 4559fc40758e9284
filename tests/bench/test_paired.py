"""Paired statistics against the reference: hand-built records whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bench.paired as paired
from bench.harness.runner import BenchmarkConfig, BenchmarkResult
from bench.metrics import SPEEDUP_LEVELS
from bench.paired import Quantity, Verdict, bootstrap_median_ci, compare, paired_comparisons
from bench.report import summary_markdown

CPS = (0.1, 0.5, 1.0, 2.0, 3.0)   # budget 3


def _record(strategy, seed, regret, final=None, error=None):
    return {"strategy": strategy, "origin": "scheduler", "seed": seed, "budget": 3.0, "workers": 4,
            "error": error, "checkpoints": list(CPS), "regret": list(regret),
            "final_regret": regret[-1] if final is None else final, "busy_fraction": 1.0, "end_time": 0.75,
            "scheduler_cpu_s": 0.5, "recommend_cpu_s": 0.1, "n_trials": 7}


def _by_level(rows):
    return {(r.quantity, r.level): r for r in rows}


def test_identical_strategies_are_noise_with_p_one():
    curve = [20.0, 6.0, 3.0, 0.9, 0.2]
    records = [_record(s, k, curve) for s in ("ref", "twin") for k in range(10)]
    rows = paired_comparisons(records, "ref")["twin"]
    assert len(rows) == len(SPEEDUP_LEVELS) + 1
    for r in rows:
        assert (r.n, r.median_diff, r.ci_low, r.ci_high, r.p, r.verdict) == (10, 0.0, 0.0, 0.0, 1.0, Verdict.NOISE)


def test_a_strategy_worse_on_every_seed_is_distinguishable():
    # the reference reaches 1% at 0.5 on every seed, the other at 2.0: d = +1.5 on all 10 seeds
    ref = [_record("ref", k, [20, 0.9, 0.9, 0.9, 0.2 + 0.01 * k]) for k in range(10)]
    slow = [_record("slow", k, [20, 20, 5, 0.9, 0.5 + 0.01 * k]) for k in range(10)]
    rows = _by_level(paired_comparisons(ref + slow, "ref")["slow"])
    one = rows[(Quantity.COST_TO_LEVEL, 1.0)]
    assert (one.median_diff, one.ci_low, one.ci_high) == (1.5, 1.5, 1.5)
    assert one.p == pytest.approx(2 / 2 ** 10)      # exact test: all 10 signs agree
    assert one.verdict is Verdict.REFERENCE_BETTER
    final = rows[(Quantity.FINAL_REGRET, None)]
    assert final.median_diff == pytest.approx(0.3) and final.verdict is Verdict.REFERENCE_BETTER
    # and the other way round
    back = _by_level(paired_comparisons(ref + slow, "slow")["ref"])
    assert back[(Quantity.COST_TO_LEVEL, 1.0)].verdict is Verdict.STRATEGY_BETTER
    assert back[(Quantity.COST_TO_LEVEL, 1.0)].median_diff == -1.5


def test_not_reached_is_censored_at_twice_the_budget():
    # the reference reaches 0.25% at 3.0; the other never does: d = 2 x 3 - 3 = 3 on every seed
    ref = [_record("ref", k, [20, 5, 2, 0.9, 0.2]) for k in range(6)]
    never = [_record("never", k, [20, 5, 2, 0.9, 0.9]) for k in range(6)]
    row = _by_level(paired_comparisons(ref + never, "ref")["never"])[(Quantity.COST_TO_LEVEL, 0.25)]
    assert row.median_diff == 3.0 and row.n == 6
    assert row.p == pytest.approx(2 / 2 ** 6) and row.verdict is Verdict.REFERENCE_BETTER
    # both reach 10% at the first checkpoint: zero differences, p = 1
    assert _by_level(paired_comparisons(ref + never, "ref")["never"])[(Quantity.COST_TO_LEVEL, 10.0)].p == 1.0


def test_the_p_value_does_not_depend_on_the_censoring_factor(monkeypatch):
    rng = np.random.default_rng(0)
    a = [math.inf if x < 0.3 else 3 * x for x in rng.random(12)]
    b = [math.inf if x < 0.5 else 3 * x for x in rng.random(12)]
    p2 = compare(a, b, 3.0, Quantity.COST_TO_LEVEL, 1.0)
    monkeypatch.setattr(paired, "CENSOR_FACTOR", 7.0)
    p7 = compare(a, b, 3.0, Quantity.COST_TO_LEVEL, 1.0)
    assert p2.p == pytest.approx(p7.p) and p2.verdict is p7.verdict
    assert p2.median_diff != p7.median_diff or p2.ci_high != p7.ci_high or p2.ci_low != p7.ci_low


def test_mixed_signs_are_noise():
    d = [0.5, -0.4, 0.3, -0.6, 0.2, -0.1, 0.7, -0.8]
    row = compare(d, [0.0] * len(d), 3.0, Quantity.COST_TO_LEVEL, 1.0)
    assert row.p > 0.5 and row.verdict is Verdict.NOISE
    assert row.ci_low < 0 < row.ci_high


def test_only_shared_completed_seeds_pair_up_and_diverged_final_regret_is_censored():
    ref = [_record("ref", k, [20, 5, 2, 0.9, 0.5]) for k in range(5)]
    ref.append(_record("ref", 5, [1], error="RuntimeError: boom"))
    other = [_record("other", k, [20, 5, 2, 0.9, 0.9], final=math.inf) for k in range(2, 8)]
    rows = _by_level(paired_comparisons(ref + other, "ref")["other"])
    final = rows[(Quantity.FINAL_REGRET, None)]
    assert final.n == 3                               # seeds 2, 3, 4
    assert final.median_diff == pytest.approx(2 * 1.0 - 0.5)  # inf -> 2 x max(1, largest finite)
    assert paired_comparisons(other, "ref") == {}     # no reference run: nothing to compare


def test_no_pairs_and_length_mismatch():
    assert compare([], [], 3.0, Quantity.FINAL_REGRET).verdict is Verdict.NO_PAIRS
    with pytest.raises(ValueError):
        compare([1.0], [1.0, 2.0], 3.0, Quantity.FINAL_REGRET)


def test_bootstrap_interval_of_a_known_sample():
    assert bootstrap_median_ci(np.full(7, 2.5)) == (2.5, 2.5)
    lo, hi = bootstrap_median_ci(np.arange(11.0))
    assert 1.0 <= lo < 5.0 < hi <= 9.0
    assert bootstrap_median_ci(np.arange(11.0)) == (lo, hi)   # fixed generator: reproducible


def test_summary_has_the_paired_table_with_its_verdicts():
    ref = [_record("multiscale_bo", k, [20, 0.9, 0.9, 0.9, 0.2]) for k in range(10)]
    slow = [_record("slow", k, [20, 20, 5, 0.9, 0.5]) for k in range(10)]
    same = [_record("same", k, [20, 0.9, 0.9, 0.9, 0.2]) for k in range(10)]
    records = ref + slow + same
    config = BenchmarkConfig("toy", ["multiscale_bo", "slow", "same"], list(range(10)), 4, 3.0,
                             n_checkpoints=len(CPS))
    md = summary_markdown(BenchmarkResult(config, "toy", "toy problem", 0.0, records), "cmd")
    assert "Paired comparison with `multiscale_bo`" in md and "6 target runs = 2x the budget" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| slow | 10 |"))
    assert "**+1.5 [+1.5, +1.5], p 0.002**" in line
    line = next(ln for ln in md.splitlines() if ln.startswith("| same | 10 |"))
    assert line.count("not distinguishable from noise (+0 [+0, +0], p 1)") == len(SPEEDUP_LEVELS) + 1
