"""Fit a loss law the way Hoffmann et al. (2022, appendix D.2) did, with bootstrap intervals.

Minimise ``sum_i Huber_delta(log L_hat(x_i) - log L_i)`` (``delta = 1e-3``) over the form's parameters with
L-BFGS, started from a grid of initialisations, keeping the best optimum. The Huber loss on log residuals
makes the fit robust to outliers (a diverged or badly tuned point) and independent of the loss's scale.

Cost: Chinchilla's grid has 4,500 starts. All of them are scored in one vectorised pass and L-BFGS runs
from the ``n_starts`` best (``n_starts=None`` runs every one, exactly as the paper). A bootstrap resample
starts from the full-data optimum plus its own ``bootstrap_starts`` best grid points, which finds the same
optimum as a full restart at a fraction of the cost.

Shapes: ``x`` is ``n x k`` (k scale variables, in the form's ``variables`` order), ``loss`` is ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import minimize

from schedulers.scaling.errors import InvalidScalingDataError, ScalingFitError
from schedulers.scaling.estimates import Estimate, bootstrap_indices, check_level, estimates, percentile_interval
from schedulers.scaling.forms import LossLawForm, SumOfPowerLaws


@dataclass(frozen=True)
class HuberFitOptions:
    """How to fit: the Huber threshold, the multi-start and the bootstrap."""

    delta: float = 1e-3
    n_bootstrap: int = 200
    level: float = 0.95
    seed: int = 0
    #: L-BFGS runs from the ``n_starts`` best-scoring grid points; ``None`` runs from every grid point.
    n_starts: int | None = 16
    #: per bootstrap resample: the full-data optimum plus this many best grid points of the resample
    bootstrap_starts: int = 1
    maxiter: int = 1000

    def __post_init__(self) -> None:
        if not self.delta > 0:
            raise InvalidScalingDataError("Huber delta must be > 0", field="delta")
        check_level(self.level)
        if self.n_bootstrap < 0:
            raise InvalidScalingDataError("n_bootstrap must be >= 0", field="n_bootstrap")
        if self.n_starts is not None and self.n_starts < 1:
            raise InvalidScalingDataError("n_starts must be >= 1 (or None for the whole grid)", field="n_starts")


@dataclass(frozen=True)
class LossPrediction:
    """Predicted loss at ``x`` (``n x k``): the full-data fit's ``value`` and its bootstrap ``low``/``high``."""

    variables: tuple[str, ...]
    x: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float

    def to_dict(self) -> list[dict]:
        return [
            {**{v: float(xi[j]) for j, v in enumerate(self.variables)},
             "loss": Estimate(float(val), float(lo), float(hi), self.level).to_dict()}
            for xi, val, lo, hi in zip(self.x, self.value, self.low, self.high)
        ]


@dataclass
class LossLawFit:
    """A fitted loss law: the full-data optimum ``theta`` (``p``), the bootstrap optima (``b x p``), the
    natural coefficients with intervals, and the points it was fitted on (``x`` ``n x k``, ``loss`` ``n``)."""

    form: LossLawForm
    theta: np.ndarray
    bootstrap_theta: np.ndarray
    coefficients: dict[str, Estimate]
    objective: float
    log_rmse: float
    x: np.ndarray
    loss: np.ndarray
    level: float
    options: HuberFitOptions = field(default_factory=HuberFitOptions)

    @property
    def variables(self) -> tuple[str, ...]:
        return self.form.variables

    @property
    def n_points(self) -> int:
        return int(self.loss.size)

    def coefficient(self, name: str) -> float:
        return self.coefficients[name].value

    def predict(self, x: np.ndarray | Sequence[Sequence[float]]) -> LossPrediction:
        """Loss at ``x`` (``n x k``, or ``n`` for a one-variable law) with bootstrap intervals."""
        x = _as_matrix(x, len(self.variables), "x")
        if (x <= 0).any() or not np.isfinite(x).all():
            raise InvalidScalingDataError("prediction points must be finite and > 0", field="x")
        log_x = np.log(x)
        value = np.exp(self.form.log_predict(self.theta, log_x)[0][0])
        if self.bootstrap_theta.shape[0]:
            boot = np.exp(self.form.log_predict(self.bootstrap_theta, log_x)[0])      # b x n
            low, high = percentile_interval(boot, self.level)
        else:
            low, high = value.copy(), value.copy()
        return LossPrediction(self.variables, x, value, low, high, self.level)

    def to_dict(self) -> dict:
        return {
            "form": self.form.to_dict(),
            "law": law_formula(self),
            "coefficients": {k: e.to_dict() for k, e in self.coefficients.items()},
            "n_points": self.n_points,
            "n_bootstrap": int(self.bootstrap_theta.shape[0]),
            "huber_delta": self.options.delta,
            "objective": self.objective,
            "log_rmse": self.log_rmse,
            "level": self.level,
        }


