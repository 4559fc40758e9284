"""Errors raised by the scheduling library.

Each error says whether retrying the same call can help (``retryable``), as OSS Vizier's do; the service
maps these types to HTTP status codes in one place.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base class of every error this package raises."""

    retryable: bool = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidSpaceError(SchedulerError, ValueError):
    """The search space (or a config in it) is malformed."""


class InvalidProblemError(SchedulerError, ValueError):
    """The fidelity ladder, target, cost model or scheduler options are malformed."""


class UnknownTrialError(SchedulerError, KeyError):
    """A call named a trial the scheduler never issued."""


class IllegalTransitionError(SchedulerError):
    """A call is not legal in the trial's current state (e.g. a report for a finished trial)."""


class ModelFittingError(SchedulerError):
    """A surrogate model failed to fit; the scheduler falls back, and a retry with more data may help."""

    retryable = True
