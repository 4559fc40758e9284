"""ASHA: rung placement, the top-1/eta stopping rule, and promotions across the model-size ladder."""

from __future__ import annotations

import json

import pytest

from schedulers import Decision, InvalidProblemError, TrialState
from schedulers.asha import rung_steps
from schedulers.problem import Direction, FidelityLadder, sizes_from
from schedulers.registry import make_scheduler

from tests.schedulers.simulate import drive, make_problem, report_steps


def test_rungs_are_geometric_and_end_at_max_steps():
    ladder = make_problem().ladder                       # reports every 3 steps up to 27
    assert rung_steps(ladder, 3, 27, 3) == [3, 9, 27]
    assert rung_steps(ladder, 3, 27, 2) == [3, 6, 12, 24, 27]
    assert rung_steps(ladder, 27, 27, 3) == [27]


def test_rungs_move_up_to_steps_that_report():
    ladder = FidelityLadder(min_steps=1, max_steps=100, report_every=10, sizes=sizes_from([("s", 1.0)]))
    # nominal 1, 3, 9 all land on the first report (10); 27 -> 30, 81 -> 90
    assert rung_steps(ladder, 1, 100, 3) == [10, 30, 90, 100]


def test_bad_options_are_rejected_with_their_field():
    problem = make_problem()
    with pytest.raises(InvalidProblemError) as e:
        make_scheduler("asha", problem, eta=1)
    assert e.value.field == "scheduler.options.eta"
    with pytest.raises(InvalidProblemError) as e:
        make_scheduler("asha", problem, min_steps=9, max_steps=6)
    assert e.value.field == "scheduler.options.max_steps"


def test_a_trial_goes_on_only_in_the_top_third_of_its_rung():
    sched = make_scheduler("asha", make_problem())
    trials = sched.suggest(5)
    assert all((s.size, s.steps) == ("large", 27) for s in trials)
    # rung 3: arrivals 1.0 (alone: kept), 2.0 (1 of 2 kept: stop), 0.5 (best: kept),
    # 0.7 (1 of 4 kept, not best: stop), 0.4 (best of 5: kept)
    values = [1.0, 2.0, 0.5, 0.7, 0.4]
    decisions = [sched.report(s.trial_id, 3, v) for s, v in zip(trials, values)]
    assert decisions == [Decision.CONTINUE, Decision.STOP, Decision.CONTINUE, Decision.STOP, Decision.CONTINUE]
    assert sched.trial(1).state is TrialState.STOPPED
    # between rungs nothing is decided; at rung 9 the first arrival is kept, the next worse one stops
    assert sched.report(0, 6, 5.0) is Decision.CONTINUE
    assert sched.report(2, 9, 0.3) is Decision.CONTINUE
    assert sched.report(0, 9, 0.9) is Decision.STOP
    # the top rung is the end of the budget: finishing never stops
    for step in report_steps(sched.problem, 9, 27):
        assert sched.report(2, step, 9.0) is Decision.CONTINUE


def test_maximisation_keeps_the_largest_values():
    sched = make_scheduler("asha", make_problem(direction=Direction.MAXIMIZE))
    a, b = sched.suggest(2)
    assert sched.report(a.trial_id, 3, 1.0) is Decision.CONTINUE
    assert sched.report(b.trial_id, 3, 0.5) is Decision.STOP


def test_a_run_stops_most_trials_early():
    sched = make_scheduler("asha", make_problem(), seed=0)
    drive(sched, max_trials=18)
    states = [t.state for t in sched.trials.values()]
    finished = sum(s is TrialState.COMPLETED for s in states)
    assert 1 <= finished < len(states) / 2
    assert sum(s is TrialState.STOPPED for s in states) >= len(states) / 2


def test_size_rungs_start_small_and_promote_the_best_finishers_to_the_next_size():
    problem = make_problem()
    sched = make_scheduler("asha", problem, size_rungs=True)
    first = sched.suggest(3)
    assert all((s.size, s.steps) == ("small", 27) for s in first)
    # all three finish at the small size (each the best of its rung when it gets there)
    for s, base in zip(first, [3.0, 2.0, 1.0]):
        for step in report_steps(problem, 0, 27):
            assert sched.report(s.trial_id, step, base + 1.0 / step) is Decision.CONTINUE
        sched.complete(s.trial_id)
    # 3 finishers, eta 3: the best one (trial 2) is promoted as a new trial at the next size, from step 0
    (promoted,) = sched.suggest(1)
    assert (promoted.size, promoted.steps, promoted.start_step) == ("large", 27, 0)
    assert promoted.params == first[2].params
    # it is promoted once; the next request starts a fresh configuration at the smallest size
    (fresh,) = sched.suggest(1)
    assert fresh.size == "small" and fresh.params not in [s.params for s in first]
    replayed = make_scheduler("asha", problem, size_rungs=True).replay(json.loads(json.dumps(sched.events)))
    assert replayed.snapshot()["extra"] == sched.snapshot()["extra"]
    assert replayed.snapshot()["extra"]["promoted"] == {2: promoted.trial_id}
    assert replayed.suggest(2) == sched.suggest(2)


def test_size_rungs_run_reaches_the_target_size():
    sched = make_scheduler("asha", make_problem(), seed=1, size_rungs=True)
    drive(sched, max_trials=40)    # eta**3 = 27 fresh trials per promotion to the next size, about
    large = [t for t in sched.trials.values() if t.size == "large"]
    assert large and len(large) < len(sched.trials) / 10
    for t in large:   # each promotion repeats a configuration that finished at the small size
        assert any(s.size == "small" and s.params == t.params and s.last_step == 27
                   for s in sched.trials.values())
    rec = sched.recommend()
    assert rec.trial_id in {t.trial_id for t in large} and rec.predicted is not None
