"""The simulated cluster: decisions take effect as on a real cluster, and cost and time are accounted right."""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import pytest

from bench.harness import SimulatedCluster, cost_checkpoints
from schedulers.base import Decision, Scheduler, Trial
from tests.bench.toy_problem import ToyProblem


class FixedTrials(Scheduler):
    """Issues ``n`` trials at x = 0.1 * i on the small size, to 100 steps; optionally STOPs or PAUSEs."""

    name = "fixed"

    def __init__(self, problem, seed=0, n=3, stop_at=None, pause_at=None, size="small"):
        super().__init__(problem, seed)
        self.n, self.stop_at, self.pause_at, self.size = n, stop_at, pause_at, size
        self.resumed: set[int] = set()

    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        left = self.n - len(self.trials)
        return [({"x": 0.1 * (len(self.trials) + i)}, self.size, 100) for i in range(min(n, left))]

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if self.stop_at is not None and step >= self.stop_at:
            return Decision.STOP
        if self.pause_at is not None and step >= self.pause_at and trial.trial_id not in self.resumed:
            return Decision.PAUSE
        return Decision.CONTINUE

    def _choose_resume(self):
        for t in self.trials.values():
            if t.state.value == "paused" and t.trial_id not in self.resumed:
                return t.trial_id, 100
        return None

    def _on_resume(self, trial: Trial) -> None:
        self.resumed.add(trial.trial_id)


def _cluster(sched_kwargs=None, workers=2, budget=10.0, overhead=0.0):
    bench = ToyProblem(overhead=overhead)
    sched = FixedTrials(copy.deepcopy(bench.problem), seed=0, **(sched_kwargs or {}))
    return bench, sched, SimulatedCluster(bench, sched, workers=workers, budget=budget, seed=0)


def test_exhausted_strategy_spends_exactly_its_trials():
    # three small trials to 100 steps cost 3 x 0.25 target runs; with 4 workers one worker never works
    bench, sched, cluster = _cluster({"n": 3}, workers=4)
    r = cluster.run()
    assert r.error is None and r.exhausted
    assert r.spent == pytest.approx(0.75)
    assert r.end_time == pytest.approx(0.25)
    assert r.busy_fraction == pytest.approx(0.75)
    assert r.n_trials == 3 and r.n_reports == 30
    assert all(t.state.value == "completed" for t in sched.trials.values())
    # every report the scheduler saw is the problem's value at that step
    t = sched.trials[1]
    assert [s for s, _ in t.curve] == list(range(10, 101, 10))
    assert t.curve[4][1] == bench.evaluate(t.params, "small", 50, 0)


def test_budget_cuts_the_run_and_every_checkpoint_is_recorded():
    bench, sched, cluster = _cluster({"n": 1000}, workers=3, budget=2.0)
    r = cluster.run()
    assert not r.exhausted and r.error is None
    assert r.spent == pytest.approx(2.0)
    assert 0.99 < r.busy_fraction <= 1.0 + 1e-9
    assert r.checkpoints == cost_checkpoints(2.0) and len(r.regret) == len(r.checkpoints)
    # no recommendation before the first report (inf), a finite regret from then on
    # (the first report comes when 3 workers have each run 10 small steps: 3 x 10 x 0.25 / 100 target runs)
    first = next(i for i, x in enumerate(r.regret) if math.isfinite(x))
    assert 0 < first and r.checkpoints[first - 1] < 0.075 <= r.checkpoints[first]
    assert all(math.isinf(x) for x in r.regret[:first])
    assert all(math.isfinite(x) for x in r.regret[first:])
    # 2 target runs buy 8 small trials of 100 steps; in flight at the end are at most 3 more
    assert 8 <= r.n_trials <= 11


def test_stop_ends_the_trial_and_frees_the_worker():
    bench, sched, cluster = _cluster({"n": 4, "stop_at": 30}, workers=2)
    r = cluster.run()
    assert r.exhausted
    assert all(t.state.value == "stopped" and t.last_step == 30 for t in sched.trials.values())
    assert r.spent == pytest.approx(4 * 0.25 * 0.3)


