"""Scheduler registry: names (as used by the REST API, the CLI and the benchmark) -> classes."""

from __future__ import annotations

import importlib
from typing import Any

from schedulers.base import Scheduler
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

# name -> "module:Class"; imported lazily so a light caller never pays for BoTorch.
SCHEDULERS: dict[str, str] = {
    "random": "schedulers.random_search:RandomSearch",
    "asha": "schedulers.asha:ASHA",
    "hyperband": "schedulers.hyperband:Hyperband",
    "gp_target": "schedulers.gp_target:GPTarget",
    "multiscale_bo": "schedulers.multiscale.scheduler:MultiScaleCostAwareBO",
}


def scheduler_names() -> list[str]:
    return sorted(SCHEDULERS)


def scheduler_class(name: str) -> type[Scheduler]:
    try:
        path = SCHEDULERS[name]
    except KeyError:
        raise InvalidProblemError(f"unknown scheduler {name!r}; known: {scheduler_names()}",
                                  field="scheduler.name") from None
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def make_scheduler(name: str, problem: Problem, seed: int = 0, **options: Any) -> Scheduler:
    return scheduler_class(name)(problem, seed=seed, **options)
