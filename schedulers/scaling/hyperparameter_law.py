"""Hyperparameter scaling laws from sweeps, by the Step Law procedure (Li et al. 2025, arXiv:2503.04715).

1. Group the runs into cells of equal (model size N, data D); diverged runs (non-finite loss) drop out.
2. In each cell keep the runs whose loss is within ``tolerance`` (Step Law: 0.25%) of the cell's best.
   Near-optimal runs form a plateau; keeping all of them, rather than the single argmin, averages out
   the grid's coarseness and the seed noise of the argmin.
3. For each hyperparameter h, fit ``log h = c_0 + sum_r c_r log r`` over its regressors r (e.g.
   ``log lr = a + b log N + c log D`` and ``log bs = d + e log D``) by least squares on the kept runs.
4. Bootstrap: resample the kept runs with replacement, refit; percentile intervals on every coefficient
   and on every prediction.

:meth:`HyperparameterLaw.predict` returns the log-space mean and standard deviation of the optimum at an
unseen (N, D), the shape a scheduler needs for a log-normal prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from schedulers.scaling.errors import InvalidScalingDataError
from schedulers.scaling.estimates import Estimate, bootstrap_indices, check_level, estimates, percentile_interval

#: Step Law's plateau tolerance: keep runs within 0.25% of the cell's best loss.
STEP_LAW_TOLERANCE = 0.0025
SCALE_VARIABLES = ("N", "D")


@dataclass(frozen=True)
class CellOptimum:
    """One (N, D) cell of the sweep: its best loss, and the geometric mean of each hyperparameter over
    the kept (near-optimal) runs."""

    n_params: float
    data: float
    best_loss: float
    n_runs: int
    n_kept: int
    optimum: dict[str, float]

    def to_dict(self) -> dict:
        best = self.best_loss if math.isfinite(self.best_loss) else None   # a cell of diverged runs only
        return {"N": self.n_params, "D": self.data, "best_loss": best, "n_runs": self.n_runs,
                "n_kept": self.n_kept, "optimum": dict(self.optimum)}


@dataclass
class LogLinearLaw:
    """``log h = intercept + sum_r exponent_r log r``: one hyperparameter's law. ``beta`` is ``1 + q``
    (intercept first, then one exponent per regressor), ``bootstrap_beta`` is ``b x (1 + q)``."""

    name: str
    regressors: tuple[str, ...]
    beta: np.ndarray
    bootstrap_beta: np.ndarray
    residual_std: float
    level: float

    @property
    def intercept(self) -> Estimate:
        return estimates(self.beta[0], self.bootstrap_beta[:, 0], self.level)[0]

    @property
    def coefficient(self) -> Estimate:
        """``exp(intercept)``: the law's multiplier, ``h = coefficient * prod_r r^exponent_r``."""
        i = self.intercept
        return Estimate(math.exp(i.value), math.exp(i.low), math.exp(i.high), i.level)

    @property
    def exponents(self) -> dict[str, Estimate]:
        est = estimates(self.beta[1:], self.bootstrap_beta[:, 1:], self.level)
        return dict(zip(self.regressors, est))

    def design(self, log_scale: Mapping[str, np.ndarray]) -> np.ndarray:
        """``n x (1 + q)`` design matrix from log N / log D columns."""
        n = len(next(iter(log_scale.values())))
        return np.column_stack([np.ones(n)] + [np.asarray(log_scale[r], dtype=float) for r in self.regressors])

    def formula(self) -> str:
        c = math.exp(self.beta[0])
        terms = " ".join(f"{r}^{e:.4g}" for r, e in zip(self.regressors, self.beta[1:]))
        return f"{self.name} = {c:.4g}" + (f" {terms}" if terms else "")

    def to_dict(self) -> dict:
        return {"formula": self.formula(), "regressors": list(self.regressors),
                "coefficient": self.coefficient.to_dict(), "log_intercept": self.intercept.to_dict(),
                "exponents": {k: e.to_dict() for k, e in self.exponents.items()},
                "log_residual_std": self.residual_std}


@dataclass(frozen=True)
class HyperparameterPrediction:
    """The optimum of one hyperparameter at (N, D): ``value`` with its bootstrap interval (natural units),
    and the log-space mean and predictive standard deviation."""

    name: str
    n_params: float
    data: float
    value: Estimate
    log_mean: float
    log_std: float

    def to_dict(self) -> dict:
        return {"name": self.name, "N": self.n_params, "D": self.data, "value": self.value.to_dict(),
                "log_mean": self.log_mean, "log_std": self.log_std}


