"""The benchmark's own baselines: simple strategies from the literature that wrap no other package.

``BASELINES`` maps a name to ``"module:Class"`` (a :class:`schedulers.Scheduler` subclass, imported when
used); the harness lists them after the registered schedulers and before the peers
(:mod:`bench.harness.strategies`), and the generic scheduler contract suite runs against each
(``tests/bench/test_baselines_contract.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

from schedulers.base import Scheduler
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

BASELINES: dict[str, str] = {
    "top_k_low_fidelity": "bench.baselines.top_k:TopKLowFidelity",
    "law_transfer": "bench.baselines.law_transfer:LawTransfer",
    "steplaw_published": "bench.baselines.law_transfer:PublishedStepLaw",
}


def baseline_names() -> list[str]:
    return sorted(BASELINES)


def make_baseline(name: str, problem: Problem, seed: int = 0, **options: Any) -> Scheduler:
    try:
        module, attr = BASELINES[name].split(":")
    except KeyError:
        raise InvalidProblemError(f"unknown baseline {name!r}; known: {baseline_names()}",
                                  field="scheduler.name") from None
    return getattr(importlib.import_module(module), attr)(problem, seed=seed, **options)
