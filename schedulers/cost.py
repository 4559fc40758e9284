"""Cost models c(s, m): what a training segment costs, in arbitrary but consistent units.

The cost model is its own pluggable piece (as in BoTorch): schedulers use it to pick fidelities, to weigh
acquisition per unit cost, to decide continue / pause / stop and to account the budget; the execution layer
asks it which resources a size needs.

Continuation from a checkpoint is charged only for the new steps: ``segment_cost(s0, s1, m)`` =
``cost(s1, m) - cost(s0, m)`` plus the per-segment overhead when ``s0 > 0``.
"""

from __future__ import annotations

import abc
import ast
import math
import operator
from typing import Any, Mapping

import numpy as np

from schedulers.errors import InvalidProblemError
from schedulers.problem import ModelSize


class CostModel(abc.ABC):
    """Contract: ``cost(steps, size) > 0``, non-decreasing in ``steps`` and in ``size.params``."""

    overhead: float = 0.0

    @abc.abstractmethod
    def cost(self, steps: float, size: ModelSize) -> float:
        """Cost of training a fresh model of ``size`` for ``steps`` steps (overhead included)."""

    def segment_cost(self, start_step: float, end_step: float, size: ModelSize) -> float:
        """Cost of continuing a model of ``size`` from ``start_step`` to ``end_step``."""
        if end_step <= start_step:
            return 0.0
        if start_step <= 0:
            return self.cost(end_step, size)
        return self.cost(end_step, size) - self.cost(start_step, size) + self.overhead

    def piece_cost(self, segment_start: float, previous: float, step: float, size: ModelSize) -> float:
        """Cost of the piece from ``previous`` to ``step`` of a segment that started at ``segment_start``:
        what a report at ``step`` adds to the bill. The segment's restart overhead falls on its first
        piece, so the pieces of a segment add up to :meth:`segment_cost`."""
        return self.segment_cost(segment_start, step, size) - self.segment_cost(segment_start, previous, size)

    def observe(self, steps: float, size: ModelSize, cost: float) -> None:
        """Take a measured cost (e.g. wall-clock seconds). Static models ignore it."""

    def resources(self, size: ModelSize) -> dict[str, float]:
        """Resources one trial of ``size`` asks for: the ladder's declaration."""
        return {"cpu": size.cpus, "gpu": size.gpus}


class AnalyticCost(CostModel):
    """About ``6 * params * tokens`` FLOPs plus a fixed overhead, with ``tokens = steps * tokens_per_step``."""

    def __init__(self, tokens_per_step: float = 1.0, overhead: float = 0.0, scale: float = 1.0) -> None:
        if tokens_per_step <= 0 or overhead < 0 or scale <= 0:
            raise InvalidProblemError("analytic cost needs tokens_per_step > 0, overhead >= 0, scale > 0",
                                      field="cost")
        self.tokens_per_step = tokens_per_step
        self.overhead = overhead
        self.scale = scale

    def cost(self, steps: float, size: ModelSize) -> float:
        return self.scale * 6.0 * size.params * self.tokens_per_step * float(steps) + self.overhead


class TableCost(CostModel):
    """A user-declared table ``{size_name: cost_per_step}`` (linear in steps) plus overhead."""

    def __init__(self, per_step: Mapping[str, float], overhead: float = 0.0) -> None:
        if not per_step or any((not math.isfinite(v)) or v <= 0 for v in per_step.values()):
            raise InvalidProblemError("table cost needs a positive finite cost per step for each size",
                                      field="cost.table")
        self.per_step = dict(per_step)
        self.overhead = overhead

    def cost(self, steps: float, size: ModelSize) -> float:
        if size.name not in self.per_step:
            raise InvalidProblemError(f"cost table has no entry for size {size.name!r}", field="cost.table")
        return self.per_step[size.name] * float(steps) + self.overhead


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"log": math.log, "exp": math.exp, "sqrt": math.sqrt, "max": max, "min": min}