@dataclass
class HyperparameterLaw:
    """Fitted laws for the optimal hyperparameters as functions of model size N and data D."""

    laws: dict[str, LogLinearLaw]
    cells: list[CellOptimum]
    tolerance: float
    n_runs: int
    n_kept: int
    level: float
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.laws)

    def predict_many(self, n_params, data) -> tuple[np.ndarray, np.ndarray]:
        """Log-space mean and standard deviation of the optimum, each ``n x h`` (``h`` in :attr:`names`
        order), at ``n`` scales. The std adds the bootstrap spread of the law (where the optimum is) to
        the residual scatter of near-optimal runs around it (how wide the plateau is)."""
        n_params = np.atleast_1d(np.asarray(n_params, dtype=float))
        data = np.atleast_1d(np.asarray(data, dtype=float))
        n_params, data = np.broadcast_arrays(n_params, data)
        if (n_params <= 0).any() or (data <= 0).any() or not (np.isfinite(n_params).all()
                                                             and np.isfinite(data).all()):
            raise InvalidScalingDataError("N and D must be finite and > 0", field="predict_at")
        logs = {"N": np.log(n_params), "D": np.log(data)}
        mean = np.empty((n_params.size, len(self.laws)))
        std = np.empty_like(mean)
        for j, law in enumerate(self.laws.values()):
            x = law.design(logs)
            mean[:, j] = x @ law.beta
            boot_var = (x @ law.bootstrap_beta.T).var(axis=1) if law.bootstrap_beta.shape[0] > 1 else 0.0
            std[:, j] = np.sqrt(boot_var + law.residual_std ** 2)
        return mean, std

    def predict(self, n_params: float, data: float) -> tuple[dict[str, float], dict[str, float]]:
        """``(log-mean, log-std)`` of each hyperparameter's optimum at one (N, D), keyed by name."""
        mean, std = self.predict_many([n_params], [data])
        return ({k: float(mean[0, j]) for j, k in enumerate(self.laws)},
                {k: float(std[0, j]) for j, k in enumerate(self.laws)})

    def optimum_shift(self, data: float) -> Callable[[float], dict[str, float]]:
        """The predicted optimum (natural units) as a function of model size at a fixed data size ``data``
        (e.g. the target's steps): the ``params -> {name: value}`` prior that
        ``schedulers.multiscale`` takes as its ``optimum_shift`` option."""
        def at_size(n_params: float) -> dict[str, float]:
            mean, _ = self.predict(n_params, data)
            return {k: math.exp(v) for k, v in mean.items()}

        return at_size

    def predict_optimum(self, n_params: float, data: float) -> list[HyperparameterPrediction]:
        """The optimum at (N, D) with bootstrap intervals on the law's prediction."""
        mean, std = self.predict_many([n_params], [data])
        logs = {"N": np.log([n_params]), "D": np.log([data])}
        out = []
        for j, (name, law) in enumerate(self.laws.items()):
            boot = law.design(logs) @ law.bootstrap_beta.T          # 1 x b
            low, high = percentile_interval(boot.T, law.level) if boot.size else (mean[:, j], mean[:, j])
            value = Estimate(math.exp(mean[0, j]), math.exp(float(low[0])), math.exp(float(high[0])), law.level)
            out.append(HyperparameterPrediction(name, float(n_params), float(data), value,
                                                float(mean[0, j]), float(std[0, j])))
        return out

    @property
    def n_bootstrap(self) -> int:
        """Resamples behind the intervals (0: every interval is the point value)."""
        return int(next(iter(self.laws.values())).bootstrap_beta.shape[0]) if self.laws else 0

    def to_dict(self) -> dict:
        return {"tolerance": self.tolerance, "n_runs": self.n_runs, "n_kept": self.n_kept,
                "n_bootstrap": self.n_bootstrap, "level": self.level, "laws": {k: law.to_dict() for k, law in self.laws.items()},
                "cells": [c.to_dict() for c in self.cells], "warnings": list(self.warnings)}


def near_optimal_mask(n_params: np.ndarray, data: np.ndarray, loss: np.ndarray,
                      tolerance: float) -> tuple[np.ndarray, list[tuple[float, float, np.ndarray]]]:
    """Boolean mask of the runs within ``tolerance`` of their (N, D) cell's best finite loss, and the
    cells as ``(N, D, run indices)`` sorted by (N, D)."""
    finite = np.isfinite(loss)
    keep = np.zeros(loss.size, dtype=bool)
    cells = []
    for nd in sorted({(float(a), float(b)) for a, b in zip(n_params, data)}):
        idx = np.flatnonzero((n_params == nd[0]) & (data == nd[1]))
        good = idx[finite[idx]]
        if good.size:
            best = loss[good].min()
            # Step Law's criterion loss / best - 1 <= tolerance, written so it also holds for best <= 0
            keep[good[loss[good] - best <= tolerance * abs(best)]] = True
        cells.append((nd[0], nd[1], idx))
    return keep, cells


