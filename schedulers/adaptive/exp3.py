"""Online Data Mixing (Albalak et al. 2024, https://arxiv.org/abs/2312.02406): the mixture as an EXP3
multi-armed bandit over domains whose reward is the domain's loss ("train more on higher loss").

With ``K`` domains and ``eps(s) = min(1/K, sqrt(ln K / (K s)))`` at training step ``s``, the report of
losses ``L`` at step ``s`` updates the smoothed importance-weighted rewards and the mixture ``pi``::

    R_i  <- smoothing * R_i + (1 - smoothing) * L_i / pi_i      (a report with a non-finite loss is skipped)
    pi_i  = (1 - K e) * softmax(log w0_i + lr * eps(s) * R_i) + e,      e = explore * eps(s)

This is the paper's Algorithm 1 (``eps`` is both the exploration floor and the step size of the
exponential weights, and decays with the training step) with three knobs a study can tune: ``lr`` scales
the step size and ``explore`` the floor (both 1 in the paper), and ``w0``, the trial's initial mixture,
is the prior in place of the paper's uniform start.

Difference from the paper: ODM updates after every training step from the one domain that step's batch
came from; here a trial reports the validation loss of *every* domain at each report (every
``report_every`` steps), so each report updates every domain, with the same ``L / pi`` reward scale.
"""

from __future__ import annotations

import math

import numpy as np

from schedulers.adaptive.base import AdaptationPolicy, AdaptiveTrial, PolicyKind


def exploration(step: int, k: int) -> float:
    """ODM's ``eps``: ``1/K`` at step 0, then ``min(1/K, sqrt(ln K / (K step)))``."""
    return 1.0 / k if step <= 0 else min(1.0 / k, math.sqrt(math.log(k) / (k * step)))


class Exp3Mixing(AdaptationPolicy):
    """EXP3 over the mixture's domains with the domain loss as reward (see the module docstring)."""

    kind = PolicyKind.EXP3
    hyperparameters = {"lr": 1.0, "smoothing": 0.9, "explore": 1.0}
    bounds = {"lr": (0.0, 1000.0), "smoothing": (0.0, 0.999), "explore": (0.0, 1.0)}

    def _weights(self, trial: AdaptiveTrial, n: int) -> np.ndarray:
        lr, alpha, explore = trial.hyper["lr"], trial.hyper["smoothing"], trial.hyper["explore"]
        prior = np.log(np.clip(trial.initial, 1e-12, None))
        reward = np.zeros(self.k)
        pi = trial.initial
        for step, losses in trial.observations[:n]:
            if not np.isfinite(losses).all():
                continue  # no evidence (the contract)
            reward = alpha * reward + (1.0 - alpha) * losses / np.clip(pi, 1e-12, None)
            eps = exploration(step, self.k)
            logits = prior + lr * eps * reward
            soft = np.exp(logits - logits.max())
            e = explore * eps
            pi = (1.0 - self.k * e) * soft / soft.sum() + e
        return pi
