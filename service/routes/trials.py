"""``/v1/trials/{id}``: get, measurements (tell), complete, fail, should_stop."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.schemas import (CompleteRequest, Decision, FailRequest, HeartbeatRequest, Measurement, MeasurementCreate,
                         ReportResult, ShouldStop, Trial)
from service.deps import CacheDep, CommitBeforeResponseRoute, SessionDep, TenantDep
from service.errors import ERROR_RESPONSES, NotFoundError
from service.models import TrialRow
from service.routes._paging import TrialId
from service.repositories import MeasurementRepository, StudyRepository, TrialRepository
from service.scheduling import StudyRuntime, decision_for_state
from service.serializers import measurement_out, trial_out

router = APIRouter(prefix="/v1/trials", tags=["trials"], route_class=CommitBeforeResponseRoute,
                   responses=ERROR_RESPONSES)


def _locked(session, tenant: str, trial_id: int, cache) -> tuple[StudyRuntime, TrialRow]:
    """The trial's study, row-locked, and the trial re-read under that lock."""
    study_id = TrialRepository(session).study_id_of(tenant, trial_id)
    rt = StudyRuntime(session, StudyRepository(session).get(tenant, study_id, lock=True), cache)
    row = session.get(TrialRow, trial_id, populate_existing=True)
    if row is None:  # deleted with its study between the two reads
        raise NotFoundError(f"trial {trial_id} not found", field="trial_id")
    return rt, row


@router.post("/{trial_id}:complete", response_model=Trial, summary="The worker finished the trial's segment")
def complete_trial(trial_id: TrialId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                   body: CompleteRequest | None = None) -> Trial:
    rt, row = _locked(session, tenant, trial_id, cache)
    body = body or CompleteRequest()
    return trial_out(rt.complete(row, body.checkpoint, body.segment_start))


@router.post("/{trial_id}:fail", response_model=Trial, summary="The trial crashed")
def fail_trial(trial_id: TrialId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
               body: FailRequest | None = None) -> Trial:
    rt, row = _locked(session, tenant, trial_id, cache)
    body = body or FailRequest()
    return trial_out(rt.fail(row, body.reason, body.segment_start))


@router.post("/{trial_id}:heartbeat", response_model=Trial,
             summary="The worker still runs the trial: its lease starts again (409 once its segment ended)")
def heartbeat(trial_id: TrialId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
              body: HeartbeatRequest | None = None) -> Trial:
    rt, row = _locked(session, tenant, trial_id, cache)
    return trial_out(rt.heartbeat(row, (body or HeartbeatRequest()).segment_start))


@router.get("/{trial_id}:should_stop", response_model=ShouldStop, summary="Should the worker stop this trial?")
def should_stop(trial_id: TrialId, session: SessionDep, tenant: TenantDep) -> ShouldStop:
    row = TrialRepository(session).get(tenant, trial_id)
    decision = decision_for_state(row.state)
    at_end = row.last_step is not None and row.last_step >= row.steps
    return ShouldStop(trial_id=row.id, should_stop=decision is not Decision.CONTINUE or at_end, decision=decision,
                      trial_state=row.state)


@router.get("/{trial_id}", response_model=Trial, summary="Get a trial")
def get_trial(trial_id: TrialId, session: SessionDep, tenant: TenantDep) -> Trial:
    return trial_out(TrialRepository(session).get(tenant, trial_id))


@router.get("/{trial_id}/measurements", response_model=list[Measurement], summary="A trial's measurements")
def list_measurements(trial_id: TrialId, session: SessionDep, tenant: TenantDep) -> list[Measurement]:
    row = TrialRepository(session).get(tenant, trial_id)
    return [measurement_out(m) for m in MeasurementRepository(session).for_trial(row.id)]


@router.post("/{trial_id}/measurements", response_model=ReportResult,
             summary="Report one measurement; the answer says continue, pause or stop")
def report(trial_id: TrialId, body: MeasurementCreate, request: Request, session: SessionDep, tenant: TenantDep,
           cache: CacheDep) -> ReportResult:
    rt, row = _locked(session, tenant, trial_id, cache)
    outcome = rt.report([(row, body)])
    request.app.state.metrics.measurements.inc(outcome.inserted)
    return outcome.last
