"""Every example study file runs to completion on local Ray with the budget it ships with (issue 13):
``cost_table.yaml`` (ASHA, MLP, about 15 s on 2 cores), ``multiscale_lm.yaml`` (the flagship on the muP
transformer, about 45 s), ``random_small.yaml`` (random search, MLP, about 10 s), ``playbook_round.yaml``
(a playbook round over Hyperband, MLP, about 20 s; it ends with every batch size's seeds run at the target)
and ``multi_objective.yaml`` (the flagship on two objectives, MLP, about 45 s; it ends with a Pareto set)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.client import Client
from api.schemas import RoundPhase, StudyState, TrialState
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["cost_table.yaml", "multiscale_lm.yaml", "random_small.yaml", "playbook_round.yaml",
                                  "multi_objective.yaml"])
def test_example_completes_on_local_ray_with_its_budget(ray_cluster, tmp_path, name):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ex.db'}", migrate_on_startup=True,
                              executor="ray", executor_options={"storage_path": str(tmp_path / "ray"),
                                                                "recover": False}))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    try:
        with ServerThread(app) as server:
            study = Client(server.url, token).create_study(EXAMPLES / name)
            deadline = time.time() + 300
            while not study.refresh().state.is_final and time.time() < deadline:
                time.sleep(1.0)
            assert study.state is StudyState.COMPLETED, (study.state, study.data.error)
            # its runner ends with it instead of keeping the Tune experiment (and its trials) alive
            assert app.state.executor.wait(study.id, timeout=30) == StudyState.COMPLETED.value
            progress = study.progress()
            assert TrialState.FAILED not in progress.trials_by_state, progress.trials_by_state
            # every example ends with an answer at its target: a recommendation with a predicted value. A
            # measurement at the target fidelity is what the flagship aims for (it verifies its
            # recommendation there while the budget allows), but on a loaded 2-core machine Ray's timing
            # can leave it unfinished when the budget runs out (CI, 2026-12-02: 21 trials, none at the
            # target), so it is not asserted here; tests/schedulers/test_flagship.py checks the rule.
            rec = study.best()
            assert rec.params and rec.size == study.data.target.size and rec.steps == study.data.target.steps
            assert rec.predicted is not None or progress.best_value is not None
            if study.data.objectives is not None:  # several objectives: the Pareto set, values per objective
                assert rec.pareto and all(set(p.values) >= {o.metric for o in study.data.objectives}
                                          for p in rec.pareto)
            if study.data.round is not None:
                result = study.round_result()
                assert result.phase is RoundPhase.DONE and result.best is not None
                assert all(len(p.confirmations) == study.data.round.seeds for p in result.points)
    finally:
        app.state.executor.close()
