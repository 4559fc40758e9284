"""``scaleladder scaling fit``: CSV in, fit summary and PNG out."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
from typer.testing import CliRunner

from service.cli_scaling import app


def write_csv(path, with_lr=True):
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["N", "D", "loss"] + (["lr", "optimizer"] if with_lr else []))
        for n in (1e6, 4e6, 1.6e7):
            for d in (1e3, 4e3, 1.6e4):
                best = 0.2 * n ** -0.3
                for lr in best * 2.0 ** np.arange(-2, 3):
                    loss = (2 + 100 / n ** 0.3 + 30 / d ** 0.4) * (1 + 0.01 * math.log2(lr / best) ** 2)
                    loss *= 1 + abs(rng.normal(0, 1e-4))
                    w.writerow([n, d, loss] + ([lr, "adam"] if with_lr else []))


def test_fit_prints_laws_and_writes_a_plot(tmp_path):
    write_csv(tmp_path / "runs.csv")
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "runs.csv"), "-H", "lr", "-H", "optimizer",
                                   "--bootstrap", "10", "--predict", "6.4e7,6.4e4",
                                   "--compute", "1e13", "--tolerance", "0", "--plot", str(tmp_path / "fit.png")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())          # rich wraps lines at the terminal width
    assert "L = " in text and "alpha" in text
    assert "predicted loss at N=6.4e+07, D=6.4e+04" in text
    assert "optimal lr at N=6.4e+07" in text and "compute 1e+13" in text
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_json_and_bad_input(tmp_path):
    write_csv(tmp_path / "runs.csv", with_lr=False)
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "runs.csv"), "--bootstrap", "0", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["loss_law"]["form"]["name"] == "chinchilla" and out["hyperparameter_law"] is None
    (tmp_path / "bad.csv").write_text("N,D,acc\n1,2,3\n")
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "bad.csv")])
    assert res.exit_code == 1 and "needs a 'loss'" in " ".join(res.output.split())


def _run(*args):
    return CliRunner().invoke(app, list(map(str, args)), env={"COLUMNS": "200"})


def test_fit_help_names_the_csv_columns():
    text = " ".join(_run("fit", "--help").output.split())
    assert "columns N (model parameters) and/or D (steps or tokens) and loss (or value)" in text
    assert "--hyperparameter" in text and "--ignore" in text


def test_unnamed_columns_are_refused_not_fitted(tmp_path):
    """Issue 15: a C = 6ND column was silently fitted as the hyperparameter law 'C = 6 N^1 D^1'."""
    path = tmp_path / "runs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["N", "D", "C", "loss"])
        for n in (1e6, 4e6, 1.6e7):
            for d in (1e3, 4e3, 1.6e4):
                w.writerow([n, d, 6 * n * d, 2 + 100 / n ** 0.3 + 30 / d ** 0.4])
    res = _run("fit", path, "--bootstrap", 0)
    assert res.exit_code == 1
    assert ("column 'C' is not N, D or loss: name it with --hyperparameter C (to fit its law) or --ignore C"
            in res.output)
    res = _run("fit", path, "--bootstrap", 0, "--ignore", "C", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["hyperparameter_law"] is None
    res = _run("fit", path, "--bootstrap", 0, "-H", "C", "--json")             # asked for: then it is fitted
    assert res.exit_code == 0 and "C" in json.loads(res.output)["hyperparameter_law"]["laws"]
    assert "no column 'lr'" in _run("fit", path, "-H", "lr").output
    (tmp_path / "renamed.csv").write_text("params,tokens,loss\n1e6,1e3,3.0\n")
    res = _run("fit", tmp_path / "renamed.csv")
    assert res.exit_code == 1 and "needs a model size column 'N' and/or a data size column 'D'" in res.output


def test_one_bootstrap_default_on_every_path(sqlite_server, tmp_path, monkeypatch):
    """Issue 15: the default was 200 resamples in the library and the CLI, 100 over REST. Every path leaves
    it to the library's HuberFitOptions: recorded at the one fit call they share (cheap fits stand in)."""
    import dataclasses

    import service.scaling

    used, real = [], service.scaling.fit_scaling

    def spy(runs, *, options, **kwargs):
        used.append(options.n_bootstrap)
        return real(runs, options=dataclasses.replace(options, n_bootstrap=2), **kwargs)

    monkeypatch.setattr(service.scaling, "fit_scaling", spy)
    # the server's fits in a thread of this process, where the spy is (its worker process would not see it);
    # swapped by hand: monkeypatch would delete the attribute of starlette's State on undo
    state = sqlite_server.app.state
    own, state.scaling_fits = state.scaling_fits, service.scaling.ScalingFits(0, 16)
    try:
        _every_path(sqlite_server, tmp_path, used)
    finally:
        state.scaling_fits = own


