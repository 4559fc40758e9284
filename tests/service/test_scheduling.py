"""The scheduler runtime: a study driven with the in-process scheduler cache behaves exactly like one whose
scheduler is rebuilt from the persisted event log on every request; event encoding; bootstrap tokens."""

from __future__ import annotations

import math

import pytest

from api.client import Client
from api.schemas import Decision
from service.app import create_app
from service.db import transaction
from service.repositories import EventRepository, TokenRepository
from service.scheduling import decode_event, encode_event
from service.server import ServerThread
from service.settings import Settings


def _drive(url: str, token: str, spec: dict) -> tuple[list[tuple], dict, float]:
    """A deterministic worker: returns every handed-out segment, the final recommendation and the cost
    spent. It reports training seconds too (elapsed grows as steps * sqrt(size rank)), which a study
    with a learned cost model learns from."""
    segments = []
    with Client(url, token, client_id="det") as client:
        study = client.create_study(spec)
        while (trial := study.ask(timeout=10, poll_interval=0.01)) is not None:
            segments.append((trial.number, trial.size, trial.start_step, trial.steps, sorted(trial.params.items())))
            for step in trial.report_steps():
                value = (trial.params["lr"] - 0.01) ** 2 + 1.0 / step
                elapsed = 0.01 * step * (1 + 3 * (trial.size == "m")) ** 0.5
                if trial.report(step, value, elapsed_seconds=elapsed) is not Decision.CONTINUE:
                    break
            if not trial.last_result.trial_state.is_final:
                trial.complete()
        rec = study.best().model_dump(exclude={"study_id"})
        rec.pop("trial_id")
        cost = study.progress().cost_spent
    return segments, rec, cost


@pytest.mark.parametrize("scheduler, cost", [("hyperband", None), ("random", None),
                                             ("hyperband", {"kind": "learned", "min_points": 4})])
def test_cached_and_replayed_schedulers_agree(tmp_path, study_spec, scheduler, cost):
    study_spec["scheduler"] = {"name": scheduler, "seed": 3}
    study_spec["budget"] = {"max_trials": 10}
    if cost is not None:  # the learned cost model is rebuilt from the elapsed times in the event log
        study_spec["cost"] = cost
    study_spec["target"] = {"steps": 40, "size": "m"}
    runs = []
    for cache_size in (64, 0):
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path / f'c{cache_size}.db'}",
                                  migrate_on_startup=True, scheduler_cache_size=cache_size))
        with transaction(app.state.session_factory) as session:
            token = TokenRepository(session).create("t")
        with ServerThread(app) as server:
            runs.append(_drive(server.url, token, study_spec))
    (seg_cached, rec_cached, cost_cached), (seg_replayed, rec_replayed, cost_replayed) = runs
    assert seg_cached == seg_replayed and len(seg_cached) >= 10
    assert rec_cached == rec_replayed and cost_cached == pytest.approx(cost_replayed, rel=1e-12)
    if scheduler == "hyperband":  # promotions resumed paused trials from their checkpoint step
        assert any(start > 0 for _, _, start, _, _ in seg_cached)


def test_non_finite_values_are_encoded_for_json_columns():
    event = {"kind": "report", "trial_id": 1, "step": 3, "value": float("nan"),
             "nested": [float("inf"), {"x": float("-inf")}, 1.5]}
    encoded = encode_event(event)
    assert encoded["value"] == "nan" and encoded["nested"] == ["inf", {"x": "-inf"}, 1.5]
    assert math.isnan(decode_event(encoded)["value"])
    assert decode_event({"kind": "report", "value": "-inf"})["value"] == -math.inf


def test_event_log_is_written_in_the_request_transaction(tmp_path, study_spec):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'log.db'}", migrate_on_startup=True))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("t")
    with ServerThread(app) as server, Client(server.url, token) as client:
        study = client.create_study(study_spec)
        trial = study.ask()
        trial.report(10, float("nan"))
    with transaction(app.state.session_factory) as session:
        kinds = [(e["kind"], e.get("value")) for e in EventRepository(session).load(study.id)]
    assert kinds == [("suggest", None), ("report", "nan")]


def test_bootstrap_token_is_registered_once(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'boot.db'}", migrate_on_startup=True,
                        bootstrap_token="sl_bootstrap_secret", bootstrap_tenant="ops")
    for _ in range(2):  # a restart must not fail on the existing token
        app = create_app(settings)
    with transaction(app.state.session_factory) as session:
        assert TokenRepository(session).tenant_for("sl_bootstrap_secret") == "ops"


def test_read_only_requests_keep_the_scheduler_cached(tmp_path, study_spec, monkeypatch):
    """Polling the recommendation must not cost a replay of the event log per request."""
    from service import scheduling

    replays = []
    original = scheduling.build_scheduler
    monkeypatch.setattr(scheduling, "build_scheduler", lambda *a: replays.append(1) or original(*a))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cache.db'}", migrate_on_startup=True))
    with transaction(app.state.session_factory) as session:
        token = TokenRepository(session).create("t")
    with ServerThread(app) as server, Client(server.url, token) as client:
        study = client.create_study(study_spec)   # create validates with its own scheduler instance
        before = len(replays)
        trial = study.ask()
        for step in trial.report_steps():
            trial.report(step, 1.0 / step)
        for _ in range(3):
            study.recommendation()
        trial.complete()
        assert study.best().trial_id == trial.id
    assert len(replays) - before == 1  # built once, then served from the cache
