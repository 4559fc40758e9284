"""The trust boundary on the Ray side (issue 13): a study is restored only from checkpoints under its own
per-tenant, per-study prefix, whatever path a client reported; and a runner refuses a workload the
deployment no longer allows, before any trial runs it."""

from __future__ import annotations

import json
import time

import pytest
import torch

from api.schemas import StudyState, TrialState
from service.app import create_app
from service.server import ServerThread
from service.settings import Settings
from tests.conftest import LiveServer
from workers.trainable import STATE_FILE, checkpoint_prefix

pytestmark = pytest.mark.slow

SPEC = {
    "name": "trust",
    "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
    "fidelity": {"steps": {"min": 10, "max": 40, "report_every": 10}, "sizes": [{"name": "s", "params": 1e3}]},
    "target": {"steps": 40, "size": "s"},
    "budget": {"max_trials": 3},
    "scheduler": {"name": "random", "seed": 0},
}


def _checkpoint(directory, step):
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"step": step}, directory / STATE_FILE)
    return str(directory)


def _external(db, **kw):
    return create_app(Settings(database_url=db, migrate_on_startup=True, executor="external", **kw))


def _ray(db, storage, **kw):
    # recover=True: like `scaleladder serve` started on the database, it picks up the RUNNING study
    return create_app(Settings(database_url=db, migrate_on_startup=True, executor="ray",
                               executor_options={"storage_path": str(storage), "max_concurrent": 1}, **kw))


def test_a_reported_checkpoint_outside_the_studys_prefix_is_never_restored(ray_cluster, tmp_path):
    db, storage, log = f"sqlite:///{tmp_path / 'trust.db'}", tmp_path / "ray", tmp_path / "work.jsonl"
    spec = dict(SPEC, workload={"entrypoint": "tests.ray.workloads:paced", "args": {"pause": 0.0, "log": str(log)}})
    external = _external(db, workload_modules=("tests.ray",))
    with ServerThread(external) as thread:
        with LiveServer(thread, external).client("alice") as client:
            study = client.create_study(spec)
            trials, _ = study.ask_many(3)
            assert len(trials) == 3
            own = checkpoint_prefix(storage / "checkpoints", "alice", study.id)
            # real checkpoint files, each at step 20: one in the study's own prefix, one of another tenant's
            # study, one reaching that through '..' from inside the prefix
            paths = [_checkpoint(own / f"trial-{trials[0].number}" / "step-20", 20),
                     _checkpoint(checkpoint_prefix(storage / "checkpoints", "bob", 99) / "trial-0" / "step-20", 20),
                     str(own / ".." / ".." / "tenant-bob" / "study-99" / "trial-0" / "step-20")]
            for trial, path in zip(trials, paths):
                for step in (10, 20):
                    trial.report(step, 1.0 / step, checkpoint=path if step == 20 else None)
                assert trial.refresh().checkpoint == path  # stored: an external worker's own note
            lrs = [t.params["lr"] for t in trials]

    app = _ray(db, storage, workload_modules=("tests.ray",))
    try:
        assert app.state.executor.wait(study.id, timeout=240) == StudyState.COMPLETED.value
    finally:
        app.state.executor.close()
    starts = {e["trial"]: e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "start"}
    # the control: the study's own checkpoint is restored from (so a refusal below is not a broken restore)
    assert (starts[lrs[0]]["start"], starts[lrs[0]]["resumed"]) == (20, True)
    for lr in lrs[1:]:
        assert (starts[lr]["start"], starts[lr]["resumed"]) == (0, False), starts[lr]
    external = _external(db, workload_modules=("tests.ray",))
    with ServerThread(external) as thread:
        with LiveServer(thread, external).client("alice") as client:
            study = client.get_study(study.id)
            for t in study.trials():
                assert t.state is TrialState.COMPLETED, (t.number, t.state, t.failure)
                # what the runner recorded is its own path, under the study's prefix
                assert t.checkpoint.startswith(str(own) + "/"), t.checkpoint


def test_a_runner_refuses_a_workload_the_deployment_no_longer_allows(ray_cluster, tmp_path):
    db, log = f"sqlite:///{tmp_path / 'narrowed.db'}", tmp_path / "work.jsonl"
    spec = dict(SPEC, workload={"entrypoint": "tests.ray.workloads:paced", "args": {"log": str(log)}})
    external = _external(db, workload_modules=("tests.ray",))
    with ServerThread(external) as thread:
        with LiveServer(thread, external).client("alice") as client:
            study_id = client.create_study(spec).id
    # the operator removed tests.ray from SCALELADDER_WORKLOAD_MODULES; the study was created before
    app = _ray(db, tmp_path / "ray")
    try:
        assert app.state.executor.wait(study_id, timeout=120) == StudyState.FAILED.value
        with ServerThread(app) as thread:
            with LiveServer(thread, app).client("alice") as client:
                study = client.get_study(study_id)
                assert study.state is StudyState.FAILED
                assert "outside the modules this deployment lets workers import" in study.data.error
                assert study.trials() == []
    finally:
        app.state.executor.close()
    time.sleep(0.5)
    assert not log.exists(), "no trial of the refused workload ran"
