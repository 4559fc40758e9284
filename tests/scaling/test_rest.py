"""The scaling endpoints through a live server (uvicorn over SQLite for the stateless endpoint, over
PostgreSQL for the study endpoint: the shared ``sqlite_server`` / ``postgres_server`` fixtures), called with the SDK helpers of ``api.scaling``, the
CLI, and raw HTTP for the error shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from api.errors import InvalidArgumentError, NotFoundError
from api.scaling import ScalingFit, fit_scaling, plot_scaling, study_scaling
from service.cli_scaling import app as cli


def law(n, d):
    return 1.8 + 300 / n ** 0.32 + 60 / d ** 0.45


def points(seed=0):
    rng = np.random.default_rng(seed)
    return [{"N": float(n), "D": float(d), "loss": float(law(n, d) * math.exp(rng.normal(0, 0.003)))}
            for n in np.logspace(6, 8, 4) for d in np.logspace(3, 5, 4)]


def test_stateless_fit_through_the_sdk(sqlite_server, tmp_path):
    with sqlite_server.client("alice") as client:
        fit = fit_scaling(client, points(), predict_at=[{"N": 1e9, "D": 1e6}], compute_budgets=[1e15],
                          n_bootstrap=20)
    assert isinstance(fit, ScalingFit) and fit.loss_law.form.name == "chinchilla"
    alpha = fit.loss_law.coefficients["alpha"]
    assert alpha.low <= 0.32 <= alpha.high and alpha.low < alpha.value < alpha.high
    (pred,) = fit.loss_predictions
    assert pred.N == 1e9 and pred.loss.low <= law(1e9, 1e6) <= pred.loss.high
    assert fit.compute_optimal[0].N_opt.value * fit.compute_optimal[0].D_opt.value == pytest.approx(1e15 / 6)
    assert fit.hyperparameter_law is None and fit.plot[0].quantity == "loss"
    png = plot_scaling(fit, tmp_path / "fit.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sweep_points_also_fit_hyperparameter_laws(sqlite_server):
    rng = np.random.default_rng(1)
    pts = []
    for n in (1e6, 4e6, 1.6e7):
        for d in (1e3, 1e4):
            best = 0.3 * n ** -0.4 * d ** 0.25
            for lr in best * 2.0 ** np.arange(-2, 3):
                pts.append({"N": n, "D": d, "loss": law(n, d) * (1 + 0.01 * math.log2(lr / best) ** 2
                                                                 + abs(rng.normal(0, 1e-4))),
                            "params": {"lr": lr, "optimizer": "adam"}})
    with sqlite_server.client("alice") as client:
        fit = fit_scaling(client, pts, n_bootstrap=10, hyperparameter_bootstrap=200, tolerance=0.0,
                          predict_at=[{"N": 6.4e7, "D": 1e5}])
    lr = fit.hyperparameter_law.laws["lr"]
    assert lr.exponents["N"].value == pytest.approx(-0.4, abs=1e-6)
    assert lr.exponents["D"].value == pytest.approx(0.25, abs=1e-6)
    (hp,) = fit.hyperparameter_predictions
    assert hp.value.value == pytest.approx(0.3 * 6.4e7 ** -0.4 * 1e5 ** 0.25, rel=1e-4)
    assert [p.quantity for p in fit.plot] == ["loss", "lr"]


@pytest.mark.parametrize("body, field", [
    ({"points": points()[::5]}, "points"),                       # N and D both vary: 4 points, 5 parameters
    ({"points": [{**p, "N": -1.0} if i == 2 else p for i, p in enumerate(points())]}, "points[2].N"),
    ({"points": [{**p, "loss": 0.0} if i == 0 else p for i, p in enumerate(points())]}, "points[0].loss"),
    ({"points": points(), "compute_budgets": [0]}, "compute_budgets[0]"),
    ({"points": points(), "predict_at": [{"N": 1e9}]}, "predict_at.0.D"),
    ({"points": points(), "n_bootstrap": 10**6}, "n_bootstrap"),
    ({"points": [{"N": 1e6, "loss": 2.0}, {"D": 10, "loss": 2.0}]}, "N"),
])
def test_bad_input_is_422_naming_the_field(sqlite_server, body, field):
    with sqlite_server.http("alice") as http:
        resp = http.post("/v1/scaling/fit", json={"n_bootstrap": 0, **body} if "n_bootstrap" not in body else body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


def test_fit_needs_a_token(sqlite_server):
    with sqlite_server.http(None) as http:
        assert http.post("/v1/scaling/fit", json={"points": points()}).status_code == 401


def _run_study(client, spec):
    study = client.create_study(spec)
    for _ in range(60):
        trial = study.ask(wait=False)
        if trial is None:
            break
        n = {s.name: s.params for s in study.data.fidelity.sizes}[trial.size]
        lr = trial.params["lr"]
        # report at ASHA's rungs (10, 30, 90) and the segment's end only: fewer calls, same decisions
        for step in [s for s in trial.report_steps() if s in (10, 30, 90) or s == trial.steps]:
            value = law(n, step) * (1 + 0.02 * math.log(lr / (0.05 * n ** -0.2)) ** 2)
            if trial.report(step, value).value != "continue":
                break
        trial.complete()
    return study


@pytest.mark.postgres
def test_study_scaling_reads_the_study_trials_per_tenant(postgres_server, study_spec, tmp_path):
    """On PostgreSQL, through the control plane's repositories (whose own suite covers both backends)."""
    study_spec.update({
        "space": [{"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                  {"name": "layers", "type": "int", "low": 1, "high": 4}],
        "fidelity": {"steps": {"min": 10, "max": 90, "report_every": 10},
                     "sizes": [{"name": "s", "params": 1e6}, {"name": "m", "params": 4e6},
                               {"name": "l", "params": 1.6e7}]},
        "target": {"steps": 90, "size": "l"},
        "budget": {"max_trials": 40},
        "scheduler": {"name": "asha", "seed": 3, "options": {"eta": 3, "size_rungs": True}},
    })
    with postgres_server.client("alice") as alice:
        study = _run_study(alice, study_spec)
        fit = study_scaling(alice, study.id, n_bootstrap=10)
        assert fit.study_id == study.id and fit.n_runs >= 10, fit.model_dump(exclude={"plot"})
        assert fit.loss_law is not None, fit.warnings
        # predictions default to the study's target (size l, 90 steps)
        assert fit.loss_predictions[0].N == 1.6e7 and fit.loss_predictions[0].D == 90
        assert {p["N"] for p in fit.model_dump()["loss_points"]} <= {1e6, 4e6, 1.6e7}
        custom = study_scaling(alice, study.id, predict_at=[{"N": 6.4e7, "D": 360}], n_bootstrap=0)
        assert custom.loss_predictions[0].N == 6.4e7
        with pytest.raises(InvalidArgumentError):
            alice.request("GET", f"/v1/studies/{study.id}/scaling", params={"predict_N": [1e8]})
    with postgres_server.client("bob") as bob, pytest.raises(NotFoundError):
        study_scaling(bob, study.id)
    # the CLI shows the same through the SDK, and writes the plot
    res = CliRunner().invoke(cli, ["study", str(study.id), "--url", postgres_server.url, "--token",
                                   postgres_server.token("alice"), "--bootstrap", "0", "--plot", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert "L = " in res.output and (tmp_path / "s.png").is_file()
    res = CliRunner().invoke(cli, ["study", str(study.id), "--url", postgres_server.url, "--token",
                                   postgres_server.token("bob")])
    assert res.exit_code == 1 and "not found" in res.output
