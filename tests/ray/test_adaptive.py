"""An adaptive study on Ray (issue 17): the built-in muP transformer reports per-domain validation losses,
the runner answers each report with the policy's mixture through the study's board, the trainable trains
on it (its checkpoints hold the mixture in effect), and a trial whose worker dies mid-run restarts from its
checkpoint with the mixture it had at that step."""

from __future__ import annotations

import json

import pytest

from api.client import Client
from api.schemas import StudySpec, StudyState
from service.adaptation import StudyAdaptation, build_adaptive
from service.app import create_app
from service.db import transaction
from service.ray_runner import run_study
from service.repositories import TokenRepository, TrialRepository
from service.scheduling import build_problem
from service.server import ServerThread
from service.settings import Settings
from workers.trainable import load_checkpoint_state

pytestmark = pytest.mark.slow

TINY = {"n_layers": 1, "seq_len": 16, "base_width": 16, "warmup_steps": 5, "batch_size": 8, "eval_batches": 2}


def spec(workload: dict, max_trials: int) -> dict:
    return {
        "name": "adaptive-ray",
        "space": [{"name": "lr", "type": "float", "low": 3e-3, "high": 3e-2, "log": True},
                  {"name": "mix", "type": "mixture", "components": ["code", "math", "prose"]}],
        "fidelity": {"steps": {"min": 10, "max": 30, "report_every": 10},   # checkpoints at 10, 20, 30
                     "sizes": [{"name": "w16", "params": 1e4, "extra": {"width": 16}}]},
        "target": {"steps": 30, "size": "w16"},
        "budget": {"max_trials": max_trials},
        "scheduler": {"name": "random", "seed": 0},
        "workload": workload,
        "adaptive": {"policy": "exp3", "group": "mix", "options": {"lr": 30.0}},
    }


def run(tmp_path, raw: dict):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'adaptive.db'}", migrate_on_startup=True,
                        workload_modules=("tests.ray",))
    app = create_app(settings)
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    with ServerThread(app) as server:
        study = Client(server.url, token).create_study(raw)             # external executor: nothing runs yet
        state = run_study(settings, study.id, storage_path=tmp_path / "ray", max_concurrent=1, max_failures=2)
        assert state is StudyState.COMPLETED
        out = []
        with transaction(app.state.session_factory) as session:
            s = StudySpec.model_validate(raw)
            adaptation = StudyAdaptation(session, study.id, build_adaptive(s, build_problem(s)), 0)
            for row in TrialRepository(session).by_numbers(study.id, range(raw["budget"]["max_trials"])).values():
                out.append((row.number, row.checkpoint, row.adapted, adaptation.policy(row.number).sent(row.number)))
        measurements = {t.number: Client(server.url, token).get_trial(t.id).measurements() for t in study.trials()}
    return out, measurements


def test_the_transformer_on_ray_trains_on_the_mixtures_the_policy_sends(ray_cluster, tmp_path):
    trials, measurements = run(tmp_path, spec({"name": "mup_transformer", "args": TINY}, max_trials=2))
    assert len(trials) == 2
    for number, checkpoint, adapted, sent in trials:
        assert [s for s, _ in sent] == [0, 10, 20, 30]
        assert sent[-1][1] != sent[0][1] and adapted == pytest.approx(sent[-1][1])
        assert all(set(m.domains) == {"code", "math", "prose"} for m in measurements[number])
        # the last checkpoint (step 30) holds the mixture it trained on up to step 30: the answer at step 20
        assert checkpoint.endswith("step-30")
        assert load_checkpoint_state(checkpoint)["adapted"] == pytest.approx(sent[2][1])


def test_a_trial_whose_worker_dies_resumes_from_its_checkpoint_with_the_mixture_it_had(ray_cluster, tmp_path):
    log = tmp_path / "starts.jsonl"
    workload = {"entrypoint": "tests.ray.workloads:crash_once_transformer",
                "args": {**TINY, "crash_at": 20, "flag": str(tmp_path / "crashed"), "log": str(log)}}
    (trial,), _ = run(tmp_path, spec(workload, max_trials=1))
    number, checkpoint, adapted, sent = trial
    starts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [s["start"] for s in starts] == [0, 20], starts            # died after step 20, restarted from it
    assert starts[0]["adapted"] == pytest.approx(sent[0][1])           # its initial mixture
    assert starts[1]["adapted"] == pytest.approx(dict(sent)[20])       # the mixture it had at step 20
    assert [s for s, _ in sent] == [0, 10, 20, 30]                     # the re-sent report 20 was not re-told
    assert load_checkpoint_state(checkpoint)["adapted"] == pytest.approx(dict(sent)[20])
