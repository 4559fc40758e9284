"""Scaling laws on the wire: the request/response models of ``/v1/scaling/fit`` and
``/v1/studies/{id}/scaling``, and the SDK helpers that call them and plot the answer.

Importable without torch, ray or the ``schedulers`` package (matplotlib is imported by :func:`plot_scaling`
only). Every estimate is ``{"value", "low", "high", "level"}``: the fit on all points and its
percentile-bootstrap interval.

    from api.client import Client
    from api.scaling import fit_scaling, plot_scaling
    fit = fit_scaling(client, [{"N": 1e8, "D": 2e9, "loss": 3.1}, ...], predict_at=[{"N": 1e10, "D": 2e11}])
    print(fit.loss_law.law, fit.loss_predictions[0].loss)
    plot_scaling(fit, "fit.png")
"""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

from pydantic import BaseModel, Field

from api.client import Client
from api.errors import InvalidArgumentError, TransportError, error_from_response
from api.schemas import WireFloat, _Model

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class LawKind(str, enum.Enum):
    """Which loss law to fit: ``auto`` picks Chinchilla's L(N, D) when both vary, else L(x) = E + A x^-alpha."""

    AUTO = "auto"
    CHINCHILLA = "chinchilla"
    ONE_VARIABLE = "one_variable"


class ScaleVariable(str, enum.Enum):
    N = "N"
    D = "D"


# ------------------------------------------------------------------------------------------- request
class ScalingPoint(_Model):
    """One run: model size ``N`` (parameters) and/or data ``D`` (steps or tokens), its final ``loss``, and
    optionally the hyperparameters it ran with (numeric ones get Step Law fits)."""

    N: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    D: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    loss: float = Field(gt=0, allow_inf_nan=False)
    params: dict[str, Any] = Field(default_factory=dict)


class ScalePoint(_Model):
    N: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    D: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ScalingFitRequest(_Model):
    points: list[ScalingPoint] = Field(min_length=1, max_length=100_000)
    law: LawKind = LawKind.AUTO
    variable: ScaleVariable | None = Field(default=None, description="for a one-variable law")
    predict_at: list[ScalePoint] = Field(default_factory=list, max_length=1000)
    compute_budgets: list[PositiveFloat] = Field(default_factory=list, max_length=100,
                                                 description="compute C ~ 6 N D for compute-optimal allocation")
    # Fit settings left out (None) take the scaling library's defaults (HuberFitOptions, fit_scaling), their
    # one home: this contract, the REST endpoints and the CLI used to default to other values (issue 15).
    n_bootstrap: int | None = Field(default=None, ge=0, le=2000, description=(
        "resamples for the loss law (each refits it); 0: no intervals; default: the library's"))
    hyperparameter_bootstrap: int | None = Field(default=None, ge=0, le=10_000, description=(
        "resamples for the hyperparameter laws; default: the library's"))
    level: float | None = Field(default=None, gt=0, lt=1, description="interval level; default: the library's")
    tolerance: float | None = Field(default=None, ge=0, le=1, description=(
        "Step Law plateau: runs within this fraction of their cell's best loss; default: the library's"))
    regressors: dict[str, list[ScaleVariable]] | None = Field(
        default=None, description='e.g. {"lr": ["N", "D"], "bs": ["D"]}; default: every varying variable')
    seed: int | None = Field(default=None, ge=0, description="bootstrap seed; default: the library's")


# ------------------------------------------------------------------------------------------- response
class _Out(BaseModel):
    """Response models ignore unknown fields, so an older SDK keeps reading a newer server's answers."""


class Estimate(_Out):
    value: WireFloat
    low: WireFloat
    high: WireFloat
    level: float


class LawForm(_Out):
    name: str
    variables: list[str]


class LossLaw(_Out):
    form: LawForm
    law: str = Field(description="the law with point coefficients, e.g. 'L = 1.69 + 406/N^0.34 + 411/D^0.28'")
    coefficients: dict[str, Estimate]
    n_points: int
    n_bootstrap: int
    huber_delta: float
    objective: float
    log_rmse: float
    level: float


class LossPrediction(_Out):
    N: float | None = None
    D: float | None = None
    loss: Estimate


class ComputeOptimum(_Out):
    compute: float
    N_opt: Estimate
    D_opt: Estimate
    loss: Estimate


class HyperparameterFit(_Out):
    formula: str
    regressors: list[str]
    coefficient: Estimate
    log_intercept: Estimate
    exponents: dict[str, Estimate]
    log_residual_std: float


class CellOptimum(_Out):
    N: float
    D: float
    best_loss: float | None
    n_runs: int
    n_kept: int
    optimum: dict[str, float]


class HyperparameterLaw(_Out):
    tolerance: float
    n_runs: int
    n_kept: int
    n_bootstrap: int | None = Field(default=None, description="resamples behind the intervals (0: no intervals)")
    level: float
    laws: dict[str, HyperparameterFit]
    cells: list[CellOptimum]
    warnings: list[str] = Field(default_factory=list)


class HyperparameterPrediction(_Out):
    name: str
    N: float
    D: float
    value: Estimate
    log_mean: float
    log_std: float


class LossPoint(_Out):
    N: float | None = None
    D: float | None = None
    value: float


class Curve(_Out):
    label: str
    x: list[float]
    value: list[WireFloat]
    low: list[WireFloat]
    high: list[WireFloat]


