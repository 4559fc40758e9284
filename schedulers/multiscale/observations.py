"""The training set of the multi-scale surrogate, kept small: subsampled curves, imputed failures, a cap.

Every observation is one (trial, step) report. A learning curve reported every ``report_every`` steps is
subsampled to one point per octave of steps (the latest report in each octave), so a run to ``s*`` adds
about ``log2(s* / s_min)`` points rather than ``s* / report_every``; the latest report is always kept.

A diverged or crashed trial is evidence that its config is bad: it contributes an imputed point at the
step where it failed, valued as the worst finite value ever reported at that model size and step octave
(or the nearest octave, or anywhere), so that the model learns to avoid the region without seeing a
non-finite number.

When there are more points than ``n_max``, whole trials are kept in priority order, alternating the best
trials (by rank among trials of the same size and step octave) and the most recent ones, so that the set
describes both the promising region and what was learnt lately. The order is also the order of the rows,
so a prefix of the set (for hyperparameter fitting) follows the same priorities.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from schedulers.multiscale.features import FidelityEncoder


@dataclass
class CurvePoints:
    """One trial's subsampled curve: ``points[octave] = (step, y)`` in minimisation units."""

    trial_id: int
    x: np.ndarray                # d, target-frame encoding of the config
    size: str
    points: dict[int, tuple[int, float]] = field(default_factory=dict)
    failed_at: int | None = None  # step of a divergence or crash, imputed as a bad value
    #: a multi-objective problem's outcome vector per octave (objectives in minimisation units, then the
    #: constrained metrics), next to ``points``' primary value
    vectors: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def last(self) -> tuple[int, float] | None:
        if not self.points:
            return None
        return self.points[max(self.points)]


class ObservationStore:
    """Incrementally maintained subsampled observations of every trial (cheap per report)."""

    def __init__(self, encoder: FidelityEncoder) -> None:
        self.encoder = encoder
        self.curves: dict[int, CurvePoints] = {}
        self.n_observations = 0
        self._worst: dict[tuple[str, int], float] = {}
        self._worst_by_size: dict[str, float] = {}
        self._worst_overall = -np.inf

    def add_trial(self, trial_id: int, x: np.ndarray, size: str) -> None:
        self.curves[trial_id] = CurvePoints(trial_id, x, size)

    def add_report(self, trial_id: int, step: int, y: float, vector: np.ndarray | None = None) -> None:
        curve = self.curves[trial_id]
        octave = self.encoder.step_bucket(step)
        curve.points[octave] = (step, y)
        if vector is not None:
            curve.vectors[octave] = vector
        key = (curve.size, octave)
        self._worst[key] = max(self._worst.get(key, -np.inf), y)
        self._worst_by_size[curve.size] = max(self._worst_by_size.get(curve.size, -np.inf), y)
        self._worst_overall = max(self._worst_overall, y)
        self.n_observations += 1

    def add_failure(self, trial_id: int, step: int) -> None:
        curve = self.curves[trial_id]
        if curve.failed_at is None:
            curve.failed_at = max(int(step), self.encoder.min_steps)
            self.n_observations += 1

    def imputed_value(self, size: str, step: int) -> float | None:
        """The value a failure at ``(size, step)`` stands for: the worst one seen nearby."""
        octave = self.encoder.step_bucket(step)
        for delta in (0, -1, 1):
            v = self._worst.get((size, octave + delta))
            if v is not None:
                return v
        v = self._worst_by_size.get(size)
        if v is not None:
            return v
        return float(self._worst_overall) if np.isfinite(self._worst_overall) else None

    def reported_values(self) -> np.ndarray:
        """Every value in the subsampled curves (``n``), in no particular order and without the cap or
        the priorities of :meth:`training_set`: the distribution of what was reported."""
        return np.asarray([y for c in self.curves.values() for _, y in c.points.values()], dtype=float)

    # -- training set --------------------------------------------------------------------------
    def _rows(self, curve: CurvePoints) -> list[tuple[np.ndarray, float, np.ndarray | None]]:
        """(inputs, primary value, outcome vector or ``None`` for an imputed failure) per training row."""
        enc = self.encoder
        rows = []
        fail_octave = enc.step_bucket(curve.failed_at) if curve.failed_at is not None else None
        for octave in sorted(curve.points):
            if octave == fail_octave:
                continue  # the imputed failure stands for this octave
            step, y = curve.points[octave]
            rows.append((enc.inputs(curve.x, curve.size, step), y, curve.vectors.get(octave)))
        if curve.failed_at is not None:
            bad = self.imputed_value(curve.size, curve.failed_at)
            if bad is not None:
                rows.append((enc.inputs(curve.x, curve.size, curve.failed_at), bad, None))
        return rows

    def priority(self) -> list[int]:
        """Trial ids in the order they enter a capped training set (see the module docstring)."""
        with_data = [c for c in self.curves.values() if c.points or c.failed_at is not None]
        groups: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
        for c in with_data:
            last = c.last
            if c.failed_at is not None or last is None:
                continue
            groups[(c.size, self.encoder.step_bucket(last[0]))].append((last[1], c.trial_id))
        quality: dict[int, float] = {}
        for members in groups.values():
            members.sort()
            for rank, (_, tid) in enumerate(members):
                quality[tid] = rank / max(len(members) - 1, 1)
        by_quality = sorted(with_data, key=lambda c: (quality.get(c.trial_id, 2.0), -c.trial_id))
        by_recency = sorted(with_data, key=lambda c: -c.trial_id)
        order, seen = [], set()
        for a, b in zip(by_quality, by_recency):
            for c in (a, b):
                if c.trial_id not in seen:
                    seen.add(c.trial_id)
                    order.append(c.trial_id)
        return order

    def training_set(self, n_max: int) -> tuple[np.ndarray, np.ndarray]:
        """``n x (d + 2)`` inputs and ``n`` outcomes, ``n <= n_max``, rows in priority order."""
        X, y, _ = self.training_rows(n_max)
        return X, y

    def training_rows(self, n_max: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
        """:meth:`training_set` and each row's outcome vector (``None`` for an imputed failure or a
        single-objective report)."""
        X, y, V = [], [], []
        for tid in self.priority():
            for row, value, vector in self._rows(self.curves[tid]):
                if len(y) >= n_max:
                    break
                X.append(row)
                y.append(value)
                V.append(vector)
            if len(y) >= n_max:
                break
        width = self.encoder.dim + 2
        if not y:
            return np.zeros((0, width)), np.zeros(0), []
        return np.asarray(X, dtype=float), np.asarray(y, dtype=float), V
