"""Rows -> wire schemas (``api.schemas``). The only place that knows both shapes."""

from __future__ import annotations

from api.schemas import Measurement, Resources, Study, Trial
from service.models import MeasurementRow, StudyRow, TrialRow


def study_out(row: StudyRow) -> Study:
    return Study.model_validate({
        **row.spec, "id": row.id, "tenant": row.tenant, "state": row.state, "n_trials": row.n_trials,
        "cost_spent": row.cost_spent, "error": row.error, "created_at": row.created_at,
        "updated_at": row.updated_at, "started_at": row.started_at, "finished_at": row.finished_at,
    })


def trial_out(row: TrialRow) -> Trial:
    return Trial(id=row.id, study_id=row.study_id, number=row.number, params=row.params, size=row.size,
                 steps=row.steps, start_step=row.start_step, replicate=row.replicate, state=row.state,
                 client_id=row.client_id, resources=Resources(cpu=row.cpus, gpu=row.gpus),
                 checkpoint=row.checkpoint, last_step=row.last_step, last_value=row.last_value,
                 failure=row.failure, adapted=row.adapted, created_at=row.created_at, updated_at=row.updated_at,
                 finished_at=row.finished_at)


def measurement_out(row: MeasurementRow) -> Measurement:
    value = float(row.non_finite) if row.non_finite else float(row.value)  # type: ignore[arg-type]
    return Measurement(trial_id=row.trial_id, step=row.step, value=value,
                       metrics={k: float(v) for k, v in (row.metrics or {}).items()},
                       domains={k: float(v) for k, v in (row.domains or {}).items()},
                       elapsed_seconds=row.elapsed_seconds, cost=row.cost, created_at=row.created_at)