class PlotPoint(_Out):
    x: float
    y: float
    label: str


class PlotPanel(_Out):
    """One log-log axis: ``quantity`` against ``variable``, fitted curves with bands, measured points."""

    quantity: str
    variable: str
    title: str = ""
    curves: list[Curve]
    points: list[PlotPoint]


class ScalingFit(_Out):
    """The answer of both endpoints. ``loss_points`` are the best loss per (N, D) cell the law was fitted
    on; a law the data cannot support is ``null`` with the reason in ``warnings`` (study endpoint only:
    the stateless endpoint answers 422 instead)."""

    study_id: int | None = None
    variables: list[str]
    n_runs: int
    loss_points: list[LossPoint]
    loss_law: LossLaw | None = None
    loss_predictions: list[LossPrediction] = Field(default_factory=list)
    compute_optimal: list[ComputeOptimum] = Field(default_factory=list)
    hyperparameter_law: HyperparameterLaw | None = None
    hyperparameter_predictions: list[HyperparameterPrediction] = Field(default_factory=list)
    plot: list[PlotPanel] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    #: study endpoint: when this fit of the study's current data was computed (a fit is computed once per
    #: change of the trials' values and per set of fit settings, then served from the service's cache);
    #: ``null`` when nothing was fitted (no data yet) and on the stateless endpoint
    computed_at: datetime | None = None
    #: study endpoint: ``true`` when this request did not compute the fit (an earlier or a concurrent
    #: request for the same data and settings did)
    cached: bool = False


# ------------------------------------------------------------------------------------------- SDK
def _call(client: Client | Any, method: str, path: str, json: Any = None,
          params: Mapping[str, Any] | None = None) -> Any:
    """Send through the SDK :class:`~api.client.Client` (retries, typed errors), or through a plain
    ``httpx.Client`` whose ``base_url`` is the service (HTTP errors still become :mod:`api.errors` types).
    Both endpoints are free of side effects, so a retry is always safe."""
    if isinstance(client, Client):
        return client.request(method, path, json=json, params=params, idempotent=True)
    import httpx

    try:
        resp = client.request(method, path, json=json, params=dict(params or {}))
    except httpx.HTTPError as exc:
        raise TransportError(f"{method} {path}: {exc}") from exc
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        raise error_from_response(resp.status_code, body)
    return resp.json()


def fit_scaling(client: Any, points: Sequence[ScalingPoint | Mapping[str, Any]], **options: Any) -> ScalingFit:
    """``POST /v1/scaling/fit``: fit posted points (dicts with ``N``/``D``/``loss``/``params``). ``options``
    are the other :class:`ScalingFitRequest` fields (``predict_at``, ``compute_budgets``, ``law``...)."""
    request = ScalingFitRequest(points=[p if isinstance(p, ScalingPoint) else ScalingPoint(**p) for p in points],
                                **options)
    return ScalingFit.model_validate(_call(client, "POST", "/v1/scaling/fit",
                                           json=request.model_dump(mode="json", exclude_none=True)))


def study_scaling(client: Any, study_id: int, *, predict_at: Sequence[Mapping[str, float]] = (),
                  compute_budgets: Sequence[float] = (), n_bootstrap: int | None = None) -> ScalingFit:
    """``GET /v1/studies/{id}/scaling``: the laws fitted on a study's own trials."""
    params: dict[str, Any] = {"predict_N": [t["N"] for t in predict_at if t.get("N") is not None],
                              "predict_D": [t["D"] for t in predict_at if t.get("D") is not None],
                              "compute_budget": list(compute_budgets)}
    if n_bootstrap is not None:
        params["n_bootstrap"] = n_bootstrap
    return ScalingFit.model_validate(_call(client, "GET", f"/v1/studies/{int(study_id)}/scaling", params=params))


def plot_scaling(fit: ScalingFit, path: str | Path, *, dpi: int = 90) -> Path:
    """Write the fit's panels (log-log laws with bootstrap bands and the measured points) to a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = fit.plot
    if not panels:
        raise InvalidArgumentError("the fit has no law to plot" + (f": {'; '.join(fit.warnings)}" if fit.warnings
                                                                   else ""), field="plot")
    path = Path(path)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, panel in zip(axes[0], panels):
        for i, curve in enumerate(panel.curves):
            color = cmap(0.85 * i / max(len(panel.curves) - 1, 1))
            ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.18, linewidth=0)
            ax.plot(curve.x, curve.value, color=color, linewidth=1.5, label=curve.label)
            pts = [p for p in panel.points if p.label == curve.label]
            ax.scatter([p.x for p in pts], [p.y for p in pts], color=color, s=14, edgecolor="black",
                       linewidth=0.4, zorder=3)
        ax.set(xscale="log", yscale="log", xlabel=panel.variable, ylabel=panel.quantity)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.set_title(panel.title, fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(True, which="both", alpha=0.2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


__all__ = [
    "CellOptimum", "ComputeOptimum", "Curve", "Estimate", "HyperparameterFit", "HyperparameterLaw",
    "HyperparameterPrediction", "LawForm", "LawKind", "LossLaw", "LossPoint", "LossPrediction", "PlotPanel",
    "PlotPoint", "ScalePoint", "ScaleVariable", "ScalingFit", "ScalingFitRequest", "ScalingPoint",
    "fit_scaling", "plot_scaling", "study_scaling",
]
