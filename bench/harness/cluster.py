"""A simulated asynchronous cluster that drives one strategy on one problem, in simulated time.

``W`` workers; time is measured in units of one target-scale run (a worker spends one time unit on work
that costs one target run), so the spent cost at time ``t`` is the integral of the number of busy workers.

- A trial's segment runs from ``start_step`` to ``Suggestion.steps`` and reports at the problem's
  reporting steps in between and at its end. Each piece between two reports is one event: it occupies its
  worker for ``cost_model`` cost of those steps (plus the per-segment overhead on a resumed segment's first
  piece) divided by the target-run cost. The cost model is the harness's own copy of the benchmark
  problem's, taken when the cluster is built; what the strategy does to its copy changes nothing here.
- At an event the worker's trial reports ``(step, value)`` to the scheduler; CONTINUE runs the next piece,
  PAUSE and STOP end the segment (PAUSE keeps the checkpoint: the scheduler may ``resume`` it later), as do
  a CONTINUE at the segment's last step. Segments that end without STOP are ``complete``d.
- A free worker asks ``resume()`` first, then ``suggest(1)``; if neither gives work it idles until the next
  event (then every idle worker asks again).
- Spent cost counts busy workers only; ``end_time x workers`` is what a reserved cluster of ``W`` workers
  would have paid for the same run (idle workers cost too; :mod:`bench.metrics` tabulates it).
- The run ends when the spent cost reaches the budget (work in flight is cut off there), or earlier when
  every worker is idle and the scheduler hands out nothing (the strategy is exhausted).
- ``max_trials`` (optional, for CI's quick mode) stops asking ``suggest`` once that many trials exist;
  paused trials may still be resumed.

The strategy is driven only through the :class:`schedulers.Scheduler` ask/tell API, exactly as the service
and the Ray adapter drive it. The CPU time of every scheduler call is measured (``time.process_time``);
recommendations, used only by the metric, are timed separately.

The metric: at each cost checkpoint ``c`` (a fixed grid, so seeds aggregate point by point) the strategy's
recommendation *as of cost c* (after the last report before ``c``) is evaluated at the target with the
problem's noiseless target function, free of charge, and turned into regret in the problem's
``regret_unit`` (``inf`` before the first report, when the strategy has no information to recommend from,
and for a recommendation that diverges at the target).
"""

from __future__ import annotations

import copy
import heapq
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from bench.metrics import BUDGET_MARKS
from bench.problems.base import BenchmarkProblem
from schedulers.base import Decision, Scheduler, Suggestion, TrialState

#: a scheduler that hands out this many zero-length segments in a row is stuck, not working
MAX_EMPTY_SEGMENTS = 1000


class SimulationError(RuntimeError):
    """The strategy broke the ask/tell contract in a way the simulation cannot continue from."""


@dataclass
class _Segment:
    """The work one worker holds: a trial's segment and where it is in its reporting steps."""

    suggestion: Suggestion
    steps: list[int]          # reporting steps still ahead, the last one is the segment's end
    previous: int             # the last step reached (start_step at first)
    started_at: float         # simulated time the current piece began


@dataclass
class RunResult:
    """What one (strategy, seed) run produced. ``regret[i]`` is the percent regret at ``checkpoints[i]``."""

    checkpoints: list[float]
    regret: list[float]
    spent: float
    end_time: float
    busy_fraction: float
    scheduler_cpu_s: float
    recommend_cpu_s: float
    n_trials: int
    n_reports: int
    n_segments: int
    n_failed_trials: int
    reports_per_size: dict[str, int]
    exhausted: bool
    final_params: dict[str, Any] | None
    final_regret: float
    error: str | None = None
    checkpoint_trials: list[int] = field(default_factory=list)


