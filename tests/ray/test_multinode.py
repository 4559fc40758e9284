"""A real multi-node Ray cluster (issue 13): a head and two worker nodes on this machine, each started by
``ray start`` as a separate process tree (``tests/ray/cluster.py``), the control plane connected to it by
address, so study runners are detached actors. Trials spread over the nodes and the study completes with
every step measured once.

A worker node killed mid-trial (SIGKILL of all its processes at once): its trials resume from their last
checkpoint on another node (the storage is one folder all nodes see) and every study completes. This used
to hang a study whenever its runner had been placed on the killed node; runners now live on the head node,
and a runner whose process dies is restarted by Ray and resumes its study from the event log.

With one worker node declaring a fake GPU: a ladder's GPU size runs only there, its CPU-only size anywhere;
and ``scaleladder serve`` SIGKILLed mid-study leaves its detached runner running the study, to which a
restarted ``serve`` reattaches.

The head node killed mid-study takes its runners and their trials with it, and ``serve`` a minute later;
``serve`` on a new cluster resumes the study from its event log and checkpoints."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from api.client import Client
from api.schemas import StudyState, TrialState
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread, free_port
from service.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _spec(log, pause: float, trials: int, gather: Path | None = None, together: int = 3) -> dict:
    """Random search, trials of 6 reports ``pause`` s apart; with ``gather`` (a file), the first ``together``
    trials (of every study given that file) wait for each other to start (``tests/ray/gathered.py``: on a
    loaded machine Tune would otherwise run them one after the other on one reused actor)."""
    workload = {"entrypoint": "tests.ray.workloads:paced", "args": {"log": str(log), "pause": pause}}
    if gather is not None:
        workload = {"entrypoint": "tests.ray.gathered:gathered",
                    "args": {**workload["args"], "gather": str(gather), "together": together}}
    return {
        "name": "multinode",
        "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
        "fidelity": {"steps": {"min": 10, "max": 60, "report_every": 10},
                     "sizes": [{"name": "m", "params": 4e3, "cpus": 1}]},
        "target": {"steps": 60, "size": "m"},
        "budget": {"max_trials": trials},
        "scheduler": {"name": "random", "seed": 3},
        "workload": workload,
    }


def _start_cluster(worker_gpus: tuple[int, int] = (0, 0)):
    """A head and two worker nodes of 1 CPU each (``ray start``); ``worker_gpus``: the fake GPUs each worker
    node declares. The head also runs the study runners."""
    ray = pytest.importorskip("ray")
    from tests.ray.cluster import RayStartCluster

    if ray.is_initialized():
        ray.shutdown()
    c = RayStartCluster(worker_gpus)
    try:
        yield c, c.workers
    finally:
        ray.shutdown()   # before the nodes go: a driver whose GCS vanishes is killed by Ray
        c.shutdown()


@pytest.fixture
def cluster():
    yield from _start_cluster()


@pytest.fixture
def gpu_cluster():
    """As :func:`cluster`, the second worker node declaring one fake GPU (a CPU machine: Ray only counts it)."""
    yield from _start_cluster((0, 1))


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
            study = Client(server.url, token).create_study(_spec(log, pause=2.0, trials=6,
                                                                 gather=tmp_path / "gather"))
            assert app.state.executor.detached                       # runners outlive the control plane
            _wait(study, 240)
            _assert_completed_with_every_step_once(server.url, token, study)
            assert len(study.trials()) == 6
            # three 1-CPU nodes, the first three trials at once: one on each node
            ran_on = Counter(e["node"] for e in _starts(log))
            assert {w.node_id for w in workers} <= set(ran_on), (ran_on, [w.node_id for w in workers])
    finally:
        app.state.executor.close()


def _runner_node(study_id: int) -> str:
    import ray

    from service.ray_runner import NAMESPACE, runner_name

    return ray.get(ray.get_actor(runner_name(study_id), namespace=NAMESPACE).node_id.remote(), timeout=60)


def _assert_completed_with_every_step_once(url: str, token: str, study, to_target: bool = True) -> None:
    """The study COMPLETED and every trial has each step of 10..its last measured once. ``to_target``: each
    trial COMPLETED at step 60 (random search); else (a multi-fidelity scheduler, which stops and pauses
    trials at lower steps) no trial FAILED."""
    assert study.state is StudyState.COMPLETED, (study.id, study.state, study.data.error)
    trials = study.trials()
    if to_target:
        assert trials and all(t.state is TrialState.COMPLETED for t in trials), \
            (study.id, [(t.number, t.state) for t in trials])
    else:
        assert trials and not any(t.state is TrialState.FAILED for t in trials), \
            (study.id, [(t.number, t.state, t.failure) for t in trials])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for t in trials:
            steps = [m["step"] for m in http.get(f"/v1/trials/{t.id}/measurements").json()]
            last = 60 if to_target else (t.last_step or 0)
            assert steps == list(range(10, last + 1, 10)), (study.id, t.number, steps)


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
            # the first three trials (of both studies) at once: one on each 1-CPU node
            studies = [client.create_study(_spec(log, pause=2.0, trials=3, gather=tmp_path / "gather"))
                       for log in logs]
            head = c.head.node_id
            assert [_runner_node(s.id) for s in studies] == [head, head]   # not on a node that can be lost
            by_id = {w.node_id: w for w in workers}
            log, start, report = _checkpointed_trial_on(logs, set(by_id), 120)
            c.kill(by_id[start["node"]])                                 # a crash, not a drain
            killed = time.time()
            for s in studies:
                _wait(s, 240)
            print(f"node killed -> both studies final in {time.time() - killed:.0f} s")
            for s in studies:
                _assert_completed_with_every_step_once(server.url, token, s)
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
            _assert_completed_with_every_step_once(server.url, token, study)
            assert _runner_node(study.id) == c.head.node_id
            resumed = [e for e in _starts(log) if e["resumed"]]
            assert resumed and all(e["start"] >= 10 for e in resumed), _starts(log)
    finally:
        app.state.executor.close()


def _ladder_spec(log, pause: float, max_cost: float) -> dict:
    """The flagship over a ladder whose target size ``l`` declares one GPU and whose size ``s`` none."""
    return {
        "name": "multinode-gpu",
        "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
        "fidelity": {"steps": {"min": 10, "max": 40, "report_every": 10},
                     "sizes": [{"name": "s", "params": 1e3, "cpus": 1},
                               {"name": "l", "params": 8e3, "cpus": 1, "gpus": 1}]},
        "target": {"steps": 40, "size": "l"},
        "budget": {"max_cost": max_cost},
        "scheduler": {"name": "multiscale_bo", "seed": 0, "options": {"n_init": 3}},
        "workload": {"entrypoint": "tests.ray.workloads:paced", "args": {"log": str(log), "pause": pause}},
    }


def test_large_sizes_run_on_the_gpu_node_and_small_ones_anywhere(gpu_cluster, tmp_path):
    """A study over a ladder whose large size declares a GPU, on a head and two worker nodes of which one
    declares a fake GPU: every trial segment of the large size ran on the GPU node and saw one device in
    CUDA_VISIBLE_DEVICES; the small size asked for none (it saw no device) and ran wherever a CPU was free."""
    c, workers = gpu_cluster
    gpu_node = workers[1].node_id
    log = tmp_path / "events.jsonl"
    app, token = _serve(tmp_path, c.address)
    try:
        with ServerThread(app) as server:
            study = Client(server.url, token).create_study(_ladder_spec(log, pause=0.5, max_cost=3))
            _wait(study, 300)
            _assert_completed_with_every_step_once(server.url, token, study, to_target=False)
            trials = study.trials()
            assert {t.size for t in trials} == {"s", "l"}, [(t.number, t.size) for t in trials]
            assert all((t.resources.gpu == 1.0) == (t.size == "l") for t in trials), trials
            starts = _starts(log)
            nodes = {size: Counter(e["node"] for e in starts if e["size"] == size) for size in ("s", "l")}
            print("segments per node:", {size: dict(n) for size, n in nodes.items()}, "GPU node", gpu_node)
            assert set(nodes["l"]) == {gpu_node}, (nodes, gpu_node)
            assert all(e["cuda"] and len(e["cuda"].split(",")) == 1 for e in starts if e["size"] == "l"), starts
            assert not any(e["cuda"] for e in starts if e["size"] == "s"), starts
    finally:
        app.state.executor.close()


def _serve_process(tmp_path: Path, address: str, port: int, token: str) -> subprocess.Popen:
    """``scaleladder serve`` on the cluster at ``address`` (``RAY_ADDRESS``), in a session of its own so a
    SIGKILL takes the whole control plane and nothing of the cluster (its nodes are sessions of their own)."""
    env = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": str(REPO), "SCALELADDER_BOOTSTRAP_TOKEN": token,
           "SCALELADDER_WORKLOAD_MODULES": "tests.ray",
           "SCALELADDER_EXECUTOR_OPTIONS": json.dumps({"storage_path": str(tmp_path / "ray"), "max_concurrent": 3})}
    return subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--executor", "ray",
                             "--database-url", f"sqlite:///{tmp_path / 'mn.db'}"],
                            cwd=REPO, env=env, stdout=open(tmp_path / "serve.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _healthy(proc: subprocess.Popen, url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while True:
        assert proc.poll() is None, "scaleladder serve exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.time() < deadline, f"scaleladder serve did not answer within {seconds} s"
        time.sleep(0.5)


def _n_measurements(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "mn.db") as db:
        return db.execute("SELECT count(*) FROM measurements").fetchone()[0]


def _runner_actors(address: str, study_id: int) -> list:
    """The runner actors of the study Ray knows of, alive or not (the state API: what the dashboard lists).
    The cluster's address is given: without it the state API looks for the machine's Ray and fails when
    other engineers' Rays run here ("Found multiple active Ray instances")."""
    from ray.util.state import list_actors

    from service.ray_runner import runner_name

    return list_actors(address=address, filters=[("name", "=", runner_name(study_id))], detail=True)


