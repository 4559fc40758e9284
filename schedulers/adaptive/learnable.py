"""Weigh domains by how much loss they can still lose, from a scaling law fitted to each domain's curve
(in the spirit of Jiang et al. 2024, "Adaptive Data Optimization", https://arxiv.org/abs/2410.11820).

For each domain ``k`` the trial's validation losses so far are fitted with the one-variable law of
:mod:`schedulers.scaling` (Huber on log residuals, L-BFGS), over the training step ``s``::

    L_k(s) = E_k + A_k s^-alpha_k,      score_k = -s dL_k/ds = alpha_k (L_k(s) - E_k)

``score_k`` is the domain's learning speed times its reducible loss, the lecture's
``dL_k/dn = -(1/n) alpha_k (L_k(n) - E_k)`` with the common ``1/n`` left out. The mixture moves from the
trial's initial mixture ``w0`` towards the scores, and keeps every domain at least at ``floor``::

    w = floor((1 - lr) w0 + lr score / sum(score))

Until every domain has ``min_points`` finite losses (a three-parameter law needs more points than that),
or when a domain's fit fails, the mixture is ``w0``. Jiang et al. fit each domain's loss against the
number of that domain's samples seen; here the law is in training steps (what every report carries), so
the mixture after ``n`` reports is a function of those reports alone and a replay fits only when asked.
"""

from __future__ import annotations

import numpy as np

from schedulers.adaptive.base import AdaptationPolicy, AdaptiveTrial, PolicyKind, floor_weights
from schedulers.scaling import HuberFitOptions, fit_one_variable
from schedulers.scaling.errors import InvalidScalingDataError, ScalingFitError

#: one L-BFGS run from the best point of the grid screen, no bootstrap: about 20 ms a fit
_FIT = HuberFitOptions(n_bootstrap=0, n_starts=1)


def learnable_scores(steps: np.ndarray, losses: np.ndarray, min_points: int) -> np.ndarray | None:
    """``score_k`` per domain (``losses`` is ``n x K``, NaN where not finite), or ``None`` when some domain
    has fewer than ``min_points`` finite losses or its fit fails."""
    out = np.empty(losses.shape[1])
    rows = np.isfinite(losses).all(axis=1)  # a report with a non-finite loss is no evidence (the contract)
    steps, losses = steps[rows], losses[rows]
    for k in range(losses.shape[1]):
        ok = losses[:, k] > 0
        if ok.sum() < max(int(min_points), 3):
            return None
        try:
            fit = fit_one_variable(steps[ok], losses[ok, k], "S", _FIT)
        except (InvalidScalingDataError, ScalingFitError):
            return None
        e, a, alpha = (fit.coefficient(c) for c in ("E", "A", "alpha"))
        now = e + a * float(steps[ok][-1]) ** -alpha
        out[k] = max(alpha * (now - e), 0.0)
    return out


class LearnableLossMixing(AdaptationPolicy):
    """Domains weighted by remaining learnable loss from per-domain scaling-law fits (module docstring)."""

    kind = PolicyKind.LEARNABLE_LOSS
    hyperparameters = {"lr": 0.5, "floor": 0.05, "min_points": 4.0}
    bounds = {"lr": (0.0, 1.0), "floor": (0.0, 0.5), "min_points": (3.0, 1000.0)}

    def _weights(self, trial: AdaptiveTrial, n: int) -> np.ndarray:
        obs = trial.observations[:n]
        steps = np.array([s for s, _ in obs], dtype=float)
        scores = learnable_scores(steps, np.array([v for _, v in obs]), int(trial.hyper["min_points"]))
        if scores is None or scores.sum() <= 0:
            return trial.initial
        lr = trial.hyper["lr"]
        return floor_weights((1.0 - lr) * trial.initial + lr * scores / scores.sum(), trial.hyper["floor"])
