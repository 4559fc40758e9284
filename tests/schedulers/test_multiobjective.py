"""Multiple objectives in the scheduler library (``schedulers/objectives.py``): Pareto sets, hypervolume,
constraints, the event log of a multi-objective study, and replay of the flagship's ParEGO search.
The end-to-end recovery of a known front is tests/api/test_multiobjective.py (REST, PostgreSQL)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from schedulers import Decision, make_scheduler
from schedulers.objectives import (ConstraintOp, ObjectiveDef, Objectives, OutcomeConstraint, hypervolume,
                                   pareto_mask)
from schedulers.problem import Direction

from tests.schedulers import mo_problem


def test_pareto_mask_and_hypervolume():
    Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.6, 0.6], [0.5, 0.5], [math.nan, 0.0]])
    assert pareto_mask(Y).tolist() == [True, True, True, False, False, False]
    assert hypervolume(Y, [2.0, 2.0]) == pytest.approx(3.25)
    # three objectives: three unit-offset boxes of volume 2 overlapping pairwise in 1, all three in 1
    assert hypervolume(np.eye(3)[::-1] * -1 + 1, [2.0, 2.0, 2.0]) == pytest.approx(4.0)
    assert hypervolume(np.array([[3.0, 0.0]]), [2.0, 2.0]) == 0.0


def test_objectives_units_constraints_and_required_metrics():
    obj = Objectives((ObjectiveDef("loss"), ObjectiveDef("accuracy", Direction.MAXIMIZE)),
                     (OutcomeConstraint("latency", ConstraintOp.LE, 20.0),))
    assert obj.is_multi and obj.reported_metrics == ["accuracy", "latency"]
    assert obj.missing({"accuracy": 0.9}) == ["latency"]
    out = obj.outcomes(1.5, {"accuracy": 0.9, "latency": 25.0})
    assert obj.vector(out).tolist() == [1.5, -0.9]
    assert not obj.feasible(out) and obj.feasible({**out, "latency": 20.0})
    assert not Objectives().is_multi


@pytest.mark.parametrize("name", ["random", "asha"])
def test_baselines_optimise_the_first_objective_and_answer_the_measured_front(name):
    sched = make_scheduler(name, mo_problem.make_problem(), seed=0)
    for _ in range(12):
        got = sched.resume() or (sched.suggest(1) or [None])[0]
        if got is None:
            break
        for step in range(got.start_step + 8, got.steps + 1, 8):
            loss, cost = mo_problem.values(got.params, sched.ladder.size(got.size).params, step)
            if sched.report(got.trial_id, step, loss, metrics={"cost": cost, "ignored": 1.0}) is not Decision.CONTINUE:
                break
        sched.complete(got.trial_id)
    assert all(set(ev.get("metrics", {"cost": 0})) == {"cost"} for ev in sched.events if ev["kind"] == "report")
    front = sched.pareto()
    assert front, "something was measured at the target"
    losses = [p.values["loss"] for p in front]
    assert losses == sorted(losses) and all(p.stds is None for p in front)
    ys = np.array([[p.values["loss"], p.values["cost"]] for p in front])
    assert pareto_mask(ys).all()


def test_constraints_exclude_infeasible_configs_from_the_front():
    problem = mo_problem.make_problem()
    problem.objectives = Objectives(problem.objectives.defs, (OutcomeConstraint("cost", ConstraintOp.LE, 0.5),))
    sched = make_scheduler("random", problem, seed=1)
    for s in sched.suggest(8):
        for step in range(8, s.steps + 1, 8):
            loss, cost = mo_problem.values(s.params, sched.ladder.size(s.size).params, step)
            sched.report(s.trial_id, step, loss, metrics={"cost": cost})
        sched.complete(s.trial_id)
    front = sched.pareto()
    assert front and all(p.values["cost"] <= 0.5 for p in front)


def test_the_flagships_parego_search_replays_exactly():
    problem = mo_problem.make_problem(budget=1.0)
    opts = {"n_init": 3, "n_candidates": 64, "n_local": 8, "top_k": 4, "fit_iters": 10, "drift": "off"}
    live = make_scheduler("multiscale_bo", problem, seed=4, **opts)
    active = {}
    for _ in range(24):
        while len(active) < 2:
            got = live.resume() or (live.suggest(1) or [None])[0]
            if got is None:
                break
            active[got.trial_id] = (got, list(range(got.start_step + 8, got.steps + 1, 8)) or [got.steps])
        for tid in sorted(active):
            got, steps = active[tid]
            step = steps.pop(0)
            loss, cost = mo_problem.values(got.params, live.ladder.size(got.size).params, step)
            if live.report(tid, step, loss, metrics={"cost": cost}) is not Decision.CONTINUE or not steps:
                live.complete(tid)
                del active[tid]
    assert live.surrogate is not None, "the model took over"
    events = json.loads(json.dumps(live.events))
    replayed = make_scheduler("multiscale_bo", mo_problem.make_problem(budget=1.0), seed=4, **opts).replay(events)
    snap = lambda s: json.dumps(s.snapshot(), sort_keys=True, default=repr)  # noqa: E731
    assert snap(replayed) == snap(live)
    assert replayed.suggest(2) == live.suggest(2)
    front = live.pareto()
    assert front == replayed.pareto()
    assert front and all(p.stds is not None and set(p.values) == {"loss", "cost"} for p in front)
    rec = live.recommend()
    assert rec.params == front[0].params and rec.predicted == front[0].values["loss"]
