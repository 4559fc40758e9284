"""Errors raised by the scaling-law library.

Both derive from :class:`schedulers.errors.SchedulerError`, so the service maps them to HTTP statuses in the
same place as every other scheduler error; ``field`` names the offending input (``points``, ``points.N``...).
"""

from __future__ import annotations

from schedulers.errors import ModelFittingError, SchedulerError


class InvalidScalingDataError(SchedulerError, ValueError):
    """The points cannot support the requested fit: too few, non-positive, non-finite, or no spread."""


class ScalingFitError(ModelFittingError):
    """Every start of the optimiser failed (non-finite objective); more or cleaner data may help."""
