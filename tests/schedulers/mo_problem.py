"""A two-objective problem with a known Pareto front, and how close a scheduler's front comes to it.

Two parameters ``x`` and ``z`` in [0, 1]; at the target the objectives are ``f1 = x + z`` and
``f2 = (1 - x)^2 + z`` (both minimised) plus the same fidelity offset, so the front is ``z = 0``,
``f2 = (1 - f1)^2`` for ``f1`` in [0, 1]. Smaller models and shorter runs add
``0.3 (params / 1e6)^-0.3 + 1 / sqrt(step)`` to both objectives, plus a small model-size shift of the
trade-off (``0.05 (1 - size_rank)`` in ``x``), so cheap runs rank configs as the target does, nearly.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from schedulers import Problem
from schedulers.cost import AnalyticCost
from schedulers.objectives import ObjectiveDef, Objectives, hypervolume
from schedulers.problem import FidelityLadder, Target, sizes_from
from schedulers.space import SearchSpace

SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0},
         {"name": "z", "type": "float", "low": 0.0, "high": 1.0}]
SIZES = [("small", 1e6), ("medium", 4e6), ("large", 1.6e7)]
TARGET_STEPS = 64
#: the hypervolume reference point, relative to the target offset
REFERENCE = (1.1, 1.1)


def spec_dict(scheduler: str = "multiscale_bo", budget: float = 6.0, seed: int = 0,
              options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The study as the REST API takes it."""
    return {
        "name": "two-objectives",
        "objectives": [{"metric": "loss", "direction": "minimize"}, {"metric": "cost", "direction": "minimize"}],
        "space": SPACE,
        "fidelity": {"steps": {"min": 8, "max": TARGET_STEPS, "report_every": 8},
                     "sizes": [{"name": n, "params": p} for n, p in SIZES]},
        "target": {"steps": TARGET_STEPS, "size": "large"},
        "budget": {"max_cost": budget},
        "scheduler": {"name": scheduler, "seed": seed, "options": dict(options or {})},
    }


def make_problem(budget: float = 6.0) -> Problem:
    ladder = FidelityLadder(min_steps=8, max_steps=TARGET_STEPS, report_every=8, sizes=sizes_from(SIZES))
    return Problem(space=SearchSpace.from_dicts(SPACE), ladder=ladder, target=Target(TARGET_STEPS, "large"),
                   cost_model=AnalyticCost(), budget=budget,
                   objectives=Objectives((ObjectiveDef("loss"), ObjectiveDef("cost"))))


def offset(size_params: float, step: int) -> float:
    return 0.3 * (size_params / 1e6) ** -0.3 + 1.0 / math.sqrt(step)


def values(params: Mapping[str, Any], size_params: float, step: int) -> tuple[float, float]:
    """(loss, cost) of ``params`` at a fidelity."""
    rank = [p for _, p in SIZES].index(size_params)
    x = min(max(params["x"] + 0.05 * (len(SIZES) - 1 - rank), 0.0), 1.0)
    o = offset(size_params, step)
    return x + params["z"] + o, (1.0 - x) ** 2 + params["z"] + o


def target_values(params: Mapping[str, Any]) -> tuple[float, float]:
    return values(params, SIZES[-1][1], TARGET_STEPS)


def true_hypervolume() -> float:
    x = np.linspace(0.0, 1.0, 2001)
    o = offset(SIZES[-1][1], TARGET_STEPS)
    front = np.column_stack([x + o, (1 - x) ** 2 + o])
    return hypervolume(front, np.asarray(REFERENCE) + o)


def hypervolume_ratio(configs: list[Mapping[str, Any]]) -> float:
    """Hypervolume of the configs' true target values over the true front's."""
    if not configs:
        return 0.0
    o = offset(SIZES[-1][1], TARGET_STEPS)
    Y = np.asarray([target_values(c) for c in configs])
    return hypervolume(Y, np.asarray(REFERENCE) + o) / true_hypervolume()
