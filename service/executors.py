"""Executors: who runs a study's trials once it is started.

The service owns a study's state; an :class:`Executor` is told about each transition so it can launch,
pause, resume or tear down the work. Executors are chosen by ``Settings.executor`` from
:data:`EXECUTORS` (imported lazily, so the external default never imports Ray).
"""

from __future__ import annotations

import abc
import importlib
from typing import Any

from api.schemas import Study
from service.settings import ExecutorKind, Settings


class Executor(abc.ABC):
    """Runs the trials of started studies.

    Contract:

    - Each hook is called inside the request's transaction, after the study's new state was flushed and
      before it is committed: raising :class:`service.errors.ExecutorError` rolls the transition back and
      answers 503. Hooks must return quickly (launch work in the background; do not wait for trials).
    - Work a hook launches must tolerate the commit landing a moment later (it may see the old state briefly).
    - Trials are always handed out and measured through the ask/tell path (REST, the SDK or the service's
      ``StudyRuntime``), so every executor leaves the same records behind.
    """

    #: registry name
    name: str = "base"
    #: Whether the service holds the trials it hands out on a lease (``Settings.trial_lease_seconds``) and
    #: reclaims one whose worker went silent. Only for workers the service knows nothing else about: an
    #: executor that runs trials itself (Ray) has its own fault tolerance, which owns them, and a lease would
    #: take a trial from a worker that is merely slow to report.
    leases_trials: bool = False

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings = settings
        self.options = options

    @abc.abstractmethod
    def start(self, study: Study) -> None:
        """The study went PENDING -> RUNNING."""

    @abc.abstractmethod
    def pause(self, study: Study) -> None:
        """The study went RUNNING -> PAUSED: hand out no new work; running trials may report."""

    @abc.abstractmethod
    def resume(self, study: Study) -> None:
        """The study went PAUSED -> RUNNING."""

    @abc.abstractmethod
    def cancel(self, study: Study) -> None:
        """The study was cancelled or deleted: stop its work."""

    def close(self) -> None:
        """The app is shutting down: release resources."""


class ExternalExecutor(Executor):
    """Trials are run by external ask/tell workers (the SDK, the CLI demo, a user's script).

    Nothing needs launching: a RUNNING study simply answers asks, a PAUSED one hands out no new trials, and
    a cancelled one stops its trials; the service's state change is the whole effect, so these hooks
    deliberately do nothing.
    """

    name = ExecutorKind.EXTERNAL
    leases_trials = True

    def start(self, study: Study) -> None:
        return None

    def pause(self, study: Study) -> None:
        return None

    def resume(self, study: Study) -> None:
        return None

    def cancel(self, study: Study) -> None:
        return None


#: executor kind -> "module:Class" (every kind has one: Settings refuses any other name)
EXECUTORS: dict[ExecutorKind, str] = {
    ExecutorKind.EXTERNAL: "service.executors:ExternalExecutor",
    ExecutorKind.RAY: "service.ray_runner:RayExecutor",
}


def make_executor(settings: Settings) -> Executor:
    module, attr = EXECUTORS[settings.executor].split(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(settings, **settings.executor_options)
