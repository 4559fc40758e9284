"""A playbook round end to end over REST (issue 16), on SQLite and PostgreSQL: a study with ``round`` whose
workers run the synthetic problem of tests/schedulers/test_playbook.py (arch a best, b 0.01 behind, below
the seed noise of 0.03, c 0.3 behind) through the SDK; it completes by itself once every value's seeds
ended, and ``GET /v1/studies/{id}/round`` (the SDK's ``round_result``, the CLI's ``study round``) answers
which value is best and what the seeds can tell apart; a replay of the stored events answers the same."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api import ConflictError, InvalidArgumentError, StudyState
from api.schemas import RoundPhase, StudySpec
from service.cli import app
from service.db import transaction
from service.repositories import EventRepository, StudyRepository
from service.scheduling import build_problem, build_scheduler, decode_event
from tests.schedulers.test_playbook import loss

ROUND_SPEC = {
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": [
        {"name": "arch", "type": "categorical", "choices": ["a", "b", "c"], "role": "scientific"},
        {"name": "lr", "type": "float", "low": 1e-3, "high": 1.0, "log": True},
    ],
    "fidelity": {"steps": {"min": 25, "max": 100, "report_every": 25},
                 "sizes": [{"name": "small", "params": 1e6}, {"name": "large", "params": 8e6}]},
    "target": {"steps": 100, "size": "large"},
    "cost": {"kind": "analytic"},
    "budget": {"max_cost": 18},
    "scheduler": {"name": "random", "seed": 0},   # any registered scheduler tunes lr (tests/schedulers has more)
    "round": {"seeds": 4},
}


def run_workers(study, workers: int = 2) -> None:
    """``workers`` SDK workers, reporting in turn (the trial's ``replicate`` is its seed)."""
    live = {}
    while True:
        while len(live) < workers:
            trials, state = study.ask_many(1, client_id=f"w{len(live)}-{len(study.data.name)}")
            if not trials:
                break
            t = trials[0]
            live[t.id] = (t, iter(t.report_steps()))
        if not live:
            if study.refresh().state.is_final:
                return
            continue
        for tid in list(live):
            t, steps = live[tid]
            step = next(steps, None)
            size = 1e6 if t.size == "small" else 8e6
            if step is None or t.report(step, loss(t.params, size, step, t.replicate)).value != "continue":
                t.complete()
                del live[tid]


def test_round_over_rest_answers_the_best_value_and_what_seeds_cannot_tell(server):
    with server.client() as client:
        study = client.create_study({**ROUND_SPEC, "name": "round"})
        assert study.data.round.seeds == 4 and study.round_result().phase is RoundPhase.SEARCH
        run_workers(study)
        assert study.refresh().state is StudyState.COMPLETED     # by itself, once the seeds ended
        result = study.round_result()
        best = study.best()
    assert result.phase is RoundPhase.DONE and result.scientific == ["arch"] and result.test.value == "welch_t"
    by_arch = {p.values["arch"]: p for p in result.points}
    winner = result.points[result.best]
    assert winner.best and winner.values["arch"] in ("a", "b")
    assert by_arch["b" if winner.values["arch"] == "a" else "a"].distinguishable is False
    assert by_arch["c"].distinguishable is True and all(len(p.confirmations) == 4 for p in result.points)
    assert best.params == winner.params and best.predicted == pytest.approx(winner.mean)
    assert study.data.cost_spent <= 18 + 1e-9

    # the answer is a function of the stored event log
    with transaction(server.app.state.session_factory) as session:
        spec = StudySpec.model_validate(StudyRepository(session).get("alice", study.id).spec)
        events = [decode_event(e) for e in EventRepository(session).load(study.id)]
    replayed = build_scheduler(spec, build_problem(spec)).replay(events).round_result()
    assert [p.mean for p in replayed.points] == [p.mean for p in result.points]

    env = {"SCALELADDER_URL": server.url, "SCALELADDER_TOKEN": server.token("alice")}
    out = CliRunner().invoke(app, ["study", "round", str(study.id)], env=env)
    assert out.exit_code == 0, out.output
    assert "Welch t-test" in out.output and "best" in out.output and "done" in out.output
    out = CliRunner().invoke(app, ["study", "show", str(study.id)], env=env)
    assert out.exit_code == 0 and f"playbook round over arch (4 seeds per value): scaleladder study round {study.id}" \
        in out.output, out.output
    out = CliRunner().invoke(app, ["study", "round", str(study.id), "--json"], env=env)
    assert json.loads(out.output)["best"] == result.best


def test_a_study_without_round_has_no_round_and_a_round_needs_budget_to_search(server, study_spec):
    with server.client() as client:
        study = client.create_study(study_spec)
        with pytest.raises(ConflictError) as e:
            study.round_result()
        assert e.value.field == "round"
        with pytest.raises(InvalidArgumentError) as e:
            client.create_study({**ROUND_SPEC, "name": "round-poor", "budget": {"max_cost": 12}})
        assert e.value.field == "budget.max_cost" and "leaves nothing to search" in str(e.value)
        with pytest.raises(InvalidArgumentError) as e:
            client.create_study({**ROUND_SPEC, "name": "round-bad", "round": {"seeds": 0}})
        assert e.value.field == "round.seeds"
