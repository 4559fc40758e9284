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
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "runs.csv"), "--bootstrap", "10", "--predict", "6.4e7,6.4e4",
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
