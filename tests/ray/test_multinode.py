"""A real multi-node Ray cluster (issue 13): a head and two worker nodes (separate raylets and worker
processes, started by Ray's own ``ray.cluster_utils.Cluster`` on this machine), the control plane
connected to it by address, so study runners are detached actors. Trials spread over the nodes and the
study completes with every step measured once.

A worker node killed mid-trial (``cluster.remove_node``, SIGKILL): its trials resume from their last
checkpoint on another node (the storage is one folder all nodes see) and every study completes. This used
to hang a study whenever its runner had been placed on the killed node; runners now live on the head node,
and a runner whose process dies is restarted by Ray and resumes its study from the event log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from collections import Counter

import httpx
import pytest

from api.client import Client
from api.schemas import StudyState, TrialState
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
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})   # the head also runs the study runners
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


def _events(log: Path) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _starts(log) -> list[dict]:
    return [e for e in _events(log) if e["event"] == "start"]


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
            _assert_completed_with_every_step_once(server, token, study)
            assert len(study.trials()) == 6
            # three 1-CPU nodes, up to three trials at once: each worker node ran some (the head may too)
            ran_on = Counter(e["node"] for e in _starts(log))
            assert {w.node_id for w in workers} <= set(ran_on), (ran_on, [w.node_id for w in workers])
    finally:
        app.state.executor.close()


def _runner_node(study_id: int) -> str:
    import ray

    from service.ray_runner import NAMESPACE, runner_name

    return ray.get(ray.get_actor(runner_name(study_id), namespace=NAMESPACE).node_id.remote(), timeout=60)


def _assert_completed_with_every_step_once(server, token, study) -> None:
    """The study COMPLETED, each of its trials too, and every trial has each step of 10..60 measured once."""
    assert study.state is StudyState.COMPLETED, (study.id, study.state, study.data.error)
    trials = study.trials()
    assert trials and all(t.state is TrialState.COMPLETED for t in trials), \
        (study.id, [(t.number, t.state) for t in trials])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        for t in trials:
            steps = [m["step"] for m in http.get(f"/v1/trials/{t.id}/measurements").json()]
            assert steps == list(range(10, 61, 10)), (study.id, t.number, steps)


def _checkpointed_trial_on(logs: list[Path], nodes: set[str], seconds: float) -> tuple[Path, dict, dict]:
    """The first trial (its log, start event, the report seen) running on one of ``nodes`` that has logged
    step 20. The workload logs a step before reporting it, so the checkpoint at step 10 (a rung of
    min_steps 10, eta 2) is surely in Tune's hands by then, 2 s (one pause) after it was reported."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for log in logs:
            events = _events(log)
            start_of = {e["pid"]: e for e in events if e["event"] == "start"}  # the latest start per process
            for e in events:
                start = start_of.get(e["pid"])
                if e["event"] == "report" and e["step"] == 20 and start and start["node"] in nodes \
                        and start["trial"] == e["trial"]:
                    return log, start, e
        time.sleep(0.2)
    raise AssertionError(f"no trial reported a checkpoint on {nodes} within {seconds} s")


def test_a_worker_node_killed_mid_trial_resumes_its_trial_from_the_checkpoint_on_another_node(cluster, tmp_path):
    """Two studies (the defect showed with two) on a head and two worker nodes; the worker node running a
    trial that has checkpointed is killed. Every study completes, every step is measured once, and the
    killed trial restarts from its checkpoint (not step 0) on a node that is still alive."""
    c, workers = cluster
    logs = [tmp_path / f"events-{i}.jsonl" for i in range(2)]
    app, token = _serve(tmp_path, c.address)
    try:
        with ServerThread(app) as server:
            client = Client(server.url, token)
            # 6 reports of 2 s: a trial runs for 12 s or more, so the kill lands mid-trial
            studies = [client.create_study(_spec(log, pause=2.0, trials=3)) for log in logs]
            head = c.head_node.node_id
            assert [_runner_node(s.id) for s in studies] == [head, head]   # not on a node that can be lost
            by_id = {w.node_id: w for w in workers}
            log, start, report = _checkpointed_trial_on(logs, set(by_id), 120)
            c.remove_node(by_id[start["node"]], allow_graceful=False)    # a crash, not a drain
            killed = time.time()
            for s in studies:
                _wait(s, 240)
            print(f"node killed -> both studies final in {time.time() - killed:.0f} s")
            for s in studies:
                _assert_completed_with_every_step_once(server, token, s)
            later = [e for e in _starts(log) if e["trial"] == start["trial"] and e["pid"] != start["pid"]]
            assert later, f"trial lr={start['trial']} never restarted after its node was killed"
            again = later[0]
            assert again["node"] != start["node"] and again["resumed"] and again["start"] >= 10, \
                (start, report, again)
            reached = max(e["step"] for e in _events(log) if e["event"] == "report" and e["pid"] == start["pid"])
            assert again["start"] <= reached, (reached, again)      # a checkpoint it wrote before the kill
    finally:
        app.state.executor.close()


def test_a_runner_whose_process_dies_is_restarted_and_resumes_its_study(cluster, tmp_path):
    """The runner's process dies mid-study (``ray.kill(no_restart=False)``, as an OOM kill would): Ray
    restarts it on the head node and it resumes the study from its event log by itself, with no control
    plane call; the study completes with every step measured once."""
    import ray

    from service.ray_runner import NAMESPACE, runner_name

    c, _ = cluster
    log = tmp_path / "events.jsonl"
    app, token = _serve(tmp_path, c.address)
    try:
        with ServerThread(app) as server:
            study = Client(server.url, token).create_study(_spec(log, pause=2.0, trials=4))
            deadline = time.time() + 120
            while not any(e["event"] == "report" and e["step"] == 20 for e in _events(log)):
                assert time.time() < deadline, "no trial reached step 20 within 120 s"
                time.sleep(0.2)
            ray.kill(ray.get_actor(runner_name(study.id), namespace=NAMESPACE), no_restart=False)
            killed = time.time()
            _wait(study, 240)                      # no control-plane call: the restarted runner resumes alone
            print(f"runner killed -> study final in {time.time() - killed:.0f} s")
            # and the control plane's wait(), whose call died with the first process, follows the new one
            assert app.state.executor.wait(study.id, timeout=60) == StudyState.COMPLETED.value
            _assert_completed_with_every_step_once(server, token, study)
            assert _runner_node(study.id) == c.head_node.node_id
            resumed = [e for e in _starts(log) if e["resumed"]]
            assert resumed and all(e["start"] >= 10 for e in resumed), _starts(log)
    finally:
        app.state.executor.close()