def law_formula(fit: LossLawFit) -> str:
    """Human-readable law with point coefficients, e.g. ``L = 1.69 + 406/N^0.34 + 411/D^0.28``."""
    c = {k: e.value for k, e in fit.coefficients.items()}
    parts = [f"{c['E']:.4g}"]
    for var, (amp, exp) in zip(fit.variables, (("A", "alpha"), ("B", "beta"))):
        parts.append(f"{c[amp]:.4g}/{var}^{c[exp]:.4g}")
    return "L = " + " + ".join(parts)


def _as_matrix(x, k: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InvalidScalingDataError(f"{name} must be numeric", field=name) from None
    if arr.ndim == 1 and k == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != k:
        raise InvalidScalingDataError(f"{name} must be n x {k}, got shape {arr.shape}", field=name)
    return arr


def validate_points(x: np.ndarray, loss: np.ndarray, form: LossLawForm) -> None:
    """Raise :class:`InvalidScalingDataError` naming the field when the points cannot support the fit."""
    if loss.ndim != 1 or loss.shape[0] != x.shape[0]:
        raise InvalidScalingDataError(f"got {x.shape[0]} points but {loss.size} losses", field="loss")
    for j, var in enumerate(form.variables):
        col = x[:, j]
        if not np.isfinite(col).all() or (col <= 0).any():
            raise InvalidScalingDataError(f"every {var} must be finite and > 0", field=var)
    if not np.isfinite(loss).all() or (loss <= 0).any():
        raise InvalidScalingDataError("every loss must be finite and > 0", field="loss")
    distinct = {tuple(row) for row in np.column_stack([x, loss]).tolist()}
    if len(distinct) < form.n_params:
        raise InvalidScalingDataError(
            f"the {form.name} law has {form.n_params} parameters but only {len(distinct)} distinct points "
            f"were given; need at least {form.n_params}", field="points")
    for j, var in enumerate(form.variables):
        if np.unique(x[:, j]).size < 2:
            raise InvalidScalingDataError(
                f"{var} takes a single value; a law in {var} needs at least two distinct values", field=var)


class _HuberObjective:
    """``J(theta) = sum_i Huber_delta(r_i) / (n delta)``, ``r = log L_hat - log L``. The constant scale does
    not move the minimiser; it keeps gradients O(1) so L-BFGS's tolerances mean something."""

    def __init__(self, form: LossLawForm, log_x: np.ndarray, log_loss: np.ndarray, delta: float) -> None:
        self.form, self.log_x, self.log_loss, self.delta = form, log_x, log_loss, delta
        self.scale = 1.0 / (log_loss.size * delta)

    def _huber(self, r: np.ndarray) -> np.ndarray:
        a = np.abs(r)
        return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))

    def batch(self, thetas: np.ndarray) -> np.ndarray:
        """Objective for ``b x p`` parameter vectors at once (the grid screen)."""
        pred, _ = self.form.log_predict(thetas, self.log_x)
        return self._huber(pred - self.log_loss[None, :]).sum(axis=1) * self.scale

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        pred, jac = self.form.log_predict(theta[None, :], self.log_x, with_jacobian=True)
        r = pred[0] - self.log_loss
        value = float(self._huber(r).sum() * self.scale)
        grad = (np.clip(r, -self.delta, self.delta) @ jac[0]) * self.scale
        if not math.isfinite(value):
            return float("inf"), np.zeros_like(theta)
        return value, grad


