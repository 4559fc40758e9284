"""``steplaw``: the Step Law dense sweep (Li et al. 2025, arXiv:2503.04715) as a tabular problem.

1,911 real pre-training runs of dense decoder-only models in ``$DATA/steplaw/dense_lr_bs_loss.csv``: about
12 learning rates x 10 batch sizes in each of 17 (N, D) cells, 5 model sizes N. As a tuning problem:

- x = (lr, bs), both ordinal on the table's grids: lr on its sqrt(2) grid (the CSV spells some values with
  different rounding, e.g. 3.45e-4 and 3.453e-4; they are merged), bs in sequences of 2,048 tokens;
- model sizes = the five N values; one "step" = 1e8 training tokens (s = D / 1e8, so D = 4e9 is step 40);
- cost = 6 N D (``AnalyticCost`` with 1e8 tokens per step); target = the largest cell, N = 1.07e9 at
  D = 5.69e10 (step 569).

How values are read from the table:

- missing (lr, bs) points of a cell are filled with the nearest measured run of the same cell in
  (log lr, log bs) (Euclidean);
- the table holds only final losses, so each (N, D) cell is its own training budget. A trial reports at its
  size's cells (``report_steps``); at a step between two cells the value is interpolated linearly in log D
  between them, and outside a size's cells it is extrapolated linearly in log D from the two nearest cells.
  Continuing a trial past a cell is therefore an approximation: a real run with a longer schedule would not
  pass through the shorter run's final loss;
- observations are the raw final ``loss`` (real run-to-run noise, diverged runs included); the target value
  is the ``smooth loss`` (the paper's target); the best known target value is the smallest smooth loss
  measured in the target cell.

The nearest-run fill and the interpolation between cells make the problem easier than a real sweep (a
point never run still gets a plausible value, and a trial passes through a size's cells paying only for
the increment). ``steplaw:strict`` (:attr:`Mode.STRICT`) reads only what was measured:

- a report is a measured run: at a step that is not one of the size's cells, or at an (lr, bs) point the
  cell did not measure, the run is a failed one (``evaluate`` returns NaN, which the scheduler takes as a
  divergence: the trial fails, its earlier reports stay as evidence);
- every report is a fresh run of that cell's length, since no run of the table continues another one:
  :class:`FreshRunCost` charges a piece ending at step ``s`` the whole ``cost(s)``, not ``cost(s) -
  cost(previous)``, so a resumed trial pays the whole run and a segment passing several cells pays each;
- the target value is the measured smooth loss of the target cell; a recommendation at a point the target
  cell did not measure is NaN there, which the harness grades as a diverged recommendation (infinite
  regret). The best known target value is the same as the default mode's.

The default mode (:attr:`Mode.FILLED`, plain ``steplaw``) is unchanged.
"""

from __future__ import annotations

import csv
import enum
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bench.problems.base import BenchmarkProblem, ProblemError, data_root, require_files
from schedulers.cost import AnalyticCost
from schedulers.problem import FidelityLadder, ModelSize, Problem, Target
from schedulers.space import SearchSpace

FILE = "dense_lr_bs_loss.csv"
TOKENS_PER_STEP = 1e8


def _size_name(n: float) -> str:
    return f"N{n / 1e9:.2f}B" if n >= 1e9 else f"N{n / 1e6:.0f}M"


class Mode(str, enum.Enum):
    """How the table's gaps are read (module docstring); the value is the ``steplaw:<mode>`` spelling."""

    FILLED = "filled"    # nearest-run fill, interpolation between cells, increments charged
    STRICT = "strict"    # measured runs only, each report a fresh run


class FreshRunCost(AnalyticCost):
    """The analytic 6 N D cost where every report is a fresh run of its own length: ``segment_cost(s0, s1,
    m)`` is ``cost(s1, m)`` plus ``cost(c, m)`` for each of ``m``'s reporting cells ``c`` strictly between
    ``s0`` and ``s1``.

    The cells are needed because the harness reports a segment at every reporting step it passes: were the
    segment charged ``cost(s1)`` alone, its pieces (``piece_cost``, derived from ``segment_cost``) would
    charge the increment ``cost(c2) - cost(c1)`` between two cells, the very discount strict mode removes.
    With the cells counted, the piece ending at a report ``s`` costs ``cost(s)`` exactly and the pieces
    of a segment still add up to its ``segment_cost``. A segment reaching one cell costs ``cost(s1)``.
    It stays an :class:`AnalyticCost` (same ``cost``, same ``tokens_per_step``) because the lr/bs law
    baselines read D in tokens from it.
    """

    def __init__(self, cells: Mapping[str, list[int]], tokens_per_step: float = 1.0, overhead: float = 0.0,
                 scale: float = 1.0) -> None:
        super().__init__(tokens_per_step=tokens_per_step, overhead=overhead, scale=scale)
        self.cells = {name: sorted(steps) for name, steps in cells.items()}

    def segment_cost(self, start_step: float, end_step: float, size: ModelSize) -> float:
        if end_step <= start_step:
            return 0.0
        passed = [c for c in self.cells.get(size.name, ()) if start_step < c < end_step]
        return sum(self.cost(c, size) for c in passed) + self.cost(end_step, size)


