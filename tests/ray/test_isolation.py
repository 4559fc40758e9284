"""Several studies with different ladders, workloads and schedulers run at once on one control plane and
one Ray: each study's trials are sized with its own ladder and run its own workload (issue 13)."""

from __future__ import annotations

import json
import math
import time

import pytest

from api.client import Client
from api.schemas import StudyState, TrialState
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

pytestmark = pytest.mark.slow

SPACE = [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}]
STEPS = {"min": 10, "max": 40, "report_every": 10}


def specs(tmp_path) -> dict[str, dict]:
    """Three studies whose ladders share no size name; ``b``'s target size takes two (fake) GPUs."""
    def paced(name: str) -> dict:
        return {"entrypoint": "tests.ray.workloads:paced", "args": {"pause": 0.05, "log": str(tmp_path / f"{name}.jsonl")}}

    return {
        "a": {"name": "iso-a", "space": SPACE, "fidelity": {"steps": STEPS, "sizes": [
                  {"name": "small", "params": 1e3}, {"name": "base", "params": 4e3}]},
              "target": {"steps": 40, "size": "base"}, "budget": {"max_trials": 5},
              "scheduler": {"name": "random", "seed": 0}, "workload": paced("a")},
        "b": {"name": "iso-b", "space": SPACE, "fidelity": {"steps": STEPS, "sizes": [
                  {"name": "w128", "params": 1e3}, {"name": "w256", "params": 4e3, "gpus": 2}]},
              "target": {"steps": 40, "size": "w256"}, "budget": {"max_cost": 2},
              "scheduler": {"name": "hyperband", "seed": 1}, "workload": paced("b")},
        "c": {"name": "iso-c", "space": SPACE, "fidelity": {"steps": STEPS, "sizes": [
                  {"name": "narrow", "params": 1e3, "extra": {"width": 8}},
                  {"name": "wide", "params": 4e3, "extra": {"width": 16}}]},
              "target": {"steps": 40, "size": "wide"}, "budget": {"max_trials": 4},
              "scheduler": {"name": "asha", "seed": 2}, "workload": {"name": "mlp", "args": {"depth": 1}}},
    }


def test_three_studies_with_different_ladders_run_at_once_on_one_ray(ray_cluster, tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'iso.db'}", migrate_on_startup=True,
                              workload_modules=("tests.ray",), executor="ray", executor_options={"storage_path": str(tmp_path / "ray"),
                                                                "max_concurrent": 1, "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    spec = specs(tmp_path)
    try:
        with ServerThread(app) as server:
            client = Client(server.url, token)
            studies = {"a": client.create_study(spec["a"])}
            # the others start while the first is between trials, so every runner builds trials after
            # another study's experiment was set up on the same Ray
            deadline = time.time() + 120
            while studies["a"].progress().n_measurements == 0 and time.time() < deadline:
                time.sleep(0.2)
            studies["b"] = client.create_study(spec["b"])
            studies["c"] = client.create_study(spec["c"])
            deadline = time.time() + 420
            while time.time() < deadline and not all(s.refresh().state.is_final for s in studies.values()):
                time.sleep(0.5)

            for key, study in studies.items():
                ladder = {s["name"]: s for s in spec[key]["fidelity"]["sizes"]}
                assert study.state is StudyState.COMPLETED, (key, study.state, study.data.error)
                # a finished study's runner ends too (it does not keep its Tune experiment polling)
                assert app.state.executor.wait(study.id, timeout=30) == StudyState.COMPLETED.value, key
                trials = study.trials()
                assert trials, key
                for t in trials:
                    assert t.state is not TrialState.FAILED, (key, t.number, t.failure)
                    assert t.size in ladder, (key, t.size)
                    assert (t.resources.cpu, t.resources.gpu) == (ladder[t.size].get("cpus", 1.0),
                                                                  ladder[t.size].get("gpus", 0.0)), (key, t)
                    values = study.client.get_trial(t.id).measurements()
                    assert [m.step for m in values] == list(range(10, (t.last_step or 0) + 1, 10)), (key, t.number)
                    if key != "c":  # the paced curve: each trial ran its own study's workload and params
                        lr = t.params["lr"]
                        assert all(m.value == pytest.approx((math.log10(lr) + 2.0) ** 2 + 1.0 / m.step)
                                   for m in values), (key, t.number)
                    else:
                        assert all(math.isfinite(m.value) for m in values), (key, t.number)
            # what the workers saw: their own study's size names, and GPUs only for b's two-GPU size
            for key in ("a", "b"):
                starts = [x for x in map(json.loads, (tmp_path / f"{key}.jsonl").read_text().splitlines())
                          if x["event"] == "start"]
                ladder = {s["name"]: s for s in spec[key]["fidelity"]["sizes"]}
                assert starts and {x["size"] for x in starts} <= set(ladder), key
                for x in starts:
                    gpus = int(ladder[x["size"]].get("gpus", 0))
                    assert len([d for d in (x["cuda"] or "").split(",") if d]) == gpus, (key, x)
    finally:
        app.state.executor.close()
