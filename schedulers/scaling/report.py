"""Scaling laws of a set of runs: a study's trials, or points a user posts from their own sweeps.

Each run is a dict ``{"N": model parameters, "D": steps or tokens, "value": final loss, "params": {...}}``
(``N`` or ``D`` may be absent when the runs vary only the other one; ``params`` may be absent or empty).

- Loss law: the best value per (N, D) cell (the tuned loss at that scale) is fitted with
  :func:`~schedulers.scaling.loss_law.fit_loss_law`: Chinchilla's ``E + A/N^alpha + B/D^beta`` when both
  vary, ``E + A x^-alpha`` when one does (``law`` overrides the choice). Only for minimised, positive values.
- Hyperparameter law: every numeric hyperparameter that is > 0 in every run and takes several values is
  fitted by the Step Law procedure (:func:`~schedulers.scaling.hyperparameter_law.fit_hyperparameter_law`).
- Predictions at requested (N, D) and compute-optimal allocations, all with bootstrap intervals, and the
  plot panels.

``strict=True`` (the stateless endpoint: the user chose the data) raises on data that cannot support the
loss law (and the hyperparameter laws, when ``regressors`` asks for them); ``strict=False`` (a study's
page: the study may be young) records why in ``warnings`` instead.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from schedulers.problem import Direction
from schedulers.scaling.compute_optimal import ComputeOptimum, compute_optimal
from schedulers.scaling.errors import InvalidScalingDataError
from schedulers.scaling.forms import SumOfPowerLaws
from schedulers.scaling.hyperparameter_law import (STEP_LAW_TOLERANCE, HyperparameterLaw, HyperparameterPrediction,
                                                   fit_hyperparameter_law)
from schedulers.scaling.loss_law import HuberFitOptions, LossLawFit, LossPrediction, fit_loss_law
from schedulers.scaling.plot_data import PlotPanel, hyperparameter_panels, loss_panel

SCALE_VARIABLES = ("N", "D")


class LawKind(str, enum.Enum):
    AUTO = "auto"
    CHINCHILLA = "chinchilla"
    ONE_VARIABLE = "one_variable"


@dataclass(frozen=True)
class ScalingRun:
    """One run: scale (``N``/``D``, ``None`` when not given), final ``value``, hyperparameters."""

    n_params: float | None
    data: float | None
    value: float
    params: Mapping[str, Any] = field(default_factory=dict)


def runs_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[ScalingRun]:
    """Parse ``{"N", "D", "value", "params"}`` dicts (a study's trials, or posted points)."""
    runs = []
    for i, it in enumerate(items):
        try:
            n = it.get("N")
            d = it.get("D")
            runs.append(ScalingRun(None if n is None else float(n), None if d is None else float(d),
                                   float(it["value"]), dict(it.get("params") or {})))
        except (KeyError, TypeError, ValueError):
            raise InvalidScalingDataError(f"run {i} needs numeric 'value' and optional numeric 'N', 'D'",
                                          field=f"points.{i}") from None
    return runs


@dataclass
class ScalingReport:
    variables: tuple[str, ...]
    n_runs: int
    loss_points: list[dict]
    loss_law: LossLawFit | None = None
    loss_predictions: LossPrediction | None = None
    compute_optima: list[ComputeOptimum] = field(default_factory=list)
    hyperparameter_law: HyperparameterLaw | None = None
    hyperparameter_predictions: list[HyperparameterPrediction] = field(default_factory=list)
    panels: list[PlotPanel] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "variables": list(self.variables),
            "n_runs": self.n_runs,
            "loss_points": self.loss_points,
            "loss_law": self.loss_law.to_dict() if self.loss_law else None,
            "loss_predictions": self.loss_predictions.to_dict() if self.loss_predictions else [],
            "compute_optimal": [c.to_dict() for c in self.compute_optima],
            "hyperparameter_law": self.hyperparameter_law.to_dict() if self.hyperparameter_law else None,
            "hyperparameter_predictions": [p.to_dict() for p in self.hyperparameter_predictions],
            "plot": [p.to_dict() for p in self.panels],
            "warnings": list(self.warnings),
        }


