"""Hyperband (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization",
JMLR 2018) over the step ladder at the target model size.

The step budgets are the successive-halving rungs of :func:`schedulers.asha.rung_steps`
(``min_steps * eta**k`` up to ``max_steps``); with ``s_max + 1`` rungs, bracket ``s`` (``s_max`` down to 0,
then round again) starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` random configurations at rung
``s_max - s`` and runs successive halving from there: rung ``i`` of the bracket holds ``floor(n / eta**i)``
trials. Brackets run one after the other, and a bracket is synchronous:

- a trial reaching its rung's budget is PAUSEd (its checkpoint kept), unless the rung is the last one,
  where reaching ``max_steps`` means finished;
- once every trial of the rung has ended (paused, completed, failed - a failure ranks last), the best
  ``floor(n_i / eta)`` paused ones are handed back by :meth:`resume` with the next budget, so the executor
  continues from the checkpoint rather than retraining from step 0;
- :meth:`suggest` issues new trials only while the bracket's first rung is not full, and returns fewer
  (possibly none) while the bracket waits for its promotions.

Trials that lose their rung stay PAUSED for good: the scheduler never resumes them, and an executor may
free their checkpoints once the bracket has moved past their rung. Confirmation replicates
(``replicate > 0``) are outside the brackets and run to their budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from schedulers.asha import rung_steps, successive_halving_options
from schedulers.base import Decision, Scheduler, Trial, TrialState
from schedulers.problem import Problem


@dataclass
class Bracket:
    """One run of successive halving: ``sizes[i]`` trials with step budget ``budgets[i]`` at rung ``i``."""

    number: int                 # 0, 1, 2, ... in the order brackets ran
    s: int                      # Hyperband's bracket index: s + 1 rungs
    sizes: list[int]
    budgets: list[int]
    rung: int = 0               # the rung currently being filled or waited for
    members: list[list[int]] = field(default_factory=list)    # trial ids per rung
    results: dict[int, float] = field(default_factory=dict)   # trial id -> y at the current rung
    queue: list[int] = field(default_factory=list)            # promoted, waiting to be resumed

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [[] for _ in self.sizes]

    @property
    def budget(self) -> int:
        return self.budgets[self.rung]

    @property
    def is_last_rung(self) -> bool:
        return self.rung == len(self.budgets) - 1

    def state(self) -> dict[str, Any]:
        return {"number": self.number, "s": self.s, "sizes": list(self.sizes), "budgets": list(self.budgets),
                "rung": self.rung, "members": [list(m) for m in self.members],
                "results": dict(sorted(self.results.items())), "queue": list(self.queue)}


class Hyperband(Scheduler):
    """Hyperband with PAUSE/resume promotions. Options: ``eta`` (3), ``min_steps`` (ladder minimum),
    ``max_steps`` (target steps)."""

    name = "hyperband"

    def __init__(self, problem: Problem, seed: int = 0, *, eta: float = 3, min_steps: int | None = None,
                 max_steps: int | None = None, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        self.eta, self.min_steps, self.max_steps = successive_halving_options(problem, eta, min_steps, max_steps)
        self.rungs = rung_steps(self.ladder, self.min_steps, self.max_steps, self.eta)
        self.s_max = len(self.rungs) - 1
        self.bracket = self._make_bracket(0)

    def _make_bracket(self, number: int) -> Bracket:
        s = self.s_max - number % (self.s_max + 1)
        n = math.ceil((self.s_max + 1) / (s + 1) * self.eta ** s)
        sizes = [max(1, int(n // self.eta ** i)) for i in range(s + 1)]
        return Bracket(number, s, sizes, self.rungs[self.s_max - s:])

    # ------------------------------------------------------------------ ask
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        b = self.bracket
        free = b.sizes[0] - len(b.members[0]) if b.rung == 0 else 0
        k = min(n, free)
        if k <= 0:
            return []
        return [(p, self.problem.target.size, b.budgets[0]) for p in self.space.sample(self._rng(), k)]

    def _choose_resume(self) -> tuple[int, int] | None:
        for tid in self.bracket.queue:
            if self.trials[tid].state is TrialState.PAUSED:
                return tid, self.bracket.budget
        return None

    def _on_suggest(self, trial: Trial) -> None:
        if trial.replicate == 0:
            self.bracket.members[0].append(trial.trial_id)

    def _on_resume(self, trial: Trial) -> None:
        if trial.trial_id in self.bracket.queue:
            self.bracket.queue.remove(trial.trial_id)

    # ------------------------------------------------------------------ tell
    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        b = self.bracket
        if trial.replicate or trial.trial_id not in b.members[b.rung] or step < b.budget:
            return Decision.CONTINUE
        return Decision.CONTINUE if b.is_last_rung else Decision.PAUSE

    def _on_end(self, trial: Trial) -> None:
        b = self.bracket
        if trial.replicate or trial.trial_id not in b.members[b.rung] or trial.trial_id in b.results:
            return
        value = trial.last_value
        ok = trial.state is not TrialState.FAILED and value is not None and math.isfinite(value)
        b.results[trial.trial_id] = self._y(value) if ok else math.inf
        if len(b.results) == b.sizes[b.rung]:  # every member of the rung has ended
            self._close_rung()

    def _close_rung(self) -> None:
        """The current rung is complete: promote its best paused trials, or start the next bracket."""
        b = self.bracket
        if not b.is_last_rung:
            ranked = sorted((y, tid) for tid, y in b.results.items()
                            if math.isfinite(y) and self.trials[tid].state is TrialState.PAUSED)
            promoted = [tid for _, tid in ranked[:b.sizes[b.rung + 1]]]
            if promoted:
                b.rung += 1
                b.members[b.rung] = promoted
                b.sizes[b.rung] = len(promoted)  # fewer when failures left too few survivors
                b.results = {}
                b.queue = list(promoted)
                return
        self.bracket = self._make_bracket(b.number + 1)

    def _extra_state(self) -> Any:
        return self.bracket.state()
