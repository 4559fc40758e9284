"""Loss-law fits: coefficient recovery within the reported intervals, robustness, validation."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.scaling import (HuberFitOptions, InvalidScalingDataError, chinchilla_form, compute_optimal,
                                fit_chinchilla, fit_loss_law, fit_one_variable)

# Hoffmann et al. (2022), approach 3
TRUE = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def chinchilla_loss(n, d):
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


@pytest.fixture(scope="module")
def noisy_fit():
    rng = np.random.default_rng(7)
    n, d = np.meshgrid(np.logspace(7, 9, 5), np.logspace(9, 11, 5))
    n, d = n.ravel(), d.ravel()
    loss = chinchilla_loss(n, d) * np.exp(rng.normal(0.0, 0.005, n.size))   # 0.5% multiplicative noise
    return fit_chinchilla(n, d, loss, HuberFitOptions(n_bootstrap=40, seed=1))


def test_recovers_known_coefficients_within_intervals(noisy_fit):
    for name, true in TRUE.items():
        est = noisy_fit.coefficients[name]
        assert est.low < est.value < est.high, name
        assert est.contains(true), f"{name}: true {true} outside [{est.low}, {est.high}]"
    # the exponents are the identifiable part: tight and close
    assert abs(noisy_fit.coefficient("alpha") - TRUE["alpha"]) < 0.03
    assert abs(noisy_fit.coefficient("beta") - TRUE["beta"]) < 0.03
    assert noisy_fit.log_rmse < 0.01


def test_extrapolation_interval_contains_truth(noisy_fit):
    # 10x beyond the largest N and D of the data
    x = np.array([[1e10, 1e12], [3e9, 2e11]])
    pred = noisy_fit.predict(x)
    truth = chinchilla_loss(x[:, 0], x[:, 1])
    assert np.all(pred.low <= truth) and np.all(truth <= pred.high)
    assert np.all(pred.low < pred.value) and np.all(pred.value < pred.high)
    assert pred.to_dict()[0]["loss"]["level"] == 0.95


def test_compute_optimal_matches_brute_force(noisy_fit):
    (opt,) = compute_optimal(noisy_fit, [1e21])
    # minimise the fitted law along N D = C/6 on a fine grid
    n = np.logspace(6, 13, 200_001)
    d = 1e21 / (6 * n)
    c = noisy_fit.coefficients
    loss = c["E"].value + c["A"].value / n ** c["alpha"].value + c["B"].value / d ** c["beta"].value
    i = np.argmin(loss)
    assert opt.n_opt.value == pytest.approx(n[i], rel=1e-3)
    assert opt.d_opt.value == pytest.approx(d[i], rel=1e-3)
    assert opt.loss.value == pytest.approx(loss[i], rel=1e-9)
    assert opt.n_opt.low < opt.n_opt.value < opt.n_opt.high
    # and the true law's optimum lies in the interval
    true_loss = chinchilla_loss(n, d)
    assert opt.n_opt.contains(n[np.argmin(true_loss)])


def test_one_variable_law():
    rng = np.random.default_rng(3)
    x = np.logspace(2, 5, 10)
    loss = (2.0 + 60.0 * x ** -0.45) * np.exp(rng.normal(0.0, 0.003, x.size))
    fit = fit_one_variable(x, loss, "steps", HuberFitOptions(n_bootstrap=60))
    assert fit.variables == ("steps",)
    for name, true in {"E": 2.0, "A": 60.0, "alpha": 0.45}.items():
        assert fit.coefficients[name].contains(true), name
    assert fit.to_dict()["law"].startswith("L = ")


def test_huber_resists_an_outlier():
    n, d = np.meshgrid(np.logspace(7, 9, 4), np.logspace(9, 11, 4))
    n, d = n.ravel(), d.ravel()
    loss = chinchilla_loss(n, d)
    loss[5] *= 1.3          # one badly tuned run
    fit = fit_chinchilla(n, d, loss, HuberFitOptions(n_bootstrap=0))
    assert abs(fit.coefficient("alpha") - TRUE["alpha"]) < 0.01
    assert abs(fit.coefficient("beta") - TRUE["beta"]) < 0.01


def test_full_grid_and_screened_starts_agree():
    rng = np.random.default_rng(11)
    x = np.logspace(1, 4, 8)
    loss = (1.5 + 20.0 * x ** -0.6) * np.exp(rng.normal(0.0, 0.002, x.size))
    full = fit_one_variable(x, loss, options=HuberFitOptions(n_bootstrap=0, n_starts=None))
    screened = fit_one_variable(x, loss, options=HuberFitOptions(n_bootstrap=0, n_starts=8))
    assert screened.objective == pytest.approx(full.objective, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("mutate, field", [
    (lambda n, d, y: (n[:4], d[:4], y[:4]), "points"),          # 4 points, 5 parameters
    (lambda n, d, y: (np.where(np.arange(n.size) == 2, -1.0, n), d, y), "N"),
    (lambda n, d, y: (n, np.where(np.arange(d.size) == 0, 0.0, d), y), "D"),
    (lambda n, d, y: (n, d, np.where(np.arange(y.size) == 1, np.nan, y)), "loss"),
    (lambda n, d, y: (n, np.full(d.size, 1e9), y), "D"),            # D never varies
])
def test_bad_points_name_the_field(mutate, field):
    n, d = np.meshgrid(np.logspace(7, 9, 3), np.logspace(9, 11, 3))
    n, d = n.ravel(), d.ravel()
    args = mutate(n, d, chinchilla_loss(n, d))
    with pytest.raises(InvalidScalingDataError) as info:
        fit_loss_law(np.column_stack(args[:2]), args[2], chinchilla_form(), HuberFitOptions(n_bootstrap=0))
    assert info.value.field == field
