"""Scaling-law fits: the one path from the wire request to the wire answer.

``POST /v1/scaling/fit`` and ``scaleladder scaling fit`` both call :func:`fit_points`, so the same points
and seed give the same intervals through the SDK, REST and the CLI (they differed, issue 15). Settings a
request leaves out take the scaling library's defaults (``HuberFitOptions``, ``fit_scaling``): the library is
their one home, and nothing here restates them.
"""

from __future__ import annotations

from typing import Any, Sequence

from api.scaling import ScalingFit, ScalingFitRequest
from schedulers.scaling import HuberFitOptions, LawKind, ScalingRun, fit_scaling


def _given(**settings: Any) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v is not None}


def fit_runs(runs: Sequence[ScalingRun], *, strict: bool, n_bootstrap: int | None = None, level: float | None = None,
             seed: int | None = None, tolerance: float | None = None, hyperparameter_bootstrap: int | None = None,
             **kwargs: Any) -> dict:
    """:func:`schedulers.scaling.fit_scaling` with the settings that were given; the rest are the library's.
    Raises the library's ``InvalidScalingDataError`` (a 422, mapped in ``service.errors``)."""
    options = HuberFitOptions(**_given(n_bootstrap=n_bootstrap, level=level, seed=seed))
    settings = _given(tolerance=tolerance, hyperparameter_bootstrap=hyperparameter_bootstrap)
    return fit_scaling(runs, strict=strict, options=options, **settings, **kwargs).to_dict()


def fit_points(request: ScalingFitRequest) -> ScalingFit:
    """Loss law with bootstrap intervals, predictions, compute-optimal allocations, and Step Law
    hyperparameter laws when the points carry ``params``; data that cannot support them is an error."""
    out = fit_runs([ScalingRun(p.N, p.D, p.loss, p.params) for p in request.points], strict=True,
                   law=LawKind(request.law.value), variable=request.variable.value if request.variable else None,
                   n_bootstrap=request.n_bootstrap, level=request.level, seed=request.seed,
                   tolerance=request.tolerance, hyperparameter_bootstrap=request.hyperparameter_bootstrap,
                   regressors={k: [v.value for v in vs] for k, vs in request.regressors.items()}
                   if request.regressors else None,
                   predict_at=[p.model_dump(exclude_none=True) for p in request.predict_at],
                   compute_budgets=request.compute_budgets)
    return ScalingFit.model_validate(out)
