"""Hyperband: bracket shapes, synchronous rungs with PAUSE/resume promotions, waiting, failures."""

from __future__ import annotations

from schedulers import Decision, TrialState
from schedulers.registry import make_scheduler

from tests.schedulers.simulate import Fault, drive, make_problem, report_steps


def run_segment(sched, suggestion, value_of):
    """Report a segment to its end (or the first non-CONTINUE decision); returns the last decision."""
    for step in report_steps(sched.problem, suggestion.start_step, suggestion.steps):
        d = sched.report(suggestion.trial_id, step, value_of(suggestion.trial_id, step))
        if d is not Decision.CONTINUE:
            break
    sched.complete(suggestion.trial_id)
    return d


def test_first_bracket_is_synchronous_successive_halving_with_checkpoint_resumes():
    problem = make_problem()                         # rungs 3, 9, 27 (eta 3): s_max = 2
    sched = make_scheduler("hyperband", problem)
    first = sched.suggest(20)
    assert len(first) == 9 and all(s.steps == 3 and s.size == "large" for s in first)
    assert sched.suggest(1) == [] and sched.resume() is None   # rung 0 issued, nothing ended yet

    def value(tid, step):   # higher trial ids are better
        return 10.0 - tid + 1.0 / step

    for s in first:
        assert run_segment(sched, s, value) is Decision.PAUSE
        assert sched.trial(s.trial_id).state is TrialState.PAUSED
    # rung full: the best third (trials 8, 7, 6) come back from their checkpoint with the next budget
    resumed = [sched.resume() for _ in range(3)]
    assert [(s.trial_id, s.start_step, s.steps) for s in resumed] == [(8, 3, 9), (7, 3, 9), (6, 3, 9)]
    assert sched.resume() is None and sched.suggest(1) == []    # waiting for the promoted ones
    for s in resumed:
        assert run_segment(sched, s, value) is Decision.PAUSE
    (last,) = [sched.resume()]
    assert (last.trial_id, last.start_step, last.steps) == (8, 9, 27)
    assert run_segment(sched, last, value) is Decision.CONTINUE
    assert sched.trial(8).state is TrialState.COMPLETED
    # losers keep their checkpoints but are never resumed
    assert all(sched.trial(t).state is TrialState.PAUSED for t in range(8))
    assert sched.resume() is None
    # next bracket (s = 1): 5 new trials starting at rung 9
    second = sched.suggest(20)
    assert len(second) == 5 and all(s.steps == 9 for s in second)
    assert sched.snapshot()["extra"]["s"] == 1


def test_failures_rank_last_and_do_not_block_the_rung():
    sched = make_scheduler("hyperband", make_problem(), min_steps=9)   # rungs 9, 27: bracket of 3 at 9
    trials = sched.suggest(3)
    assert [s.steps for s in trials] == [9, 9, 9]
    sched.fail(trials[0].trial_id, "worker lost")
    assert sched.report(trials[1].trial_id, 3, float("nan")) is Decision.STOP
    assert sched.resume() is None
    assert run_segment(sched, trials[2], lambda tid, step: 1.0) is Decision.PAUSE
    s = sched.resume()
    assert (s.trial_id, s.start_step, s.steps) == (trials[2].trial_id, 9, 27)


def test_a_bracket_whose_trials_all_fail_gives_way_to_the_next():
    sched = make_scheduler("hyperband", make_problem(), min_steps=9)
    for s in sched.suggest(3):
        sched.fail(s.trial_id, "out of memory")
    nxt = sched.suggest(5)
    assert len(nxt) == 2 and all(s.steps == 27 for s in nxt)   # bracket s = 0: ceil(2/1 * 1) = 2 at 27


def test_a_long_run_resumes_and_cycles_through_brackets():
    sched = make_scheduler("hyperband", make_problem(), seed=0)
    log = drive(sched, max_trials=24, workers=4, faults={3: (Fault.CRASH, 0)})
    assert log.resumes >= 4
    assert any(d is Decision.PAUSE for _, _, d in log.decisions)
    reached = [t for t in sched.trials.values() if t.last_step >= 27]
    assert reached and all(t.state is TrialState.COMPLETED for t in reached)
    assert sched.snapshot()["extra"]["number"] >= 2     # brackets s = 2 and 1 done, s = 0 under way
