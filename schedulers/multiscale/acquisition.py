"""Cost-aware acquisition targeted at ``(s*, m*)``: what a run at a cheaper fidelity is worth for the target.

The value of evaluating config ``x`` at fidelity ``(s, m)`` (a fresh run, or the continuation of a paused
one) is::

    value(x, s, m) = EI_target(x) * rho^2(x; s, m) / cost(s, m)

- ``EI_target(x)`` is the expected improvement of the latent target value ``f(x, s*, m*)`` over the
  incumbent (the best posterior mean at the target among evaluated configs): how much knowing the
  target value of ``x`` could be worth.
- ``rho^2(x; s, m) = Cov(f_T, y_sm)^2 / (Var(f_T) (Var(f_sm) + noise))`` under the *posterior* is the
  share of the remaining uncertainty about ``f(x, s*, m*)`` that one observation at ``(s, m)`` would
  remove (for Gaussians, the information gain is ``-log(1 - rho^2) / 2``). A fidelity whose outcome is
  already known (a repeat, or a curve point already reported) has ``rho^2`` near 0, so the scheduler
  climbs the ladder as the cheap rungs get explored.
- ``cost(s, m)`` comes from the problem's cost model (a continuation pays only its new steps plus the
  restart overhead).

This is the augmented-EI family (Huang et al. 2006; the EI-per-FLOP rule of the MFMS-GP paper) with the
fidelity correlation taken from the posterior instead of the prior: analytic, ``O(n^2)`` per point, so a
few thousand candidates cost tens of milliseconds.

The alternative (``acquisition="kg"``) is the discrete knowledge gradient at the target,
:func:`target_knowledge_gradient`: the expected improvement of the recommendation's score from one run,
per unit cost, over a reference set of evaluated configs, also analytic (BoTorch's qMFKG, with an inner
optimisation, measured 46 s per candidate here). It is measured against EI in bench/README.md ("Flagship
variants").

Shapes: ``X`` is ``n x d`` (target-frame config encodings); returns ``n`` vectors.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import ndtr

from schedulers.multiscale.features import FidelityEncoder
from schedulers.multiscale.surrogate import Posterior


class AcquisitionKind(str, enum.Enum):
    """How the scheduler values a run (see the module docstring)."""

    KNOWLEDGE_GRADIENT = "kg"   #: discrete knowledge gradient at the target, per unit cost
    TARGET_EI = "ei"            #: EI of the target value x rho^2, per unit cost (the default)


#: probabilists' Gauss-Hermite rule for E[g(Z)], Z ~ N(0, 1). Measured with 32 nodes on 30 random cases
#: of 33 lines: median relative error 1.6% (max 10%) against a 200,000-draw Monte Carlo, which is enough
#: to rank runs; 4 ms for 1,000 observations x 33 reference configs
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


@dataclass(frozen=True)
class Fidelity:
    """Run a config at ``size`` up to ``steps`` (from ``start_step``), for ``cost``."""

    size: str
    steps: int
    cost: float
    start_step: int = 0


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """``E[max(best - f, 0)]`` for ``f ~ N(mean, std^2)`` (minimisation); ``n`` -> ``n``."""
    std = np.maximum(np.asarray(std, dtype=float), 1e-12)
    z = (best - np.asarray(mean, dtype=float)) / std
    return std * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))


def probability_of_improvement(mean: float, std: float, best: float) -> float:
    """``P(f < best)`` for ``f ~ N(mean, std^2)``."""
    return float(ndtr((best - mean) / max(std, 1e-12)))


def target_ei(post: Posterior, encoder: FidelityEncoder, X: np.ndarray, best: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(EI, mean, std) of the latent target value for ``n x d`` configs."""
    mean, var = post.predict(encoder.at_target(X))
    std = np.sqrt(var)
    return expected_improvement(mean, std, best), mean, std


def fidelity_information(post: Posterior, encoder: FidelityEncoder, x: np.ndarray,
                         fidelities: Sequence[Fidelity]) -> np.ndarray:
    """``rho^2`` of one observation at each fidelity about ``f(x, s*, m*)``; ``k`` fidelities -> ``k``."""
    rows = [encoder.at_target(x[None, :])[0]] + [encoder.inputs(x, f.size, f.steps) for f in fidelities]
    _, cov = post.joint(np.asarray(rows))
    var_target = max(cov[0, 0], 1e-12)
    obs_var = np.maximum(np.diag(cov)[1:], 0.0) + post.noise
    return np.clip(cov[0, 1:] ** 2 / (var_target * obs_var), 0.0, 1.0)


def best_fidelity(post: Posterior, encoder: FidelityEncoder, x: np.ndarray, ei: float,
                  fidelities: Sequence[Fidelity], cost_power: float = 1.0) -> tuple[float, Fidelity]:
    """(value per cost, fidelity) maximising ``ei * rho^2 / cost ** cost_power`` for config ``x``.

    ``cost_power`` < 1 discounts the cost (see the scheduler's option of that name): ``rho^2`` is the
    information about one config, while a run near the target also sharpens the ranking of every config
    near it, which this myopic ratio does not count."""
    return best_by_value_per_cost(ei * fidelity_information(post, encoder, x, fidelities), fidelities,
                                  cost_power)


