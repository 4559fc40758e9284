"""``hartmann``: BoTorch's ``AugmentedHartmann`` (6-d x plus one fidelity) with its fidelity mapped onto
(steps, model size).

AugmentedHartmann lowers the weight of its first basin by ``0.1 * (1 - fidelity)``; fidelity 1 is Hartmann6
(global minimum -3.32237). Here the fidelity of a run of ``s`` steps at ladder rung ``k`` of ``K`` is the
mean of its log-step fraction and its size fraction::

    fidelity(s, k) = 0.5 * log(s / s_min) / log(s_max / s_min) + 0.5 * k / (K - 1)

so only the target (s_max, largest size) has fidelity 1. Cost: 6 * params * steps (four sizes, 1e8..8e8
parameters). Observations carry Gaussian noise (``noise_std``); the target value is noiseless.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from botorch.test_functions.multi_fidelity import AugmentedHartmann

from bench.problems.base import BenchmarkProblem
from schedulers.cost import AnalyticCost
from schedulers.problem import FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

SIZES = (("h100M", 1e8), ("h200M", 2e8), ("h400M", 4e8), ("h800M", 8e8))
MIN_STEPS, MAX_STEPS, REPORT_EVERY = 10, 1_000, 50
DIMS = tuple(f"x{i}" for i in range(6))


class Hartmann(BenchmarkProblem):
    """AugmentedHartmann on the (steps, size) ladder (module docstring)."""

    name = "hartmann"

    def __init__(self, noise_std: float = 0.01) -> None:
        super().__init__()
        self.noise_std = float(noise_std)
        self.function = AugmentedHartmann(negate=False)

    def _build(self) -> Problem:
        space = SearchSpace.from_dicts([{"name": n, "type": "float", "low": 0.0, "high": 1.0} for n in DIMS])
        ladder = FidelityLadder(MIN_STEPS, MAX_STEPS, REPORT_EVERY, tuple(ModelSize(n, p) for n, p in SIZES))
        return Problem(space, ladder, Target(MAX_STEPS, SIZES[-1][0]), AnalyticCost())

    def fidelity(self, size: str, step: float) -> float:
        k = self.problem.ladder.index(size)
        s = min(max(float(step), MIN_STEPS), MAX_STEPS)
        return 0.5 * math.log(s / MIN_STEPS) / math.log(MAX_STEPS / MIN_STEPS) + 0.5 * k / (len(SIZES) - 1)

    def _value(self, params: Mapping[str, Any], fidelity: float) -> float:
        x = torch.tensor([[float(params[n]) for n in DIMS] + [fidelity]], dtype=torch.float64)
        with torch.no_grad():
            return float(self.function.evaluate_true(x)[0])

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        value = self._value(params, self.fidelity(size, step))
        if self.noise_std > 0:
            value += self.noise_std * float(np.random.default_rng([seed, int(step)]).standard_normal())
        return value

    def target_value(self, params: Mapping[str, Any]) -> float:
        return self._value(params, 1.0)

    def _compute_best_target_value(self) -> float:
        return float(AugmentedHartmann._optimal_value)
