"""The mixture board of an adaptive study (workers/adaptation.py): what the runner posts is what a trainable
waits for and starts from, and a restarted runner's board is seeded with every mixture sent so far."""

from __future__ import annotations

import time

import pytest
import ray

from api.client import Client
from api.schemas import StudySpec
from service.app import create_app
from service.db import transaction
from service.ray_runner import mixtures_sent
from service.repositories import StudyRepository, TokenRepository
from service.scheduling import build_problem
from service.server import ServerThread
from service.settings import Settings
from workers.adaptation import MixtureBoard

A = {"code": 0.5, "math": 0.25, "prose": 0.25}
B = {"code": 0.2, "math": 0.3, "prose": 0.5}


def test_a_trainable_gets_the_answer_to_its_step_and_starts_from_the_mixture_at_its_start_step(ray_cluster):
    board = MixtureBoard.remote()
    ray.get(board.seed.remote({3: [(0, A), (10, B)]}))
    assert ray.get(board.at.remote(3, 0)) == A and ray.get(board.at.remote(3, 15)) == B
    assert ray.get(board.at.remote(4, 0)) is None                       # unknown: the workload uses its params
    waiting = board.wait.remote(3, 20, 30.0)                             # the trainable, right after its report
    time.sleep(0.3)
    board.post.remote(3, 20, A)                                          # the runner, after telling the service
    assert ray.get(waiting, timeout=30) == A
    assert ray.get(board.wait.remote(3, 30, 0.2)) is None                # never answered: keep the mixture
    ray.kill(board)


def test_a_restarted_runner_seeds_its_board_with_every_mixture_sent(ray_cluster, tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'seed.db'}", migrate_on_startup=True)
    app = create_app(settings)
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("alice")
    spec = {"name": "seed", "space": [{"name": "mix", "type": "mixture", "components": list(A)}],
            "fidelity": {"steps": {"min": 10, "max": 30, "report_every": 10}, "sizes": [{"name": "s", "params": 1e3}]},
            "budget": {"max_trials": 2}, "adaptive": {"policy": "exp3", "group": "mix", "options": {"lr": 30}}}
    with ServerThread(app) as server:
        study = Client(server.url, token).create_study(spec)
        answered = {}
        for _ in range(2):
            trial = study.ask(timeout=5)
            answered[trial.number] = [(0, trial.adapted)]
            for step in (10, 20):
                trial.report(step, 1.0, domains={"code": 1.0, "math": 2.0, "prose": 3.0})
                answered[trial.number].append((step, trial.adapted))
            trial.complete()
    with transaction(app.state.session_factory) as session:
        s = StudySpec.model_validate(StudyRepository(session).get("alice", study.id).spec)
        sent = mixtures_sent(session, study.id, s, build_problem(s))
    assert {n: [(st, pytest.approx(w)) for st, w in pairs] for n, pairs in sent.items()} == answered
    board = MixtureBoard.remote()
    ray.get(board.seed.remote(sent))
    assert ray.get(board.at.remote(1, 20)) == pytest.approx(answered[1][2][1])
    ray.kill(board)
