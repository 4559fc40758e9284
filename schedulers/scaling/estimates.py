"""Point estimates with bootstrap intervals, and the bootstrap resampling every fit in this package shares.

Intervals are percentile-bootstrap intervals: refit on ``n_bootstrap`` resamples (points drawn with
replacement), then take the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of whatever quantity is
reported (a coefficient, a prediction, a compute-optimal size). The point value is the fit on all points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from schedulers.scaling.errors import InvalidScalingDataError


@dataclass(frozen=True)
class Estimate:
    """A value with its bootstrap interval ``[low, high]`` at confidence ``level``."""

    value: float
    low: float
    high: float
    level: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"value": float(self.value), "low": float(self.low), "high": float(self.high),
                "level": float(self.level)}


def check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InvalidScalingDataError(f"confidence level must be in (0, 1), got {level}", field="level")
    return level


def percentile_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles over axis 0 of ``samples`` (``b x ...``), ignoring non-finite samples (a resample whose
    law has no finite answer, e.g. a compute optimum with a zero exponent)."""
    samples = np.asarray(samples, dtype=float)
    masked = np.where(np.isfinite(samples), samples, np.nan)
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    with warnings.catch_warnings():
        # a column with no finite sample gets a NaN interval; that is the honest answer, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(masked, q, axis=0)
    return np.asarray(low), np.asarray(high)


def estimates(values: np.ndarray, samples: np.ndarray, level: float) -> list[Estimate]:
    """One :class:`Estimate` per column: point ``values`` (``q``) with intervals from ``samples`` (``b x q``)."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    samples = np.asarray(samples, dtype=float).reshape(-1, values.size)
    if samples.shape[0] == 0:
        return [Estimate(float(v), float(v), float(v), level) for v in values]
    low, high = percentile_interval(samples, level)
    return [Estimate(float(v), float(lo), float(hi), level) for v, lo, hi in zip(values, low, high)]


def bootstrap_indices(n: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``n_bootstrap x n`` row indices drawn with replacement (deterministic in ``seed``)."""
    if n_bootstrap < 0:
        raise InvalidScalingDataError("n_bootstrap must be >= 0", field="n_bootstrap")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_bootstrap, n))
