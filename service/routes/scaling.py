"""``/v1/scaling/fit`` (stateless: fit posted points) and ``/v1/studies/{id}/scaling`` (fit a study's trials).

Both answer :class:`api.scaling.ScalingFit`, computed by :mod:`service.scaling` (the CLI's path too). Fitting is
CPU-bound, so the handlers are plain ``def`` (FastAPI runs them in its thread pool, off the event loop).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.scaling import LawKind as WireLawKind
from api.scaling import ScalingFit, ScalingFitRequest
from api.schemas import Direction as WireDirection
from api.schemas import TrialState
from schedulers.problem import Direction
from schedulers.scaling import LawKind, ScalingRun
from service import scaling
from service.deps import CommitBeforeResponseRoute, SessionDep, TenantDep
from service.errors import InvalidArgumentError
from service.repositories import StudyRepository, TrialRepository

router = APIRouter(prefix="/v1", tags=["scaling"], route_class=CommitBeforeResponseRoute)

#: trials read per query when loading a study's runs
_PAGE = 1000
#: a trial's last value is a data point unless the trial failed (crashed or diverged)
_MEASURED = (TrialState.COMPLETED, TrialState.STOPPED, TrialState.PAUSED, TrialState.RUNNING)


@router.post("/scaling/fit", response_model=ScalingFit, summary="Fit scaling laws to posted points")
def fit_points(request: ScalingFitRequest, tenant: TenantDep) -> ScalingFit:
    """Loss law (Chinchilla's L(N, D) or L(x) = E + A x^-alpha) with bootstrap intervals, predictions and
    compute-optimal allocations, and Step Law hyperparameter laws when the points carry ``params``."""
    return scaling.fit_points(request)


@router.get("/studies/{study_id}/scaling", response_model=ScalingFit, summary="Scaling laws of a study's trials")
def study_scaling(study_id: int, session: SessionDep, tenant: TenantDep,
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
    reason in ``warnings``."""
    study = StudyRepository(session).get(tenant, study_id)
    spec = study.spec
    sizes = {s["name"]: float(s["params"]) for s in spec["fidelity"]["sizes"]}
    direction = Direction(WireDirection(spec.get("objective", {}).get("direction", "minimize")).value)
    trials, repo, after = [], TrialRepository(session), None
    while True:
        page = repo.list(study.id, after_id=after, limit=_PAGE)
        trials += [t for t in page if t.state in _MEASURED and t.last_value is not None and t.last_step]
        if len(page) < _PAGE:
            break
        after = page[-1].id
    runs = [ScalingRun(sizes.get(t.size), float(t.last_step), float(t.last_value), dict(t.params))
            for t in trials if t.size in sizes]
    # the fit reads nothing more: end the transaction before it, which on SQLite (every transaction takes the
    # write lock) held every other request, workers' reports included, for the seconds a bootstrap takes
    session.commit()
    if len(predict_N) != len(predict_D):
        raise InvalidArgumentError("predict_N and predict_D must pair up (same length)", field="predict_N")
    targets = [{"N": n, "D": d} for n, d in zip(predict_N, predict_D)]
    if not targets:
        target = spec.get("target") or {}
        size = target.get("size") or spec["fidelity"]["sizes"][-1]["name"]
        targets = [{"N": sizes[size], "D": float(target.get("steps") or spec["fidelity"]["steps"]["max"])}]
    if not runs:
        return ScalingFit(study_id=study.id, variables=[], n_runs=0, loss_points=[],
                          warnings=["no trial has reported a value yet"])
    if len({(r.n_params, r.data) for r in runs}) < 2:
        # no law has a slope to fit (and the library's hyperparameter law then fails on an empty regressor
        # set: a 500 before issue 14); laws the data cannot support come back null with the reason
        return ScalingFit(study_id=study.id, variables=[], n_runs=len(runs), loss_points=[],
                          warnings=["every trial ran at one model size and one step count; a scaling law needs "
                                    "trials at two or more (size, steps) points"])
    out = scaling.fit_runs(runs, strict=False, direction=direction, law=LawKind(law.value), n_bootstrap=n_bootstrap,
                           tolerance=tolerance, predict_at=targets, compute_budgets=compute_budget)
    return ScalingFit.model_validate({**out, "study_id": study.id})