def _every_path(sqlite_server, tmp_path, used):
    from api.scaling import fit_scaling, study_scaling
    from schedulers.scaling import HuberFitOptions

    write_csv(tmp_path / "runs.csv", with_lr=False)
    assert _run("fit", tmp_path / "runs.csv").exit_code == 0
    with sqlite_server.client("scaling-defaults") as client:
        fit_scaling(client, [{"N": r["N"], "D": r["D"], "loss": r["loss"]}
                             for r in csv.DictReader((tmp_path / "runs.csv").open())])
        study = client.create_study({
            "name": "law", "objective": {"metric": "loss", "direction": "minimize"},
            "space": [{"name": "lr", "type": "float", "low": 1e-3, "high": 1e-1, "log": True}],
            "fidelity": {"steps": {"min": 10, "max": 90, "report_every": 10},
                         "sizes": [{"name": "s", "params": 1e6}, {"name": "m", "params": 4e6}]},
            "budget": {"max_trials": 8}, "scheduler": {"name": "asha", "seed": 0, "options": {"size_rungs": True}}})
        while (trial := study.ask(wait=False)) is not None:                 # runs at several (size, steps)
            n = {"s": 1e6, "m": 4e6}[trial.size]
            for step in trial.report_steps():
                if trial.report(step, 2 + 100 / n ** 0.3 + 30 / step ** 0.4 + trial.params["lr"]).value != "continue":
                    break
            trial.complete()
        study_scaling(client, study.id)
    assert used == [HuberFitOptions().n_bootstrap] * 3


def test_same_seed_same_intervals_through_the_cli_and_rest(sqlite_server, tmp_path):
    """Issue 15: one seed gave different intervals through the API and the CLI. Both take service.scaling."""
    from api.scaling import fit_scaling

    write_csv(tmp_path / "runs.csv")
    rows = list(csv.DictReader((tmp_path / "runs.csv").open()))
    points = [{"N": float(r["N"]), "D": float(r["D"]), "loss": float(r["loss"]),
               "params": {"lr": float(r["lr"]), "optimizer": r["optimizer"]}} for r in rows]

    def cli(seed):
        res = _run("fit", tmp_path / "runs.csv", "-H", "lr", "-H", "optimizer", "--bootstrap", 6, "--seed", seed,
                   "--tolerance", 0, "--predict", "6.4e7,6.4e4", "--json")
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    with sqlite_server.client("scaling-seed") as client:
        rest = fit_scaling(client, points, n_bootstrap=6, seed=7, tolerance=0.0,
                           predict_at=[{"N": 6.4e7, "D": 6.4e4}]).model_dump(mode="json", exclude={"plot"})
    here = cli(7)
    for key in ("loss_law", "loss_predictions", "hyperparameter_law", "hyperparameter_predictions"):
        assert here[key] == rest[key], key
    assert cli(8)["loss_law"]["coefficients"] != here["loss_law"]["coefficients"]   # the seed is what decides


def test_no_bootstrap_prints_no_intervals(tmp_path):
    """Issue 15: --bootstrap 0 printed degenerate [v, v] intervals, which read as certainty."""
    write_csv(tmp_path / "runs.csv")
    args = ("fit", tmp_path / "runs.csv", "-H", "lr", "--ignore", "optimizer", "--bootstrap", 0, "--tolerance", 0,
            "--predict", "6.4e7,6.4e4", "--compute", "1e13")
    res = _run(*args)
    assert res.exit_code == 0, res.output
    assert "no bootstrap, no intervals" in res.output and "95% interval" not in res.output
    loss_lines = [line for line in res.output.splitlines()
                  if line.startswith(("predicted loss", "compute")) or line.startswith(("│ E ", "│ alpha "))]
    assert len(loss_lines) == 4 and not any("[" in line for line in loss_lines), loss_lines
    assert "[" in next(line for line in res.output.splitlines() if line.startswith("optimal lr"))   # its own bootstrap
    res = _run(*args, "--hyperparameter-bootstrap", 0)
    assert res.exit_code == 0 and not any("[" in line for line in res.output.splitlines()
                                          if line.startswith(("optimal lr", "│ lr")))


def test_the_order_of_the_runs_does_not_change_the_intervals(sqlite_server):
    """The bootstrap draws runs by position: the same runs in another order (a study's trials by id, a CSV
    sorted otherwise) gave other hyperparameter-law intervals for the same seed."""
    import random

    from api.scaling import fit_scaling

    rng = np.random.default_rng(2)
    points = []
    for n in (1e6, 4e6, 1.6e7):
        for d in (1e3, 1e4):
            best = 0.2 * n ** -0.3
            for lr in best * 2.0 ** np.arange(-2, 3):
                loss = (2 + 100 / n ** 0.3 + 30 / d ** 0.4) * (1 + 0.01 * math.log2(lr / best) ** 2
                                                                + abs(rng.normal(0, 1e-3)))
                points.append({"N": n, "D": d, "loss": loss, "params": {"lr": float(lr)}})
    shuffled = list(points)
    random.Random(0).shuffle(shuffled)
    with sqlite_server.client("scaling-order") as client:
        a, b = (fit_scaling(client, p, n_bootstrap=0, hyperparameter_bootstrap=50, tolerance=0.01, seed=3)
                for p in (points, shuffled))
    assert a.hyperparameter_law.laws["lr"] == b.hyperparameter_law.laws["lr"]
    assert a.hyperparameter_law.n_bootstrap == 50
