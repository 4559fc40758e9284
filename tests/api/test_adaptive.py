"""Online data mixing over REST and the SDK (issue 17): an adaptive study's reports carry per-domain
losses, each answer carries the mixture to train on next, the SDK applies it, a retried report is answered
what it was answered then, the stored events replay to every mixture a trial was sent, and a trial
paused and handed to another worker continues with the mixture it had."""

from __future__ import annotations

import math

import pytest

from api import Decision, InvalidArgumentError
from service.adaptation import StudyAdaptation, build_adaptive
from service.db import transaction
from service.repositories import StudyRepository, TrialRepository
from service.scheduling import build_problem
from api.schemas import StudySpec

DOMAINS = ("web", "code")


def adaptive_spec(spec: dict, policy: str = "exp3", **adaptive) -> dict:
    spec["space"].append({"name": "odm_lr", "type": "float", "low": 1.0, "high": 50.0, "log": True})
    spec["adaptive"] = {"policy": policy, "group": "mix", "tuned": {"lr": "odm_lr"}, **adaptive}
    return spec


def domain_losses(mixture: dict, step: int) -> dict:
    """An instrumented objective: "code" stays hard (its loss high), whatever it is trained on."""
    return {"web": 1.0 + 2.0 * (1 + step * mixture["web"]) ** -0.5, "code": 3.0 + (1 + step * mixture["code"]) ** -0.5}


def is_mixture(w) -> bool:
    return set(w) == set(DOMAINS) and min(w.values()) >= 0 and math.isclose(sum(w.values()), 1.0)


def stored_sent(server, study_id: int, number: int) -> list:
    """Every mixture the trial was sent, as a fresh policy replaying the stored events gives them."""
    with transaction(server.app.state.session_factory) as session:
        row = StudyRepository(session).get("alice", study_id)
        spec = StudySpec.model_validate(row.spec)
        setup = build_adaptive(spec, build_problem(spec))
        return StudyAdaptation(session, study_id, setup, spec.scheduler.seed).policy(number).sent(number)


def test_sdk_loop_applies_the_mixture_each_answer_carries_and_replay_reproduces_it(server, study_spec):
    study_spec["budget"] = {"max_trials": 2}
    with server.client() as client:
        study = client.create_study(adaptive_spec(study_spec))
        assert study.data.adaptive.group == "mix"
        while (trial := study.ask(timeout=5)) is not None:
            initial = {c: trial.params[c] for c in DOMAINS}
            assert trial.adapted == pytest.approx(initial)             # the trial's own mixture to start from
            sent = [(0, trial.adapted)]
            for step in trial.report_steps():
                losses = domain_losses(trial.current_params, step)
                decision = trial.report(step, sum(losses.values()) / 2, domains=losses)
                assert is_mixture(trial.adapted) and trial.last_result.adapted == trial.adapted
                assert trial.current_params["code"] == trial.adapted["code"]
                sent.append((step, trial.adapted))
                if decision is not Decision.CONTINUE:
                    break
            assert sent[-1][1]["code"] > initial["code"]                # toward the rewarding domain
            assert stored_sent(server, study.id, trial.number) == [(s, pytest.approx(w)) for s, w in sent]
            # a retried report is answered what it was answered then, and stored once
            again = client.request("POST", f"/v1/trials/{trial.id}/measurements",
                                   json={"step": 20, "value": 1.0, "domains": {"web": 9.0, "code": 9.0}})
            assert again["duplicate"] and again["adapted"] == pytest.approx(dict(sent)[20])
            assert trial.measurements()[1].domains == pytest.approx(domain_losses(sent[1][1], 20))
            assert trial.refresh().adapted == pytest.approx(sent[-1][1])
            trial.complete()


def test_a_paused_trial_resumed_by_another_worker_continues_with_the_mixture_it_had(sqlite_server, study_spec):
    study_spec["scheduler"] = {"name": "hyperband", "seed": 0}
    study_spec["budget"] = {"max_trials": 12}
    with sqlite_server.client(client_id="A") as a, sqlite_server.client(client_id="B") as b:
        study = a.create_study(adaptive_spec(study_spec, policy="learnable_loss", options={"min_points": 3},
                                             tuned={}))
        paused_with = {}
        resumed = None
        for _ in range(40):
            worker = a if not paused_with else b
            trial = worker.get_study(study.id).ask(timeout=5)
            if trial is None:
                break
            if trial.start_step > 0:
                resumed = trial
                break
            for step in trial.report_steps():
                losses = domain_losses(trial.current_params, step)
                decision = trial.report(step, losses["web"], domains=losses)
                if decision is Decision.PAUSE:
                    paused_with[trial.id] = trial.adapted
                if decision is not Decision.CONTINUE:
                    break
            trial.complete()                                           # then worker A is gone
        assert resumed is not None and resumed.id in paused_with
        assert resumed.adapted == pytest.approx(paused_with[resumed.id])
        assert resumed.current_params["web"] == pytest.approx(paused_with[resumed.id]["web"])
        step = resumed.report_steps()[0]
        losses = domain_losses(resumed.current_params, step)
        resumed.report(step, losses["web"], domains=losses)
        assert is_mixture(resumed.adapted)