def test_a_detached_runner_keeps_its_study_going_while_the_control_plane_is_killed_and_restarted(gpu_cluster,
                                                                                                tmp_path):
    """``scaleladder serve`` connected by ``RAY_ADDRESS`` starts a study and is SIGKILLed mid-study: its
    detached runner goes on, measuring and starting new trials with no control plane. A second ``serve`` on
    the same database reattaches to that runner (the same actor, never restarted, no second one) instead of
    starting one, and the study completes with every step measured once and no trial run twice."""
    import ray

    from service.ray_runner import NAMESPACE

    c, _ = gpu_cluster
    log, token, port = tmp_path / "events.jsonl", "restart-token", free_port()
    url = f"http://127.0.0.1:{port}"
    # 9 trials of 6 reports 2 s apart, 3 at once: three rounds of 12 s or more, so a round is left to run
    # when the second control plane is up (it answers 5-10 s after it starts)
    trials = 9
    first = _serve_process(tmp_path, c.address, port, token)
    try:
        _healthy(first, url, 120)
        study = Client(url, token).create_study(_spec(log, pause=2.0, trials=trials))
        deadline = time.time() + 120
        while _n_measurements(tmp_path) < 2:
            assert time.time() < deadline, "no measurement within 120 s"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    killed, before, started = time.time(), _n_measurements(tmp_path), len(_starts(log))
    ray.init(address=c.address, namespace=NAMESPACE, log_to_driver=False)  # to look at the runner, not run it
    [runner] = _runner_actors(c.address, study.id)
    # with no control plane alive, the runner measures on, completes trials and starts the next round's
    while len(_starts(log)) <= max(started, 3):
        assert time.time() < killed + 90, f"no new trial without the control plane ({_n_measurements(tmp_path)} " \
                                          f"measurements, {before} at the kill)"
        time.sleep(0.2)
    print(f"control plane killed at {before} measurements, {started} trials started; "
          f"{_n_measurements(tmp_path)} and {len(_starts(log))} after {time.time() - killed:.0f} s without it")
    second = _serve_process(tmp_path, c.address, port, token)
    try:
        _healthy(second, url, 120)
        study = Client(url, token).get_study(study.id)
        assert study.state is StudyState.RUNNING, "the study ended before the control plane came back"
        _wait(study, 240)
        _assert_completed_with_every_step_once(url, token, study)
        assert [t.number for t in study.trials()] == list(range(trials))     # no trial issued twice
        starts = _starts(log)
        assert len(starts) == trials and not any(e["resumed"] for e in starts), starts  # nor run twice
        # the restarted control plane's recover() found the live runner and kept it
        [after] = _runner_actors(c.address, study.id)
        assert (after.actor_id, after.state, after.num_restarts) == (runner.actor_id, "ALIVE", 0), (runner, after)
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(30)


