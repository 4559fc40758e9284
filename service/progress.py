"""A study's progress (``GET /v1/studies/{id}/progress``): budget spent and best-so-far over cost.

The one place progress is computed; every progress bar (``study watch``, the SDK's ``wait``, the demos)
draws ``fraction_done`` from here. It is budget *spent*, from the study's recorded state: cost is charged
by measurements and trials count once finished, so a study with no measurement is at 0% however long it
has run. Elapsed time is only progress when the wall clock is the study's one limit (it advanced bars by
23% on a study that had measured nothing, issue 15).
"""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from api.schemas import BudgetLimit, BudgetSpec, Direction, Progress, ProgressPoint, StudySpec, StudyState
from service.models import StudyRow, utcnow
from service.repositories import MeasurementRepository, TrialRepository


def budget_spent(budget: BudgetSpec, *, cost_spent: float, finished_trials: int,
                 elapsed_seconds: float | None) -> tuple[float | None, BudgetLimit | None]:
    """The fraction of the budget spent (capped at 1) and the limit it is measured against; ``(None, None)``
    for a study without limits. Of cost and trials, the one nearer its limit ends the study first."""
    fractions: dict[BudgetLimit, float] = {}
    if budget.max_cost:
        fractions[BudgetLimit.COST] = cost_spent / budget.max_cost
    if budget.max_trials:
        fractions[BudgetLimit.TRIALS] = finished_trials / budget.max_trials
    if not fractions and budget.max_wall_clock_seconds and elapsed_seconds is not None:
        fractions[BudgetLimit.WALL_CLOCK] = elapsed_seconds / budget.max_wall_clock_seconds
    if not fractions:
        return None, None
    limit = max(fractions, key=fractions.__getitem__)
    return min(max(fractions[limit], 0.0), 1.0), limit


def study_progress(session: Session, row: StudyRow) -> Progress:
    spec = StudySpec.model_validate(row.spec)
    by_state = TrialRepository(session).count_by_state(row.id)
    elapsed = None
    if row.started_at is not None:
        elapsed = ((row.finished_at or utcnow()) - row.started_at).total_seconds()
    finished = sum(n for state, n in by_state.items() if state.is_final)
    done, limit = budget_spent(spec.budget, cost_spent=row.cost_spent, finished_trials=finished,
                               elapsed_seconds=elapsed)
    if row.state is StudyState.COMPLETED:  # its budget is spent by definition, whichever limit ended it
        done = 1.0
    # best-so-far at the target fidelity, as a step function of cumulative cost
    target_size = spec.target.size or spec.fidelity.sizes[-1].name
    target_steps = spec.target.steps or spec.fidelity.steps.max
    sign = 1.0 if spec.objective.direction is Direction.MINIMIZE else -1.0
    curve: list[ProgressPoint] = []
    best, best_trial = None, None
    for cost, value, trial_id in MeasurementRepository(session).at_fidelity(row.id, target_size, target_steps):
        if value is None or not math.isfinite(value):
            continue
        if best is None or sign * value < sign * best:
            best, best_trial = value, trial_id
            curve.append(ProgressPoint(cost=cost, best=value))
    b = spec.budget
    return Progress(study_id=row.id, state=row.state, n_trials=row.n_trials, trials_by_state=by_state,
                    n_measurements=row.n_measurements, cost_spent=row.cost_spent, max_cost=b.max_cost,
                    max_trials=b.max_trials, elapsed_seconds=elapsed, max_wall_clock_seconds=b.max_wall_clock_seconds,
                    fraction_done=done, progress_limit=limit, best_value=best, best_trial_id=best_trial,
                    best_over_cost=curve)
