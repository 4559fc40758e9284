"""A study whose trials all fail on Ray says why and stops: each trial carries its worker's exception, and
after a few failures in a row with the same error the study is FAILED with it (issue 13)."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from api.client import Client
from api.schemas import StudyState, TrialState
from service.app import create_app
from service.cli import app as cli
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

pytestmark = pytest.mark.slow

SPEC = {
    "name": "always-fails",
    "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
    "fidelity": {"steps": {"min": 10, "max": 20, "report_every": 10}, "sizes": [{"name": "s", "params": 1e3}]},
    "target": {"steps": 20, "size": "s"},
    "budget": {"max_trials": 20},
    "scheduler": {"name": "random", "seed": 0},
    # the module exists where the study is created; the package it imports is missing on the worker
    "workload": {"entrypoint": "tests.ray.workloads:needs_missing_package"},
}


def test_a_study_whose_trials_keep_failing_fails_with_the_workers_error(ray_cluster, tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'fail.db'}", migrate_on_startup=True,
                              workload_modules=("tests.ray",), executor="ray", executor_options={"storage_path": str(tmp_path / "ray"),
                                                                "max_concurrent": 1, "max_failures": 1,
                                                                "max_consecutive_failures": 3, "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    try:
        with ServerThread(app) as server:
            study = Client(server.url, token).create_study(SPEC)
            assert app.state.executor.wait(study.id, timeout=240) == StudyState.FAILED.value
            study.refresh()
            assert study.state is StudyState.FAILED
            assert study.data.error == "3 trials in a row failed: ModuleNotFoundError: No module named 'my_project'"
            trials = study.trials()
            assert len(trials) == 3, [(t.number, t.state) for t in trials]
            for t in trials:
                assert t.state is TrialState.FAILED
                assert t.failure == "ModuleNotFoundError: No module named 'my_project'"
            time.sleep(2.0)
            assert len(study.trials()) == 3, "no trial starts after the study failed"

            result = CliRunner().invoke(cli, ["study", "show", str(study.id), "--url", server.url, "--token", token])
            assert result.exit_code == 0, result.output
            assert "No module named 'my_project'" in result.output.replace("\n", " ")
    finally:
        app.state.executor.close()
