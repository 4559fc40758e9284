"""Single-fidelity GP Bayesian optimisation at the target (size, steps): the model-based baseline.

Every trial runs at the target fidelity and is never stopped early. The surrogate is a BoTorch
``SingleTaskGP`` on the unit-cube encoding of the space with a standardised outcome
(:func:`schedulers.models.gp.fit_gp`); the acquisition is ``LogExpectedImprovement``, maximised over a
candidate set of Sobol points and local perturbations of the best points
(:mod:`schedulers.models.candidates`, :mod:`schedulers.models.acquisition`).

Asynchronous workers: trials still running are pending evaluations. Before choosing, the surrogate is
conditioned on them with the kriging believer, and each point of a batch is believed before the next is
chosen, so ``suggest(n)`` returns ``n`` distinct points that also differ from everything evaluated or
pending.

Observations: a trial's value is its last report once it has ended. A failed or diverged trial is imputed
as the worst finite value seen, so the model learns to avoid its region. The first ``n_init`` trials are
random (default ``max(5, 2 * dim + 1)``).

Laziness: hooks only record; the GP is fitted on the next ``suggest``/``recommend`` and cached until the
observations change, so replaying a long history costs no fits. The fit is seeded from the scheduler seed
and the number of observations (not from the event count) so that a cached fit and a fresh one after
:meth:`replay` are the same model.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from botorch.acquisition import LogExpectedImprovement

from schedulers.base import Recommendation, Scheduler, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.models.acquisition import select_batch
from schedulers.models.candidates import candidate_set
from schedulers.models.gp import GPSurrogate, fit_gp
from schedulers.problem import Direction, Problem


class GPTarget(Scheduler):
    """GP-BO at the target fidelity. Options: ``n_init`` (random trials first, default
    ``max(5, 2 * dim + 1)``), ``n_candidates`` (Sobol candidates per acquisition, 512), ``n_incumbents``
    (best points whose neighbourhoods are also searched, 5)."""

    name = "gp_target"

    def __init__(self, problem: Problem, seed: int = 0, *, n_init: int | None = None, n_candidates: int = 512,
                 n_incumbents: int = 5, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        self.n_init = max(5, 2 * self.space.dim + 1) if n_init is None else int(n_init)
        if self.n_init < 1:
            raise InvalidProblemError(f"n_init must be >= 1, got {n_init}", field="scheduler.options.n_init")
        if int(n_candidates) < 1 or int(n_incumbents) < 0:
            raise InvalidProblemError("n_candidates must be >= 1 and n_incumbents >= 0",
                                      field="scheduler.options.n_candidates")
        self.n_candidates = int(n_candidates)
        self.n_incumbents = int(n_incumbents)
        self._cache: tuple[tuple[tuple[int, float], ...], GPSurrogate] | None = None

    # ------------------------------------------------------------------ data
    def _observations(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(trial ids, ``n x d`` encodings, ``n`` minimisation values with failures imputed) of ended trials
        at the target size; empty when no finite value exists yet."""
        ids, ys = [], []
        for t in self.trials.values():
            if t.size != self.problem.target.size or not t.state.is_final:
                continue
            v = t.last_value
            ok = t.state is not TrialState.FAILED and v is not None and math.isfinite(v)
            ids.append(t.trial_id)
            ys.append(self._y(v) if ok else math.nan)
        y = np.asarray(ys, dtype=float)
        finite = np.isfinite(y)
        if not finite.any():
            return [], np.zeros((0, self.space.dim)), np.zeros(0)
        y[~finite] = y[finite].max()  # a failure counts as the worst finite outcome
        return ids, self.space.encode([self.trials[i].params for i in ids]), y

    def _surrogate(self, ids: list[int], X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        key = tuple(zip(ids, y.tolist()))
        if self._cache is None or self._cache[0] != key:
            seed = int(np.random.default_rng([self.seed, len(ids), 0x6770]).integers(2 ** 31 - 1))
            self._cache = (key, fit_gp(X, y, seed=seed))
        return self._cache[1]

    # ------------------------------------------------------------------ ask
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        target = self.problem.target
        rng = self._rng()
        issued = sum(1 for t in self.trials.values() if t.replicate == 0)
        n_random = max(0, min(n, self.n_init - issued))
        params = self.space.sample(rng, n_random) if n_random else []
        ids, X, y = self._observations()
        n_model = n - n_random
        if n_model > 0 and len(ids) and self.space.dim > 0:  # dim 0: every parameter fixed, nothing to model
            params += self._acquire(n_model, ids, X, y, params, rng)
        if len(params) < n:  # nothing finite observed yet, or the candidate set ran out
            params += self.space.sample(rng, n - len(params))
        return [(p, target.size, target.steps) for p in params]

    def _acquire(self, q: int, ids: list[int], X: np.ndarray, y: np.ndarray, chosen: list[dict[str, Any]],
                 rng: np.random.Generator) -> list[dict[str, Any]]:
        surrogate = self._surrogate(ids, X, y)
        pending = [t.params for t in self.live_trials() if t.size == self.problem.target.size] + list(chosen)
        X_pending = self.space.encode(pending) if pending else np.zeros((0, self.space.dim))
        believed = surrogate.believe(X_pending)
        incumbents = X[np.argsort(y, kind="stable")[:self.n_incumbents]]
        candidates = candidate_set(self.space, rng, n_global=self.n_candidates, incumbents=incumbents)
        batch = select_batch(believed, q, lambda s: LogExpectedImprovement(s.model, s.best_f, maximize=False),
                             self.space, candidates, rng, exclude=np.concatenate([X, X_pending]))
        return self.space.decode(batch) if len(batch) else []

    # ------------------------------------------------------------------ recommend
    def recommend(self) -> Recommendation:
        """The evaluated configuration with the smallest GP posterior mean, with that mean and its standard
        deviation in the user's direction. Falls back to the base rule before anything finite is observed."""
        ids, X, y = self._observations()
        finite = [i for i, tid in enumerate(ids) if self.trials[tid].state is not TrialState.FAILED]
        if not finite or self.space.dim == 0:
            return super().recommend()
        mean, std = self._surrogate(ids, X, y).predict(X[finite])
        best = finite[int(np.argmin(mean))]
        predicted = float(mean.min())
        if self.problem.direction is Direction.MAXIMIZE:
            predicted = -predicted
        trial = self.trials[ids[best]]
        target = self.problem.target
        return Recommendation(dict(trial.params), predicted, float(std[int(np.argmin(mean))]), target.size,
                              target.steps, trial.trial_id, tuple(self.space.border_warnings(trial.params)))