def _best_of(objective: _HuberObjective, starts: np.ndarray, bounds, maxiter: int) -> tuple[np.ndarray, float]:
    best_theta, best_value = None, math.inf
    for x0 in starts:
        res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-10})
        if math.isfinite(res.fun) and res.fun < best_value:
            best_theta, best_value = np.asarray(res.x, dtype=float), float(res.fun)
    if best_theta is None:
        raise ScalingFitError("every L-BFGS start ended with a non-finite objective", field="points")
    return best_theta, best_value


def _screen(objective: _HuberObjective, grid: np.ndarray, k: int | None) -> np.ndarray:
    if k is None or k >= grid.shape[0]:
        return grid
    scores = objective.batch(grid)
    scores = np.where(np.isfinite(scores), scores, np.inf)
    return grid[np.argsort(scores, kind="stable")[:k]]


def fit_loss_law(x, loss, form: LossLawForm | None = None,
                 options: HuberFitOptions | None = None) -> LossLawFit:
    """Fit ``form`` (default Chinchilla's ``E + A/N^alpha + B/D^beta``) to ``loss`` (``n``) at ``x``
    (``n x k``) with Huber loss on log residuals, multi-start L-BFGS, and bootstrap intervals."""
    options = options or HuberFitOptions()
    form = form or SumOfPowerLaws(("N", "D"))
    x = _as_matrix(x, len(form.variables), "x")
    loss = np.asarray(loss, dtype=float).reshape(-1)
    validate_points(x, loss, form)
    log_x, log_loss = np.log(x), np.log(loss)
    grid, bounds = form.initial_grid(), form.bounds()

    full = _HuberObjective(form, log_x, log_loss, options.delta)
    theta, objective = _best_of(full, _screen(full, grid, options.n_starts), bounds, options.maxiter)

    boot = []
    for idx in bootstrap_indices(loss.size, options.n_bootstrap, options.seed):
        obj = _HuberObjective(form, log_x[idx], log_loss[idx], options.delta)
        starts = np.vstack([theta[None, :], _screen(obj, grid, options.bootstrap_starts)])
        boot.append(_best_of(obj, starts, bounds, options.maxiter)[0])
    boot_theta = np.array(boot).reshape(-1, form.n_params)

    coef = estimates(form.coefficients(theta)[0], form.coefficients(boot_theta) if boot else np.empty((0,)),
                     options.level)
    residual = form.log_predict(theta, log_x)[0][0] - log_loss
    return LossLawFit(form=form, theta=theta, bootstrap_theta=boot_theta,
                      coefficients=dict(zip(form.coefficient_names, coef)), objective=objective,
                      log_rmse=float(np.sqrt(np.mean(residual ** 2))), x=x, loss=loss, level=options.level,
                      options=options)


def fit_chinchilla(n_params, data, loss, options: HuberFitOptions | None = None,
                   variables: Sequence[str] = ("N", "D")) -> LossLawFit:
    """``L(N, D) = E + A/N^alpha + B/D^beta`` from three length-``n`` arrays."""
    x = np.column_stack([np.asarray(n_params, dtype=float), np.asarray(data, dtype=float)])
    return fit_loss_law(x, loss, SumOfPowerLaws(variables), options)


def fit_one_variable(x, loss, variable: str = "N", options: HuberFitOptions | None = None) -> LossLawFit:
    """``L(x) = E + A x^-alpha`` from two length-``n`` arrays."""
    return fit_loss_law(np.asarray(x, dtype=float).reshape(-1, 1), loss, SumOfPowerLaws((variable,)), options)
