"""The Tune adapters and the trainable on a real local Ray: decisions reach Tune, PAUSEd trials resume
from their checkpoint, resources follow the model size."""

from __future__ import annotations

import json
import os

import pytest

from schedulers import Problem, TrialState, make_scheduler
from schedulers.ray_adapter import SchedulerBridge, StudyBudget
from workers.experiment import build_tuner, experiment_config

pytestmark = pytest.mark.slow


def problem(sizes=None, min_steps=10, max_steps=90, report_every=10, target_size=None):
    sizes = sizes or [{"name": "s", "params": 1e3, "extra": {"width": 8}},
                      {"name": "m", "params": 4e3, "extra": {"width": 16}}]
    return Problem.from_dict({
        "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
        "fidelity": {"steps": {"min": min_steps, "max": max_steps, "report_every": report_every}, "sizes": sizes},
        "target": {"steps": max_steps, "size": target_size or sizes[-1]["name"]},
    })


def record_workload(config, reporter):
    """Reports 1/step from start_step and logs (trial, start_step, CUDA_VISIBLE_DEVICES) to args['log']."""
    with open(config["args"]["log"], "a") as f:
        f.write(json.dumps({"params": config["params"], "size": config["size"], "start": config["start_step"],
                            "resumed": config["checkpoint"] is not None,
                            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\n")
    for step in range(config["start_step"] + 1, config["steps"] + 1):
        if step % config["report_every"] == 0 or step == config["steps"]:
            value = float("nan") if config["params"]["lr"] > 0.08 else config["params"]["lr"] + 1.0 / step
            reporter(step, value, {"step": step})
            if value != value:
                return


def run(sched, tmp_path, *, budget, max_concurrent=2, workload="mlp", args=None):
    bridge = SchedulerBridge(sched, base_config=experiment_config(workload, args or {}, workload_modules=["tests.ray"]),
                             budget=budget, max_concurrent=max_concurrent)
    build_tuner(bridge, name="t", storage_path=tmp_path / "ray").fit()
    return bridge


def test_hyperband_pauses_and_resumes_from_checkpoints_never_from_zero(ray_cluster, tmp_path):
    log = tmp_path / "log.jsonl"
    sched = make_scheduler("hyperband", problem(), seed=1)
    run(sched, tmp_path, budget=StudyBudget(target_runs=4), workload="tests.ray.test_adapter:record_workload",
        args={"log": str(log)})
    starts = [json.loads(line) for line in log.read_text().splitlines()]
    resumed = [s for s in starts if s["start"] > 0]
    assert resumed, "hyperband promotes paused trials"
    assert all(s["resumed"] for s in resumed)
    # every trial's curve is strictly increasing in steps: no step was re-run and re-recorded from zero
    for t in sched.trials.values():
        steps = [s for s, _ in t.curve]
        assert steps == sorted(set(steps))
    promoted = [t for t in sched.trials.values() if t.last_step > 10]
    assert promoted
    # the number of times a trial's workload started from scratch is one per trial
    assert sum(1 for s in starts if s["start"] == 0) == len(sched.trials)


def test_diverged_trial_is_reported_and_the_study_goes_on(ray_cluster, tmp_path):
    log = tmp_path / "log.jsonl"
    p = problem(max_steps=20)
    sched = make_scheduler("random", p, seed=3)
    run(sched, tmp_path, budget=StudyBudget(max_trials=6), workload="tests.ray.test_adapter:record_workload",
        args={"log": str(log)})
    states = [t.state for t in sched.trials.values()]
    assert len(states) == 6
    failed = [t for t in sched.trials.values() if t.state is TrialState.FAILED]
    assert failed and all("diverged" in t.failure for t in failed)
    completed = [t for t in sched.trials.values() if t.state is TrialState.COMPLETED]
    assert completed and all([s for s, _ in t.curve] == [10, 20] for t in completed)


def test_bigger_sizes_get_more_fake_gpus_and_matching_cuda_visible_devices(ray_cluster, tmp_path):
    log = tmp_path / "log.jsonl"
    sizes = [{"name": "s", "params": 1e3, "cpus": 0.5, "gpus": 1}, {"name": "l", "params": 4e3, "cpus": 0.5, "gpus": 3}]
    p = problem(sizes=sizes, max_steps=10, min_steps=10)
    class BothSizes(type(make_scheduler("random", p))):
        """Random search alternating the two sizes (a test scheduler; no tuning logic needed)."""

        def _propose(self, n):
            return [(params, sizes[len(self.trials) % 2]["name"], 10)
                    for params in self.space.sample(self._rng(), n)]

    sched = BothSizes(p, seed=0)
    run(sched, tmp_path, budget=StudyBudget(max_trials=2), workload="tests.ray.test_adapter:record_workload",
        args={"log": str(log)}, max_concurrent=2)
    seen = {s["size"]: s["cuda"] for s in map(json.loads, log.read_text().splitlines())}
    assert len(seen["s"].split(",")) == 1
    assert len(set(seen["l"].split(","))) == 3


def test_a_killed_worker_resumes_its_trial_from_the_last_checkpoint(ray_cluster, tmp_path):
    import signal
    import threading
    import time

    log = tmp_path / "log.jsonl"
    sched = make_scheduler("random", problem(max_steps=90), seed=0)
    killed: list[int] = []

    def kill_mid_trial():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
            if any(x["event"] == "report" and x["step"] >= 50 for x in lines):
                os.kill(lines[-1]["pid"], signal.SIGKILL)
                killed.append(lines[-1]["pid"])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_mid_trial)
    killer.start()
    run(sched, tmp_path, budget=StudyBudget(max_trials=1), workload="tests.ray.workloads:paced",
        args={"log": str(log), "pause": 0.3})
    killer.join()
    assert killed
    starts = [x for x in map(json.loads, log.read_text().splitlines()) if x["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed"] and 40 <= starts[1]["start"] <= 60
    t = sched.trials[0]
    assert t.state is TrialState.COMPLETED
    assert [s for s, _ in t.curve] == list(range(10, 91, 10))
