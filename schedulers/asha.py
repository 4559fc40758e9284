"""ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
Tuning", MLSys 2020), over the step ladder at the target model size.

Every trial is issued with the full step budget ``max_steps``. The rungs are the budgets
``min_steps * eta**k`` (see :func:`rung_steps`); when a trial first reports at or past a rung, its value
joins that rung's record and the trial goes on only if it ranks in the top ``1/eta`` of everything that
has reached the rung so far (at least the best one is always kept, so the first arrivals are never
stopped). This is the stopping flavour of ASHA: decisions never wait for other trials, so no worker idles.

``size_rungs=True`` also climbs the model-size ladder, smallest size first, up to the target size. Within
a size the step rungs work as above. A checkpoint of one size cannot seed a model of another size, so
promotion across sizes cannot be a PAUSE/resume: a trial that finished ``max_steps`` at size ``i`` is
*promoted* by issuing a new trial with the same parameters at size ``i + 1`` (from step 0), following the
original ASHA promotion rule - when a worker asks for work, the scheduler looks from the largest size down
for a finished trial in the top ``1/eta`` of its size's finishers that has not been promoted yet, and only
when there is none does it start a fresh random configuration at the smallest size.

Confirmation replicates (``replicate > 0``) are never ranked or stopped.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from schedulers.base import Decision, Scheduler, Trial
from schedulers.errors import InvalidProblemError
from schedulers.problem import FidelityLadder, Problem


def rung_steps(ladder: FidelityLadder, min_steps: int, max_steps: int, eta: float) -> list[int]:
    """Successive-halving budgets ``min_steps * eta**k`` below ``max_steps``, then ``max_steps`` itself.

    Each nominal budget is moved up to the first step at which a trial reports (the ladder's report grid,
    or ``max_steps``), because a decision can only be taken on a report; budgets that coincide after that
    are merged, so the result is strictly increasing and ends with ``max_steps``.
    """
    grid = sorted({s for s in ladder.report_steps if s < max_steps} | {max_steps})
    rungs: list[int] = []
    k = 0
    while True:
        nominal = min_steps * eta ** k
        if nominal >= max_steps:
            break
        snapped = next(s for s in grid if s >= nominal)
        if not rungs or snapped > rungs[-1]:
            rungs.append(snapped)
        k += 1
    if not rungs or rungs[-1] != max_steps:
        rungs.append(max_steps)
    return rungs


def successive_halving_options(problem: Problem, eta: float, min_steps: int | None,
                               max_steps: int | None) -> tuple[float, int, int]:
    """Validated ``(eta, min_steps, max_steps)`` with the defaults ``ladder.min_steps`` and target steps."""
    ladder = problem.ladder
    eta = float(eta)
    if not (math.isfinite(eta) and eta > 1.0):
        raise InvalidProblemError(f"eta must be > 1, got {eta}", field="scheduler.options.eta")
    lo = ladder.min_steps if min_steps is None else int(min_steps)
    hi = problem.target.steps if max_steps is None else int(max_steps)
    if not (ladder.min_steps <= lo <= ladder.max_steps):
        raise InvalidProblemError(f"min_steps {lo} outside the ladder's [{ladder.min_steps}, {ladder.max_steps}]",
                                  field="scheduler.options.min_steps")
    if not (lo <= hi <= ladder.max_steps):
        raise InvalidProblemError(f"max_steps {hi} must lie in [min_steps={lo}, {ladder.max_steps}]",
                                  field="scheduler.options.max_steps")
    return eta, lo, hi


def in_top_fraction(record: list[tuple[float, int]], trial_id: int, eta: float) -> bool:
    """Whether ``trial_id`` ranks in the top ``max(1, floor(n / eta))`` of ``record`` ((y, trial id) pairs,
    smaller y better, ties broken by the earlier trial)."""
    keep = max(1, int(len(record) // eta))
    return trial_id in {tid for _, tid in sorted(record)[:keep]}


class ASHA(Scheduler):
    """Asynchronous successive halving. Options: ``eta`` (3), ``min_steps`` (ladder minimum), ``max_steps``
    (target steps), ``size_rungs`` (False; see the module docstring)."""

    name = "asha"

    def __init__(self, problem: Problem, seed: int = 0, *, eta: float = 3, min_steps: int | None = None,
                 max_steps: int | None = None, size_rungs: bool = False, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        self.eta, self.min_steps, self.max_steps = successive_halving_options(problem, eta, min_steps, max_steps)
        self.rungs = rung_steps(self.ladder, self.min_steps, self.max_steps, self.eta)
        self.size_rungs = bool(size_rungs)
        target_rank = self.ladder.index(problem.target.size)
        #: sizes climbed, smallest first; only the target size unless ``size_rungs``
        self.sizes = ([s.name for s in self.ladder.sizes[:target_rank + 1]] if self.size_rungs
                      else [problem.target.size])
        #: (size, rung step) -> [(y, trial id)] of every trial that reached the rung
        self._records: dict[tuple[str, int], list[tuple[float, int]]] = {}
        #: trial id -> number of rungs it has passed
        self._passed: dict[int, int] = {}
        #: trial id at size i -> trial id of its promotion at size i + 1
        self._promoted: dict[int, int] = {}

    # ------------------------------------------------------------------ ask
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        out: list[tuple[dict[str, Any], str, int]] = []
        taken: set[int] = set()
        while len(out) < n:
            promotion = self._next_promotion(taken) if self.size_rungs else None
            if promotion is None:
                break
            source, size = promotion
            taken.add(source)
            out.append((dict(self.trials[source].params), size, self.max_steps))
        fresh = n - len(out)
        if fresh > 0:
            out.extend((p, self.sizes[0], self.max_steps) for p in self.space.sample(self._rng(), fresh))
        return out

    def _next_promotion(self, taken: set[int]) -> tuple[int, str] | None:
        """(finished trial, next size) for the most advanced promotable trial, or ``None``."""
        for i in range(len(self.sizes) - 2, -1, -1):
            finishers = self._records.get((self.sizes[i], self.rungs[-1]), [])
            keep = int(len(finishers) // self.eta)
            for _, tid in sorted(finishers)[:keep]:
                if tid not in self._promoted and tid not in taken:
                    return tid, self.sizes[i + 1]
        return None

    def _on_suggest(self, trial: Trial) -> None:
        self._passed[trial.trial_id] = 0
        if not self.size_rungs or trial.replicate or trial.size == self.sizes[0]:
            return
        # recover which finished trial this one promotes (also during replay, where only params are known)
        i = self.sizes.index(trial.size) if trial.size in self.sizes else 0
        if i == 0:
            return
        for _, tid in sorted(self._records.get((self.sizes[i - 1], self.rungs[-1]), [])):
            if tid not in self._promoted and self.trials[tid].params == trial.params:
                self._promoted[tid] = trial.trial_id
                return

    # ------------------------------------------------------------------ tell
    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if trial.replicate or trial.size not in self.sizes:
            return Decision.CONTINUE
        k = self._passed.get(trial.trial_id, 0)
        keep_going = True
        while k < len(self.rungs) and step >= self.rungs[k]:
            record = self._records.setdefault((trial.size, self.rungs[k]), [])
            record.append((y, trial.trial_id))
            if k < len(self.rungs) - 1 and not in_top_fraction(record, trial.trial_id, self.eta):
                keep_going = False
            k += 1
        self._passed[trial.trial_id] = k
        return Decision.CONTINUE if keep_going else Decision.STOP

    def _extra_state(self) -> Any:
        return {"records": {f"{size}@{step}": sorted(r) for (size, step), r in sorted(self._records.items())},
                "passed": dict(sorted(self._passed.items())),
                "promoted": dict(sorted(self._promoted.items()))}
