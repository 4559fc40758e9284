"""The ask/tell scheduler interface shared by the REST endpoints, the Ray Tune adapter and the benchmark.

Life of a trial, as every caller drives it::

    sched = make_scheduler("random", problem, seed=0)
    for s in sched.resume() and [sched.resume()] or sched.suggest(n):   # ask (resume paused ones first)
        ... run s.params at size s.size from step s.start_step to s.steps, and for each reported step:
            decision = sched.report(s.trial_id, step, value)          # tell; CONTINUE / PAUSE / STOP
            if decision is not Decision.CONTINUE: break                # keep the checkpoint on PAUSE
        sched.complete(s.trial_id)                                     # or sched.fail(s.trial_id, why)
    rec = sched.recommend()                                            # best params at the target

Contracts every implementation keeps (tests/schedulers/test_contract.py checks them all):

- Trial ids are issued by the scheduler: 0, 1, 2, ... in order of :meth:`suggest`.
- A segment ends when the trial reports ``step >= Suggestion.steps`` or the decision is not CONTINUE.
  At the end of the budget, CONTINUE means "finished normally" and PAUSE "keep it resumable".
- PAUSE leaves the trial resumable: :meth:`resume` may later hand it out again with a larger step budget
  and ``start_step`` = its last reported step (the executor continues from its checkpoint).
- :meth:`abandon` (the executor lost the trial's worker: its lease ran out) is not evidence about the
  config: the segment ends as if the last report had answered PAUSE (resumable from its last step) or, with
  nothing reported yet, the trial is STOPPED.
- STOP and :meth:`fail` are final. A non-finite reported value is a divergence: the trial fails, the
  decision is STOP, and the scheduler keeps it as evidence (it never raises for it).
- Values are in the user's direction; internally every algorithm minimises (``_y`` flips maximisation).
- State is a pure function of the event history: :meth:`replay` on a fresh instance built with the same
  problem, seed and options reproduces :meth:`snapshot` and every later answer exactly. Randomness comes
  only from :meth:`_rng`, which is seeded by (seed, number of trials, number of events).
- Subclasses implement :meth:`_propose` and may override the ``_on_*`` hooks, :meth:`_choose_resume` and
  :meth:`recommend`. Hooks run identically live and during replay; expensive model work should be lazy
  (done on the next ``suggest``/``recommend``), so replaying a long history is cheap.
"""

from __future__ import annotations

import abc
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from schedulers.errors import IllegalTransitionError, InvalidProblemError, UnknownTrialError
from schedulers.objectives import ParetoPoint, pareto_front
from schedulers.problem import Direction, ModelSize, Problem


class Decision(str, enum.Enum):
    CONTINUE = "continue"
    PAUSE = "pause"
    STOP = "stop"


class TrialState(str, enum.Enum):
    PENDING = "pending"      # issued, nothing reported yet in the current segment
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (TrialState.STOPPED, TrialState.COMPLETED, TrialState.FAILED)

    @property
    def is_live(self) -> bool:
        """Occupies (or is about to occupy) a worker: the 'pending evaluations' of asynchronous BO."""
        return self in (TrialState.PENDING, TrialState.RUNNING)


class EventKind(str, enum.Enum):
    SUGGEST = "suggest"
    REPORT = "report"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    ABANDON = "abandon"


@dataclass(frozen=True)
class Suggestion:
    """Run ``params`` with a model of ``size`` from ``start_step`` (0, or a checkpoint) to ``steps``.

    ``replicate`` > 0 marks a confirmation re-run of the same parameters with another seed.
    """

    trial_id: int
    params: dict[str, Any]
    size: str
    steps: int
    start_step: int = 0
    replicate: int = 0


@dataclass
class Trial:
    """The scheduler's view of one trial. ``curve`` holds (step, value) in the user's direction."""

    trial_id: int
    params: dict[str, Any]
    size: str
    steps: int
    state: TrialState = TrialState.PENDING
    curve: list[tuple[int, float]] = field(default_factory=list)
    segment_start: int = 0
    replicate: int = 0
    failure: str | None = None
    #: a multi-objective study's other objectives and constrained metrics per reported step (user units)
    outcomes: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def last_step(self) -> int:
        return self.curve[-1][0] if self.curve else 0

    @property
    def last_value(self) -> float | None:
        return self.curve[-1][1] if self.curve else None


@dataclass(frozen=True)
class Recommendation:
    """The best parameters at the target, with the predicted target value and its standard deviation
    (``None`` when the scheduler has no model and nothing was measured at the target)."""

    params: dict[str, Any]
    predicted: float | None
    std: float | None
    size: str
    steps: int
    trial_id: int | None = None
    warnings: tuple[str, ...] = ()


