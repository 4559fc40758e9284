"""Playbook rounds (schedulers/playbook.py, issue 16) on a synthetic problem whose best scientific value is
known: ``arch`` a is best, b is worse by 0.01 (below the seed noise, std 0.03) and c by 0.3; the nuisance
``lr`` has the same optimum for every arch. The contract suite (test_contract.py) checks the round's
ask/tell contract and replay over ASHA."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from schedulers import Decision, InvalidProblemError, Problem, TrialState
from schedulers.cost import AnalyticCost
from schedulers.playbook import PlaybookRound, RoundPhase, design
from schedulers.problem import FidelityLadder, Target, sizes_from
from schedulers.space import SearchSpace

GAP = {"a": 0.0, "b": 0.01, "c": 0.3}
NOISE = 0.03

SPACE = [
    {"name": "arch", "type": "categorical", "choices": ["a", "b", "c"], "role": "scientific"},
    {"name": "lr", "type": "float", "low": 1e-3, "high": 1.0, "log": True},
]


def problem(budget: float | None = 18.0, space=SPACE) -> Problem:
    ladder = FidelityLadder(min_steps=10, max_steps=100, report_every=10,
                            sizes=sizes_from([("small", 1e6), ("large", 8e6)]))
    return Problem(space=SearchSpace.from_dicts(space), ladder=ladder, target=Target(steps=100, size="large"),
                   cost_model=AnalyticCost(), budget=budget)


def loss(params, size: float, step: int, replicate: int) -> float:
    # each (config, seed) has its own offset, constant along its curve: the seed-to-seed variation
    key = json.dumps([params, replicate], sort_keys=True).encode()
    noise = np.random.default_rng(list(key)).normal(0.0, NOISE)
    return (GAP[params["arch"]] + 0.3 * (math.log10(params["lr"]) + 1.5) ** 2 + (size / 1e6) ** -0.3
            + 2.0 / math.sqrt(step) + noise)


def run(sched: PlaybookRound, workers: int = 2, max_trials: int = 400) -> None:
    """A pool of workers reporting round-robin, as the service's executors drive a scheduler."""
    active: dict[int, tuple] = {}
    while True:
        while len(active) < workers and len(sched.trials) < max_trials:
            s = sched.resume() or next(iter(sched.suggest(1)), None)
            if s is None:
                break
            every = sched.ladder.report_every
            active[s.trial_id] = (s, [st for st in range(every, s.steps + 1, every) if st > s.start_step])
        if not active:
            return
        for tid in sorted(active):
            s, steps = active[tid]
            step = steps.pop(0)
            d = sched.report(tid, step, loss(s.params, sched.ladder.size(s.size).params, step, s.replicate))
            if d is not Decision.CONTINUE or not steps:
                sched.complete(tid)
                del active[tid]


@pytest.mark.parametrize("inner", ["random", "hyperband"])
def test_round_finds_the_best_value_and_tells_noise_from_a_real_gap(inner):
    sched = PlaybookRound(problem(), seed=0, inner=inner, seeds=4)
    run(sched)
    assert sched.done
    result = sched.round_result()
    assert result.phase is RoundPhase.DONE and result.scientific == ("arch",)
    by_arch = {p.values["arch"]: p for p in result.points}
    for p in result.points:
        assert len(p.confirmations) == 4 and p.pending == 0 and p.failed == 0
        assert p.std is not None and 0.005 < p.std < 0.1     # the seed spread
        assert p.search_trials > 0 and p.search_cost > 0
        assert abs(math.log10(p.params["lr"]) + 1.5) < 0.5    # the nuisance parameter was tuned for each
    # a and b are 0.01 apart, a third of the seed noise: 4 seeds cannot rank them, so whichever of the two
    # comes out best, the round must say the other is not distinguishable from it; c is
    best = result.points[result.best]
    assert best.best and best.values["arch"] in ("a", "b") and best.distinguishable is None
    other = by_arch["b" if best.values["arch"] == "a" else "a"]
    assert other.distinguishable is False and other.p_value > result.alpha
    assert by_arch["c"].distinguishable is True and by_arch["c"].p_value < 0.01
    assert by_arch["c"].difference == pytest.approx(0.3, abs=0.1)
    # the whole round stayed within the budget: the search within its share, then 4 seeds x 3 points
    assert sum(p.search_cost for p in result.points) <= result.search_budget + 1e-9
    assert sched.cost_spent / sched.problem.target_cost <= 18.0 + 1e-9
    # every seed ran the point's config at the target, seeds 1..4
    target = sched.problem.target
    reps = [t for t in sched.trials.values() if t.replicate]
    assert sorted(t.replicate for t in reps) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    for t in reps:
        assert (t.size, t.steps, t.state) == (target.size, target.steps, TrialState.COMPLETED)
        assert t.params == by_arch[t.params["arch"]].params
    rec = sched.recommend()
    assert rec.params == best.params and rec.predicted == best.mean and rec.std == best.std
    assert sched.suggest(1) == [] and sched.resume() is None


