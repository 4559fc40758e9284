"""A toy benchmark problem that lives outside ``bench/``: it plugs in as ``tests.bench.toy_problem:ToyProblem``.

f(x, s, m) = (x - 0.3)^2 + 1 / s + 0.1 / m_rank, two sizes, steps 10..100 reported every 10; the best
target value is known exactly.
"""

from __future__ import annotations

from typing import Any, Mapping

from bench.problems.base import BenchmarkProblem
from schedulers.cost import TableCost
from schedulers.problem import FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

SIZES = ("small", "big")


class ToyProblem(BenchmarkProblem):
    name = "toy"

    def __init__(self, overhead: float = 0.0) -> None:
        super().__init__()
        self.overhead = overhead

    def _build(self) -> Problem:
        space = SearchSpace.from_dicts([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
        ladder = FidelityLadder(10, 100, 10, (ModelSize("small", 1e6), ModelSize("big", 4e6)))
        return Problem(space, ladder, Target(100, "big"),
                       TableCost({"small": 0.25, "big": 1.0}, overhead=self.overhead))

    def _f(self, params: Mapping[str, Any], size: str, step: float) -> float:
        return (float(params["x"]) - 0.3) ** 2 + 1.0 / step + 0.1 / (SIZES.index(size) + 1)

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        return self._f(params, size, step)

    def target_value(self, params: Mapping[str, Any]) -> float:
        return self._f(params, "big", 100)

    def _compute_best_target_value(self) -> float:
        return 1.0 / 100 + 0.1 / 2


class OneSizeToyProblem(ToyProblem):
    """The toy problem with only its big size (cost 1 per step): a single-scale problem."""

    name = "toy_one_size"

    def _build(self) -> Problem:
        space = SearchSpace.from_dicts([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
        return Problem(space, FidelityLadder(10, 100, 10, (ModelSize("big", 4e6),)), Target(100, "big"),
                       TableCost({"big": 1.0}))


#: an instance works as well as the class
TOY = ToyProblem()
