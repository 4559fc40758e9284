"""A synthetic multi-scale tuning problem with a known optimum, and an in-process executor for it.

``f(x, s, m) = E + A (m / m0)^-a + B (s / s0)^-b + g(u) (1 + C (s0 / s)^0.5)`` where ``u`` is the
unit-cube encoding of the config and ``g(u) = sum_j w_j (u_j - u*_j)^2``: a bowl whose minimiser ``u*``
does not move with size or steps, on top of a Chinchilla-style scaling law; config differences are larger
early in training. Each report carries Gaussian noise of standard deviation ``noise`` (seeded by the
config, size and step, so a run is reproducible). Configs with ``lr`` in the top 5% of its range diverge
(NaN) after 300 steps. Used by the flagship's tests and the latency benchmark; deterministic and cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from schedulers.base import Decision, Scheduler
from schedulers.cost import AnalyticCost
from schedulers.problem import FidelityLadder, Problem, Target, sizes_from
from schedulers.space import SearchSpace

SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {"name": "warmup", "type": "float", "low": 0.0, "high": 1.0},
    {"name": "layers", "type": "int", "low": 1, "high": 16},
]
_SPACE = SearchSpace.from_dicts(SPACE)


@dataclass(frozen=True)
class SyntheticMultiScale:
    """The objective (minimised) and its :class:`Problem`; optimum ``u*`` = ``optimum`` for every size."""

    optimum: tuple[float, ...] = (0.6, 0.3, 0.45)
    weights: tuple[float, ...] = (2.0, 1.0, 1.0)
    min_steps: int = 100
    max_steps: int = 3200
    sizes: tuple[tuple[str, float], ...] = (("S", 1e6), ("M", 4e6), ("L", 16e6), ("XL", 64e6))
    noise: float = 0.01

    def problem(self) -> Problem:
        ladder = FidelityLadder(min_steps=self.min_steps, max_steps=self.max_steps,
                                report_every=self.min_steps, sizes=sizes_from(self.sizes))
        return Problem(space=SearchSpace.from_dicts(SPACE), ladder=ladder,
                       target=Target(steps=self.max_steps, size=self.sizes[-1][0]),
                       cost_model=AnalyticCost(tokens_per_step=1.0))

    def optimal_value(self, steps: int, params: float) -> float:
        """``f`` at the optimum config for ``(steps, params)``."""
        m0 = self.sizes[0][1]
        return 1.5 + 1.0 * (params / m0) ** -0.3 + 2.0 * (steps / self.min_steps) ** -0.5

    def __call__(self, config: Mapping[str, Any], steps: int, size: str) -> float:
        u = _SPACE.encode([config])[0]
        if u[0] > 0.95 and steps > 300:
            return math.nan
        params = dict(self.sizes)[size]
        g = float(np.sum(np.asarray(self.weights) * (u - np.asarray(self.optimum)) ** 2))
        value = self.optimal_value(steps, params) + g * (1.0 + 2.0 * (self.min_steps / steps) ** 0.5)
        if self.noise > 0:
            seed = [int(v) for v in np.round(u * 1e6)] + [int(steps), int(params)]
            value += self.noise * float(np.random.default_rng(seed).standard_normal())
        return value

    def target_value(self, config: Mapping[str, Any]) -> float:
        """The noise-free value at the target: what a tuner is judged on."""
        return SyntheticMultiScale(self.optimum, self.weights, self.min_steps, self.max_steps, self.sizes,
                                   noise=0.0)(config, self.max_steps, self.sizes[-1][0])

    @property
    def best_target_value(self) -> float:
        return self.optimal_value(self.max_steps, self.sizes[-1][1])


def run_sequential(scheduler: Scheduler, objective: SyntheticMultiScale, budget: float) -> None:
    """Drive ``scheduler`` with one in-process worker until it spent ``budget`` cost units: ask for a paused
    trial to resume first, else a new one; report every ``report_every`` steps until the decision is not
    CONTINUE or the segment's budget is reached."""
    every = scheduler.ladder.report_every
    while scheduler.cost_spent < budget:
        s = scheduler.resume()
        if s is None:
            batch = scheduler.suggest(1)
            if not batch:
                return
            s = batch[0]
        step = s.start_step
        while step < s.steps:
            step = min(step + every, s.steps)
            decision = scheduler.report(s.trial_id, step, objective(s.params, step, s.size))
            if decision is not Decision.CONTINUE:
                break
        if not scheduler.trial(s.trial_id).state.is_final:
            scheduler.complete(s.trial_id)
