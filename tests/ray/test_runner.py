"""A study started over REST runs on Ray with PostgreSQL: the runner is a named actor, measurements and
scheduler events land in the database while it runs, PAUSEd trials resume from checkpoints."""

from __future__ import annotations

import time

import pytest
import ray

from api.client import Client
from api.schemas import StudyState, TrialState
from service.app import create_app
from service.db import transaction
from service.ray_runner import NAMESPACE, runner_name
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SPEC = {
    "name": "ray-e2e",
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
    "fidelity": {"steps": {"min": 10, "max": 90, "report_every": 10},
                 "sizes": [{"name": "s", "params": 1e3, "extra": {"width": 8}},
                           {"name": "m", "params": 4e3, "extra": {"width": 16}}]},
    "target": {"steps": 90, "size": "m"},
    "budget": {"max_cost": 3},
    "scheduler": {"name": "hyperband", "seed": 0},
    "workload": {"name": "mlp", "args": {"depth": 1}},
}


def test_study_runs_on_ray_into_postgres_and_shows_progress_live(ray_cluster, postgres_database, tmp_path):
    app = create_app(Settings(database_url=postgres_database, executor="ray",
                              executor_options={"storage_path": str(tmp_path), "max_concurrent": 2,
                                                "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    with ServerThread(app) as server:
        study = Client(server.url, token).create_study(SPEC)
        assert ray.get_actor(runner_name(study.id), namespace=NAMESPACE) is not None
        live_measurements, deadline = 0, time.time() + 150
        while time.time() < deadline:
            study.refresh()
            if study.state.is_final:
                break
            live_measurements = max(live_measurements, study.progress().n_measurements)
            time.sleep(0.5)
        assert study.state is StudyState.COMPLETED, study.state
        assert live_measurements > 0, "measurements are visible over REST while the study runs"

        trials = study.trials()
        assert {t.state for t in trials} <= {TrialState.COMPLETED, TrialState.STOPPED, TrialState.PAUSED}
        assert [t.number for t in trials] == list(range(len(trials)))
        promoted = [t for t in trials if (t.last_step or 0) > 10]
        assert promoted, "hyperband promoted some trials past the first rung"
        for t in trials:
            steps = [m.step for m in study.client.get_trial(t.id).measurements()]
            assert steps == list(range(10, (t.last_step or 0) + 1, 10)), (t.number, steps)
        for t in promoted:
            assert t.checkpoint and t.checkpoint.endswith(f"step-{t.last_step}")
        progress = study.progress()
        assert progress.cost_spent >= 3 - 1e-9
        rec = study.recommendation()
        assert rec.trial_id is not None and 1e-3 <= rec.params["lr"] <= 1e-1
    app.state.executor.close()


def test_scaleladder_demo_runs_the_mup_transformer_on_ray(ray_cluster):
    from typer.testing import CliRunner

    from service.cli import app as cli

    result = CliRunner().invoke(cli, ["demo", "--scheduler", "random", "--trials", "1", "--budget", "0.3"])
    assert result.exit_code == 0, result.output
    assert "muP transformer" in result.output
    # the test's Ray was started without a dashboard, by the fixture: the demo says it cannot point at one
    assert "Ray dashboard: this Ray was started elsewhere" in result.output
    assert "study 1 completed: 1 trials" in result.output.replace("\n", " ")
    assert "Recommendation at the target (w128, 300 steps)" in result.output.replace("\n", " ")


def test_cancelled_study_stops_its_runner_and_takes_no_more_measurements(ray_cluster, tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cancel.db'}", migrate_on_startup=True,
                              executor="ray", executor_options={"storage_path": str(tmp_path / "ray"),
                                                                "max_concurrent": 2, "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    with ServerThread(app) as server:
        study = Client(server.url, token).create_study({**SPEC, "name": "ray-cancel", "budget": {"max_cost": 50}})
        deadline = time.time() + 120
        while study.progress().n_measurements == 0 and time.time() < deadline:
            time.sleep(0.2)
        assert study.progress().n_measurements > 0, "the study started measuring on Ray"
        study.cancel()
        assert study.refresh().state is StudyState.CANCELLED
        # the runner ends its Tune experiment; the study stays cancelled and its measurements stop growing
        assert app.state.executor.wait(study.id, timeout=120) == StudyState.CANCELLED.value
        settled = study.progress().n_measurements
        time.sleep(2.0)
        assert study.progress().n_measurements == settled
        assert study.refresh().state is StudyState.CANCELLED
    app.state.executor.close()
