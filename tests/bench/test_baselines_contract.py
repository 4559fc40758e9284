"""The generic scheduler contract (``tests/schedulers/test_contract.py``) run against every benchmark
baseline (``bench.baselines.BASELINES``), as ``test_peers_contract.py`` does for the peers, and the
``top_k_low_fidelity`` baseline's own behaviour on the toy problems."""

from __future__ import annotations

import copy
import inspect
import json
import math
from typing import Any

import pytest

import tests.schedulers.test_contract as contract
from bench.baselines import BASELINES, baseline_names, make_baseline
from bench.baselines.top_k import MAX_N_LOW, TopKLowFidelity
from bench.harness import SimulatedCluster, load_strategy
from schedulers import Decision, InvalidProblemError, TrialState
from tests.bench.toy_problem import OneSizeToyProblem, ToyProblem

#: the suite's checks that take a scheduler name (as in test_peers_contract.py)
CHECKS = sorted(name for name, fn in vars(contract).items()
                if name.startswith("test_") and callable(fn) and list(inspect.signature(fn).parameters) == ["name"])


def _make(name: str, problem: Any, seed: int = 0, **options: Any) -> Any:
    return make_baseline(name, problem, seed=seed, **options)


#: baselines that need a learning-rate-like and a batch-size-like parameter (bench/baselines/law_transfer.py)
LR_BS_BASELINES = {"law_transfer", "steplaw_published"}
#: (check, baseline) pairs the baseline cannot do by design, with the reason
NOT_APPLICABLE = {
    ("test_crashes_and_divergences_fail_the_trial_and_the_run_goes_on", "steplaw_published"):
        "it runs exactly one trial (the published law's prediction); trials 1 and 2 of the check never exist",
    ("test_an_abandoned_trial_is_paused_or_stopped_not_evidence_and_replays", "steplaw_published"):
        "it runs exactly one trial (the published law's prediction); the check needs two at once",
}


def lr_bs_problem(space=None, direction=contract.Direction.MINIMIZE):
    """The suite's problem for the lr/bs baselines: the suite's own space (its mixed space already has
    ``lr`` and ``batch_size``), with an ordinal ``bs`` added when a check passes a space without a
    batch-size-like parameter (the border check's lr + depth)."""
    from tests.schedulers.simulate import MIXED_SPACE, make_problem

    space = list(space or MIXED_SPACE)
    if not any("batch" in p["name"] or p["name"] == "bs" for p in space):
        space.append({"name": "bs", "type": "ordinal", "values": [16, 32, 64]})
    return make_problem(space=space, direction=direction)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("name", baseline_names())