def _column(runs: Sequence[ScalingRun], var: str) -> np.ndarray | None:
    vals = [r.n_params if var == "N" else r.data for r in runs]
    given = [v is not None for v in vals]
    if not any(given):
        return None
    if not all(given):
        raise InvalidScalingDataError(f"{var} is given for some runs but not all", field=var)
    arr = np.asarray(vals, dtype=float)
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise InvalidScalingDataError(f"every {var} must be finite and > 0", field=var)
    return arr


def _numeric_hyperparameters(runs: Sequence[ScalingRun]) -> dict[str, np.ndarray]:
    """Hyperparameters that are real numbers > 0 in every run and take at least two values."""
    names = set.intersection(*(set(r.params) for r in runs)) if runs else set()
    out = {}
    for name in sorted(names):
        vals = [r.params[name] for r in runs]
        if all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in vals):
            arr = np.asarray(vals, dtype=float)
            if np.unique(arr).size >= 2:
                out[name] = arr
    return out


def _choose_form(law: LawKind, variable: str | None, varying: list[str], present: list[str]) -> SumOfPowerLaws:
    if law is LawKind.CHINCHILLA:
        missing = [v for v in SCALE_VARIABLES if v not in varying]
        if missing:
            raise InvalidScalingDataError(f"the chinchilla law needs several values of {missing}",
                                          field=missing[0])
        return SumOfPowerLaws(SCALE_VARIABLES)
    if law is LawKind.ONE_VARIABLE or len(varying) < 2:
        if variable is None:
            if len(varying) != 1:
                raise InvalidScalingDataError(
                    "a one-variable law needs exactly one varying scale variable (or 'variable')",
                    field="variable" if varying else "points")
            variable = varying[0]
        if variable not in present:
            raise InvalidScalingDataError(f"the runs give no {variable}", field="variable")
        others = [v for v in varying if v != variable]
        if others:
            raise InvalidScalingDataError(
                f"{others[0]} varies too; fit the chinchilla law, or post runs at a single {others[0]}",
                field=others[0])
        return SumOfPowerLaws((variable,))
    return SumOfPowerLaws(SCALE_VARIABLES)


