"""``/v1/scaling/fit`` (stateless: fit posted points) and ``/v1/studies/{id}/scaling`` (fit a study's trials).

Both answer :class:`api.scaling.ScalingFit`, computed by :mod:`service.scaling` (the CLI's path too). Fitting is
CPU-bound: it runs in :class:`service.scaling.ScalingFits` (a worker process), never in the request's thread, and a
study's fit is kept until its data changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.scaling import LawKind as WireLawKind
from api.scaling import ScalingFit, ScalingFitRequest
from service.deps import CommitBeforeResponseRoute, ScalingFitsDep, SessionDep, TenantDep
from service.errors import ERROR_RESPONSES
from service.repositories import StudyRepository
from service.scaling import StudyData

router = APIRouter(prefix="/v1", tags=["scaling"], route_class=CommitBeforeResponseRoute,
                   responses=ERROR_RESPONSES)


@router.post("/scaling/fit", response_model=ScalingFit, summary="Fit scaling laws to posted points")
def fit_points(request: ScalingFitRequest, tenant: TenantDep, fits: ScalingFitsDep) -> ScalingFit:
    """Loss law (Chinchilla's L(N, D) or L(x) = E + A x^-alpha) with bootstrap intervals, predictions and
    compute-optimal allocations, and Step Law hyperparameter laws when the points carry ``params``."""
    return fits.fit_points(request)


@router.get("/studies/{study_id}/scaling", response_model=ScalingFit, summary="Scaling laws of a study's trials")
def study_scaling(study_id: int, session: SessionDep, tenant: TenantDep, fits: ScalingFitsDep,
                  predict_N: Annotated[list[float], Query(description="model sizes to predict at")] = [],  # noqa: B006
                  predict_D: Annotated[list[float], Query(description="steps to predict at")] = [],  # noqa: B006
                  compute_budget: Annotated[list[float], Query()] = [],  # noqa: B006
                  law: WireLawKind = WireLawKind.AUTO,
                  n_bootstrap: Annotated[int | None, Query(ge=0, le=2000, description="default: the library's")] = None,
                  tolerance: Annotated[float | None, Query(ge=0, le=1, description="default: the library's")] = None
                  ) -> ScalingFit:
    """Each trial with a measured value is a run at N = its size's parameter count and D = its last
    reported step; the loss law is fitted on the best value per (size, steps) cell. Predictions default
    to the study's target (size, steps). Laws the trials cannot support yet come back ``null`` with the
    reason in ``warnings``. The fit is computed once per change of the trials' values (and per set of these
    settings) and served from the service's cache after that (``computed_at``, ``cached``)."""
    data = StudyData.read(session, StudyRepository(session).get(tenant, study_id))
    # the fit reads nothing more: end the transaction before it, which on SQLite (every transaction takes the
    # write lock) held every other request, workers' reports included, for the seconds a bootstrap takes
    session.commit()
    return data.fit(fits, law=law, predict_N=predict_N, predict_D=predict_D, compute_budgets=compute_budget,
                    n_bootstrap=n_bootstrap, tolerance=tolerance)
