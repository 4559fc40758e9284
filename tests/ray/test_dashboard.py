"""What the Ray dashboard shows of a study's trials: actors of a class named after the experiment, each
with a repr naming its study, trial, size and steps (not Tune's anonymous ``ImplicitFunc``)."""

from __future__ import annotations

import os
import time

import pytest

from schedulers import Problem, make_scheduler
from schedulers.ray_adapter import SchedulerBridge, StudyBudget
from workers.experiment import build_tuner, experiment_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_with_dashboard():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    # the state API (what the dashboard lists) needs the dashboard's head process; address="local": a new
    # instance of our own even when another Ray runs on this machine (CI once found two and refused)
    ray.init(address="local", num_cpus=2, include_dashboard=True, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_trial_actors_are_named_by_study_and_trial(ray_with_dashboard, tmp_path):
    from ray.util.state import list_actors

    problem = Problem.from_dict({
        "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
        "fidelity": {"steps": {"min": 10, "max": 20, "report_every": 10}, "sizes": [{"name": "w8", "params": 1e3}]},
        "target": {"steps": 20, "size": "w8"}})
    bridge = SchedulerBridge(make_scheduler("random", problem, seed=0), budget=StudyBudget(max_trials=1),
                             base_config=experiment_config("tests.ray.workloads:paced", study_id=7,
                                                           workload_modules=["tests.ray"]))
    name = f"study-7-{os.getpid()}"
    build_tuner(bridge, name=name, storage_path=tmp_path / "ray").fit()
    deadline, actors = time.time() + 30, []
    while time.time() < deadline and not any(a.repr_name for a in actors):
        actors = list_actors(address=ray_with_dashboard.get_runtime_context().gcs_address,
                             filters=[("class_name", "=", name)], detail=True)
        time.sleep(0.5)
    assert [a.repr_name for a in actors if a.repr_name] == ["study-7/trial-0 w8 20 steps"], actors
