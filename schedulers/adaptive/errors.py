"""Errors of the in-trial adaptation policies (subclasses of the scheduling library's, so the service maps
them to HTTP in the same one place)."""

from __future__ import annotations

from schedulers.errors import IllegalTransitionError, InvalidProblemError, SchedulerError, UnknownTrialError


class AdaptationError(SchedulerError):
    """Base class of every error :mod:`schedulers.adaptive` raises."""


class InvalidAdaptationError(AdaptationError, InvalidProblemError):
    """The adaptive setup (policy, group, options, tuned hyperparameters) or an observation is malformed."""


class UnknownAdaptiveTrialError(AdaptationError, UnknownTrialError):
    """An observation named a trial the policy was never told to start."""


class AdaptationReplayError(AdaptationError, IllegalTransitionError):
    """``replay`` was called on a policy that already holds state."""
