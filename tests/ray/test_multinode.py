"""A real multi-node Ray cluster (issue 13): a head and two worker nodes (separate raylets and worker
processes, started by Ray's own ``ray.cluster_utils.Cluster`` on this machine), the control plane
connected to it by address, so study runners are detached actors. Trials spread over the nodes and the
study completes with every step measured once.

Not covered yet: a worker node killed mid-study (``cluster.remove_node``). Tried on 2026-12-02: in one run
of two, Tune retried its trials elsewhere and the study completed; in the other the study was still
RUNNING 240 s after the kill. That is an open defect (README, status), not a tested guarantee."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest

from api.client import Client
from api.schemas import StudyState
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

pytestmark = pytest.mark.slow


def _spec(log, pause: float, trials: int) -> dict:
    return {
        "name": "multinode",
        "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
        "fidelity": {"steps": {"min": 10, "max": 60, "report_every": 10},
                     "sizes": [{"name": "m", "params": 4e3, "cpus": 1}]},
        "target": {"steps": 60, "size": "m"},
        "budget": {"max_trials": trials},
        "scheduler": {"name": "random", "seed": 3},
        "workload": {"entrypoint": "tests.ray.workloads:paced", "args": {"log": str(log), "pause": pause}},
    }


@pytest.fixture
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})   # the head runs the study runner
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def _serve(tmp_path, address: str):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'mn.db'}", migrate_on_startup=True,
                              workload_modules=("tests.ray",), executor="ray",
                              executor_options={"address": address, "storage_path": str(tmp_path / "ray"),
                                                "max_concurrent": 3, "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    return app, token


def _starts(log) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == "start"]


def _wait(study, seconds: float) -> None:
    deadline = time.time() + seconds
    while not study.refresh().state.is_final and time.time() < deadline:
        time.sleep(1.0)


def test_trials_spread_over_the_nodes_of_a_cluster_joined_by_address(cluster, tmp_path):
    c, workers = cluster
    log = tmp_path / "events.jsonl"
    app, token = _serve(tmp_path, c.address)
    try:
        with ServerThread(app) as server:
            study = Client(server.url, token).create_study(_spec(log, pause=2.0, trials=6))
            assert app.state.executor.detached                       # runners outlive the control plane
            _wait(study, 240)
            assert study.state is StudyState.COMPLETED, (study.state, study.data.error)
            trials = study.trials()
            assert len(trials) == 6 and all(t.state.value == "completed" for t in trials), \
                [(t.number, t.state.value) for t in trials]
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
                for t in trials:                                        # every step once, none missing
                    steps = [m["step"] for m in http.get(f"/v1/trials/{t.id}/measurements").json()]
                    assert steps == list(range(10, 61, 10)), (t.number, steps)
            # three 1-CPU nodes, up to three trials at once: each worker node ran some (the head may too)
            ran_on = Counter(e["node"] for e in _starts(log))
            assert {w.node_id for w in workers} <= set(ran_on), (ran_on, [w.node_id for w in workers])
    finally:
        app.state.executor.close()
