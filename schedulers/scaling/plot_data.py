"""What a scaling plot shows, as plain data: curves with interval bands and the measured points.

Kept apart from the drawing (:mod:`schedulers.scaling.plot`) so the REST response can carry the same
panels and the SDK can draw them without this package: a panel is one log-log axis, ``quantity`` against
``variable``; each curve is the fitted law (``value``) with its bootstrap band (``low``/``high``) at one
value of the other scale variable; points with the same ``label`` as a curve belong to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schedulers.scaling.estimates import percentile_interval
from schedulers.scaling.hyperparameter_law import HyperparameterLaw
from schedulers.scaling.loss_law import LossLawFit

#: at most this many curves per panel (evenly spread over the other variable's values)
MAX_CURVES = 6
GRID_POINTS = 40


@dataclass(frozen=True)
class Curve:
    """``value``, ``low``, ``high`` at ``x`` (all length ``g``)."""

    label: str
    x: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def to_dict(self) -> dict:
        return {"label": self.label, "x": self.x.tolist(), "value": self.value.tolist(),
                "low": self.low.tolist(), "high": self.high.tolist()}


@dataclass(frozen=True)
class PlotPanel:
    quantity: str
    variable: str
    curves: list[Curve] = field(default_factory=list)
    points: list[tuple[float, float, str]] = field(default_factory=list)
    title: str = ""

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "variable": self.variable, "title": self.title,
                "curves": [c.to_dict() for c in self.curves],
                "points": [{"x": x, "y": y, "label": lab} for x, y, lab in self.points]}


def _label(var: str, value: float) -> str:
    return f"{var}={value:.3g}"


def _pick(values: np.ndarray) -> np.ndarray:
    values = np.unique(values)
    if values.size <= MAX_CURVES:
        return values
    return values[np.unique(np.linspace(0, values.size - 1, MAX_CURVES).round().astype(int))]


def _grid(lo: float, hi: float) -> np.ndarray:
    return np.logspace(np.log10(lo), np.log10(hi), GRID_POINTS)


def loss_panel(fit: LossLawFit, extend_to: float | None = None) -> PlotPanel:
    """Loss against the first scale variable (N for Chinchilla), one curve per value of the second,
    from the smallest measured value up to ``extend_to`` (default: 10x the largest)."""
    var = fit.variables[0]
    col = fit.x[:, 0]
    grid = _grid(col.min(), max(extend_to or 0.0, col.max() * 10.0))
    curves, points = [], []
    if len(fit.variables) == 1:
        p = fit.predict(grid[:, None])
        curves.append(Curve(fit.form.name, grid, p.value, p.low, p.high))
        points = [(float(a), float(b), fit.form.name) for a, b in zip(col, fit.loss)]
    else:
        other = fit.variables[1]
        shown = _pick(fit.x[:, 1])
        for v in shown:
            p = fit.predict(np.column_stack([grid, np.full_like(grid, v)]))
            curves.append(Curve(_label(other, v), grid, p.value, p.low, p.high))
        for (a, b), y in zip(fit.x, fit.loss):
            if b in shown:
                points.append((float(a), float(y), _label(other, b)))
    return PlotPanel("loss", var, curves, points, title=fit.to_dict()["law"])


def hyperparameter_panels(law: HyperparameterLaw, extend_to: dict[str, float] | None = None) -> list[PlotPanel]:
    """One panel per hyperparameter: its optimum against D (or N when the law ignores D), one curve per
    value of the other variable it depends on; points are the per-cell optima (geometric mean of the
    near-optimal runs)."""
    cells = [c for c in law.cells if c.optimum]
    if not cells:
        return []
    cell_n = np.array([c.n_params for c in cells])
    cell_d = np.array([c.data for c in cells])
    panels = []
    for name, fitted in law.laws.items():
        var = "D" if "D" in fitted.regressors else "N"
        other = "N" if var == "D" else "D"
        col, oth = (cell_d, cell_n) if var == "D" else (cell_n, cell_d)
        hi = max((extend_to or {}).get(var, 0.0), col.max())
        grid = _grid(col.min(), hi)
        varies = other in fitted.regressors
        fixed_values = _pick(oth) if varies else np.array([oth[0]])
        curves = []
        for v in fixed_values:
            logs = {var: np.log(grid), other: np.full(grid.size, np.log(v))}
            x = fitted.design(logs)
            value = np.exp(x @ fitted.beta)
            if fitted.bootstrap_beta.shape[0]:
                low, high = percentile_interval(np.exp(x @ fitted.bootstrap_beta.T).T, fitted.level)
            else:
                low, high = value, value
            curves.append(Curve(_label(other, v) if varies else name, grid, value, low, high))
        points = [(float(c_var), float(c.optimum[name]), _label(other, c_oth) if varies else name)
                  for c, c_var, c_oth in zip(cells, col, oth) if (not varies or c_oth in fixed_values)]
        panels.append(PlotPanel(name, var, curves, points, title=fitted.formula()))
    return panels