def fit_hyperparameter_law(n_params, data, loss, hyperparameters: Mapping[str, Sequence[float]],
                           regressors: Mapping[str, Sequence[str]] | None = None, *,
                           tolerance: float = STEP_LAW_TOLERANCE, n_bootstrap: int = 1000,
                           level: float = 0.95, seed: int = 0) -> HyperparameterLaw:
    """Fit ``log h = c_0 + sum_r c_r log r`` for every hyperparameter in ``hyperparameters`` (name ->
    length-``n`` values > 0) from ``n`` sweep runs at model sizes ``n_params`` and data ``data``.

    ``regressors`` maps a hyperparameter to a subset of ``("N", "D")`` (Step Law: ``{"lr": ("N", "D"),
    "bs": ("D",)}``). Hyperparameters not named there regress on every scale variable that varies among
    the kept runs; a dropped variable is reported in ``warnings``.
    """
    level = check_level(level)
    if not tolerance >= 0:
        raise InvalidScalingDataError("tolerance must be >= 0", field="tolerance")
    n_params = np.asarray(n_params, dtype=float).reshape(-1)
    data = np.asarray(data, dtype=float).reshape(-1)
    loss = np.asarray(loss, dtype=float).reshape(-1)
    n = loss.size
    if n_params.size != n or data.size != n:
        raise InvalidScalingDataError("N, D and loss must have the same length", field="points")
    for name, arr in (("N", n_params), ("D", data)):
        if not np.isfinite(arr).all() or (arr <= 0).any():
            raise InvalidScalingDataError(f"every {name} must be finite and > 0", field=name)
    if not hyperparameters:
        raise InvalidScalingDataError("no hyperparameters to fit", field="hyperparameters")
    hp = {}
    for name, values in hyperparameters.items():
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.size != n:
            raise InvalidScalingDataError(f"hyperparameter {name!r} has {arr.size} values for {n} runs",
                                          field=f"hyperparameters.{name}")
        if not np.isfinite(arr).all() or (arr <= 0).any():
            raise InvalidScalingDataError(f"hyperparameter {name!r} must be finite and > 0 to fit a power law",
                                          field=f"hyperparameters.{name}")
        hp[name] = arr

    keep, cells = near_optimal_mask(n_params, data, loss, tolerance)
    kept = np.flatnonzero(keep)
    log_scale = {"N": np.log(n_params[kept]), "D": np.log(data[kept])}
    warnings: list[str] = []
    regs: dict[str, tuple[str, ...]] = {}
    for name in hp:
        if regressors and name in regressors:
            chosen = tuple(regressors[name])
            bad = [r for r in chosen if r not in SCALE_VARIABLES]
            if bad:
                raise InvalidScalingDataError(f"unknown regressors {bad} for {name!r}; use N and/or D",
                                              field=f"regressors.{name}")
            for r in chosen:
                if np.unique(log_scale[r]).size < 2:
                    raise InvalidScalingDataError(
                        f"{name!r} regresses on {r}, but the near-optimal runs span a single {r}",
                        field=f"regressors.{name}")
        else:
            chosen = tuple(r for r in SCALE_VARIABLES if np.unique(log_scale[r]).size >= 2)
            for r in SCALE_VARIABLES:
                if r not in chosen:
                    warnings.append(f"{name}: {r} takes a single value in the sweep; the law omits it")
        regs[name] = chosen
    width = 1 + max(len(r) for r in regs.values())
    if kept.size < width + 1:
        raise InvalidScalingDataError(
            f"only {kept.size} near-optimal runs; a law with {width} coefficients needs at least {width + 1}",
            field="points")

    laws: dict[str, LogLinearLaw] = {}
    resamples = bootstrap_indices(kept.size, n_bootstrap, seed)
    for name, arr in hp.items():
        law = LogLinearLaw(name, regs[name], np.empty(0), np.empty((0, 1 + len(regs[name]))), 0.0, level)
        x = law.design(log_scale)
        y = np.log(arr[kept])
        beta = np.linalg.lstsq(x, y, rcond=None)[0]
        dof = max(kept.size - x.shape[1], 1)
        law.beta = beta
        law.residual_std = float(np.sqrt(((y - x @ beta) ** 2).sum() / dof))
        boot = []
        for idx in resamples:
            xb = x[idx]
            # a resample that lost a regressor's spread cannot identify its exponent: skip it
            if np.linalg.matrix_rank(xb) == xb.shape[1]:
                boot.append(np.linalg.lstsq(xb, y[idx], rcond=None)[0])
        law.bootstrap_beta = np.array(boot).reshape(-1, x.shape[1])
        laws[name] = law

    cell_list = []
    for nv, dv, idx in cells:
        finite = idx[np.isfinite(loss[idx])]
        k = idx[keep[idx]]
        opt = {name: float(np.exp(np.log(arr[k]).mean())) for name, arr in hp.items()} if k.size else {}
        cell_list.append(CellOptimum(nv, dv, float(loss[finite].min()) if finite.size else math.nan,
                                     int(idx.size), int(k.size), opt))
    return HyperparameterLaw(laws, cell_list, float(tolerance), n, int(kept.size), level, warnings)
