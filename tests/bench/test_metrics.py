"""Per-strategy figures: thresholds, budget marks, quantiles with 'not reached'."""

from __future__ import annotations

import math

import pytest

from bench.metrics import Spread, best_so_far, cost_to_reach, quantile, regret_at, summarise


def _record(strategy, seed, regret, checkpoints=(0.1, 0.5, 1.0, 2.0, 3.0), error=None):
    return {"strategy": strategy, "origin": "scheduler", "seed": seed, "budget": 3.0, "error": error,
            "checkpoints": list(checkpoints), "regret": list(regret), "final_regret": regret[-1],
            "busy_fraction": 1.0, "scheduler_cpu_s": 0.5, "recommend_cpu_s": 0.1, "n_trials": 7}


def test_cost_to_reach_and_regret_at():
    cps, reg = [0.1, 0.5, 1.0, 2.0, 3.0], [10.0, 2.0, 0.9, 0.3, 0.2]
    assert cost_to_reach(cps, reg, 1.0) == 1.0
    assert cost_to_reach(cps, reg, 0.25) == 3.0
    assert cost_to_reach(cps, reg, 0.1) == math.inf
    assert regret_at(cps, reg, 1.0) == 0.9 and regret_at(cps, reg, 2.5) == 0.3
    assert best_so_far([3.0, 1.0, 2.0, 0.5]) == [3.0, 1.0, 1.0, 0.5]


def test_quantiles_with_not_reached():
    assert quantile([1.0, 2.0, 3.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, math.inf], 0.5) == 2.0
    assert quantile([1.0, 2.0, math.inf], 0.75) == math.inf
    assert Spread.of([4.0, 1.0, 3.0, 2.0]) == Spread(2.5, 1.75, 3.25, 4)


def test_summarise_groups_by_strategy_and_keeps_errors():
    records = [_record("a", 0, [10, 2, 0.9, 0.3, 0.2]), _record("a", 1, [10, 5, 2, 1.5, 0.8]),
               _record("b", 0, [1, 1, 1, 1, 1]), _record("b", 1, [1], error="RuntimeError: boom\ntrace")]
    a, b = summarise(records)
    assert (a.strategy, a.runs, a.failed_runs) == ("a", 2, 0)
    assert a.cost_to[1.0] == Spread(2.0, 1.5, 2.5, 2) and a.reached[1.0] == 2 and a.reached[0.25] == 1
    assert a.regret_at[1.0].median == pytest.approx(1.45) and set(a.regret_at) == {1.0, 3.0}
    assert (b.runs, b.failed_runs, b.errors) == (2, 1, ["RuntimeError: boom"])
    assert b.cost_to[1.0].median == 0.1


def test_speedups_divide_median_costs_by_the_reference():
    from bench.metrics import speedups

    records = [_record("ref", 0, [10, 2, 0.9, 0.3, 0.2]), _record("ref", 1, [10, 2, 0.9, 0.3, 0.2]),
               _record("slow", 0, [20, 20, 5, 0.9, 0.9]), _record("slow", 1, [20, 20, 5, 0.9, 0.9])]
    table = speedups(records, "ref", levels=(5.0, 1.0, 0.25))
    assert table["ref"][1.0] == (1.0, 1.0)
    assert table["slow"][5.0] == (1.0, 2.0)       # ref reaches 5% at 0.5, slow at 1.0
    assert table["slow"][1.0] == (2.0, 2.0)
    c, ratio = table["slow"][0.25]                 # never reached by slow: infinitely slower
    assert math.isinf(c) and math.isinf(ratio)
    assert math.isnan(speedups(records, "ref", levels=(0.1,))["slow"][0.1][1])  # reference never got there
