"""The benchmark-problem interface: what the simulated cluster needs to know about one tuning problem.

One small class per problem (Optuna-style extension point). A problem

- builds the :class:`schedulers.Problem` every strategy sees (search space, fidelity ladder, target, cost
  model): :meth:`BenchmarkProblem._build`, exposed once-built as :attr:`BenchmarkProblem.problem`;
- answers a trial's reports: :meth:`evaluate` gives the observed (noisy, where the problem has noise) value
  of ``params`` trained at ``size`` for ``step`` steps; ``seed`` names the trial's noise stream, so the
  same (params, size, step, seed) always gives the same value;
- grades recommendations: :meth:`target_value` is the noiseless value at the target fidelity (the metric's
  ground truth, never charged to the budget) and :attr:`best_target_value` the best known one (known in
  closed form, or computed once by dense search / optimisation and cached in memory for the process);
- says where trials report: :meth:`report_steps` (default: every ``ladder.report_every`` steps).

Values are in the problem's direction (``problem.direction``); :meth:`regret` turns a target value into the
regret the benchmark reports, in the problem's :attr:`regret_unit`: by default relative regret in percent of
:attr:`best_target_value` (:meth:`relative_regret`); a problem whose values are already percentages (a
validation error in %) reports the gap itself, in percentage points.

Problems that read benchmark data take its folder as a parameter (``data_dir``); :func:`data_root` gives
the default (env ``SCALELADDER_BENCHDATA``, else ``../shared/benchdata`` next to the repository). Missing
data raises :class:`MissingDataError` naming the path and the variable to set. The data is never copied
into the repository.
"""

from __future__ import annotations

import abc
import enum
import math
import os
from pathlib import Path
from typing import Any, Mapping

from schedulers.problem import Direction, Problem

#: best known target values, computed once per process: {cache_key: value}
_BEST_TARGET_CACHE: dict[tuple[Any, ...], float] = {}

DATA_ENV = "SCALELADDER_BENCHDATA"


class ProblemError(Exception):
    """Base class of the errors raised by benchmark problems."""


class MissingDataError(ProblemError, FileNotFoundError):
    """A problem's data files are not where they were looked for."""


class UnknownProblemError(ProblemError, ValueError):
    """A problem name (or ``module:attribute``) that does not resolve to a benchmark problem."""


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``data_dir`` if given, else ``$SCALELADDER_BENCHDATA``, else
    ``../shared/benchdata`` relative to the repository root."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "benchdata"


def require_files(folder: Path, names: tuple[str, ...], problem: str) -> Path:
    """``folder`` if it holds every file in ``names``; otherwise a :class:`MissingDataError` that says how
    to point the benchmark at the data."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingDataError(
            f"problem {problem!r} needs {', '.join(missing)} in {folder}, which is missing; pass --data DIR "
            f"or set {DATA_ENV} to the benchmark data folder (it is never committed to the repository)")
    return folder


class RegretUnit(str, enum.Enum):
    """How a problem's regret is expressed (recorded with each run as its value)."""

    RELATIVE_PERCENT = "relative regret in % of the best known target value"
    PERCENTAGE_POINTS = "percentage points above the best known target value"


class BenchmarkProblem(abc.ABC):
    """Base class of every benchmark problem. See the module docstring for the contract."""

    #: short name used in result files, tables and plots
    name: str = "problem"
    #: what :meth:`regret` returns
    regret_unit: RegretUnit = RegretUnit.RELATIVE_PERCENT

    def __init__(self) -> None:
        self._problem: Problem | None = None

    # ---------------------------------------------------------------- what the strategies see
    @property
    def problem(self) -> Problem:
        """The scheduler-facing problem (built once). Callers that let a strategy mutate it (e.g. a learned
        cost model) should deep-copy it first."""
        if self._problem is None:
            self._problem = self._build()
        return self._problem

    @abc.abstractmethod
    def _build(self) -> Problem:
        """Build the space, ladder, target and cost model."""

    def report_steps(self, size: str) -> list[int]:
        """Steps at which a trial of ``size`` reports on its way to the ladder's maximum."""
        return self.problem.ladder.report_steps

    # ---------------------------------------------------------------- what the cluster observes
    @abc.abstractmethod
    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        """Observed value of ``params`` trained at ``size`` for ``step`` steps (noise stream ``seed``).
        May be non-finite (a diverged run)."""

    # ---------------------------------------------------------------- how recommendations are graded
    @abc.abstractmethod
    def target_value(self, params: Mapping[str, Any]) -> float:
        """Noiseless value of ``params`` at the target fidelity."""

    @abc.abstractmethod
    def _compute_best_target_value(self) -> float:
        """The best known target value (closed form, or a dense search / optimisation)."""

    def cache_key(self) -> tuple[Any, ...]:
        """Identifies this problem's best-known value in the in-memory cache; include every option that
        changes the target function."""
        return (type(self).__module__, type(self).__qualname__, self.name)

    @property
    def best_target_value(self) -> float:
        key = self.cache_key()
        if key not in _BEST_TARGET_CACHE:
            _BEST_TARGET_CACHE[key] = float(self._compute_best_target_value())
        return _BEST_TARGET_CACHE[key]

    def relative_regret(self, value: float) -> float:
        """Percent regret of a target value against the best known one (``inf`` for a non-finite value)."""
        if not math.isfinite(value):
            return math.inf
        best = self.best_target_value
        gap = value - best if self.problem.direction is Direction.MINIMIZE else best - value
        return 100.0 * gap / max(abs(best), 1e-12)

    def regret(self, value: float) -> float:
        """Regret of a target value in :attr:`regret_unit` (``inf`` for a non-finite value); the
        thresholds of the benchmark's tables (10 / 5 / 2 / 1 / 0.25) are in this unit."""
        if self.regret_unit is RegretUnit.RELATIVE_PERCENT:
            return self.relative_regret(value)
        if not math.isfinite(value):
            return math.inf
        best = self.best_target_value
        return value - best if self.problem.direction is Direction.MINIMIZE else best - value

    def describe(self) -> str:
        """One line for the summary: what the problem is and its target."""
        p = self.problem
        return (f"{self.name}: {p.space.dim}-d encoded space, {len(p.ladder.sizes)} model size(s), steps "
                f"{p.ladder.min_steps}..{p.ladder.max_steps}, target {p.target.size} at {p.target.steps} steps, "
                f"{p.direction.value}, best known target value {self.best_target_value:.6g}")