class FormulaCost(CostModel):
    """A user formula over ``steps`` and ``params`` (``+ - * / **``, log, exp, sqrt, min, max), e.g.
    ``"6 * params * steps * 2048 + 1e12"``. Parsed into an AST and evaluated without ``eval``."""

    def __init__(self, formula: str, overhead: float = 0.0) -> None:
        try:
            self._tree = ast.parse(formula, mode="eval")
        except SyntaxError as e:
            raise InvalidProblemError(f"cost formula does not parse: {e.msg}", field="cost.formula") from None
        self.formula = formula
        self.overhead = overhead
        probe = self._eval(self._tree.body, {"steps": 1.0, "params": 1.0})  # fail fast on unknown names
        if not isinstance(probe, (int, float)):
            raise InvalidProblemError("cost formula must evaluate to a number", field="cost.formula")

    def _eval(self, node: ast.AST, env: Mapping[str, float]) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise InvalidProblemError(f"cost formula: unknown name {node.id!r} (use steps, params)",
                                          field="cost.formula")
            return env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](self._eval(node.operand, env))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            return float(_FUNCS[node.func.id](*(self._eval(a, env) for a in node.args)))
        raise InvalidProblemError(f"cost formula: unsupported expression {ast.dump(node)[:60]}",
                                  field="cost.formula")

    def cost(self, steps: float, size: ModelSize) -> float:
        value = self._eval(self._tree.body, {"steps": float(steps), "params": float(size.params)})
        if not math.isfinite(value) or value <= 0:
            raise InvalidProblemError(f"cost formula gave {value} at steps={steps}, params={size.params}",
                                      field="cost.formula")
        return value + self.overhead


class LearnedCost(CostModel):
    """Learned online from measured costs (e.g. wall-clock seconds): least squares in log space,
    ``log c = a + b log(steps) + g log(params)``, using the prior model until ``min_points`` arrive.

    Within a :class:`~schedulers.problem.Problem` the model is *anchored* at the target fidelity: its
    predictions are rescaled so that ``cost(target)`` stays the prior's. The relative costs of fidelities,
    which drive fidelity choice and cost-weighted acquisition, come from the measurements, while budgets in
    units of one target run keep their meaning as the fit moves. Without an anchor it predicts in the
    measured units.

    ``prediction_error`` is the leave-one-out RMS error of log cost (a factor of ``exp(err)``), or ``None``
    while the prior is in use. Observing is O(1): the fit keeps the normal equations' running sums.
    """

    def __init__(self, prior: CostModel | None = None, min_points: int = 4) -> None:
        self.prior = prior or AnalyticCost()
        self.min_points = min_points
        self.overhead = self.prior.overhead
        self.anchor: tuple[float, ModelSize] | None = None
        self._rows: list[tuple[float, float, float]] = []
        self._gram = np.zeros((3, 3))
        self._moment = np.zeros(3)
        self._coef: np.ndarray | None = None
        self._error: float | None = None
        self._error_at = 0

    def observe(self, steps: float, size: ModelSize, cost: float) -> None:
        if steps <= 0 or not math.isfinite(cost) or cost <= 0:
            return
        row = (math.log(steps), math.log(size.params), math.log(cost))
        self._rows.append(row)
        x = np.array([1.0, row[0], row[1]])
        self._gram += np.outer(x, x)
        self._moment += x * row[2]
        if len(self._rows) >= self.min_points:
            self._coef = np.linalg.pinv(self._gram) @ self._moment

    @property
    def prediction_error(self) -> float | None:
        if self._coef is None:
            return None
        if self._error_at != len(self._rows):  # computed on demand: O(n)
            data = np.asarray(self._rows)
            a = np.column_stack([np.ones(len(data)), data[:, 0], data[:, 1]])
            inv = np.linalg.pinv(self._gram)
            leverage = np.einsum("ij,jk,ik->i", a, inv, a)
            loo = (data[:, 2] - a @ self._coef) / np.clip(1.0 - leverage, 1e-6, None)
            self._error, self._error_at = float(np.sqrt(np.mean(loo ** 2))), len(self._rows)
        return self._error

    def _fitted(self, steps: float, size: ModelSize) -> float:
        c = self._coef
        return math.exp(c[0] + c[1] * math.log(max(steps, 1e-9)) + c[2] * math.log(size.params))

    def cost(self, steps: float, size: ModelSize) -> float:
        if self._coef is None:
            return self.prior.cost(steps, size)
        value = self._fitted(steps, size)
        if self.anchor is not None:
            a_steps, a_size = self.anchor
            value *= self.prior.cost(a_steps, a_size) / self._fitted(a_steps, a_size)
        return float(value)


def make_cost_model(raw: Mapping[str, Any]) -> CostModel:
    """Build a cost model from its wire shape: ``{"kind": "analytic"|"table"|"formula"|"learned", ...}``."""
    kind = raw.get("kind", "analytic")
    opts = {k: v for k, v in raw.items() if k != "kind"}
    try:
        if kind == "analytic":
            return AnalyticCost(**opts)
        if kind == "table":
            return TableCost(**opts)
        if kind == "formula":
            return FormulaCost(**opts)
        if kind == "learned":
            prior = opts.pop("prior", None)
            return LearnedCost(prior=make_cost_model(prior) if prior else None, **opts)
    except TypeError as e:
        raise InvalidProblemError(f"cost model {kind!r}: {e}", field="cost") from None
    raise InvalidProblemError(f"unknown cost model kind {kind!r}; expected analytic, table, formula or learned",
                              field="cost.kind")