def recommendation_score(mean: np.ndarray, var: np.ndarray, risk: float) -> np.ndarray:
    """What the recommendation minimises over evaluated configs at the target: ``mean + risk * std``.

    The one home of the rule, shared by :meth:`MultiScaleCostAwareBO.recommend` and the knowledge
    gradient, so that runs are valued by how much they improve the config that will be recommended."""
    return np.asarray(mean, dtype=float) + risk * np.sqrt(np.maximum(var, 0.0))


def knowledge_gradient(mean: np.ndarray, std: np.ndarray, shift: np.ndarray, risk: float = 0.0) -> np.ndarray:
    """Expected decrease of ``min_i score_i`` from one observation, for ``o`` observations at once.

    ``mean``, ``std`` and ``shift`` are ``o x r``: for observation ``j``, the posterior mean and std of the
    ``r`` reference values it could change, and ``shift[j, i] = Cov(f_i, y_j) / sd(y_j)``, the move of
    mean ``i`` per unit of the observation's standardised outcome ``Z``. After it, mean ``i`` is
    ``mean + shift Z`` and its std ``sqrt(std^2 - shift^2)`` (known in advance), so with
    ``score = mean + risk * std`` (:func:`recommendation_score`)::

        KG_j = min_i score_ji - E_Z[min_i (mean_ji + shift_ji Z + risk * sqrt(std_ji^2 - shift_ji^2))]

    The expectation uses a 32-node Gauss-Hermite rule. ``min`` is concave in ``Z`` and the rule's weights
    are positive with zero mean, so for ``risk = 0`` the estimate is never negative (Jensen); with
    ``risk > 0`` it is clipped at 0. Returns ``o``."""
    mean, std, shift = (np.asarray(a, dtype=float) for a in (mean, std, shift))
    now = (mean + risk * std).min(axis=1)
    after_std = np.sqrt(np.maximum(std * std - shift * shift, 0.0))
    base = mean + risk * after_std                                  # o x r
    lines = base[:, :, None] + shift[:, :, None] * _GH_NODES[None, None, :]   # o x r x nodes
    expected_min = lines.min(axis=1) @ _GH_WEIGHTS
    return np.maximum(now - expected_min, 0.0)


def target_knowledge_gradient(post: Posterior, encoder: FidelityEncoder, reference: np.ndarray,
                              configs: np.ndarray, fidelities: Sequence[Sequence[Fidelity]],
                              risk: float = 0.0) -> list[np.ndarray]:
    """KG of one observation of config ``configs[c]`` at each of ``fidelities[c]``, about the target.

    The reference values are the target values of the ``a x d`` configs ``reference`` (the configs a
    recommendation may pick) plus the candidate's own target value (an observation may reveal that the
    candidate itself is the best). This is the discrete knowledge gradient (Frazier et al. 2009) taken at
    the target fidelity, as in misoKG / cfKG (Poloczek et al. 2017; Wu et al. 2019): unlike
    ``EI x rho^2``, it values a run by how much it can change *which config is recommended and how well
    that config is known at the target*, so runs at or near the target around the incumbent are worth
    what they are. Analytic, with no inner optimisation: one cross-covariance of ``(a + c) x o``, then
    ``o x (a + 1) x 32`` minima. Returns a ``k_c`` vector per config."""
    counts = [len(f) for f in fidelities]
    if sum(counts) == 0:
        return [np.zeros(0) for _ in counts]
    owner = np.repeat(np.arange(len(counts)), counts)
    rows = np.asarray([encoder.inputs(configs[c], f.size, f.steps)
                       for c, fids in enumerate(fidelities) for f in fids])
    targets = encoder.at_target(np.vstack([reference, configs]))
    mean_t, var_t, cov, var_obs = post.cross(targets, rows)          # (a + c), (a + c), (a + c) x o, o
    sd_obs = np.sqrt(var_obs + post.noise)
    a = len(reference)
    own = a + owner
    cols = np.arange(len(owner))
    mean = np.column_stack([np.broadcast_to(mean_t[:a], (len(owner), a)), mean_t[own]])
    std = np.sqrt(np.column_stack([np.broadcast_to(var_t[:a], (len(owner), a)), var_t[own]]))
    shift = np.column_stack([cov[:a].T, cov[own, cols]]) / sd_obs[:, None]
    kg = knowledge_gradient(mean, std, shift, risk)
    return np.split(kg, np.cumsum(counts)[:-1])


def best_by_value_per_cost(values: np.ndarray, fidelities: Sequence[Fidelity],
                           cost_power: float = 1.0) -> tuple[float, Fidelity]:
    """(value per cost, fidelity) maximising ``value / cost ** cost_power``."""
    scores = np.asarray(values, dtype=float) / np.asarray([f.cost for f in fidelities]) ** cost_power
    i = int(np.argmax(scores))
    return float(scores[i]), fidelities[i]
