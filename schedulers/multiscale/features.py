"""Model inputs of the multi-scale surrogate: where a (config, size, steps) point lives for the GP.

A point is encoded as ``[x, u_m, u_s]`` (``d + 2`` columns): ``x`` the unit-cube encoding of the config
(:meth:`SearchSpace.encode`), ``u_m`` the log model size and ``u_s`` the log step count, both scaled so that
the smallest rung is 0 and the target is 1. The exponential-decay kernels over ``u_m`` and ``u_s`` expect
exactly this orientation (variance of the transient shrinking towards the target).

Optionally, a prior on how the optimum moves with model size (:class:`OptimumShift`, e.g. from a fitted
scaling law of the learning rate) aligns configs across sizes: a config run at size ``m`` is stored at
``x - shift(m)``, in the coordinates of the target size, so the GP compares each run with the target's
optimum rather than with its own size's.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem
from schedulers.space import ParamType

#: predicted optimal values (user units) of some numeric parameters for a model of ``params`` parameters
OptimumPrior = Callable[[float], Mapping[str, float]]


class OptimumShift:
    """Where the optimum of each numeric parameter sits at size ``m`` relative to the target size, in the
    unit-cube encoding: ``shift(m) = u(opt(m)) - u(opt(m*))`` (a ``d`` vector, zero at the target).

    ``prior`` is either a callable ``params -> {name: predicted optimal value}`` or a mapping
    ``{name: exponent}`` meaning ``opt(m) ~ m ** exponent`` for a log-scaled float/int parameter
    (e.g. ``{"lr": -0.5}``).
    """

    def __init__(self, problem: Problem, prior: OptimumPrior | Mapping[str, float]) -> None:
        space = problem.space
        self._dim = space.dim
        self._columns: dict[str, int] = {}
        start = 0
        for p in space.searched:
            if p.type in (ParamType.FLOAT, ParamType.INT):
                self._columns[p.name] = start
            start += p.width
        self._params = {p.name: p for p in space.searched}
        target_params = problem.ladder.size(problem.target.size).params
        if callable(prior):
            self._prior: OptimumPrior = prior
        else:
            exponents = dict(prior)
            for name in exponents:
                p = self._params.get(name)
                if p is None or name not in self._columns or not p.log:
                    raise InvalidProblemError(
                        f"optimum_shift exponent for {name!r} needs a log-scaled float/int parameter",
                        field="scheduler.options.optimum_shift")

            def _power_law(params: float) -> Mapping[str, float]:
                # the absolute level cancels in the shift; only the ratio to the target size matters
                return {n: math.exp(e * math.log(params / target_params)) for n, e in exponents.items()}

            self._prior = _power_law
        self._relative = not callable(prior)
        self._cache: dict[float, np.ndarray] = {}
        self._target_params = target_params

    def _unit(self, name: str, value: float) -> float:
        p = self._params[name]
        lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
        if hi == lo:
            return 0.0
        if p.log:
            return (math.log(max(value, 1e-300)) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)

    def __call__(self, params: float) -> np.ndarray:
        """The ``d`` shift vector for a model of ``params`` parameters."""
        if params in self._cache:
            return self._cache[params]
        shift = np.zeros(self._dim)
        at_m, at_target = self._prior(params), self._prior(self._target_params)
        for name, col in self._columns.items():
            if name in at_m and name in at_target:
                if self._relative:
                    # opt(m) / opt(m*) is a ratio: its log over the log range is the unit-cube shift
                    p = self._params[name]
                    shift[col] = math.log(at_m[name] / at_target[name]) / (
                        math.log(float(p.high)) - math.log(float(p.low)))  # type: ignore[arg-type]
                else:
                    shift[col] = self._unit(name, float(at_m[name])) - self._unit(name, float(at_target[name]))
        self._cache[params] = shift
        return shift


class FidelityEncoder:
    """Maps configs and fidelities to GP inputs ``n x (d + 2)`` and back (see the module docstring)."""

    def __init__(self, problem: Problem, optimum_shift: OptimumShift | None = None) -> None:
        self.problem = problem
        self.space = problem.space
        # a space of fixed parameters only still gets one (constant) config column for the kernel
        self.dim = max(problem.space.dim, 1)
        ladder, target = problem.ladder, problem.target
        self.target_index = ladder.index(target.size)
        #: the sizes a scheduler may train: the ladder up to and including the target size
        self.sizes = ladder.sizes[: self.target_index + 1]
        self._log_m0 = math.log(self.sizes[0].params)
        self._log_m_span = math.log(self.sizes[-1].params) - self._log_m0
        self.min_steps = max(1, min(ladder.min_steps, ladder.report_every))
        self.target_steps = target.steps
        self._log_s0 = math.log(self.min_steps)
        self._log_s_span = math.log(self.target_steps) - self._log_s0
        self.optimum_shift = optimum_shift

    # -- fidelity coordinates ------------------------------------------------------------------
    def u_size(self, size: str) -> float:
        if self._log_m_span <= 0:
            return 1.0
        return (math.log(self.problem.ladder.size(size).params) - self._log_m0) / self._log_m_span

    def u_steps(self, steps: float) -> float:
        if self._log_s_span <= 0:
            return 1.0
        return max(0.0, (math.log(max(steps, 1.0)) - self._log_s0) / self._log_s_span)

    def step_grid(self, ratio: float = 2.0) -> list[int]:
        """Geometric step budgets from the smallest report step up to the target steps (both included).
        The budgets below the target are rounded to multiples of ``report_every`` so that a budget
        coincides with a report; the target steps are kept exactly, whatever ``report_every`` is (a
        segment always reports at its end): rounded, Step Law's target of 569 steps with reports every
        40 became 560, and no trial ever reached the target fidelity."""
        every = self.problem.ladder.report_every
        grid, s = [], float(self.min_steps)
        while s < self.target_steps:
            grid.append(int(s))
            s *= ratio
        snapped = {max(every, int(round(g / every)) * every) for g in grid}
        return sorted({g for g in snapped if g < self.target_steps} | {self.target_steps})

    def step_bucket(self, step: int) -> int:
        """Octave of ``step`` above the smallest report step: curves are subsampled one point per octave."""
        return int(math.floor(math.log2(max(step, 1) / self.min_steps) + 1e-9))

    # -- configs -------------------------------------------------------------------------------
    def shift(self, size: str) -> np.ndarray:
        if self.optimum_shift is None or self.space.dim == 0:
            return np.zeros(self.dim)
        return self.optimum_shift(self.problem.ladder.size(size).params)

    def aligned_x(self, params: Mapping[str, Any], size: str) -> np.ndarray:
        """Config run at ``size`` -> its ``d`` coordinates in the target size's frame."""
        if self.space.dim == 0:
            return np.full(1, 0.5)
        return self.space.encode([params])[0] - self.shift(size)

    def config_at(self, x: np.ndarray, size: str) -> dict[str, Any]:
        """Target-frame coordinates ``x`` -> the config to run at ``size`` (shifted, then snapped)."""
        x = np.clip(x + self.shift(size), 0.0, 1.0)[: self.space.dim]
        return self.space.decode(x[None, :])[0]

    def inputs(self, x: np.ndarray, size: str, steps: float) -> np.ndarray:
        """One GP input row ``d + 2``."""
        return np.concatenate([x, [self.u_size(size), self.u_steps(steps)]])

    def at_fidelities(self, X: np.ndarray, u_m: np.ndarray | float, u_s: np.ndarray | float) -> np.ndarray:
        """``n x d`` configs at fidelities ``(u_m, u_s)`` (scalars or ``n`` arrays) -> ``n x (d + 2)``."""
        n = X.shape[0]
        return np.column_stack([X, np.broadcast_to(u_m, (n,)), np.broadcast_to(u_s, (n,))])

    def at_target(self, X: np.ndarray) -> np.ndarray:
        return self.at_fidelities(X, self.u_size(self.problem.target.size), self.u_steps(self.target_steps))