def cost_checkpoints(budget: float, n: int = 50, low: float = 1e-3) -> list[float]:
    """``n`` log-spaced costs from ``low * budget`` to ``budget``, plus the :data:`BUDGET_MARKS` within it."""
    grid = set(np.geomspace(low * budget, budget, n).round(10).tolist())
    grid.update(b for b in BUDGET_MARKS if b <= budget)
    return sorted(grid)


class SimulatedCluster:
    """Runs ``scheduler`` on ``bench`` with ``workers`` workers until ``budget`` target runs are spent."""

    def __init__(self, bench: BenchmarkProblem, scheduler: Scheduler, *, workers: int, budget: float,
                 seed: int, checkpoints: Sequence[float] | None = None, max_trials: int | None = None) -> None:
        if workers < 1 or not budget > 0:
            raise ValueError(f"need workers >= 1 and budget > 0 (got {workers}, {budget})")
        self.bench = bench
        self.scheduler = scheduler
        self.workers = workers
        self.budget = float(budget)
        self.seed = int(seed)
        self.max_trials = max_trials
        self.checkpoints = list(checkpoints) if checkpoints is not None else cost_checkpoints(self.budget)
        # the bill comes from the harness's own copy of the problem (ladder and cost model), never from the
        # strategy's: a strategy that changed its copy of the cost model would otherwise change its own bill
        self.problem = copy.deepcopy(bench.problem)
        self.unit = self.problem.target_cost
        # simulation state
        self.now = 0.0
        self.spent = 0.0
        self.queue: list[tuple[float, int, int]] = []   # (time, tie-breaker, worker)
        self.held: dict[int, _Segment] = {}            # worker -> segment in flight
        self._tie = 0
        self.scheduler_cpu = 0.0
        self.recommend_cpu = 0.0
        self.n_reports = 0
        self.n_segments = 0
        self.reports_per_size: dict[str, int] = {}
        self.regret: list[float] = []
        self.checkpoint_trials: list[int] = []
        self.last_params: dict[str, Any] | None = None

    # ---------------------------------------------------------------- scheduler calls, timed
    def _call(self, fn, *args):
        t0 = time.process_time()
        try:
            return fn(*args)
        finally:
            self.scheduler_cpu += time.process_time() - t0

    def _noise_seed(self, s: Suggestion) -> int:
        # one noise stream per (run seed, trial, replicate): a resumed trial continues its own curve
        return int(np.random.SeedSequence([self.seed, s.trial_id, s.replicate]).generate_state(1)[0])

    # ---------------------------------------------------------------- time and cost
    def _busy(self) -> int:
        return len(self.held)

    def _advance(self, t: float) -> None:
        """Move the clock to ``t``, recording every checkpoint the spent cost passes on the way."""
        busy = self._busy()
        while len(self.regret) < len(self.checkpoints):
            c = self.checkpoints[len(self.regret)]
            if busy == 0 or self.spent + busy * (t - self.now) < c - 1e-12:
                break
            self._record_checkpoint()
        self.spent += busy * (t - self.now)
        self.now = t

    def _record_checkpoint(self) -> None:
        """Record the current recommendation's regret for the next checkpoint. Before the first report the
        strategy has seen nothing, so there is no recommendation to grade: regret is ``inf`` there (a
        default such as the centre of the space would otherwise count as found for free)."""
        if self.n_reports == 0:
            self.regret.append(math.inf)
            self.checkpoint_trials.append(len(self.scheduler.trials))
            return
        t0 = time.process_time()
        rec = self.scheduler.recommend()
        self.recommend_cpu += time.process_time() - t0
        self.last_params = dict(rec.params)
        regret = self.bench.regret(self.bench.target_value(rec.params))
        self.regret.append(regret)
        self.checkpoint_trials.append(len(self.scheduler.trials))

    # ---------------------------------------------------------------- work
    def _piece_cost(self, seg: _Segment, step: int) -> float:
        size = self.problem.ladder.size(seg.suggestion.size)
        cost = self.problem.cost_model.piece_cost(seg.suggestion.start_step, seg.previous, step, size)
        return max(cost, 0.0) / self.unit

    def _start(self, worker: int, s: Suggestion) -> bool:
        """Give ``s`` to ``worker``. False when the segment has nothing to run (completed at once)."""
        self.n_segments += 1
        ahead = [r for r in self.bench.report_steps(s.size) if s.start_step < r < s.steps] + [s.steps]
        if s.steps <= s.start_step:
            self._call(self.scheduler.complete, s.trial_id)
            return False
        seg = _Segment(s, ahead, s.start_step, self.now)
        self.held[worker] = seg
        self._schedule(worker, seg)
        return True

    def _schedule(self, worker: int, seg: _Segment) -> None:
        self._tie += 1
        heapq.heappush(self.queue, (self.now + self._piece_cost(seg, seg.steps[0]), self._tie, worker))

    def _fill_idle_workers(self) -> None:
        empty = 0
        while len(self.held) < self.workers:
            s = self._call(self.scheduler.resume)
            if s is None and (self.max_trials is None or len(self.scheduler.trials) < self.max_trials):
                got = self._call(self.scheduler.suggest, 1)
                s = got[0] if got else None
            if s is None:
                return
            worker = min(set(range(self.workers)) - set(self.held))
            if not self._start(worker, s):
                empty += 1
                if empty > MAX_EMPTY_SEGMENTS:
                    raise SimulationError(f"{MAX_EMPTY_SEGMENTS} empty segments in a row (steps <= start_step)")

    def _on_event(self, worker: int) -> None:
        seg = self.held[worker]
        s = seg.suggestion
        step = seg.steps.pop(0)
        value = self.bench.evaluate(s.params, s.size, step, self._noise_seed(s))
        self.n_reports += 1
        self.reports_per_size[s.size] = self.reports_per_size.get(s.size, 0) + 1
        decision = self._call(self.scheduler.report, s.trial_id, step, value)
        seg.previous = step
        if decision is Decision.CONTINUE and seg.steps:
            self._schedule(worker, seg)
            return
        del self.held[worker]
        if decision is not Decision.STOP:
            self._call(self.scheduler.complete, s.trial_id)

    # ---------------------------------------------------------------- the run
    def run(self) -> RunResult:
        exhausted = False
        error = None
        try:
            self._fill_idle_workers()
            while True:
                if not self.queue:
                    exhausted = True
                    break
                t, _, worker = self.queue[0]
                busy = self._busy()
                if self.spent + busy * (t - self.now) >= self.budget - 1e-12:
                    self._advance(self.now + (self.budget - self.spent) / busy)
                    break
                heapq.heappop(self.queue)
                self._advance(t)
                self._on_event(worker)
                self._fill_idle_workers()
        except Exception as e:  # a strategy crash ends this run; it is reported, not hidden
            error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"
        if error is None:
            # what is left of the grid (budget reached, or the strategy ran out of work) gets the final state
            # (an exhausted strategy keeps its last recommendation for the rest of the grid)
            while len(self.regret) < len(self.checkpoints):
                self._record_checkpoint()
        trials = self.scheduler.trials.values()
        return RunResult(
            checkpoints=self.checkpoints[:len(self.regret)], regret=self.regret, spent=self.spent,
            end_time=self.now, busy_fraction=self.spent / (self.workers * self.now) if self.now > 0 else 0.0,
            scheduler_cpu_s=self.scheduler_cpu, recommend_cpu_s=self.recommend_cpu,
            n_trials=len(self.scheduler.trials), n_reports=self.n_reports, n_segments=self.n_segments,
            n_failed_trials=sum(1 for t in trials if t.state is TrialState.FAILED),
            reports_per_size=dict(self.reports_per_size), exhausted=exhausted, final_params=self.last_params,
            final_regret=self.regret[-1] if self.regret else math.inf, error=error,
            checkpoint_trials=self.checkpoint_trials)
