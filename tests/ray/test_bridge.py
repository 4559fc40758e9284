"""The adapters' bookkeeping without a running Ray: ids, configs, concurrency, budget, restarts."""

from __future__ import annotations

from ray.tune.search import Searcher

from schedulers import Decision, Problem, make_scheduler
from schedulers.ray_adapter import SchedulerBridge, SchedulerSearcher, StudyBudget, TrialKeys

PROBLEM = {
    "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
    "fidelity": {"steps": {"min": 10, "max": 40, "report_every": 10},
                 "sizes": [{"name": "s", "params": 1e3, "extra": {"width": 8}}]},
    "target": {"steps": 40, "size": "s"},
}


def searcher(budget=StudyBudget(), max_concurrent=2, sched=None, **kw):
    sched = sched or make_scheduler("random", Problem.from_dict(PROBLEM), seed=0)
    bridge = SchedulerBridge(sched, base_config={"workload": "mlp", "study_id": 7}, budget=budget,
                             max_concurrent=max_concurrent, **kw)
    return SchedulerSearcher(bridge), bridge


def test_suggest_maps_ray_ids_and_builds_the_trial_config():
    s, b = searcher()
    cfg = s.suggest("ray-a")
    assert b.sched_id("ray-a") == 0 and cfg[TrialKeys.TRIAL_ID] == 0
    assert cfg["workload"] == "mlp" and cfg[TrialKeys.STUDY_ID] == 7
    assert cfg[TrialKeys.SIZE] == "s" and cfg[TrialKeys.SIZE_EXTRA] == {"width": 8}
    assert cfg[TrialKeys.STEPS] == 40 and cfg[TrialKeys.START_STEP] == 0 and cfg[TrialKeys.RESTORE_FROM] is None
    assert 1e-3 <= cfg[TrialKeys.PARAMS]["lr"] <= 1e-1


def test_concurrency_is_limited_by_live_scheduler_trials_and_budget_finishes_the_search():
    s, b = searcher(budget=StudyBudget(max_trials=2), max_concurrent=1)
    assert s.suggest("a") is not None
    assert s.suggest("b") is None                      # one live trial already
    for step in (10, 20, 30, 40):
        assert b.report(0, step, 1.0 / step, {}) is Decision.CONTINUE
    b.end(0)
    assert s.suggest("b") is not None
    b.report(1, 10, float("nan"), {})                  # diverged: failed, not live
    assert b.scheduler.trials[1].failure.startswith("diverged")
    assert s.suggest("c") == Searcher.FINISHED         # trial budget used, nothing live


def test_a_restarted_bridge_reissues_live_trials_from_their_checkpoints():
    s, b = searcher()
    s.suggest("a"), s.suggest("b")
    b.report(0, 10, 0.5, {}), b.report(0, 20, 0.4, {})
    b.end(1, "worker lost")
    replayed = make_scheduler("random", Problem.from_dict(PROBLEM), seed=0).replay(b.scheduler.events)
    s2, b2 = searcher(sched=replayed, checkpoints={0: ("/ckpt/trial-0/step-20", 20)})
    assert [r.trial_id for r in b2.reissue] == [0]      # failed trial 1 is not re-run
    cfg = s2.suggest("new-ray-id")
    assert cfg[TrialKeys.TRIAL_ID] == 0 and b2.sched_id("new-ray-id") == 0
    assert cfg[TrialKeys.START_STEP] == 20 and cfg[TrialKeys.RESTORE_FROM] == "/ckpt/trial-0/step-20"
    assert len(replayed.trials) == 2                    # no duplicate trial


def test_listener_receives_every_event_once_in_order():
    seen = []
    s, b = searcher(listener=seen.extend)
    s.suggest("a")
    b.report(0, 10, 0.5, {})
    b.end(0)
    assert [i for i, _ in seen] == list(range(len(b.scheduler.events)))
    assert [e["kind"] for _, e in seen] == ["suggest", "report", "complete"]