def test_the_loss_of_the_head_node_ends_its_studies_runs_and_a_new_cluster_resumes_them(tmp_path):
    """The head node is killed mid-study (SIGKILL of all its processes; no GCS fault tolerance, which
    needs an external Redis). Its runner and the runner's trials die with it, so nothing more is measured,
    and ``scaleladder serve``, a Ray driver, exits 60 s later (Ray's ``gcs_rpc_server_reconnect_timeout_s``:
    "Failed to connect to GCS within 60 seconds"), answering REST until then. The database keeps the study
    RUNNING; ``serve`` restarted on a new cluster recovers it: a new runner replays the event log, the
    trial that had checkpointed resumes from its checkpoint, and the study completes with every step
    measured once."""
    ray = pytest.importorskip("ray")
    from tests.ray.cluster import RayStartCluster

    if ray.is_initialized():
        ray.shutdown()   # this process must be no driver of the cluster whose head dies: Ray would end it too
    log, token, port = tmp_path / "events.jsonl", "head-loss-token", free_port()
    url = f"http://127.0.0.1:{port}"
    first, second, serves = RayStartCluster((0, 0)), None, []
    try:
        serves.append(_serve_process(tmp_path, first.address, port, token))
        _healthy(serves[0], url, 120)
        study = Client(url, token).create_study(_spec(log, pause=2.0, trials=6))
        deadline = time.time() + 120
        while not any(e["event"] == "report" and e["step"] == 20 for e in _events(log)):
            assert time.time() < deadline, "no trial reached step 20 within 120 s"
            time.sleep(0.2)
        [checkpointed] = {e["trial"] for e in _events(log) if e["event"] == "report" and e["step"] == 20}
        first.kill(first.head)
        killed, measured = time.time(), _n_measurements(tmp_path)
        assert serves[0].wait(150) != 0, "scaleladder serve outlived its Ray"
        print(f"serve exited {time.time() - killed:.0f} s after the head node was killed")
        assert _n_measurements(tmp_path) == measured    # the runner died with the head: nothing measured since
        first.shutdown()   # its worker nodes, which would exit by themselves (about 2 minutes here)
        second = RayStartCluster((0,))
        serves.append(_serve_process(tmp_path, second.address, port, token))
        _healthy(serves[1], url, 120)
        study = Client(url, token).get_study(study.id)
        assert study.state is StudyState.RUNNING
        _wait(study, 300)
        _assert_completed_with_every_step_once(url, token, study)
        again = [e for e in _starts(log) if e["trial"] == checkpointed and e["resumed"]]
        assert again and again[0]["start"] >= 10, _starts(log)     # from its checkpoint, not step 0
    finally:
        for serve in serves:
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait(30)
        first.shutdown()
        if second is not None:
            second.shutdown()
