"""The ask/tell contract of ``schedulers/base.py``, checked for every registered scheduler.

Parametrised over ``scheduler_names()``, so a scheduler added to the registry later is checked without
touching this file. Runs are kept small (a handful of trials, three workers) so model-based schedulers fit
the time budget; ``SMALL_RUN_OPTIONS`` only shrinks what a scheduler does per run (initial design, candidate
counts), never the behaviour under test.
"""

from __future__ import annotations

import json
import math

import pytest

from schedulers import Decision, IllegalTransitionError, TrialState
from schedulers.problem import Direction
from schedulers.playbook import PlaybookRound
from schedulers.registry import make_scheduler, scheduler_names

from tests.schedulers.simulate import Fault, check_suggestion, drive, make_problem, report_steps

#: a playbook round (schedulers/playbook.py) wraps a registered scheduler; it is checked here over ASHA
ROUND = "playbook"
NAMES = scheduler_names() + [ROUND]
MAX_TRIALS = 8

#: per-scheduler options that keep a contract run cheap (unknown names run with their defaults)
SMALL_RUN_OPTIONS: dict[str, dict] = {
    "gp_target": {"n_init": 4, "n_candidates": 128},
    # make_problem has no budget: the round searches 1.5 target runs over its two points (optimizer is
    # scientific in MIXED_SPACE), then confirms each with 2 seeds
    ROUND: {"inner": "asha", "seeds": 2, "search_budget": 1.5},
}


def build(name: str, problem, seed: int = 0, **options):
    if name == ROUND:
        return PlaybookRound(problem, seed=seed, **options)
    return make_scheduler(name, problem, seed=seed, **options)


def canonical(snapshot: dict) -> str:
    """A snapshot as comparable text (NaN, kept as evidence of a divergence, never equals itself)."""
    return json.dumps(snapshot, sort_keys=True, default=repr)


def new(name: str, seed: int = 0, problem=None):
    return build(name, problem or make_problem(), seed=seed, **SMALL_RUN_OPTIONS.get(name, {}))


