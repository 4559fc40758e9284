"""Syne Tune's multi-fidelity schedulers (MOBSTER, Hyper-Tune, DyHPO) driven through their public API.

Syne Tune's ``Tuner`` talks to a ``TrialScheduler``: ``suggest(trial_id)`` -> a ``TrialSuggestion`` (start a
new trial with a config, or resume a paused one), ``on_trial_add`` for a started trial,
``on_trial_result(trial, result)`` -> CONTINUE / PAUSE / STOP for each report, then ``on_trial_remove``
after a PAUSE or STOP, ``on_trial_complete`` when a trial ends on its own, ``on_trial_error`` when it fails.
This module plays the ``Tuner`` with exactly those calls (after ``Tuner._schedule_new_task`` and
``Tuner._update_running_trials``), with ``syne_tune.backend.trial_status.Trial`` objects as the trials.

Fidelity: Syne's resource attribute is the number of reports, i.e. one ``report_every`` steps at the
target model size (as Ray's ``training_iteration`` in :mod:`bench.peers.ray_tune`); ``max_t`` is the
target steps in those units, the grace period the first report at or after the ladder's ``min_steps``.
The config space carries ``max_resource_attr`` as a constant, so every config Syne hands out says how many
reports its segment runs (the milestone, for pause/resume schedulers): that is our step budget.

Two kinds of scheduler:

- stopping (MOBSTER, Hyper-Tune with Syne's default ``type="stopping"``): ``suggest`` never resumes, so
  :meth:`_ask` calls it directly, once per issued trial (consecutive asks are a batch, as in Syne: the
  searcher registers each config as pending).
- pause/resume (DyHPO, ``type="dyhpo"``): ``suggest`` itself chooses between resuming a paused trial and
  starting a new one, and it mutates Syne's state either way. So it runs only in :meth:`_after_event` (the
  same point live and during replay) whenever no answer is pending, and its answer is kept: a resume is
  what :meth:`_choose_resume` hands out, a start is what the next :meth:`_ask` takes. Hence one new trial
  per event; the harness asks one free worker at a time, and the next answer is ready right after.

Divergence: a non-finite value never reaches Syne; the trial fails and Syne hears ``on_trial_error``. A
STOP at the last reporting step (Syne stops every trial that reaches ``max_t``) is our CONTINUE there, so
the trial completes normally.

Determinism: Syne seeds its own generators from ``random_seed``; its elapsed time (which would be wall
clock) is our spent cost, and every Syne call runs under :func:`seeded_global_numpy` keyed by the event
history, since parts of its GP code draw from numpy's global RNG. Syne names its GP blocks (and so the GP
hyperparameters, which its fit orders by name) from a process-wide counter; Hyper-Tune's fit came out
different once that counter had moved on (a second run in the same process), so each peer numbers its
blocks with a ``NameManager`` of its own, entered around every Syne call.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import io
import logging
import math
from typing import Any

with contextlib.redirect_stdout(io.StringIO()):  # syne_tune.util prints a notice about its AWS extra
    from syne_tune.backend.time_keeper import TimeKeeper
    from syne_tune.backend.trial_status import Trial as SyneTrial
    from syne_tune.optimizer.baselines import MOBSTER, DyHPO, HyperTune
    from syne_tune.optimizer.scheduler import SchedulerDecision, TrialSuggestion
    from syne_tune import config_space as sp
    from syne_tune.optimizer.schedulers.searchers.bayesopt.gpautograd.gluon import NameManager

from bench.peers.base import PeerAsk, PeerScheduler, seeded_global_numpy
from bench.peers.native_space import NativeKind, native_params, to_config
from schedulers.base import Decision, Trial, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

#: the metric name we give Syne (always minimised: the base class flips maximisation)
METRIC = "objective"
#: Syne's resource attribute: the number of reports so far
RESOURCE = "reports"
#: constant entry of the config space: the number of reports a segment runs to (Syne's max_resource_attr)
MAX_RESOURCE = "scaleladder_max_reports"

_CALL_SUGGEST, _CALL_EVENT = 1, 2


class _CostClock(TimeKeeper):
    """Syne's clock (``FIFOScheduler._elapsed_time``) = the cost spent so far: deterministic, unlike the
    ``RealTimeKeeper`` Syne would start on its own."""

    def __init__(self, owner: "SyneTunePeer") -> None:
        self._owner = owner

    def start_of_time(self) -> None:
        pass

    def time(self) -> float:
        return float(self._owner.cost_spent)

    def time_stamp(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(0, datetime.timezone.utc) + datetime.timedelta(seconds=self.time())

    def advance(self, step: float) -> None:
        pass


def syne_config_space(problem: Problem, max_reports: int) -> dict[str, Any]:
    """Our space in Syne Tune's config-space language (one entry per native parameter), plus the constant
    :data:`MAX_RESOURCE`."""
    out: dict[str, Any] = {}
    for q in native_params(problem.space):
        if q.kind is NativeKind.FLOAT:
            out[q.name] = sp.loguniform(q.low, q.high) if q.log else sp.uniform(q.low, q.high)
        elif q.kind is NativeKind.INT:
            lo, hi = int(q.low), int(q.high)
            out[q.name] = lo if lo == hi else (sp.lograndint(lo, hi) if q.log else sp.randint(lo, hi))
        elif q.n_choices == 1:
            out[q.name] = 0
        elif q.ordered:  # the index, rounded to the nearest value from a real interval
            out[q.name] = sp.ordinal(list(range(q.n_choices)), kind="nn")
        else:
            out[q.name] = sp.choice(q.choices)
    if MAX_RESOURCE in out:
        raise InvalidProblemError(f"parameter name {MAX_RESOURCE!r} is reserved by the Syne Tune peers",
                                  field="space")
    out[MAX_RESOURCE] = max_reports
    return out


class SyneTunePeer(PeerScheduler):
    """Common driver of Syne Tune's ``HyperbandScheduler`` family. Subclasses build the scheduler in
    :meth:`_make_scheduler` from :meth:`_common_kwargs`."""

    #: the options :meth:`_make_scheduler` takes (others are rejected as unknown)
    option_names: frozenset[str] = frozenset()

    def __init__(self, problem: Problem, seed: int = 0, **options: Any) -> None:
        super().__init__(problem, seed, **{k: v for k, v in options.items() if k not in self.option_names})
        #: Syne's GP blocks are named from a process-wide counter, and the names order the parameters
        #: (Hyper-Tune's fit changed with the counter); each peer numbers its own blocks from 0
        self._names = NameManager()
        logging.getLogger("syne_tune").setLevel(logging.ERROR)  # INFO per trial, a warning per DyHPO run
        #: Syne's resource unit: one report
        self.max_t = max(1, math.ceil(self.max_budget / self.report_every))
        self._config_space = syne_config_space(problem, self.max_t)
        with self._names:
            self._syne = self._make_scheduler(**options)
        self._syne.set_time_keeper(_CostClock(self))
        self._pause_resume = bool(self._syne.does_pause_resume())
        self._syne_trials: dict[int, SyneTrial] = {}   # our trial id -> Syne trial
        self._removed: set[int] = set()                # Syne heard on_trial_remove / complete / error
        self._last_result: dict[int, dict[str, Any]] = {}
        self._segment_breaks: list[int] = []           # ours PAUSED at a segment end, RUNNING for Syne
        #: pause/resume schedulers: Syne's pending answer (a TrialSuggestion), asked in _after_event
        self._pending: TrialSuggestion | None = None
        self._pending_for: int | None = None           # the trial id a pending start is for
        if self._pause_resume:
            self._prepare()

    @abc.abstractmethod
    def _make_scheduler(self, **options: Any) -> Any:
        """The Syne Tune scheduler, built with :meth:`_common_kwargs` and the peer's own options."""

    def _common_kwargs(self) -> dict[str, Any]:
        return dict(config_space=self._config_space, metric=METRIC, mode="min", resource_attr=RESOURCE,
                    max_resource_attr=MAX_RESOURCE, grace_period=self._iteration(self.min_budget),
                    random_seed=self.seed)

    # ---------------------------------------------------------------- helpers
    def _iteration(self, step: int) -> int:
        return max(1, math.ceil(step / self.report_every))

    def _budget(self, config: dict[str, Any], last_step: int = 0) -> int:
        """The step budget of a segment whose config says to run to ``config[MAX_RESOURCE]`` reports."""
        reports = int(config.get(MAX_RESOURCE, self.max_t))
        return max(self.snap_steps(reports * self.report_every), min(last_step + self.report_every,
                                                                       self.max_budget))

    def _call(self, key: tuple[int, ...], fn: Any, *args: Any) -> Any:
        with seeded_global_numpy(self.seed, *key), self._names:
            return fn(*args)

    def _start(self, trial_id: int, suggestion: TrialSuggestion) -> PeerAsk:
        config = dict(suggestion.config)
        st = SyneTrial(trial_id=trial_id, config=config,
                       creation_time=datetime.datetime.fromtimestamp(0, datetime.timezone.utc))
        return PeerAsk(st, to_config(self.space, config), self.problem.target.size, self._budget(config))

    def _prepare(self) -> None:
        """Pause/resume schedulers: ask Syne for its next answer if none is pending (a mutating call, so it
        runs only from the constructor and :meth:`_after_event`)."""
        for _ in range(len(self._syne_trials) + 1):
            if self._pending is not None:
                return
            trial_id = len(self.trials)
            s = self._call((_CALL_EVENT, len(self.events), trial_id), self._syne.suggest, trial_id)
            if s is None:
                return  # nothing to run now; asked again after the next event
            if not s.spawn_new_trial_id:
                tid = int(s.checkpoint_trial_id)
                if tid not in self.trials or self.trials[tid].state is not TrialState.PAUSED:
                    # a trial that failed while paused: Syne still lists it; it is gone for good
                    if tid in self._syne_trials:
                        self._call((_CALL_EVENT, len(self.events), tid, 1), self._syne.on_trial_error,
                                   self._syne_trials[tid])
                    continue
            self._pending, self._pending_for = s, trial_id

    # ---------------------------------------------------------------- peer hooks
    def _ask(self, trial_id: int) -> PeerAsk | None:
        if self._pause_resume:
            s = self._pending
            if s is None or not s.spawn_new_trial_id or self._pending_for != trial_id:
                return None  # Syne's answer is a resume (or nothing): wait for resume()
            self._pending = self._pending_for = None
            return self._start(trial_id, s)
        s = self._call((_CALL_SUGGEST, trial_id), self._syne.suggest, trial_id)
        if s is None:
            return None
        if not s.spawn_new_trial_id:  # a stopping scheduler never resumes
            raise RuntimeError(f"{self.name}: Syne Tune asked to resume trial {s.checkpoint_trial_id}")
        return self._start(trial_id, s)

    def _peer_on_suggest(self, trial: Trial, handle: Any) -> None:
        self._syne_trials[trial.trial_id] = handle
        self._call((_CALL_EVENT, len(self.events), 1), self._syne.on_trial_add, handle)

    def _remove(self, trial: Trial) -> None:
        self._call((_CALL_EVENT, len(self.events), 2), self._syne.on_trial_remove,
                   self._syne_trials[trial.trial_id])

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        st = self._syne_trials[trial.trial_id]
        result = {METRIC: y, RESOURCE: self._iteration(step), "step": step}
        self._last_result[trial.trial_id] = result
        action = self._call((_CALL_EVENT, len(self.events), 3), self._syne.on_trial_result, st, result)
        if action == SchedulerDecision.STOP:
            self._remove(trial)
            self._removed.add(trial.trial_id)
            # Syne stops every trial that reaches max_t: at the last step that is a normal completion
            return Decision.CONTINUE if step >= self.max_budget else Decision.STOP
        if action == SchedulerDecision.PAUSE:
            self._remove(trial)
            self._removed.add(trial.trial_id)
            if step >= self.max_budget:
                return Decision.CONTINUE
            return Decision.PAUSE
        if step >= trial.steps and step < self.max_budget:
            self._segment_breaks.append(trial.trial_id)  # Syne runs on; our segment ends here
            return Decision.PAUSE
        return Decision.CONTINUE

    def _peer_on_resume(self, trial: Trial) -> None:
        tid = trial.trial_id
        if tid in self._segment_breaks:
            self._segment_breaks.remove(tid)
            return
        s = self._pending
        if s is not None and not s.spawn_new_trial_id and int(s.checkpoint_trial_id) == tid:
            if s.config is not None:  # as Tuner -> backend.resume_trial(new_config=...)
                self._syne_trials[tid].config = dict(s.config)
            self._pending = self._pending_for = None
        self._removed.discard(tid)

    def _peer_on_end(self, trial: Trial) -> None:
        tid = trial.trial_id
        st = self._syne_trials[tid]
        if tid in self._segment_breaks and trial.state is not TrialState.PAUSED:
            self._segment_breaks.remove(tid)
        if trial.state is TrialState.FAILED:
            if tid in self._segment_breaks:
                self._segment_breaks.remove(tid)
            self._call((_CALL_EVENT, len(self.events), 4), self._syne.on_trial_error, st)
            self._removed.add(tid)
        elif trial.state is TrialState.COMPLETED and tid not in self._removed:
            self._call((_CALL_EVENT, len(self.events), 5), self._syne.on_trial_complete, st,
                       dict(self._last_result.get(tid, {})))
            self._removed.add(tid)
        elif trial.state is TrialState.STOPPED and tid not in self._removed:
            self._remove(trial)
            self._removed.add(tid)

    def _after_event(self) -> None:
        if self._pause_resume:
            s = self._pending
            if s is not None and not s.spawn_new_trial_id:
                tid = int(s.checkpoint_trial_id)
                if self.trials[tid].state is not TrialState.PAUSED:  # failed while paused
                    self._pending = self._pending_for = None
            self._prepare()

    def _choose_resume(self) -> tuple[int, int] | None:
        for tid in self._segment_breaks:
            t = self.trials[tid]
            if t.state is TrialState.PAUSED:
                return tid, self._budget(self._syne_trials[tid].config, t.last_step)
        s = self._pending
        if s is None or s.spawn_new_trial_id:
            return None
        tid = int(s.checkpoint_trial_id)
        t = self.trials[tid]
        if t.state is not TrialState.PAUSED:
            return None
        config = s.config if s.config is not None else self._syne_trials[tid].config
        return tid, self._budget(config, t.last_step)

    def _extra_state(self) -> Any:
        pending = None if self._pending is None else (self._pending.spawn_new_trial_id,
                                                     self._pending.checkpoint_trial_id, self._pending_for)
        return {"peer_trials": len(self._handles), "pending": pending}