def test_a_replayed_round_gives_the_same_answer():
    live = PlaybookRound(problem(), seed=1, inner="asha", seeds=2)
    run(live, max_trials=40)
    replayed = PlaybookRound(problem(), seed=1, inner="asha", seeds=2).replay(json.loads(json.dumps(live.events)))
    assert replayed.round_result() == live.round_result()
    assert replayed.snapshot() == live.snapshot()


def test_a_seed_abandoned_before_reporting_is_issued_again_and_a_paused_one_resumed():
    sched = PlaybookRound(problem(budget=9.0), seed=0, inner="random", seeds=2)
    while not (s := sched.suggest(1)[0]).replicate:      # the search, one trial at a time
        for step in range(10, s.steps + 1, 10):
            sched.report(s.trial_id, step, loss(s.params, 8e6, step, 0))
        sched.complete(s.trial_id)
    first = [s, *sched.suggest(6)]
    assert [s.replicate for s in first] == [1, 1, 1, 2, 2, 2]
    sched.abandon(first[0].trial_id)              # lost before its first report: not a seed
    sched.report(first[1].trial_id, 10, 1.0)
    sched.abandon(first[1].trial_id)              # lost after one: paused, continued to the target
    assert sched.resume().trial_id == first[1].trial_id
    (again,) = sched.suggest(1)
    assert (again.replicate, again.params) == (1, first[0].params)


def test_design_of_float_int_and_ordinal_scientific_parameters():
    space = SearchSpace.from_dicts([
        {"name": "wd", "type": "float", "low": 1e-4, "high": 1e-2, "log": True, "role": "scientific"},
        {"name": "depth", "type": "int", "low": 1, "high": 2, "role": "scientific"},
        {"name": "lr", "type": "float", "low": 1e-3, "high": 1.0},
    ])
    points = design(space, design_points=3)
    assert len(points) == 6 and points[0] == {"wd": pytest.approx(10 ** -3.6667, rel=1e-3), "depth": 1}
    assert [p["wd"] for p in points[::2]] == pytest.approx([10 ** -3.6667, 1e-3, 10 ** -2.3333], rel=1e-3)
    # the design avoids a float's borders (an int's values include its borders)
    assert not any(w.startswith("wd=") for p in points for w in space.border_warnings({**p, "lr": 0.5}))


def test_round_needs_a_budget_beyond_its_confirmation():
    with pytest.raises(InvalidProblemError) as e:
        PlaybookRound(problem(budget=None), inner="random")
    assert e.value.field == "budget.max_cost"
    with pytest.raises(InvalidProblemError) as e:
        PlaybookRound(problem(budget=9.0), inner="random", seeds=3)    # 3 points x 3 seeds = 9
    assert "leaves nothing to search" in e.value.message
    with pytest.raises(InvalidProblemError) as e:
        PlaybookRound(problem(), inner="playbook")
    assert e.value.field == "scheduler.name"
    mixture = [*SPACE, {"name": "mix", "type": "mixture", "components": ["x", "y"], "role": "scientific"}]
    with pytest.raises(InvalidProblemError) as e:
        PlaybookRound(problem(space=mixture), inner="random")
    assert e.value.field == "space.mix.role"


@pytest.mark.slow
def test_the_flagship_tunes_each_value_and_a_round_over_it_replays():
    space = [{"name": "arch", "type": "categorical", "choices": ["a", "c"], "role": "scientific"}, SPACE[1]]
    live = PlaybookRound(problem(budget=8.0, space=space), seed=0, inner="multiscale_bo", seeds=2,
                         inner_options={"n_init": 2})
    run(live, max_trials=4)                     # the search only: 4 trials
    assert {live.point_of(t.params) for t in live.trials.values()} == {0, 1}
    for inner in live.inners:
        assert [p.name for p in inner.space.searched] == ["lr"]
    replayed = PlaybookRound(problem(budget=8.0, space=space), seed=0, inner="multiscale_bo", seeds=2,
                             inner_options={"n_init": 2}).replay(json.loads(json.dumps(live.events)))
    assert replayed.snapshot() == live.snapshot()
    assert replayed.suggest(1) == live.suggest(1)