def test_registry_holds_the_baselines():
    assert {"random", "asha", "hyperband", "gp_target"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_suggestions_and_decisions(name):
    a, b = new(name, seed=3), new(name, seed=3)
    log_a = drive(a, max_trials=MAX_TRIALS)
    log_b = drive(b, max_trials=MAX_TRIALS)
    assert log_a.handed_out == log_b.handed_out
    assert log_a.decisions == log_b.decisions
    assert canonical(a.snapshot()) == canonical(b.snapshot())
    assert a.recommend() == b.recommend()


@pytest.mark.parametrize("name", NAMES)
def test_replay_reproduces_state_and_next_answers(name):
    live = new(name, seed=1)
    drive(live, max_trials=MAX_TRIALS, max_rounds=14,
          faults={1: (Fault.CRASH, 1), 2: (Fault.NAN, 0)})   # leaves trials in flight
    events = json.loads(json.dumps(live.events))              # as persisted by the service
    replayed = new(name, seed=1).replay(events)
    assert canonical(replayed.snapshot()) == canonical(live.snapshot())
    assert replayed.resume() == live.resume()
    assert replayed.suggest(2) == live.suggest(2)
    assert canonical(replayed.snapshot()) == canonical(live.snapshot())
    assert replayed.recommend() == live.recommend()


@pytest.mark.parametrize("name", NAMES)
def test_replay_needs_a_fresh_scheduler(name):
    sched = new(name)
    sched.suggest(1)
    with pytest.raises(IllegalTransitionError):
        sched.replay(list(sched.events))


@pytest.mark.parametrize("name", NAMES)
def test_crashes_and_divergences_fail_the_trial_and_the_run_goes_on(name):
    sched = new(name, seed=2)
    faults = {0: (Fault.CRASH, 0), 1: (Fault.NAN, 0), 2: (Fault.INF, 0)}
    log = drive(sched, max_trials=MAX_TRIALS, faults=faults)
    for tid in faults:
        trial = sched.trial(tid)
        assert trial.state is TrialState.FAILED and trial.failure
    assert (1, 3, Decision.STOP) in log.decisions and (2, 3, Decision.STOP) in log.decisions
    assert not math.isfinite(sched.trial(1).last_value)     # kept as evidence
    assert len(sched.trials) > len(faults), "the run went on after the failures"
    more = sched.suggest(2) or [sched.resume()]
    for s in more:
        if s is not None:
            check_suggestion(sched, s)
    sched.space.validate(sched.recommend().params)


@pytest.mark.parametrize("name", NAMES)
def test_suggest_with_live_trials_gives_distinct_valid_points(name):
    sched = new(name)
    first = sched.suggest(3)
    second = sched.suggest(3)
    batch = first + second
    assert batch, "a fresh scheduler has work to hand out"
    ids = [s.trial_id for s in batch]
    assert ids == list(range(len(batch)))
    keys = {(json.dumps(s.params, sort_keys=True), s.size) for s in batch}
    assert len(keys) == len(batch), "pending trials are not proposed again"
    for s in batch:
        check_suggestion(sched, s)
    assert {t.trial_id for t in sched.live_trials()} == set(ids)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_and_unknown_trial_are_typed_errors(name):
    from schedulers import InvalidProblemError, UnknownTrialError

    with pytest.raises(InvalidProblemError):
        build(name, make_problem(), seed=0, **SMALL_RUN_OPTIONS.get(name, {}), no_such_option=1)
    with pytest.raises(UnknownTrialError):
        new(name).report(99, 3, 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_recommendation_is_a_valid_config_at_the_target(name):
    sched = new(name, seed=4, problem=make_problem(direction=Direction.MAXIMIZE))
    empty = sched.recommend()
    sched.space.validate(empty.params)
    drive(sched, max_trials=MAX_TRIALS)
    before = canonical(sched.snapshot())
    rec = sched.recommend()
    assert canonical(sched.snapshot()) == before, "recommend() only reads"
    sched.space.validate(rec.params)
    assert (rec.size, rec.steps) == (sched.problem.target.size, sched.problem.target.steps)
    assert rec.warnings == tuple(sched.space.border_warnings(rec.params))
    if rec.trial_id is not None:
        assert sched.trial(rec.trial_id).params == rec.params
    if rec.predicted is not None:
        # maximising: the prediction is in the user's direction, near the values that were measured
        measured = [v for t in sched.trials.values() for _, v in t.curve if math.isfinite(v)]
        assert min(measured) - 1.0 <= rec.predicted <= max(measured) + 1.0


@pytest.mark.parametrize("name", NAMES)
def test_recommendation_at_a_border_carries_a_warning(name):
    # 'depth' has two values, 0 and 1: every config sits at one of its borders
    space = [{"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
             {"name": "depth", "type": "int", "low": 0, "high": 1}]
    sched = new(name, seed=5, problem=make_problem(space=space))
    drive(sched, max_trials=5)
    rec = sched.recommend()
    assert any(w.startswith("depth=") for w in rec.warnings)
    assert rec.warnings == tuple(sched.space.border_warnings(rec.params))


@pytest.mark.parametrize("name", NAMES)
def test_confirm_issues_target_replicates_that_run_to_the_end(name):
    sched = new(name, seed=6)
    drive(sched, max_trials=MAX_TRIALS)
    rec = sched.recommend()
    n_before = len(sched.trials)
    reps = sched.confirm(3)
    target = sched.problem.target
    assert [s.trial_id for s in reps] == list(range(n_before, n_before + 3))
    assert [s.replicate for s in reps] == [1, 2, 3]
    for s in reps:
        check_suggestion(sched, s)
        assert (s.size, s.steps, s.start_step, s.params) == (target.size, target.steps, 0, rec.params)
    for s in reps:
        for step in report_steps(sched.problem, 0, s.steps):
            assert sched.report(s.trial_id, step, 1.0 + step / 100) is Decision.CONTINUE
        sched.complete(s.trial_id)
        assert sched.trial(s.trial_id).state is TrialState.COMPLETED


@pytest.mark.parametrize("name", NAMES)
def test_retried_reports_are_idempotent(name):
    sched = new(name)
    (s,) = sched.suggest(1)
    first = sched.report(s.trial_id, 3, 2.0)
    n_events = len(sched.events)
    assert first is not Decision.STOP, "a lone first trial is never stopped"
    assert sched.report(s.trial_id, 3, 2.0) is first
    assert len(sched.events) == n_events


@pytest.mark.parametrize("name", NAMES)
def test_an_abandoned_trial_is_paused_or_stopped_not_evidence_and_replays(name):
    sched = new(name, seed=2)
    a, *others = sched.suggest(2)                  # a scheduler may hand out fewer than asked
    decision = sched.report(a.trial_id, 3, 2.0)
    decided = sched.trial(a.trial_id).state      # the scheduler's own answer may already end the segment
    sched.abandon(a.trial_id)                      # its worker went silent after one report
    for b in others:                               # ... and this one before any
        sched.abandon(b.trial_id)
        assert sched.trial(b.trial_id).state is TrialState.STOPPED
        assert not sched.trial(b.trial_id).failure  # not a failure of the config
    if decision is not Decision.CONTINUE:
        assert sched.trial(a.trial_id).state is decided
    else:  # resumable from its last step, unless that step was the end of its segment
        assert sched.trial(a.trial_id).state is (TrialState.PAUSED if a.steps > 3 else TrialState.COMPLETED)
    n_events = len(sched.events)
    sched.abandon(a.trial_id)                      # not live any more: nothing happens
    assert len(sched.events) == n_events
    replayed = new(name, seed=2).replay(json.loads(json.dumps(sched.events)))
    assert canonical(replayed.snapshot()) == canonical(sched.snapshot())
    assert replayed.suggest(1) == sched.suggest(1)
