"""Inputs that used to be 500s (issue 14) are 4xx answers naming the field, on both databases: a negative
scheduler seed, a deeply nested cost formula, NaN/Infinity anywhere in a study; and the scaling fit of a
study run at a single (size, steps) point answers with a warning instead of failing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.errors import InvalidArgumentError
from api.scaling import study_scaling
from service.cli_scaling import app as scaling_cli


def _post_raw(http, spec):
    """POST a study as raw JSON text: ``Infinity``/``NaN`` literals as Python's json writes them."""
    return http.post("/v1/studies", content=json.dumps(spec), headers={"Content-Type": "application/json"})


def _assert_422(r, field):
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "invalid_argument" and body["field"] == field, body


def test_negative_seed_is_422_and_a_large_one_works(server, study_spec):
    with server.http() as http:
        study_spec["scheduler"]["seed"] = -1
        _assert_422(http.post("/v1/studies", json=study_spec), "scheduler.seed")
        study_spec["scheduler"]["seed"] = 2 ** 40
        r = http.post("/v1/studies", json=study_spec)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert http.post(f"/v1/studies/{sid}:start").status_code == 200
        ask = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"})
        assert ask.status_code == 200 and len(ask.json()["trials"]) == 1, ask.text


@pytest.mark.parametrize("formula", ["-" * 5000 + "steps", "+".join(["steps"] * 5000),
                                     "(" * 5000 + "steps" + ")" * 5000, "-" * 495 + "steps"])
def test_deeply_nested_cost_formula_is_422(sqlite_server, study_spec, formula):
    study_spec["cost"] = {"kind": "formula", "formula": formula}
    with sqlite_server.http() as http:
        r = http.post("/v1/studies", json=study_spec)
        if len(formula) <= 500 and r.status_code == 201:  # short enough to be taken: then it prices reports
            sid = r.json()["id"]
            http.post(f"/v1/studies/{sid}:start")
            tid = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"}).json()["trials"][0]["id"]
            r = http.post(f"/v1/trials/{tid}/measurements", json={"step": 10, "value": 1.0})
            assert r.status_code == 200, r.text
            return
    _assert_422(r, "cost.formula")


@pytest.mark.parametrize("path, value, field", [
    (("budget", "max_cost"), float("inf"), "budget.max_cost"),
    (("budget", "max_wall_clock_seconds"), float("nan"), "budget.max_wall_clock_seconds"),
    (("fidelity", "sizes", 0, "params"), float("inf"), "fidelity.sizes[0].params"),
    (("fidelity", "sizes", 1, "cpus"), float("inf"), "fidelity.sizes[1].cpus"),
    (("space", 0, "high"), float("inf"), "space.lr"),
    (("space", 2, "choices"), ["adam", float("nan")], "space.optimizer"),
    (("cost", "overhead"), float("-inf"), "cost.overhead"),
    (("scheduler", "options"), {"eta": float("inf")}, "scheduler.options.eta"),
])
def test_non_finite_numbers_in_a_spec_are_422_naming_the_field(server, study_spec, path, value, field):
    node = study_spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with server.http() as http:
        _assert_422(_post_raw(http, study_spec), field)
        assert http.get("/v1/studies", params={"name": study_spec["name"]}).json()["items"] == []


def test_scaling_of_a_single_point_study_is_a_warning_not_a_500(server, study_spec):
    """Random search at one size runs every trial to the same steps: one (N, D) point, no law to fit."""
    study_spec["fidelity"]["sizes"] = [{"name": "m", "params": 4e6}]
    study_spec["budget"] = {"max_trials": 6}
    with server.client() as client:
        study = client.create_study(study_spec)
        while (trial := study.ask(wait=False)) is not None:
            for step in trial.report_steps():
                trial.report(step, 3.0 + 10.0 / step + 0.01 * trial.number)
            trial.complete()
        fit = study_scaling(client, study.id, n_bootstrap=5)
        assert fit.n_runs == 6 and fit.loss_law is None and fit.hyperparameter_law is None
        assert "one model size and one step count" in fit.warnings[0]
        with pytest.raises(InvalidArgumentError):  # bad input is still a 422
            client.request("GET", f"/v1/studies/{study.id}/scaling", params={"predict_N": [1e8]})
    res = CliRunner().invoke(scaling_cli, ["study", str(study.id), "--url", server.url, "--token",
                                           server.token("alice"), "--bootstrap", "0"])
    assert res.exit_code == 0 and "one step count" in res.output, res.output
