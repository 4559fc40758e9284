"""Compute-optimal allocation from a fitted two-variable law, as in Hoffmann et al. (2022), section 3.3.

With ``L(N, D) = E + A/N^alpha + B/D^beta`` and compute ``C ~ 6 N D``, minimising L along ``N D = C/6``
gives the closed form::

    G = (alpha A / (beta B))^(1 / (alpha + beta))
    N_opt(C) = G (C/6)^(beta / (alpha + beta))
    D_opt(C) = G^-1 (C/6)^(alpha / (alpha + beta))

The same formula applied to every bootstrap optimum gives the intervals. When D is counted in steps
rather than tokens, ``C`` is in the matching unit (6 x parameters x steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from schedulers.scaling.errors import InvalidScalingDataError
from schedulers.scaling.estimates import Estimate, estimates
from schedulers.scaling.loss_law import LossLawFit

#: FLOPs per parameter per token of a forward + backward pass (Kaplan et al. 2020).
FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class ComputeOptimum:
    """The compute-optimal model size and data for budget ``compute``, and the loss the law predicts there."""

    compute: float
    n_opt: Estimate
    d_opt: Estimate
    loss: Estimate

    def to_dict(self) -> dict:
        return {"compute": float(self.compute), "N_opt": self.n_opt.to_dict(), "D_opt": self.d_opt.to_dict(),
                "loss": self.loss.to_dict()}


def _allocation(coef: np.ndarray, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``coef`` ``b x 5`` (E, A, alpha, B, beta), ``budgets`` ``c`` -> N_opt, D_opt, loss, each ``b x c``."""
    e, a, alpha, b, beta = (coef[:, [i]] for i in range(5))
    with np.errstate(all="ignore"):
        # a zero exponent (possible in a bootstrap resample) has no finite optimum: inf/nan, which the
        # percentile intervals skip
        g = (alpha * a / (beta * b)) ** (1.0 / (alpha + beta))
        half = budgets[None, :] / FLOPS_PER_PARAM_TOKEN
        n_opt = g * half ** (beta / (alpha + beta))
        d_opt = half ** (alpha / (alpha + beta)) / g
        loss = e + a / n_opt ** alpha + b / d_opt ** beta
    return n_opt, d_opt, loss


def compute_optimal(fit: LossLawFit, budgets: Iterable[float]) -> list[ComputeOptimum]:
    """N_opt(C), D_opt(C) and the loss there, with bootstrap intervals, for each compute budget C."""
    if len(fit.variables) != 2:
        raise InvalidScalingDataError("compute-optimal allocation needs a two-variable law L(N, D)",
                                      field="compute_budgets")
    c = np.asarray(list(budgets), dtype=float).reshape(-1)
    if not np.isfinite(c).all() or (c <= 0).any():
        raise InvalidScalingDataError("compute budgets must be finite and > 0", field="compute_budgets")
    point = [m[0] for m in _allocation(fit.form.coefficients(fit.theta), c)]
    boot = _allocation(fit.form.coefficients(fit.bootstrap_theta), c) if fit.bootstrap_theta.shape[0] else None
    out = []
    for i, ci in enumerate(c):
        n_e, d_e, l_e = (estimates(point[m][i], boot[m][:, i] if boot else np.empty(0), fit.level)[0]
                         for m in range(3))
        out.append(ComputeOptimum(float(ci), n_e, d_e, l_e))
    return out