class SyneMobster(SyneTunePeer):
    """``syne_tune.optimizer.baselines.MOBSTER``: asynchronous successive halving (``type="stopping"``,
    Syne's default) whose new configs come from a multi-fidelity GP (Syne's default ``gp_multitask``) fitted
    on the rung data. ``reduction_factor`` 3, one bracket: Syne's defaults."""

    name = "syne_mobster"
    option_names = frozenset({"reduction_factor"})

    def _make_scheduler(self, reduction_factor: float = 3) -> Any:
        if reduction_factor < 2:
            raise InvalidProblemError("reduction_factor must be >= 2", field="scheduler.options.reduction_factor")
        return MOBSTER(reduction_factor=reduction_factor, **self._common_kwargs())


class SyneHyperTune(SyneTunePeer):
    """``syne_tune.optimizer.baselines.HyperTune``: asynchronous successive halving (``type="stopping"``)
    with configs from Hyper-Tune's ensemble of independent GPs per rung (Syne's default ``gp_independent``)
    and, with ``brackets`` > 1, each new trial's bracket drawn from Hyper-Tune's model-based distribution.
    ``brackets`` 1 and ``reduction_factor`` 3 are Syne's defaults (its own benchmark baseline keeps them)."""

    name = "syne_hypertune"
    option_names = frozenset({"reduction_factor", "brackets"})

    def _make_scheduler(self, reduction_factor: float = 3, brackets: int = 1) -> Any:
        if reduction_factor < 2:
            raise InvalidProblemError("reduction_factor must be >= 2", field="scheduler.options.reduction_factor")
        if brackets < 1:
            raise InvalidProblemError("brackets must be >= 1", field="scheduler.options.brackets")
        return HyperTune(reduction_factor=reduction_factor, brackets=int(brackets), **self._common_kwargs())


class SyneDyHpo(SyneTunePeer):
    """``syne_tune.optimizer.baselines.DyHPO``: pause/resume (``type="dyhpo"``); every free worker gets
    either a paused trial promoted to its next rung or a new config, whichever the GP scores best (with
    probability ``probability_sh`` the successive-halving rule promotes first: Syne's hybrid). Linearly
    spaced rungs, ``rung_increment`` 2 reports: Syne's default. A resumed trial runs to its next rung and
    pauses there, so each segment is one rung."""

    name = "syne_dyhpo"
    option_names = frozenset({"rung_increment", "probability_sh"})

    def _make_scheduler(self, rung_increment: int = 2, probability_sh: float | None = None) -> Any:
        if rung_increment < 1:
            raise InvalidProblemError("rung_increment must be >= 1", field="scheduler.options.rung_increment")
        if probability_sh is not None and not 0 <= probability_sh < 1:
            raise InvalidProblemError("probability_sh must be in [0, 1)", field="scheduler.options.probability_sh")
        return DyHPO(rung_increment=int(rung_increment), probability_sh=probability_sh, **self._common_kwargs())
