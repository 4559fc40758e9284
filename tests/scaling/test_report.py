"""fit_scaling: runs (a study's trials or posted points) -> loss law, hyperparameter laws, predictions, plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedulers.problem import Direction
from schedulers.scaling import HuberFitOptions, InvalidScalingDataError, LawKind, fit_scaling
from schedulers.scaling.plot import draw_panels

FAST = HuberFitOptions(n_bootstrap=20)


def runs(sizes=(1e6, 4e6, 1.6e7), steps=(100, 300, 1000), seed=0):
    """Trials as the service hands them over: params, N (size params), D (steps), final value."""
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        for d in steps:
            best_lr = 0.5 * n ** -0.5 * d ** 0.2
            for lr in best_lr * np.exp(rng.uniform(-1.5, 1.5, 6)):
                loss = (1.5 + 30 / n ** 0.3 + 8 / d ** 0.4) * (1 + 0.02 * math.log(lr / best_lr) ** 2)
                out.append({"params": {"lr": float(lr), "optimizer": "adam", "layers": 2}, "N": n, "D": d,
                            "value": float(loss)})
    return out


def test_study_runs_give_both_laws_predictions_and_panels(tmp_path):
    rep = fit_scaling(runs(), options=FAST, predict_at=[{"N": 6.4e7, "D": 3000}], compute_budgets=[1e12],
                      tolerance=0.0, hyperparameter_bootstrap=100)
    assert rep.loss_law is not None and rep.loss_law.form.name == "chinchilla"
    assert len(rep.loss_points) == 9                       # best value per (size, steps) cell
    assert rep.loss_predictions.value.shape == (1,)
    assert rep.compute_optima and rep.compute_optima[0].n_opt.value > 0
    # only the numeric, varying hyperparameter is fitted ('layers' is constant, 'optimizer' categorical)
    assert set(rep.hyperparameter_law.laws) == {"lr"}
    assert [p.name for p in rep.hyperparameter_predictions] == ["lr"]
    d = rep.to_dict()
    assert d["loss_law"]["coefficients"]["alpha"]["low"] <= d["loss_law"]["coefficients"]["alpha"]["high"]
    assert [p["quantity"] for p in d["plot"]] == ["loss", "lr"]
    png = draw_panels(rep.panels, tmp_path / "fit.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000


def test_single_size_gives_a_one_variable_law_in_steps():
    rep = fit_scaling([r for r in runs() if r["N"] == 4e6], options=FAST, hyperparameter_bootstrap=0)
    assert rep.loss_law.variables == ("D",)
    with pytest.raises(InvalidScalingDataError) as info:
        fit_scaling([r for r in runs() if r["N"] == 4e6], law=LawKind.CHINCHILLA, options=FAST)
    assert info.value.field == "N"


def test_young_study_reports_warnings_instead_of_failing():
    few = [r for r in runs() if r["D"] == 100][:4] + [{"N": 1e6, "D": 100, "value": float("nan"), "params": {}}]
    rep = fit_scaling(few, options=FAST, strict=False)
    assert rep.loss_law is None
    assert any(w.startswith("1 diverged") for w in rep.warnings)
    assert any(w.startswith("no loss law") for w in rep.warnings)
    with pytest.raises(InvalidScalingDataError):
        fit_scaling(few, options=FAST, strict=True)


def test_maximised_objective_fits_hyperparameters_but_not_a_loss_law():
    flipped = [{**r, "value": -r["value"]} for r in runs()]
    no_boot = HuberFitOptions(n_bootstrap=0)
    rep = fit_scaling(flipped, direction=Direction.MAXIMIZE, options=no_boot, tolerance=0.0, strict=False,
                      hyperparameter_bootstrap=50)
    assert rep.loss_law is None and rep.hyperparameter_law is not None
    ref = fit_scaling(runs(), options=no_boot, tolerance=0.0, hyperparameter_bootstrap=50)
    assert rep.hyperparameter_law.laws["lr"].beta == pytest.approx(ref.hyperparameter_law.laws["lr"].beta)
    assert rep.loss_points[0]["value"] == pytest.approx(-ref.loss_points[0]["value"])


def test_params_without_a_numeric_hyperparameter_are_metadata():
    meta = [{**r, "params": {"optimizer": "adam", "layers": 2}} for r in runs()]
    rep = fit_scaling(meta, options=HuberFitOptions(n_bootstrap=0), strict=True)
    assert rep.loss_law is not None and rep.hyperparameter_law is None
    assert rep.warnings == ["no hyperparameter law: no numeric hyperparameter > 0 takes several values"]


def test_prediction_targets_are_validated():
    with pytest.raises(InvalidScalingDataError) as info:
        fit_scaling(runs(), options=FAST, predict_at=[{"N": 1e8}])
    assert info.value.field == "predict_at.0.D"
