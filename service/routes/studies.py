"""``/v1/studies``: create, list, get, delete; start/pause/resume/cancel; ask; batch tell; results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.schemas import (BatchResult, Measurement, MeasurementBatch, Page, Progress, Recommendation, RoundResult, Study,
                         StudySpec, StudyState, SuggestRequest, SuggestResponse, Trial, TrialState)
from service.deps import (CacheDep, CommitBeforeResponseRoute, ExecutorDep, ScalingFitsDep, SessionDep, SettingsDep,
                          TenantDep)
from service.errors import ERROR_RESPONSES, NotFoundError
from service.lifecycle import StudyAction, apply_action
from service.models import utcnow
from service.progress import study_progress
from service.repositories import MeasurementRepository, StudyRepository, TrialRepository
from service.routes._paging import StudyId, next_token, parse_page
from service.scheduling import StudyRuntime, validate_spec
from service.serializers import measurement_out, study_out, trial_out

router = APIRouter(prefix="/v1/studies", tags=["studies"], route_class=CommitBeforeResponseRoute,
                   responses=ERROR_RESPONSES)


def _runtime(session, tenant: str, study_id: int, cache) -> StudyRuntime:
    return StudyRuntime(session, StudyRepository(session).get(tenant, study_id, lock=True), cache)


# custom-method routes (``{id}:verb``) are declared before ``/{study_id}`` so they match first
@router.post("/{study_id}:start", response_model=Study, summary="Start a pending study")
def start_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                executor: ExecutorDep) -> Study:
    rt = _runtime(session, tenant, study_id, cache)
    apply_action(rt, StudyAction.START, executor)
    return study_out(rt.study)


@router.post("/{study_id}:pause", response_model=Study, summary="Pause a running study")
def pause_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                executor: ExecutorDep) -> Study:
    rt = _runtime(session, tenant, study_id, cache)
    apply_action(rt, StudyAction.PAUSE, executor)
    return study_out(rt.study)


@router.post("/{study_id}:resume", response_model=Study, summary="Resume a paused study")
def resume_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                 executor: ExecutorDep) -> Study:
    rt = _runtime(session, tenant, study_id, cache)
    apply_action(rt, StudyAction.RESUME, executor)
    return study_out(rt.study)


@router.post("/{study_id}:cancel", response_model=Study, summary="Cancel a study")
def cancel_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                 executor: ExecutorDep) -> Study:
    rt = _runtime(session, tenant, study_id, cache)
    apply_action(rt, StudyAction.CANCEL, executor)
    return study_out(rt.study)


@router.post("", response_model=Study, status_code=status.HTTP_201_CREATED, summary="Create a study")
def create_study(spec: StudySpec, session: SessionDep, tenant: TenantDep, settings: SettingsDep) -> Study:
    """Validates the whole problem with the scheduler library first: 422 names the offending field."""
    validate_spec(spec, settings.workload_policy)
    return study_out(StudyRepository(session).add(tenant, spec))


@router.get("", response_model=Page[Study], summary="List studies (paginated, filterable)")
def list_studies(session: SessionDep, tenant: TenantDep, settings: SettingsDep,
                 state: StudyState | None = None, name: str | None = None,
                 page_size: Annotated[int | None, Query(ge=1)] = None, page_token: str | None = None) -> Page[Study]:
    after, size = parse_page(page_token, page_size, settings)
    rows = StudyRepository(session).list(tenant, state=state, name=name, after_id=after, limit=size)
    return Page[Study](items=[study_out(r) for r in rows], next_page_token=next_token([r.id for r in rows], size))


@router.get("/{study_id}", response_model=Study, summary="Get a study")
def get_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep) -> Study:
    repo = StudyRepository(session)
    row = repo.get(tenant, study_id)
    wall = StudySpec.model_validate(row.spec).budget.max_wall_clock_seconds
    if (wall is not None and row.started_at is not None and not row.state.is_final
            and (utcnow() - row.started_at).total_seconds() >= wall):
        rt = _runtime(session, tenant, study_id, cache)  # lazily expire the wall-clock budget
        rt.enforce_budget()
        row = rt.study
    return study_out(row)


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a study and its data")
def delete_study(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep,
                 executor: ExecutorDep, fits: ScalingFitsDep) -> Response:
    repo = StudyRepository(session)
    row = repo.get(tenant, study_id, lock=True)
    if not row.state.is_final and row.state is not StudyState.PENDING:
        executor.cancel(study_out(row))
    repo.delete(row)
    cache.discard(study_id)
    fits.discard(study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{study_id}/trials", response_model=Page[Trial], summary="List a study's trials")
def list_trials(study_id: StudyId, session: SessionDep, tenant: TenantDep, settings: SettingsDep,
                state: TrialState | None = None, page_size: Annotated[int | None, Query(ge=1)] = None,
                page_token: str | None = None) -> Page[Trial]:
    StudyRepository(session).get(tenant, study_id)
    after, size = parse_page(page_token, page_size, settings)
    rows = TrialRepository(session).list(study_id, state=state, after_id=after, limit=size)
    return Page[Trial](items=[trial_out(r) for r in rows], next_page_token=next_token([r.id for r in rows], size))


@router.get("/{study_id}/measurements", response_model=Page[Measurement],
            summary="A study's measurements, paged by trial (learning curves)")
def list_study_measurements(study_id: StudyId, session: SessionDep, tenant: TenantDep, settings: SettingsDep,
                            page_size: Annotated[int | None, Query(ge=1, description="trials per page")] = None,
                            page_token: str | None = None) -> Page[Measurement]:
    """Every measurement of up to ``page_size`` trials (in trial id order, as ``/trials`` pages), so a page
    never splits a learning curve: one request per page instead of one per trial (the dashboard's curves)."""
    StudyRepository(session).get(tenant, study_id)
    after, size = parse_page(page_token, page_size, settings)
    ids = [r.id for r in TrialRepository(session).list(study_id, after_id=after, limit=size)]
    rows = MeasurementRepository(session).for_trials(ids)
    return Page[Measurement](items=[measurement_out(m) for m in rows], next_page_token=next_token(ids, size))


@router.post("/{study_id}/trials:suggest", response_model=SuggestResponse,
             summary="Ask for trials (idempotent per client id)")
def suggest_trials(study_id: StudyId, body: SuggestRequest, request: Request, session: SessionDep,
                   tenant: TenantDep, cache: CacheDep, settings: SettingsDep,
                   executor: ExecutorDep) -> SuggestResponse:
    """Returns the client's live trials first (so a retried ask gets the same trial back), then paused
    trials the scheduler resumes, then new ones. An empty list with a final ``study_state`` means done;
    an empty list while running means "nothing to do right now, ask again". Live trials silent for longer
    than the lease (``trial_lease_seconds``) are reclaimed first."""
    rt = _runtime(session, tenant, study_id, cache)
    lease = settings.trial_lease_seconds if executor.leases_trials else None
    rows = rt.suggest(body.client_id, body.count, lease)
    request.app.state.metrics.trials_suggested.inc(len(rows))
    return SuggestResponse(trials=[trial_out(r) for r in rows], study_state=rt.study.state)


@router.post("/{study_id}/measurements:batch", response_model=BatchResult,
             summary="Report many measurements at once (bulk ingest)")
def report_batch(study_id: StudyId, body: MeasurementBatch, request: Request, session: SessionDep,
                 tenant: TenantDep, cache: CacheDep) -> BatchResult:
    """One bulk insert (a stored (trial, step) is skipped) and one pass through the scheduler."""
    rt = _runtime(session, tenant, study_id, cache)
    trials = TrialRepository(session).by_ids(study_id, (m.trial_id for m in body.measurements))
    items = []
    for i, m in enumerate(body.measurements):
        row = trials.get(m.trial_id)
        if row is None:
            raise NotFoundError(f"trial {m.trial_id} not found in study {study_id}",
                                field=f"measurements[{i}].trial_id")
        items.append((row, m))
    outcome = rt.report(items)
    request.app.state.metrics.measurements.inc(outcome.inserted)
    return BatchResult(inserted=outcome.inserted, duplicates=len(items) - outcome.inserted,
                       decisions=outcome.decisions, study_state=rt.study.state, adapted=outcome.adapted)


@router.get("/{study_id}/recommendation", response_model=Recommendation,
            summary="The best parameters at the target fidelity")
def recommendation(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep) -> Recommendation:
    return _runtime(session, tenant, study_id, cache).recommend()


@router.get("/{study_id}/round", response_model=RoundResult,
            summary="A playbook round's answer: the best scientific value, each value's seeds and test")
def round_result(study_id: StudyId, session: SessionDep, tenant: TenantDep, cache: CacheDep) -> RoundResult:
    """Per value of the scientific parameters: its best config, the seeds that re-ran it at the target and
    whether it differs from the best value beyond seed noise. 409 for a study without ``round``."""
    return _runtime(session, tenant, study_id, cache).round_result()


@router.get("/{study_id}/progress", response_model=Progress, summary="Budget spent and best-so-far over cost")
def progress(study_id: StudyId, session: SessionDep, tenant: TenantDep) -> Progress:
    return study_progress(session, StudyRepository(session).get(tenant, study_id))