def fit_scaling(runs: Sequence[ScalingRun] | Iterable[Mapping[str, Any]], *,
                direction: Direction = Direction.MINIMIZE, law: LawKind = LawKind.AUTO,
                variable: str | None = None, options: HuberFitOptions | None = None,
                tolerance: float = STEP_LAW_TOLERANCE, hyperparameter_bootstrap: int = 1000,
                regressors: Mapping[str, Sequence[str]] | None = None,
                predict_at: Sequence[Mapping[str, float]] = (), compute_budgets: Sequence[float] = (),
                strict: bool = True) -> ScalingReport:
    """Fit the loss law and the hyperparameter laws of ``runs``; see the module docstring."""
    items = list(runs)
    runs = items if all(isinstance(r, ScalingRun) for r in items) else runs_from_dicts(items)
    options = options or HuberFitOptions()
    # In a canonical order: the bootstrap draws runs by position, so the same runs listed in another order
    # (a study's trials by id, the same runs exported to a CSV) would otherwise get other intervals
    finite = sorted((r for r in runs if math.isfinite(r.value)), key=_run_order)
    warnings = [f"{len(runs) - len(finite)} diverged runs (non-finite value) left out"] if len(finite) < len(runs) else []
    if not finite:
        raise InvalidScalingDataError("no run with a finite value", field="points")
    cols = {v: _column(finite, v) for v in SCALE_VARIABLES}
    present = [v for v in SCALE_VARIABLES if cols[v] is not None]
    if not present:
        raise InvalidScalingDataError("runs need a model size N and/or a data size D", field="points")
    varying = [v for v in present if np.unique(cols[v]).size >= 2]
    # an absent variable is a constant 1: no spread, so no law uses it
    n_col = cols["N"] if cols["N"] is not None else np.ones(len(finite))
    d_col = cols["D"] if cols["D"] is not None else np.ones(len(finite))
    values = np.array([r.value for r in finite])
    y = values if direction is Direction.MINIMIZE else -values

    # the tuned loss per (N, D) cell
    best: dict[tuple[float, float], float] = {}
    for nv, dv, yv in zip(n_col, d_col, y):
        best[(nv, dv)] = min(best.get((nv, dv), math.inf), yv)
    cells = sorted(best)
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    loss_points = [{**({"N": c[0]} if cols["N"] is not None else {}), **({"D": c[1]} if cols["D"] is not None else {}),
                    "value": sign * best[c]} for c in cells]
    report = ScalingReport(tuple(present), len(runs), loss_points, warnings=warnings)

    def attempt(what: str, fn, must: bool = strict):
        try:
            return fn()
        except InvalidScalingDataError as exc:
            if must:
                raise
            report.warnings.append(f"no {what}: {exc.message}")
            return None

    targets = _parse_targets(predict_at, present)

    def fit_loss() -> LossLawFit:
        if direction is not Direction.MINIMIZE:
            raise InvalidScalingDataError("loss laws need a minimised value", field="direction")
        form = _choose_form(law, variable, varying, present)
        x = np.array([[c[SCALE_VARIABLES.index(v)] for v in form.variables] for c in cells])
        return fit_loss_law(x, np.array([best[c] for c in cells]), form, options)

    report.loss_law = attempt("loss law", fit_loss)
    if report.loss_law is not None:
        fit = report.loss_law
        if targets:
            x = np.array([[t[v] for v in fit.variables] for t in targets])
            report.loss_predictions = fit.predict(x)
        if compute_budgets:
            report.compute_optima = attempt("compute-optimal allocation",
                                            lambda: compute_optimal(fit, compute_budgets)) or []
        extend = max([t[fit.variables[0]] for t in targets], default=None)
        report.panels.append(loss_panel(fit, extend))

    hp = _numeric_hyperparameters(finite)

    def fit_hp() -> HyperparameterLaw:
        return fit_hyperparameter_law(n_col, d_col, y, hp, regressors, tolerance=tolerance,
                                      n_bootstrap=hyperparameter_bootstrap, level=options.level,
                                      seed=options.seed)

    if hp:
        # params may be mere metadata: a hyperparameter law is required only when regressors were asked for
        report.hyperparameter_law = attempt("hyperparameter law", fit_hp, strict and bool(regressors))
    elif any(r.params for r in finite):
        report.warnings.append("no hyperparameter law: no numeric hyperparameter > 0 takes several values")
    if report.hyperparameter_law is not None:
        hl = report.hyperparameter_law
        report.warnings += hl.warnings
        for t in targets:
            report.hyperparameter_predictions += hl.predict_optimum(t.get("N", 1.0), t.get("D", 1.0))
        extend = {v: max(t[v] for t in targets) for v in present} if targets else None
        report.panels += hyperparameter_panels(hl, extend)
    return report


def _run_order(run: ScalingRun) -> tuple:
    params = sorted((str(k), type(v).__name__, repr(v)) for k, v in run.params.items())
    return (run.n_params or 0.0, run.data or 0.0, run.value, params)


def _parse_targets(predict_at: Sequence[Mapping[str, float]], present: list[str]) -> list[dict[str, float]]:
    out = []
    for i, t in enumerate(predict_at):
        row = {}
        for v in present:
            if t.get(v) is None:
                raise InvalidScalingDataError(f"prediction {i} needs {v}", field=f"predict_at.{i}.{v}")
            val = float(t[v])
            if not math.isfinite(val) or val <= 0:
                raise InvalidScalingDataError(f"prediction {i}: {v} must be finite and > 0",
                                              field=f"predict_at.{i}.{v}")
            row[v] = val
        out.append(row)
    return out