def test_pause_keeps_the_checkpoint_and_resume_continues_from_it():
    bench, sched, cluster = _cluster({"n": 2, "pause_at": 40}, workers=1, overhead=5.0)
    r = cluster.run()
    assert r.exhausted and r.error is None
    for t in sched.trials.values():
        assert t.state.value == "completed"
        assert [s for s, _ in t.curve] == list(range(10, 101, 10))  # no step repeated or skipped
    # two trials of 100 small steps, each resumed once and paying the overhead again on resume
    unit = bench.problem.target_cost
    assert r.spent == pytest.approx(2 * (0.25 * 100 + 5.0) / unit + 2 * 5.0 / unit)
    assert r.n_segments == 4


def test_a_strategy_that_crashes_is_reported_not_raised():
    class Crashing(FixedTrials):
        def _on_report(self, trial, step, y):
            raise RuntimeError("boom")

    bench = ToyProblem()
    r = SimulatedCluster(bench, Crashing(copy.deepcopy(bench.problem)), workers=2, budget=1.0, seed=0).run()
    assert r.error is not None and "RuntimeError: boom" in r.error


def test_runs_are_deterministic_for_a_seed():
    bench = ToyProblem()
    from schedulers.random_search import RandomSearch

    def once(seed):
        return SimulatedCluster(bench, RandomSearch(copy.deepcopy(bench.problem), seed=seed), workers=3,
                                budget=5.0, seed=seed).run()

    a, b, c = once(0), once(0), once(1)
    assert a.regret == b.regret and a.final_params == b.final_params
    assert a.final_params != c.final_params


def test_trial_cap_stops_suggesting():
    bench, sched, cluster = _cluster({"n": 1000}, workers=2, budget=5.0)
    cluster.max_trials = 5
    r = cluster.run()
    assert r.exhausted and r.n_trials == 5 and r.spent == pytest.approx(5 * 0.25)


def test_invalid_cluster_arguments():
    bench = ToyProblem()
    sched = FixedTrials(copy.deepcopy(bench.problem))
    with pytest.raises(ValueError):
        SimulatedCluster(bench, sched, workers=0, budget=1.0, seed=0)
    with pytest.raises(ValueError):
        SimulatedCluster(bench, sched, workers=1, budget=0.0, seed=0)


def test_cost_is_charged_from_the_harness_copy_not_the_strategy_copy():
    class CheapSelf(FixedTrials):
        """Rewrites its own cost model to make its trials look 1000x cheaper."""

        def __init__(self, problem, seed=0, **kw):
            super().__init__(problem, seed, **kw)
            self.problem.cost_model.per_step = {k: v / 1000 for k, v in self.problem.cost_model.per_step.items()}

    bench = ToyProblem()
    sched = CheapSelf(copy.deepcopy(bench.problem), seed=0, n=3)
    r = SimulatedCluster(bench, sched, workers=4, budget=10.0, seed=0).run()
    assert r.error is None and r.exhausted
    assert r.spent == pytest.approx(0.75)          # three small runs of 0.25 target runs, as without the trick
    assert sched.cost_spent == pytest.approx(3 * 25.0 / 1000)   # the strategy's own bill did change
    assert bench.problem.cost_model.per_step == {"small": 0.25, "big": 1.0}


def test_cost_as_wall_time_times_workers_counts_idle_workers():
    from bench.metrics import reserved_cost, summarise

    # three trials on four workers: 0.75 target runs spent, but 4 workers reserved for 0.25 time units
    bench, sched, cluster = _cluster({"n": 3}, workers=4)
    r = cluster.run()
    record = {"strategy": "fixed", "origin": "scheduler", "seed": 0, "budget": 10.0, "workers": 4,
              "error": None, **vars(r)}
    assert reserved_cost(record) == pytest.approx(1.0) and r.spent == pytest.approx(0.75)
    (s,) = summarise([record])
    assert s.reserved_cost.median == pytest.approx(1.0)
