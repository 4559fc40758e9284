"""The flagship's multiple objectives: ParEGO scalarisations for the search, one GP per outcome for the
Pareto set at the target.

Search (ParEGO, Knowles 2006, over the multi-scale GP). Every report of a multi-objective problem keeps
its outcome vector (objectives in minimisation units, then the constrained metrics). The GP the
scheduler searches with is conditioned on one scalar per observation, the augmented Chebyshev
scalarisation of the objectives normalised to [0, 1] by their ranges in the training set, plus a penalty
``1 + violation / range`` per violated constraint (so an infeasible point is worse than every feasible
one). Decisions made from the event log (early stopping's incumbent, the hyperparameter fits) use equal
weights; every ask draws a fresh weight vector from the scheduler's seeded ``_rng`` (a function of the
event history), so suggestions move along the front and replay stays deterministic. Why scalarisations
rather than expected hypervolume improvement: they reuse the flagship's cost-aware multi-fidelity
acquisition unchanged (one GP, target EI per unit cost), which hypervolume improvement at the target
would have to re-derive; measured in bench/README.md ("Multiple objectives").

Pareto set (:func:`predicted_front`): one surrogate per outcome (fitted on the same inputs, with the
flagship's mean and kernel) predicts each evaluated config at the target; the set is the configs whose
predicted means are not dominated among those predicted feasible (every constraint met by the mean).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from schedulers.objectives import Normaliser, Objectives, ParetoPoint, chebyshev, pareto_mask
from schedulers.multiscale.acquisition import recommendation_score
from schedulers.multiscale.kernels import MeanKind
from schedulers.multiscale.surrogate import Surrogate, fit_surrogate


def outcome_vector(objectives: Objectives, outcomes: dict[str, float]) -> np.ndarray:
    """Objectives in minimisation units, then the constrained metrics' raw values."""
    cons = [float(outcomes.get(c.metric, math.nan)) for c in objectives.constraints]
    return np.concatenate([objectives.vector(outcomes), np.asarray(cons, dtype=float)])


def scalarise(objectives: Objectives, V: Sequence[np.ndarray | None], fallback: np.ndarray,
              weights: np.ndarray) -> np.ndarray:
    """One value per training row (minimised): the augmented Chebyshev scalarisation of the normalised
    objectives under ``weights`` plus the constraint penalties; a row without a vector (an imputed failure,
    or an objective missing) gets the worst value of the rest (``fallback`` when no row has one)."""
    k = len(objectives.defs)
    n = len(V)
    width = k + len(objectives.constraints)
    M = np.full((n, width), np.nan)
    for i, v in enumerate(V):
        if v is not None:
            M[i] = v
    Y = M[:, :k]
    ok = np.all(np.isfinite(Y), axis=1)
    if not ok.any():
        return np.asarray(fallback, dtype=float)
    norm = Normaliser.of(Y[ok])
    s = np.full(n, np.nan)
    s[ok] = chebyshev(norm(Y[ok]), weights)
    for j, c in enumerate(objectives.constraints):
        raw = M[:, k + j]
        viol = np.asarray([c.violation(x) if math.isfinite(x) else 0.0 for x in raw])
        span = float(viol.max()) if viol.max() > 0 else 1.0
        s = np.where(viol > 0, s + 1.0 + viol / span, s)
    s[~ok] = float(np.nanmax(s))
    return s


def equal_weights(objectives: Objectives) -> np.ndarray:
    k = len(objectives.defs)
    return np.full(k, 1.0 / k)


def predicted_front(objectives: Objectives, X: np.ndarray, V: Sequence[np.ndarray | None],
                    targets: np.ndarray, configs: Sequence[tuple[dict[str, Any], int]], *, mean_kind: MeanKind,
                    interaction: bool, fit_max: int, fit_iters: int, risk: float) -> list[ParetoPoint]:
    """The Pareto set among ``configs`` (params, trial id), predicted at the target inputs ``targets``
    (``c x D``) by one surrogate per outcome column fitted on the rows ``X`` with vectors ``V``. As the
    single-objective recommendation, it is risk-averse: dominance and feasibility are judged on
    ``mean + risk * std`` of each objective (minimisation units) and constrained metric (on the bad side of
    its bound), while the answer carries the predicted means and stds. Without it, a config seen only at
    small fidelities whose target prediction was optimistic took the whole front (datamix:mo, seed 0:
    two configs predicted 0.68 / 0.40 whose true values were far worse)."""
    k = len(objectives.defs)
    width = k + len(objectives.constraints)
    M = np.full((len(V), width), np.nan)
    for i, v in enumerate(V):
        if v is not None:
            M[i] = v
    means = np.zeros((len(targets), width))
    stds = np.zeros((len(targets), width))
    for j in range(width):
        ok = np.isfinite(M[:, j])
        if ok.sum() < 2:
            return []
        Xj, yj = X[ok], M[ok, j]
        surrogate: Surrogate = fit_surrogate(Xj[:fit_max], yj[:fit_max], mean_kind=mean_kind, max_iter=fit_iters,
                                             interaction=interaction)
        post = surrogate.condition(Xj, yj)
        mean, var = post.predict(targets)
        mean, var = post.in_caller_units(mean, var)
        means[:, j], stds[:, j] = mean, np.sqrt(np.maximum(var, 0.0))
    user = objectives.in_user_units(means[:, :k])
    cautious = recommendation_score(means, stds ** 2, risk)
    for j, con in enumerate(objectives.constraints):
        sign = 1.0 if con.op.value == "<=" else -1.0
        cautious[:, k + j] = means[:, k + j] + sign * risk * stds[:, k + j]
    points, scores = [], []
    for c, (params, trial_id) in enumerate(configs):
        values = {d.metric: float(user[c, i]) for i, d in enumerate(objectives.defs)}
        sd = {d.metric: float(stds[c, i]) for i, d in enumerate(objectives.defs)}
        for j, con in enumerate(objectives.constraints):
            values.setdefault(con.metric, float(means[c, k + j]))
            sd.setdefault(con.metric, float(stds[c, k + j]))
        feasible = all(con.violation(float(cautious[c, k + j])) == 0.0
                       for j, con in enumerate(objectives.constraints))
        if feasible:
            points.append(ParetoPoint(dict(params), values, sd, trial_id))
            scores.append(cautious[c, :k])
    if not points:
        return []
    front = [p for p, keep in zip(points, pareto_mask(np.asarray(scores))) if keep]
    return sorted(front, key=lambda p: objectives.primary.to_min(p.values[objectives.primary.metric]))
