"""``top_k_low_fidelity``: search at the lowest fidelity, verify the top K at the target.

The strongest simple baseline of the multi-fidelity literature ("Is One Epoch All You Need for Multi-Fidelity
HPO?", Egele et al. 2023: every config trained for one epoch, the top K trained to the end) and its
multi-scale analogue, what practitioners do (search at the smallest model, verify the best few at the
target size).

1. **Low-fidelity phase.** ``n_low`` configs drawn uniformly from the space, each trained at the lowest
   fidelity: the smallest model size at the target steps when the ladder has a size below the target's;
   otherwise (one size, e.g. LCBench) the target size to the first reporting step, where the trial PAUSEs
   so it can be continued.
2. **Barrier.** Nothing more is handed out until every low-fidelity trial has ended (a synchronous step:
   workers idle meanwhile, which the benchmark's "cost as wall time x workers" column shows).
3. **Target phase.** The ``top_k`` low-fidelity trials with the best value at the low fidelity (ties by
   trial id; failed or diverged trials are not ranked) go to the target: one size -> the paused trials are
   resumed to the target steps (continued from their checkpoint); several sizes -> each config is re-run
   as a new trial at the target size and steps. A target run that fails is not replaced.
4. After that the strategy is done (it hands out nothing more).

``recommend()``: the best value measured at the target fidelity (target size, target steps) so far; before
any, the best-ranked low-fidelity config; before that, the base class's default.

Choosing N and K without the benchmark budget (a strategy never knows it): ``top_k`` defaults to 3, and
``n_low`` to the number of low-fidelity runs that cost ``low_budget`` target runs (default 1.0) under the
problem's cost model, ``round(low_budget x target cost / low-fidelity cost)``, clipped to
``[2 top_k, MAX_N_LOW]`` (so there is something to select from, and a very cheap lowest fidelity does not
turn into thousands of trials). A whole run then costs about ``low_budget + top_k`` target runs (less when
the top K are continued). Examples: datamix 77 configs at 20M (1B / 20M FLOPs ratio), synthetic worlds 256
at width 128, Hartmann 8, Step Law 6 (the 2K floor; its smallest N at the target D costs 1/5 of a target
run), LCBench 52 configs at epoch 1.

Why here (``bench/baselines/``) and not in ``schedulers/`` or ``bench/peers/``: it is a yardstick for the
benchmark, not a scheduler the service offers, and it wraps no other package (a peer does). It is a
:class:`schedulers.Scheduler` subclass driven through the same ask/tell API and kept to the same contract
(``tests/bench/test_baselines_contract.py`` runs the generic contract suite against it): its state is a
pure function of the event history (the phase is read off the trials; randomness only from ``_rng``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from schedulers.base import Decision, Recommendation, Scheduler, Trial, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

DEFAULT_TOP_K = 3
DEFAULT_LOW_BUDGET = 1.0
#: the most low-fidelity configs the default rule picks (an explicit ``n_low`` may exceed it)
MAX_N_LOW = 512


class TopKLowFidelity(Scheduler):
    """N configs at the lowest fidelity, the top K at the target (module docstring)."""

    name = "top_k_low_fidelity"

    def __init__(self, problem: Problem, seed: int = 0, top_k: int = DEFAULT_TOP_K, n_low: int | None = None,
                 low_budget: float = DEFAULT_LOW_BUDGET, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        if not (isinstance(top_k, int) and top_k >= 1):
            raise InvalidProblemError(f"top_k must be an integer >= 1, got {top_k!r}", field="scheduler.options")
        if n_low is not None and not (isinstance(n_low, int) and n_low >= top_k):
            raise InvalidProblemError(f"n_low must be an integer >= top_k ({top_k}), got {n_low!r}",
                                      field="scheduler.options")
        if not (isinstance(low_budget, (int, float)) and math.isfinite(low_budget) and low_budget > 0):
            raise InvalidProblemError(f"low_budget must be > 0 target runs, got {low_budget!r}",
                                      field="scheduler.options")
        target, ladder = problem.target, problem.ladder
        smallest = ladder.sizes[0].name
        if smallest != target.size:
            self.low_size, self.low_steps = smallest, target.steps
        else:
            self.low_size, self.low_steps = target.size, max(ladder.min_steps, ladder.report_steps[0])
        #: whether the top K continue their low-fidelity trial (same size, fewer steps) or re-run at the target
        self.continues = self.low_size == target.size and self.low_steps < target.steps
        self.top_k = top_k
        self.low_budget = float(low_budget)
        if n_low is None:
            low_cost = problem.cost_model.cost(self.low_steps, ladder.size(self.low_size))
            n_low = min(max(round(self.low_budget * problem.target_cost / low_cost), 2 * top_k), MAX_N_LOW)
        self.n_low = int(n_low)

    # ---------------------------------------------------------------- phases, read off the trials
    def _searched(self) -> list[Trial]:
        """Trials of the algorithm in id order (confirmation replicates are outside it)."""
        return [self.trials[i] for i in sorted(self.trials) if self.trials[i].replicate == 0]

    def _low_phase(self) -> list[Trial]:
        return self._searched()[:self.n_low]

    def _target_phase(self) -> list[Trial]:
        return self._searched()[self.n_low:]

    def _low_value(self, t: Trial) -> float | None:
        """Minimisation value at the low fidelity, or ``None`` if the trial never reached it finitely."""
        for step, value in t.curve:
            if step >= self.low_steps:
                return self._y(value) if math.isfinite(value) else None
        return None

    def _low_done(self) -> bool:
        low = self._low_phase()
        return len(low) == self.n_low and not any(t.state.is_live for t in low)

    def ranked(self) -> list[Trial]:
        """Low-fidelity trials that reached the low fidelity, best first (ties by trial id)."""
        scored = [(v, t.trial_id, t) for t in self._low_phase() if (v := self._low_value(t)) is not None]
        return [t for _, _, t in sorted(scored, key=lambda x: (x[0], x[1]))]

    def chosen(self) -> list[Trial]:
        """The top K low-fidelity trials (empty until the low-fidelity phase has ended)."""
        return self.ranked()[:self.top_k] if self._low_done() else []

    # ---------------------------------------------------------------- Scheduler hooks
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        issued = len(self._low_phase())
        if issued < self.n_low:
            m = min(n, self.n_low - issued)
            return [(p, self.low_size, self.low_steps) for p in self.space.sample(self._rng(), m)]
        if self.continues or not self._low_done():
            return []
        target = self.problem.target
        done = len(self._target_phase())
        return [(dict(t.params), target.size, target.steps) for t in self.chosen()[done:done + n]]

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        # a low-fidelity trial at the target size ends its segment resumable, so the top K can continue it
        if (self.continues and trial.replicate == 0 and trial.size == self.problem.target.size
                and trial.steps <= step < self.problem.target.steps):
            return Decision.PAUSE
        return Decision.CONTINUE

    def _choose_resume(self) -> tuple[int, int] | None:
        if not self.continues:
            return None
        target_steps = self.problem.target.steps
        for t in self.chosen():
            if t.state is TrialState.PAUSED and t.last_step < target_steps:
                return t.trial_id, target_steps
        return None

    def recommend(self) -> Recommendation:
        target = self.problem.target
        best: tuple[float, int, Trial] | None = None
        for t in self.trials.values():
            if t.size != target.size:
                continue
            at = [v for s, v in t.curve if s >= target.steps and math.isfinite(v)]
            if at and (best is None or (self._y(at[0]), t.trial_id) < best[:2]):
                best = (self._y(at[0]), t.trial_id, t)
        if best is not None:
            y, _, t = best
            return Recommendation(dict(t.params), self._y(y), None, target.size, target.steps, t.trial_id,
                                  tuple(self.space.border_warnings(t.params)))
        ranked = self.ranked()
        if ranked:
            t = ranked[0]
            return Recommendation(dict(t.params), None, None, target.size, target.steps, t.trial_id,
                                  tuple(self.space.border_warnings(t.params)))
        return super().recommend()

    def _extra_state(self) -> Any:
        return {"n_low": self.n_low, "top_k": self.top_k, "low": (self.low_size, self.low_steps),
                "chosen": [t.trial_id for t in self.chosen()]}
