"""Step Law hyperparameter fits on synthetic sweeps with a known optimum law."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedulers.scaling import InvalidScalingDataError, fit_hyperparameter_law

# the optimum the synthetic sweep is built around (Step Law's published form)
LR = (1.79, -0.713, 0.307)
BS = (0.58, 0.571)


def lr_opt(n, d):
    return LR[0] * n ** LR[1] * d ** LR[2]


def bs_opt(d):
    return BS[0] * d ** BS[1]


def sweep(seed: int = 0, noise: float = 0.0005):
    """A grid sweep per (N, D) cell: loss is a bowl in (log lr, log bs) around the law's optimum, plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (2e8, 4e8, 8e8):
        for d in (5e9, 2e10, 8e10):
            base = 2.0 + 400 / n ** 0.34 + 400 / d ** 0.28
            # the sweep grid is offset per cell so the best grid point is not the law itself
            for lr in lr_opt(n, d) * 2.0 ** (np.arange(-3, 4) * 0.5 + rng.uniform(-0.25, 0.25)):
                for bs in bs_opt(d) * 2.0 ** (np.arange(-3, 4) * 0.5 + rng.uniform(-0.25, 0.25)):
                    bowl = 0.004 * math.log2(lr / lr_opt(n, d)) ** 2 + 0.002 * math.log2(bs / bs_opt(d)) ** 2
                    rows.append((n, d, lr, bs, base * (1 + bowl) * (1 + rng.normal(0, noise))))
    return np.array(rows)


@pytest.fixture(scope="module")
def law():
    s = sweep()
    return fit_hyperparameter_law(s[:, 0], s[:, 1], s[:, 4], {"lr": s[:, 2], "bs": s[:, 3]},
                                  {"lr": ("N", "D"), "bs": ("D",)}, tolerance=0.0025, n_bootstrap=400)


def test_recovers_exponents_within_intervals(law):
    lr = law.laws["lr"].exponents
    bs = law.laws["bs"].exponents
    assert lr["N"].contains(LR[1]) and lr["D"].contains(LR[2])
    assert bs["D"].contains(BS[1])
    assert set(bs) == {"D"}
    assert abs(lr["N"].value - LR[1]) < 0.1 and abs(bs["D"].value - BS[1]) < 0.1
    assert 9 <= law.n_kept < law.n_runs and len(law.cells) == 9


def test_predicts_unseen_scale_with_interval(law):
    n, d = 1.6e9, 2e11        # beyond every cell in both N and D
    preds = {p.name: p for p in law.predict_optimum(n, d)}
    assert preds["lr"].value.contains(lr_opt(n, d))
    assert preds["bs"].value.contains(bs_opt(d))
    mean, std = law.predict(n, d)
    assert mean["lr"] == pytest.approx(math.log(preds["lr"].value.value))
    # the predictive std includes the plateau width, so it is at least the residual scatter
    assert std["lr"] >= law.laws["lr"].residual_std > 0
    many_mean, many_std = law.predict_many([n, 4e8], [d, 2e10])
    assert many_mean.shape == (2, 2) and many_std.shape == (2, 2)
    assert many_mean[0, 0] == pytest.approx(mean["lr"])
    # the prior shape the multiscale scheduler takes: params -> {name: optimum}
    shift = law.optimum_shift(d)
    assert shift(n)["lr"] == pytest.approx(preds["lr"].value.value)
    assert shift(2 * n)["lr"] < shift(n)["lr"]          # larger models want smaller learning rates


def test_tolerance_selects_the_plateau():
    s = sweep()
    args = (s[:, 0], s[:, 1], s[:, 4], {"lr": s[:, 2]})
    tight = fit_hyperparameter_law(*args, tolerance=0.0, n_bootstrap=0)
    loose = fit_hyperparameter_law(*args, tolerance=0.01, n_bootstrap=0)
    assert tight.n_kept == 9      # exactly the argmin of each cell
    assert loose.n_kept > tight.n_kept
    assert all(c.n_kept == 1 for c in tight.cells)


def test_diverged_runs_are_ignored_and_defaults_drop_constant_variables():
    s = sweep()
    s = s[s[:, 0] == 2e8]                        # one model size: N cannot enter the law
    loss = s[:, 4].copy()
    loss[::5] = np.inf                           # diverged runs
    law = fit_hyperparameter_law(s[:, 0], s[:, 1], loss, {"lr": s[:, 2]}, n_bootstrap=50)
    assert law.laws["lr"].regressors == ("D",)
    assert any("N takes a single value" in w for w in law.warnings)
    with pytest.raises(InvalidScalingDataError) as info:
        fit_hyperparameter_law(s[:, 0], s[:, 1], loss, {"lr": s[:, 2]}, {"lr": ("N", "D")}, n_bootstrap=0)
    assert info.value.field == "regressors.lr"


def test_rejects_non_positive_hyperparameters():
    s = sweep()
    with pytest.raises(InvalidScalingDataError) as info:
        fit_hyperparameter_law(s[:, 0], s[:, 1], s[:, 4], {"wd": np.zeros(len(s))})
    assert info.value.field == "hyperparameters.wd"
