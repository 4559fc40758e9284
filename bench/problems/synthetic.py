"""``synthetic_sp`` / ``synthetic_mup``: a synthetic scaling world whose answer is known in closed form.

Loss of hyperparameters x trained for s steps at width w (model size N(w) = 12 * layers * w^2, D = s * tokens
per step)::

    L(x, s, w) = E + A / N^alpha + B / D^beta                      (Chinchilla's fitted law)
               + bowl(log lr - log lr_opt(w, s))                     (asymmetric: too high hurts more)
               + c_wd (log10 wd - log10 wd_opt)^2 + c_wu (warmup - wu_opt)^2 + c_b2 (beta2 - b2_opt)^2

with ``lr_opt(w, s) = lr* (w*/w)^gamma (s*/s)^0.1``: under the standard parametrisation (``sp``,
``gamma = 1``) the optimal learning rate shrinks as 1/width, so what is best on a small model is wrong at the
target; under muP (``mup``, ``gamma = 0``) it stays put across widths (only the mild step dependence
remains, which vanishes at s*). A run whose learning rate exceeds 30 x lr_opt diverges (NaN), as a tuner
meets it. Observations carry Gaussian noise (``noise_std``, absolute); the target value is noiseless.

The best target value is exact: ``E + A / N*^alpha + B / D*^beta`` (the bowl is zero at lr*, wd_opt, ...,
all inside the search space).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from bench.problems.base import BenchmarkProblem
from schedulers.cost import AnalyticCost
from schedulers.problem import FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

E, A, ALPHA, B, BETA = 1.69, 406.4, 0.34, 410.7, 0.28  # Hoffmann et al. (2022), approach 3
LAYERS = 12
TOKENS_PER_STEP = 2 ** 19  # 256 sequences of 2,048 tokens
WIDTHS = (128, 256, 512, 1024, 2048)
MIN_STEPS, MAX_STEPS, REPORT_EVERY = 100, 10_000, 500
LR_STAR, WD_OPT, WU_OPT, B2_OPT = 1.2e-3, 0.1, 0.03, 0.98
C_LR_LOW, C_LR_HIGH, C_WD, C_WU, C_B2 = 0.06, 0.15, 0.02, 2.0, 4.0
DIVERGE_FACTOR = 30.0


def n_params(width: int) -> float:
    return 12.0 * LAYERS * width ** 2


class SyntheticScaling(BenchmarkProblem):
    """The synthetic scaling world (module docstring); ``parametrization`` is ``"sp"`` or ``"mup"``."""

    def __init__(self, parametrization: str = "sp", noise_std: float = 0.005) -> None:
        super().__init__()
        if parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {parametrization!r}")
        self.parametrization = parametrization
        self.gamma = 1.0 if parametrization == "sp" else 0.0
        self.noise_std = float(noise_std)
        self.name = f"synthetic_{parametrization}"

    def _build(self) -> Problem:
        sizes = tuple(ModelSize(f"w{w}", n_params(w), extra={"width": w}) for w in WIDTHS)
        space = SearchSpace.from_dicts([
            {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            {"name": "weight_decay", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
            {"name": "warmup", "type": "float", "low": 0.0, "high": 0.2},
            {"name": "beta2", "type": "float", "low": 0.9, "high": 0.999},
        ])
        return Problem(space, FidelityLadder(MIN_STEPS, MAX_STEPS, REPORT_EVERY, sizes),
                       Target(MAX_STEPS, f"w{WIDTHS[-1]}"), AnalyticCost(tokens_per_step=TOKENS_PER_STEP))

    def lr_opt(self, width: int, step: float) -> float:
        return LR_STAR * (WIDTHS[-1] / width) ** self.gamma * (MAX_STEPS / step) ** 0.1

    def loss(self, params: Mapping[str, Any], width: int, step: float) -> float:
        """The noiseless loss surface."""
        d = math.log(float(params["lr"])) - math.log(self.lr_opt(width, step))
        if d > math.log(DIVERGE_FACTOR):
            return math.nan
        bowl = (C_LR_HIGH if d > 0 else C_LR_LOW) * d * d
        bowl += C_WD * (math.log10(float(params["weight_decay"])) - math.log10(WD_OPT)) ** 2
        bowl += C_WU * (float(params["warmup"]) - WU_OPT) ** 2 + C_B2 * (float(params["beta2"]) - B2_OPT) ** 2
        return E + A / n_params(width) ** ALPHA + B / (step * TOKENS_PER_STEP) ** BETA + bowl

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        width = int(self.problem.ladder.size(size).extra["width"])
        value = self.loss(params, width, step)
        if self.noise_std > 0 and math.isfinite(value):
            value += self.noise_std * float(np.random.default_rng([seed, int(step)]).standard_normal())
        return value

    def target_value(self, params: Mapping[str, Any]) -> float:
        return self.loss(params, WIDTHS[-1], MAX_STEPS)

    def cache_key(self) -> tuple[Any, ...]:
        return (*super().cache_key(), self.parametrization)

    def _compute_best_target_value(self) -> float:
        return E + A / n_params(WIDTHS[-1]) ** ALPHA + B / (MAX_STEPS * TOKENS_PER_STEP) ** BETA