class Scheduler(abc.ABC):
    """Base class of every scheduler. See the module docstring for the contract."""

    #: registry name, set by subclasses
    name: str = "base"

    def __init__(self, problem: Problem, seed: int = 0, **options: Any) -> None:
        if options:
            raise InvalidProblemError(
                f"scheduler {self.name!r} got unknown options {sorted(options)}", field="scheduler.options")
        self.problem = problem
        self.seed = int(seed)
        self.trials: dict[int, Trial] = {}
        self.events: list[dict[str, Any]] = []
        self.cost_spent = 0.0

    # ---------------------------------------------------------------- helpers for subclasses
    @property
    def space(self):
        return self.problem.space

    @property
    def ladder(self):
        return self.problem.ladder

    def _rng(self, *tag: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(self.trials), len(self.events), *tag])

    def _y(self, value: float) -> float:
        """User-direction value -> minimisation value."""
        return value if self.problem.direction is Direction.MINIMIZE else -value

    def _size(self, name: str) -> ModelSize:
        return self.ladder.size(name)

    def live_trials(self) -> list[Trial]:
        """Trials issued and not yet reported back at the end of their segment (pending evaluations)."""
        return [t for t in self.trials.values() if t.state.is_live]

    def trial(self, trial_id: int) -> Trial:
        try:
            return self.trials[int(trial_id)]
        except KeyError:
            raise UnknownTrialError(f"unknown trial {trial_id}", field="trial_id") from None

    # ---------------------------------------------------------------- ask
    def suggest(self, n: int = 1) -> list[Suggestion]:
        """Up to ``n`` new trials, accounting for the live ones. Fewer (or none) when the scheduler wants
        to wait, e.g. a synchronous bracket that is full."""
        if n < 1:
            return []
        out = []
        for params, size, steps in self._propose(n)[:n]:
            out.append(self._apply_suggest(len(self.trials), params, size, int(steps), 0))
        return out

    def resume(self) -> Suggestion | None:
        """A paused trial to continue (with its new step budget), or ``None``. Ask this before suggest."""
        choice = self._choose_resume()
        if choice is None:
            return None
        trial_id, steps = choice
        return self._apply_resume(trial_id, int(steps))

    def confirm(self, k: int, params: Mapping[str, Any] | None = None, first: int = 1) -> list[Suggestion]:
        """Tuning-playbook confirmation: re-run ``params`` (default: the recommendation) at the target with
        ``k`` other seeds, ``replicate`` = ``first``, ``first + 1``, ... (a playbook round,
        ``schedulers/playbook.py``, confirms each point's best config this way)."""
        config = dict(self.recommend().params if params is None else params)
        return [self._apply_suggest(len(self.trials), dict(config), self.problem.target.size,
                                    self.problem.target.steps, first + i) for i in range(k)]

    @property
    def done(self) -> bool:
        """Whether the scheduler will hand out nothing more, whatever is reported (a playbook round whose
        seeds all ended); the service then completes the study. Most schedulers are never done."""
        return False

    # ---------------------------------------------------------------- tell
    def report(self, trial_id: int, step: int, value: float, elapsed: float | None = None,
               metrics: Mapping[str, float] | None = None) -> Decision:
        """Record ``value`` at ``step`` and answer CONTINUE, PAUSE or STOP. Reports must have increasing
        steps within a trial; a repeated (trial, step) returns the current decision without re-recording.

        ``metrics``: the report's other named values. In a multi-objective study
        (``problem.objectives.is_multi``) the other objectives and constrained metrics among them are
        recorded with the report (:attr:`Trial.outcomes`; a missing one is NaN); otherwise they are ignored.

        ``elapsed``, when known, is the wall-clock seconds the trial has trained since it started (all
        segments); the cost model observes it (a ``LearnedCost`` learns c(s, m) from these)."""
        t = self.trial(trial_id)
        step = int(step)
        if t.state.is_final:
            raise IllegalTransitionError(f"trial {trial_id} is {t.state.value}; it takes no more reports",
                                         field="trial_id")
        if t.curve and step <= t.last_step:
            # a retried report (at-least-once delivery): idempotent
            return Decision.CONTINUE if t.state.is_live else Decision.PAUSE
        event = {"kind": EventKind.REPORT.value, "trial_id": t.trial_id, "step": step, "value": float(value)}
        if elapsed is not None:
            event["elapsed"] = float(elapsed)
        objectives = self.problem.objectives
        if objectives.is_multi:
            outcomes = objectives.outcomes(value, metrics)
            event["metrics"] = {m: outcomes[m] for m in objectives.reported_metrics}
            t.outcomes[step] = dict(event["metrics"])
        self._record(event)
        return self._apply_report(t, step, float(value), event.get("elapsed"))

    def complete(self, trial_id: int) -> None:
        """The executor finished the trial's segment. A trial the scheduler paused stays PAUSED; a trial
        already final (completed, or ended by STOP or a divergence, as in the loop above) stays as it is."""
        t = self.trial(trial_id)
        if t.state.is_final:
            return
        self._record({"kind": EventKind.COMPLETE.value, "trial_id": t.trial_id})
        self._apply_complete(t)

    def fail(self, trial_id: int, reason: str = "") -> None:
        """The trial crashed or diverged. Final; the scheduler keeps it as evidence."""
        t = self.trial(trial_id)
        if t.state.is_final:
            if t.state is TrialState.FAILED:
                return
            raise IllegalTransitionError(f"trial {trial_id} is {t.state.value}", field="trial_id")
        self._record({"kind": EventKind.FAIL.value, "trial_id": t.trial_id, "reason": reason})
        self._apply_fail(t, reason)

    def abandon(self, trial_id: int) -> None:
        """The executor lost the live trial's worker (it stopped reporting). Nothing is learnt about the
        config: a trial that reported the end of its segment is COMPLETED (only the complete was lost), one
        with an earlier report becomes PAUSED at its last step (another worker may continue it from
        the checkpoint of that step, when :meth:`resume` hands it out), one without any is STOPPED. A trial
        that is not live is left as it is."""
        t = self.trial(trial_id)
        if not t.state.is_live:
            return
        self._record({"kind": EventKind.ABANDON.value, "trial_id": t.trial_id})
        self._apply_abandon(t)

    # ---------------------------------------------------------------- recommend
    def recommend(self) -> Recommendation:
        """Default: the best measured value at the highest fidelity reached (target first). Model-based
        schedulers override this with a prediction at the target."""
        target = self.problem.target
        best: tuple[tuple[int, int, float], Trial] | None = None
        for t in self.trials.values():
            good = [(s, v) for s, v in t.curve if math.isfinite(v)]
            if not good:
                continue
            # fidelity key: size rank, then steps capped at the target; value minimised
            rank = self.ladder.index(t.size)
            s, v = max(good, key=lambda sv: (min(sv[0], target.steps), -self._y(sv[1])))
            key = (rank, min(s, target.steps), -self._y(v))
            if best is None or key > best[0]:
                best = (key, t)
        if best is None:
            params = self.space.decode(np.full((1, self.space.dim), 0.5))[0]
            return Recommendation(params, None, None, target.size, target.steps)
        (rank, s, negy), t = best
        at_target = t.size == target.size and s >= target.steps
        return Recommendation(dict(t.params), self._y(-negy) if at_target else None, None, target.size,
                              target.steps, t.trial_id, tuple(self.space.border_warnings(t.params)))

    def outcomes_at(self, trial: Trial, step: int) -> dict[str, float] | None:
        """Every objective's and constrained metric's value (user units) ``trial`` reported at ``step``,
        or ``None`` when it did not report there."""
        value = next((v for s, v in trial.curve if s == step), None)
        if value is None:
            return None
        return self.problem.objectives.outcomes(value, trial.outcomes.get(step))

    def pareto(self) -> list[ParetoPoint]:
        """The Pareto set at the target: configs not dominated in every objective, among the feasible ones
        (outcome constraints met). Default: what was measured at the target fidelity (no predictions), in
        order of the primary objective. Model-based schedulers override this with predictions."""
        objectives = self.problem.objectives
        target = self.problem.target
        points = []
        for t in self.trials.values():
            if t.size != target.size or t.replicate != 0:
                continue
            outcomes = self.outcomes_at(t, target.steps)
            if outcomes is None or not objectives.feasible(outcomes):
                continue
            points.append(ParetoPoint(dict(t.params), outcomes, None, t.trial_id))
        return pareto_front(points, objectives)

    # ---------------------------------------------------------------- persistence
    def snapshot(self) -> dict[str, Any]:
        """A comparable picture of the state (replay must reproduce it exactly)."""
        return {
            "trials": {i: (t.params, t.size, t.steps, t.state.value, list(t.curve), t.segment_start, t.replicate)
                          + ((dict(t.outcomes),) if t.outcomes else ())
                       for i, t in self.trials.items()},
            "cost_spent": self.cost_spent,
            "n_events": len(self.events),
            "extra": self._extra_state(),
        }

    def replay(self, events: Iterable[Mapping[str, Any]]) -> "Scheduler":
        """Rebuild state from an event history (as recorded in :attr:`events`). Returns ``self``."""
        if self.trials or self.events:
            raise IllegalTransitionError("replay needs a fresh scheduler")
        for ev in events:
            kind = EventKind(ev["kind"])
            if kind is EventKind.SUGGEST:
                self._apply_suggest(int(ev["trial_id"]), dict(ev["params"]), ev["size"], int(ev["steps"]),
                                    int(ev.get("replicate", 0)))
            elif kind is EventKind.RESUME:
                self._apply_resume(int(ev["trial_id"]), int(ev["steps"]))
            elif kind is EventKind.REPORT:
                elapsed = ev.get("elapsed")
                self.report(int(ev["trial_id"]), int(ev["step"]), float(ev["value"]),
                            None if elapsed is None else float(elapsed),
                            {k: float(v) for k, v in (ev.get("metrics") or {}).items()})
            elif kind is EventKind.COMPLETE:
                self.complete(int(ev["trial_id"]))
            elif kind is EventKind.FAIL:
                self.fail(int(ev["trial_id"]), ev.get("reason", ""))
            elif kind is EventKind.ABANDON:
                self.abandon(int(ev["trial_id"]))
        return self

    # ---------------------------------------------------------------- extension points
    @abc.abstractmethod
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        """Up to ``n`` new (params, size name, step budget). Use :meth:`_rng` for randomness and
        :meth:`live_trials` for the pending evaluations."""

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        """Decide after ``trial`` reported minimisation value ``y`` (finite) at ``step``."""
        return Decision.CONTINUE

    def _choose_resume(self) -> tuple[int, int] | None:
        """(paused trial id, new step budget) to continue, or ``None``."""
        return None

    def _on_suggest(self, trial: Trial) -> None:
        """A trial was issued (live or during replay)."""

    def _on_resume(self, trial: Trial) -> None:
        """A paused trial was handed out again."""

    def _on_end(self, trial: Trial) -> None:
        """A trial's segment ended (completed, paused, stopped or failed)."""

    def _extra_state(self) -> Any:
        """Subclass state to include in :meth:`snapshot`."""
        return None

    # ---------------------------------------------------------------- internals
    def _record(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def _apply_suggest(self, trial_id: int, params: dict[str, Any], size: str, steps: int,
                       replicate: int) -> Suggestion:
        self.ladder.size(size)
        steps = max(self.ladder.min_steps, min(steps, self.ladder.max_steps))
        t = Trial(trial_id, params, size, steps, replicate=replicate)
        self.trials[trial_id] = t
        self._record({"kind": EventKind.SUGGEST.value, "trial_id": trial_id, "params": params, "size": size,
                      "steps": steps, "replicate": replicate})
        self._on_suggest(t)
        return Suggestion(trial_id, dict(params), size, steps, 0, replicate)

    def _apply_resume(self, trial_id: int, steps: int) -> Suggestion:
        t = self.trial(trial_id)
        if t.state is not TrialState.PAUSED:
            raise IllegalTransitionError(f"trial {trial_id} is {t.state.value}, not paused", field="trial_id")
        t.steps = max(min(steps, self.ladder.max_steps), t.last_step)
        t.state = TrialState.PENDING
        t.segment_start = t.last_step
        self._record({"kind": EventKind.RESUME.value, "trial_id": trial_id, "steps": t.steps})
        self._on_resume(t)
        return Suggestion(trial_id, dict(t.params), t.size, t.steps, t.last_step, t.replicate)

    def _apply_report(self, t: Trial, step: int, value: float, elapsed: float | None = None) -> Decision:
        size = self._size(t.size)
        cm = self.problem.cost_model
        self.cost_spent += max(cm.piece_cost(t.segment_start, t.last_step, step, size), 0.0)
        if elapsed is not None and math.isfinite(elapsed) and elapsed > 0:
            cm.observe(step, size, elapsed)
        t.curve.append((step, value))
        if not math.isfinite(value):
            self._apply_fail(t, f"diverged: non-finite value {value} at step {step}")
            return Decision.STOP
        t.state = TrialState.RUNNING
        decision = self._on_report(t, step, self._y(value))
        if decision is Decision.PAUSE:
            t.state = TrialState.PAUSED
            self._on_end(t)
        elif decision is Decision.STOP:
            t.state = TrialState.STOPPED
            self._on_end(t)
        return decision

    def _apply_complete(self, t: Trial) -> None:
        if t.state is TrialState.PAUSED:
            return
        t.state = TrialState.COMPLETED
        self._on_end(t)

    def _apply_abandon(self, t: Trial) -> None:
        if t.curve and t.last_step >= t.steps:
            self._apply_complete(t)  # it reached the end of its segment; only the complete was lost
            return
        t.state = TrialState.PAUSED if t.curve else TrialState.STOPPED
        self._on_end(t)

    def _apply_fail(self, t: Trial, reason: str) -> None:
        t.state = TrialState.FAILED
        t.failure = reason or "failed"
        self._on_end(t)