def test_generic_contract(check: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if (check, name) in NOT_APPLICABLE:
        pytest.skip(NOT_APPLICABLE[(check, name)])
    monkeypatch.setattr(contract, "make_scheduler", _make)
    monkeypatch.setattr(contract, "SMALL_RUN_OPTIONS", {})
    if name in LR_BS_BASELINES:
        monkeypatch.setattr(contract, "make_problem", lr_bs_problem)
    getattr(contract, check)(name)


def test_the_contract_suite_was_found_and_baselines_are_strategies() -> None:
    assert {"test_replay_reproduces_state_and_next_answers",
            "test_confirm_issues_target_replicates_that_run_to_the_end"} <= set(CHECKS)
    for name in BASELINES:
        s = load_strategy(name)
        assert s.available and s.origin.value == "baseline", s.error


def _run(bench, budget=50.0, workers=3, **options):
    sched = TopKLowFidelity(copy.deepcopy(bench.problem), seed=0, **options)
    result = SimulatedCluster(bench, sched, workers=workers, budget=budget, seed=0).run()
    assert result.error is None, result.error
    return sched, result


def _target_value(bench, t):
    return next(v for s, v in t.curve if s >= bench.problem.target.steps)


def test_multi_scale_runs_n_small_then_the_top_k_at_the_target_and_recommends_the_best():
    bench = ToyProblem()   # small costs 1/4 of big: the default N is 4 (one target run), floored at 2K = 6
    sched, result = _run(bench)
    assert sched.n_low == 6 and sched.top_k == 3 and (sched.low_size, sched.low_steps) == ("small", 100)
    assert result.exhausted and result.n_trials == 6 + 3
    low, top = [sched.trials[i] for i in range(6)], [sched.trials[i] for i in range(6, 9)]
    assert all(t.size == "small" and t.steps == 100 and t.state is TrialState.COMPLETED for t in low)
    best_low = sorted(low, key=lambda t: t.last_value)[:3]
    assert [t.params for t in top] == [t.params for t in best_low]
    assert all(t.size == "big" and t.steps == 100 and t.state is TrialState.COMPLETED for t in top)
    rec = sched.recommend()
    best = min(top, key=lambda t: _target_value(bench, t))
    assert (rec.params, rec.trial_id, rec.predicted) == (best.params, best.trial_id, _target_value(bench, best))
    # the spent cost: 6 small runs (1/4 each) and 3 target runs
    assert result.spent == pytest.approx(6 * 0.25 + 3)


def test_single_scale_pauses_at_the_first_report_and_continues_the_top_k():
    bench = OneSizeToyProblem()
    sched, result = _run(bench, top_k=2, n_low=5)
    assert (sched.low_size, sched.low_steps, sched.continues) == ("big", 10, True)
    assert result.exhausted and result.n_trials == 5
    ranked = sorted(sched.trials.values(), key=lambda t: (t.curve[0][1], t.trial_id))
    for t in ranked[:2]:   # continued from their checkpoint to the target, no step repeated
        assert t.state is TrialState.COMPLETED and [s for s, _ in t.curve] == list(range(10, 101, 10))
    for t in ranked[2:]:
        assert t.state is TrialState.PAUSED and [s for s, _ in t.curve] == [10]
    best = min(ranked[:2], key=lambda t: _target_value(bench, t))
    assert sched.recommend().params == best.params
    assert result.spent == pytest.approx((5 * 10 + 2 * 90) / 100)


def test_default_n_low_from_the_cost_model_and_option_errors():
    from tests.schedulers.simulate import make_problem

    assert TopKLowFidelity(OneSizeToyProblem().problem).n_low == 10          # 100 steps / 10: one target run
    assert TopKLowFidelity(OneSizeToyProblem().problem, low_budget=3.0).n_low == 30
    assert TopKLowFidelity(make_problem()).n_low == 8                   # 8x cheaper small size
    assert TopKLowFidelity(make_problem(), low_budget=1e6).n_low == MAX_N_LOW
    for bad in ({"top_k": 0}, {"n_low": 2, "top_k": 3}, {"low_budget": 0.0}, {"top_k": 1.5}):
        with pytest.raises(InvalidProblemError):
            TopKLowFidelity(make_problem(), **bad)


def test_barrier_nothing_at_the_target_while_low_fidelity_trials_run():
    bench = ToyProblem()
    sched = TopKLowFidelity(copy.deepcopy(bench.problem), n_low=4, top_k=2)
    low = sched.suggest(10)
    assert len(low) == 4 and sched.suggest(1) == []
    for s in low[:3]:
        for step in range(10, 101, 10):
            assert sched.report(s.trial_id, step, float(s.trial_id)) is Decision.CONTINUE
        sched.complete(s.trial_id)
    assert sched.suggest(1) == []                         # trial 3 is still running
    sched.fail(low[3].trial_id, "crash")                  # a failed trial is not ranked
    top = sched.suggest(5)
    assert [s.params for s in top] == [low[0].params, low[1].params] and all(s.size == "big" for s in top)
    assert sched.suggest(1) == [] and sched.resume() is None
    replayed = TopKLowFidelity(copy.deepcopy(bench.problem), n_low=4, top_k=2)
    replayed.replay(json.loads(json.dumps(sched.events)))
    assert contract.canonical(replayed.snapshot()) == contract.canonical(sched.snapshot())
    assert not math.isnan(sched.recommend().params["x"])