class StepLaw(BenchmarkProblem):
    """The Step Law table as a multi-scale tuning problem (module docstring)."""

    name = "steplaw"

    def __init__(self, data_dir: str | Path | None = None, mode: str | Mode = Mode.FILLED) -> None:
        super().__init__()
        try:
            self.mode = Mode(mode)
        except ValueError:
            raise ProblemError(f"steplaw mode must be one of {[m.value for m in Mode]}, got {mode!r}") from None
        # the plain name stays the default mode's, so earlier records and tables keep theirs
        self.name = "steplaw" if self.mode is Mode.FILLED else f"steplaw:{self.mode.value}"
        self.folder = require_files(data_root(data_dir) / "steplaw", (FILE,), self.name)
        rows = list(csv.DictReader((self.folder / FILE).open()))
        # lr grid: merge spellings of the same sqrt(2)-grid point by their half-octave index
        by_index: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            by_index[round(2 * math.log2(float(r["lr"])))].append(float(r["lr"]))
        self.lr_index = {k: i for i, k in enumerate(sorted(by_index))}
        self.lrs = [float(f"{max(set(v), key=v.count):.4g}") for _, v in sorted(by_index.items())]
        self.bss = sorted({int(r["bs"]) for r in rows})
        self.sizes = sorted({float(r["N"]) for r in rows})
        # (N, step) -> {(lr index, bs index): (raw loss, smooth loss)}
        cells: dict[tuple[float, int], dict[tuple[int, int], tuple[float, float]]] = defaultdict(dict)
        for r in rows:
            key = (float(r["N"]), int(round(float(r["D"]) / TOKENS_PER_STEP)))
            point = (self.lr_index[round(2 * math.log2(float(r["lr"])))], self.bss.index(int(r["bs"])))
            cells[key][point] = (float(r["loss"]), float(r["smooth loss"]))
        self.cell_steps = {n: sorted(s for (m, s) in cells if m == n) for n in self.sizes}
        self.target_n = self.sizes[-1]
        self.target_step = self.cell_steps[self.target_n][-1]
        self.measured = {k: dict(v) for k, v in cells.items()}
        self.raw, self.smooth = self._fill(cells)

    def _fill(self, cells) -> tuple[dict[tuple[float, int], np.ndarray], dict[tuple[float, int], np.ndarray]]:
        """Dense ``len(lrs) x len(bss)`` grids per cell, missing points from the nearest measured run."""
        log_lr = np.log(self.lrs)
        log_bs = np.log(self.bss)
        raw, smooth = {}, {}
        for key, points in cells.items():
            measured = np.array(list(points))
            values = np.array([points[tuple(p)] for p in measured])
            coords = np.column_stack([log_lr[measured[:, 0]], log_bs[measured[:, 1]]])
            grid = np.array([(a, b) for a in log_lr for b in log_bs])
            nearest = np.argmin(((grid[:, None, :] - coords[None, :, :]) ** 2).sum(-1), axis=1)
            raw[key] = values[nearest, 0].reshape(len(self.lrs), len(self.bss))
            smooth[key] = values[nearest, 1].reshape(len(self.lrs), len(self.bss))
        return raw, smooth

    def _build(self) -> Problem:
        space = SearchSpace.from_dicts([{"name": "lr", "type": "ordinal", "values": self.lrs},
                                        {"name": "bs", "type": "ordinal", "values": self.bss}])
        all_steps = [s for steps in self.cell_steps.values() for s in steps]
        ladder = FidelityLadder(min(all_steps), max(all_steps), min(all_steps),
                                tuple(ModelSize(_size_name(n), n) for n in self.sizes))
        cost = (FreshRunCost({_size_name(n): steps for n, steps in self.cell_steps.items()},
                             tokens_per_step=TOKENS_PER_STEP) if self.mode is Mode.STRICT
                else AnalyticCost(tokens_per_step=TOKENS_PER_STEP))
        return Problem(space, ladder, Target(self.target_step, _size_name(self.target_n)), cost)

    def report_steps(self, size: str) -> list[int]:
        return list(self.cell_steps[self.problem.ladder.size(size).params])

    def _point(self, params: Mapping[str, Any]) -> tuple[int, int]:
        lr = float(params["lr"])
        i = int(np.argmin([abs(math.log(lr / v)) for v in self.lrs]))
        return i, self.bss.index(int(params["bs"]))

    def _read(self, table, params: Mapping[str, Any], n: float, step: float) -> float:
        i, j = self._point(params)
        steps = self.cell_steps[n]
        values = [float(table[(n, s)][i, j]) for s in steps]
        if len(steps) == 1:
            return values[0]
        x = math.log(step)
        logs = [math.log(s) for s in steps]
        k = int(np.clip(np.searchsorted(logs, x) - 1, 0, len(steps) - 2))
        w = (x - logs[k]) / (logs[k + 1] - logs[k])
        return values[k] + w * (values[k + 1] - values[k])

    def _measured(self, params: Mapping[str, Any], n: float, step: float, column: int) -> float:
        """Strict mode's reading: the measured run of cell (n, step) at ``params``, NaN (a failed run) where
        the table has none (a step that is no cell of ``n``, or a point the cell did not measure)."""
        cell = self.measured.get((n, int(step))) if float(step).is_integer() else None
        run = None if cell is None else cell.get(self._point(params))
        return math.nan if run is None else run[column]

    def evaluate(self, params: Mapping[str, Any], size: str, step: int, seed: int) -> float:
        n = self.problem.ladder.size(size).params
        if self.mode is Mode.STRICT:
            return self._measured(params, n, float(step), 0)
        return self._read(self.raw, params, n, float(step))

    def target_value(self, params: Mapping[str, Any]) -> float:
        if self.mode is Mode.STRICT:
            return self._measured(params, self.target_n, float(self.target_step), 1)
        return self._read(self.smooth, params, self.target_n, float(self.target_step))

    def cache_key(self) -> tuple[Any, ...]:
        return (*super().cache_key(), str(self.folder.resolve()), self.mode.value)

    def _compute_best_target_value(self) -> float:
        return min(v[1] for v in self.measured[(self.target_n, self.target_step)].values())
