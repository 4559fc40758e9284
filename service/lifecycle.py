"""The study state machine: which user actions are legal in which state, and what they do.

::

    PENDING --start--> RUNNING --pause--> PAUSED --resume--> RUNNING
    PENDING | RUNNING | PAUSED --cancel--> CANCELLED
    RUNNING | PAUSED --(budget spent)--> COMPLETED          (service.scheduling)

Anything else is an illegal transition (409).
"""

from __future__ import annotations

import enum

from api.schemas import StudyState
from service.errors import ConflictError
from service.executors import Executor
from service.models import utcnow
from service.scheduling import StudyRuntime
from service.serializers import study_out


class StudyAction(str, enum.Enum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


#: action -> (states it is legal in, resulting state)
TRANSITIONS: dict[StudyAction, tuple[frozenset[StudyState], StudyState]] = {
    StudyAction.START: (frozenset({StudyState.PENDING}), StudyState.RUNNING),
    StudyAction.PAUSE: (frozenset({StudyState.RUNNING}), StudyState.PAUSED),
    StudyAction.RESUME: (frozenset({StudyState.PAUSED}), StudyState.RUNNING),
    StudyAction.CANCEL: (frozenset({StudyState.PENDING, StudyState.RUNNING, StudyState.PAUSED}),
                         StudyState.CANCELLED),
}


def apply_action(runtime: StudyRuntime, action: StudyAction, executor: Executor) -> None:
    """Move the (locked) study through ``action`` and tell the executor, or raise :class:`ConflictError`."""
    study, now = runtime.study, utcnow()
    runtime.enforce_budget(now)  # a wall-clock budget may have run out since the last request
    legal, new_state = TRANSITIONS[action]
    if study.state not in legal:
        raise ConflictError(
            f"cannot {action.value} study {study.id}: it is {study.state.value} "
            f"(allowed from {sorted(s.value for s in legal)})", field="state")
    if new_state is StudyState.CANCELLED:
        runtime.finish(StudyState.CANCELLED, now)
    else:
        study.state = new_state
        if action is StudyAction.START:
            study.started_at = now
    study.updated_at = now
    runtime.session.flush()
    hook = {StudyAction.START: executor.start, StudyAction.PAUSE: executor.pause,
            StudyAction.RESUME: executor.resume, StudyAction.CANCEL: executor.cancel}[action]
    hook(study_out(study))