def test_batch_reports_answer_each_trials_mixture(sqlite_server, study_spec):
    with sqlite_server.client() as client:
        study = client.create_study(adaptive_spec(study_spec))
        t1, t2 = study.ask_many(2)[0]
        batch = [{"trial_id": t.id, "step": s, "value": 1.0, "domains": domain_losses(t.current_params, s)}
                 for t in (t1, t2) for s in (10, 20)]
        result = study.report_batch(batch)
        assert set(result.adapted) == {t1.id, t2.id} and all(is_mixture(w) for w in result.adapted.values())
        assert stored_sent(sqlite_server, study.id, t1.number)[-1][1] == pytest.approx(result.adapted[t1.id])


def test_a_study_that_adapts_nothing_answers_no_mixture_and_keeps_per_domain_values(sqlite_server, study_spec):
    with sqlite_server.client() as client:
        trial = client.create_study(study_spec).ask(timeout=5)
        assert trial.adapted is None and trial.current_params == trial.params
        trial.report(10, 1.0, domains={"anything": 2.0})
        assert trial.adapted is None and trial.last_result.adapted is None
        assert trial.measurements()[0].domains == {"anything": 2.0}


@pytest.mark.parametrize("adaptive, field", [
    ({"policy": "exp3", "group": "lr"}, "adaptive.group"),
    ({"policy": "exp3", "group": "mix", "options": {"lr": -1.0}}, "adaptive.options.lr"),
    ({"policy": "exp3", "group": "mix", "tuned": {"lr": "optimizer"}}, "adaptive.tuned.lr"),
    ({"policy": "bandit", "group": "mix"}, "adaptive.policy"),
])
def test_a_bad_adaptive_setup_is_a_422_naming_the_field(sqlite_server, study_spec, adaptive, field):
    study_spec["adaptive"] = adaptive
    with sqlite_server.http() as http:
        r = http.post("/v1/studies", json=study_spec)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field


def test_per_domain_values_must_name_the_groups_components(sqlite_server, study_spec):
    with sqlite_server.client() as client:
        study = client.create_study(adaptive_spec(study_spec))
        trial = study.ask(timeout=5)
        with pytest.raises(InvalidArgumentError) as e:
            trial.report(10, 1.0, domains={"web": 1.0, "books": 2.0})
        assert e.value.field == "domains"
        with pytest.raises(InvalidArgumentError) as e:
            study.report_batch([{"trial_id": trial.id, "step": 10, "value": 1.0, "domains": {"web": 1.0, "code": 1.0}},
                                {"trial_id": trial.id, "step": 20, "value": 1.0, "domains": {"code": 1.0}}])
        assert e.value.field == "measurements[1].domains"
        assert trial.measurements() == []                                # nothing of a refused request is stored


def test_the_flagship_tunes_the_policys_initial_mixture_and_learning_rate_across_sizes(sqlite_server, study_spec):
    """Composition with tuning: each trial of a multiscale_bo study starts the policy from its own searched
    mixture with its own searched step size, at whichever size the flagship picked."""
    study_spec["scheduler"] = {"name": "multiscale_bo", "seed": 0, "options": {"n_init": 3, "n_candidates": 64}}
    study_spec["budget"] = {"max_trials": 6}
    spec = adaptive_spec(study_spec)
    with sqlite_server.client() as client:
        study = client.create_study(spec)
        seen = []
        while (trial := study.ask(timeout=5)) is not None:
            assert trial.adapted == pytest.approx({c: trial.params[c] for c in DOMAINS}) or trial.start_step > 0
            for step in trial.report_steps():
                losses = domain_losses(trial.current_params, step)
                if trial.report(step, sum(losses.values()), domains=losses) is not Decision.CONTINUE:
                    break
            trial.complete()
            seen.append(trial)
        assert len({t.params["odm_lr"] for t in seen}) > 1 and len({t.size for t in seen}) == 2
        hyper = {t.number: stored_policy_hyper(sqlite_server, study.id, t.number) for t in seen}
        assert all(hyper[t.number]["lr"] == pytest.approx(t.params["odm_lr"]) for t in seen)
        assert study.best().params.keys() >= {"odm_lr", *DOMAINS}


def stored_policy_hyper(server, study_id: int, number: int) -> dict:
    with transaction(server.app.state.session_factory) as session:
        spec = StudySpec.model_validate(StudyRepository(session).get("alice", study_id).spec)
        setup = build_adaptive(spec, build_problem(spec))
        return StudyAdaptation(session, study_id, setup, 0).policy(number).trial(number).hyper
