"""GP-BO at the target: initial design, kriging-believer batches, failure imputation, lazy fitting."""

from __future__ import annotations

import json

import numpy as np
import pytest

import schedulers.gp_target as gp_target
from schedulers import Decision, InvalidProblemError
from schedulers.problem import Direction
from schedulers.registry import make_scheduler

from tests.schedulers.simulate import make_problem, report_steps

PLANE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0},
         {"name": "y", "type": "float", "low": 0.0, "high": 1.0}]


def bowl(p):
    return (p["x"] - 0.7) ** 2 + (p["y"] - 0.3) ** 2


def finish(sched, suggestion, value, fail=False):
    """Run a target trial to its end reporting ``value`` (its final value) at every step."""
    for step in report_steps(sched.problem, 0, suggestion.steps):
        if fail and step > 3:
            sched.fail(suggestion.trial_id, "worker crashed")
            return
        assert sched.report(suggestion.trial_id, step, value) is Decision.CONTINUE
    sched.complete(suggestion.trial_id)


@pytest.fixture
def counted_fits(monkeypatch):
    calls = []
    real = gp_target.fit_gp

    def fit(X, y, **kw):
        calls.append(np.asarray(y).copy())
        return real(X, y, **kw)

    monkeypatch.setattr(gp_target, "fit_gp", fit)
    return calls


def test_default_initial_design_size():
    sched = make_scheduler("gp_target", make_problem())
    assert sched.n_init == 2 * sched.space.dim + 1 == 19
    assert make_scheduler("gp_target", make_problem(space=PLANE)).n_init == 5
    with pytest.raises(InvalidProblemError):
        make_scheduler("gp_target", make_problem(), n_init=0)


def test_trials_run_at_the_target_and_are_never_stopped():
    sched = make_scheduler("gp_target", make_problem(), n_init=2)
    for s in sched.suggest(3):
        assert (s.size, s.steps) == ("large", 27)
        for step in report_steps(sched.problem, 0, 27):
            assert sched.report(s.trial_id, step, 100.0 * s.trial_id) is Decision.CONTINUE


def test_model_batches_are_distinct_from_each_other_and_from_pending_and_evaluated_points(counted_fits):
    problem = make_problem()
    sched = make_scheduler("gp_target", problem, seed=0, n_init=5, n_candidates=256)
    init = sched.suggest(5)
    for s in init[:4]:
        finish(sched, s, bowl({"x": s.params["lr"], "y": s.params["web"]}))
    batch = sched.suggest(4)                        # trial 4 is still pending
    assert len(counted_fits) == 1
    params = [json.dumps(p, sort_keys=True) for p in [s.params for s in init] + [s.params for s in batch]]
    assert len(set(params)) == len(params)
    for s in batch:
        problem.space.validate(s.params)


def test_failures_are_imputed_as_the_worst_finite_value(counted_fits):
    sched = make_scheduler("gp_target", make_problem(space=PLANE), seed=1, n_init=4)
    trials = sched.suggest(4)
    finish(sched, trials[0], 0.5)
    finish(sched, trials[1], 0.25)
    finish(sched, trials[2], 0.0, fail=True)                    # crashed after a good-looking report
    assert sched.report(trials[3].trial_id, 3, float("inf")) is Decision.STOP
    sched.suggest(1)
    assert sorted(counted_fits[-1].tolist()) == [0.25, 0.5, 0.5, 0.5]
    rec = sched.recommend()
    assert rec.trial_id == trials[1].trial_id              # never a failed trial


def test_fitting_is_lazy_and_cached_until_new_data(counted_fits):
    problem = make_problem(space=PLANE)
    live = make_scheduler("gp_target", problem, seed=2, n_init=3)
    for _ in range(6):
        (s,) = live.suggest(1)
        finish(live, s, bowl(s.params))
    n_live_fits = len(counted_fits)
    assert n_live_fits == 3                                  # one per model-based suggestion
    replayed = make_scheduler("gp_target", problem, seed=2, n_init=3).replay(live.events)
    assert len(counted_fits) == n_live_fits                  # replaying the history fits nothing
    assert replayed.recommend() == live.recommend()          # one fit each (live: new data since)
    assert len(counted_fits) == n_live_fits + 2
    replayed.recommend()
    live.suggest(1)
    replayed.suggest(1)
    assert len(counted_fits) == n_live_fits + 2              # cached: no new observation


def test_finds_the_bowl_minimum_and_predicts_it_when_maximising_the_negation():
    problem = make_problem(space=PLANE, direction=Direction.MAXIMIZE)
    sched = make_scheduler("gp_target", problem, seed=0, n_init=5, n_candidates=256)
    for _ in range(7):
        batch = sched.suggest(2)
        for s in batch:
            finish(sched, s, -bowl(s.params))
    rec = sched.recommend()
    measured = max(t.last_value for t in sched.trials.values())
    assert bowl(rec.params) < 0.01
    assert rec.predicted == pytest.approx(-bowl(rec.params), abs=0.02)
    assert rec.predicted <= measured + 0.02 and rec.std is not None and 0 <= rec.std < 0.05
    # the random initial design alone did far worse
    assert min(bowl(sched.trial(i).params) for i in range(5)) > 2 * bowl(rec.params)


def test_a_space_of_fixed_parameters_only_needs_no_model():
    problem = make_problem(space=[{"name": "seq_len", "type": "fixed", "value": 128}])
    sched = make_scheduler("gp_target", problem, n_init=1)
    for _ in range(3):
        (s,) = sched.suggest(1)
        assert s.params == {"seq_len": 128}
        finish(sched, s, 1.0 + s.trial_id)
    rec = sched.recommend()
    assert rec.params == {"seq_len": 128} and rec.predicted == 1.0
