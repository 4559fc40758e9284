"""Ray Tune adapters over ONE shared :class:`~schedulers.base.Scheduler` (the only ray-importing module here).

Tune asks two objects for decisions: a ``Searcher`` (which new trial to start) and a ``TrialScheduler``
(continue / pause / stop a running trial, which pending or paused trial to run next). Both are thin
adapters over the same scheduler instance, held by a :class:`SchedulerBridge`; they translate ids and
decisions and contain no tuning logic:

==============================================  ==================================================
Tune hook                                      scheduler call
==============================================  ==================================================
``SchedulerSearcher.suggest``                  ``resume()`` first (queued for the TrialScheduler),
                                               else ``suggest(1)``; ``None`` to wait, ``FINISHED``
                                               when the budget is spent or nothing can ever run
``LadderTrialScheduler.on_trial_result``       ``report(trial, step, value)`` -> CONTINUE/PAUSE/STOP
``LadderTrialScheduler.choose_trial_to_run``   pending trials, then paused trials ``resume()`` gave
                                               back (their config gets the new step budget)
``LadderTrialScheduler.on_trial_complete``      ``complete(trial)``
``SchedulerSearcher.on_trial_complete(error)``  ``fail(trial, reason)`` (Tune's retries are spent)
==============================================  ==================================================

Concurrency is limited here, not by Tune's ``max_concurrent_trials`` (which counts PAUSED trials as live
and would deadlock a Hyperband that pauses a whole rung): a new trial is suggested only while fewer than
``max_concurrent`` scheduler trials are live.

Restarts: a bridge built on a scheduler replayed from a persisted event history re-issues the trials that
were live when the previous run died (``reissue``), from their last persisted checkpoint, so nothing is
trained twice from zero and no trial is duplicated. The Tune trial config carries everything the trainable
needs (:class:`TrialKeys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ray.tune.experiment import Trial as RayTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from schedulers.base import Decision, Scheduler, Suggestion

_TO_TUNE = {Decision.CONTINUE: TrialScheduler.CONTINUE, Decision.PAUSE: TrialScheduler.PAUSE,
            Decision.STOP: TrialScheduler.STOP}


class TrialKeys:
    """Keys of the Tune trial config (what the trainable receives) and of the results it reports."""

    STUDY_ID = "study_id"
    TRIAL_ID = "trial_id"            # the scheduler's trial id
    PARAMS = "params"
    SIZE = "size"
    SIZE_PARAMS = "size_params"
    SIZE_EXTRA = "size_extra"
    STEPS = "steps"                  # the segment's step budget
    START_STEP = "start_step"
    REPLICATE = "replicate"
    REPORT_EVERY = "report_every"
    SEED = "seed"
    RESTORE_FROM = "restore_from"    # a checkpoint directory to start from when Tune has none
    ADAPTIVE = "adaptive"            # an adaptive study: {"board": actor name, "namespace": ...} (workers.adaptation)
    ADAPTED = "adapted"              # the workload's: the adaptive parameters' values in effect at start_step
    # result keys
    STEP = "step"
    VALUE = "value"
    DOMAINS = "domains"              # the objective per data domain, when the workload reports it
    METRICS = "metrics"              # other named values (a multi-objective study's other objectives)
    CHECKPOINT_DIR = "checkpoint_dir"  # set on results that carry a checkpoint

    @classmethod
    def domains_of(cls, result: Mapping[str, Any]) -> dict[str, float]:
        """A result's per-domain values: Tune hands schedulers the result flattened (``domains/code``)."""
        return cls._nested(result, cls.DOMAINS)

    @classmethod
    def metrics_of(cls, result: Mapping[str, Any]) -> dict[str, float]:
        """A result's other named values (``metrics``, flattened by Tune as ``metrics/latency``)."""
        return cls._nested(result, cls.METRICS)

    @staticmethod
    def _nested(result: Mapping[str, Any], key: str) -> dict[str, float]:
        nested = result.get(key)
        if isinstance(nested, Mapping):
            return {str(k): float(v) for k, v in nested.items()}
        prefix = key + "/"
        return {k[len(prefix):]: float(v) for k, v in result.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class StudyBudget:
    """When a study stops suggesting: after ``target_runs`` times the cost of one run at the target, and/or
    after ``max_trials`` trials (``None``: unlimited)."""

    target_runs: float | None = None
    max_trials: int | None = None


#: called with the scheduler's events recorded since the previous call, as (sequence number, event)
EventListener = Callable[[list[tuple[int, dict[str, Any]]]], None]


class SchedulerBridge:
    """The state both adapters share: the scheduler, the Ray <-> scheduler trial id maps, the queue of
    resumed trials, and the checkpoints known per trial.

    ``base_config`` is merged into every trial config (study id, workload, its arguments...).
    ``checkpoints`` maps a scheduler trial id to ``(directory, step)`` of its last persisted checkpoint;
    trials re-issued after a restart start from there. ``listener`` receives every new scheduler event as
    soon as it is recorded (the service persists them to the study's event log).
    """

    def __init__(self, scheduler: Scheduler, *, base_config: Mapping[str, Any] | None = None,
                 budget: StudyBudget = StudyBudget(), max_concurrent: int = 1,
                 checkpoints: Mapping[int, tuple[str, int]] | None = None,
                 listener: EventListener | None = None) -> None:
        self.scheduler = scheduler
        self.base_config = dict(base_config or {})
        self.budget = budget
        self.max_concurrent = max(1, int(max_concurrent))
        self.checkpoints: dict[int, tuple[str, int]] = dict(checkpoints or {})
        self.listener = listener
        self.ray_to_sched: dict[str, int] = {}
        self.sched_to_ray: dict[int, str] = {}
        #: Ray trials Tune holds PAUSED, and those of them the scheduler resumed (with their new segment)
        self.paused_ray: set[str] = set()
        self.resume_ready: dict[str, Suggestion] = {}
        #: scheduler trials to start as NEW Ray trials (live at a restart, or resumed without a Ray trial)
        self.reissue: list[Suggestion] = [self._as_suggestion(t.trial_id) for t in scheduler.live_trials()]
        self._flushed = len(scheduler.events)

    # ------------------------------------------------------------------ ids and configs
    def _as_suggestion(self, trial_id: int) -> Suggestion:
        t = self.scheduler.trial(trial_id)
        return Suggestion(t.trial_id, dict(t.params), t.size, t.steps, t.segment_start, t.replicate)

    def trial_config(self, s: Suggestion) -> dict[str, Any]:
        size = self.scheduler.ladder.size(s.size)
        ckpt = self.checkpoints.get(s.trial_id)
        return {**self.base_config,
                TrialKeys.TRIAL_ID: s.trial_id, TrialKeys.PARAMS: dict(s.params), TrialKeys.SIZE: s.size,
                TrialKeys.SIZE_PARAMS: size.params, TrialKeys.SIZE_EXTRA: dict(size.extra),
                TrialKeys.STEPS: s.steps, TrialKeys.START_STEP: ckpt[1] if ckpt else 0,
                TrialKeys.REPLICATE: s.replicate,
                TrialKeys.REPORT_EVERY: self.scheduler.ladder.report_every,
                TrialKeys.SEED: int(self.base_config.get(TrialKeys.SEED, 0)) + s.replicate,
                TrialKeys.RESTORE_FROM: ckpt[0] if ckpt else None}

    def bind(self, ray_trial_id: str, sched_trial_id: int) -> None:
        self.ray_to_sched[ray_trial_id] = sched_trial_id
        self.sched_to_ray[sched_trial_id] = ray_trial_id

    def sched_id(self, ray_trial_id: str) -> int | None:
        return self.ray_to_sched.get(ray_trial_id)

    # ------------------------------------------------------------------ budget
    def exhausted(self) -> bool:
        """The study's cost budget is spent: hand out nothing more (neither new nor resumed trials)."""
        b, sched = self.budget, self.scheduler
        return b.target_runs is not None and sched.cost_spent >= b.target_runs * sched.problem.target_cost

    def may_add_trials(self) -> bool:
        """The trial budget allows a new trial (resuming a paused one is always allowed)."""
        return self.budget.max_trials is None or len(self.scheduler.trials) < self.budget.max_trials

    def has_live_trials(self) -> bool:
        return bool(self.scheduler.live_trials())

    def is_done(self) -> bool:
        """Called when :meth:`next_trial` gave nothing: True if nothing will ever be handed out again (no
        trial is live, so no report can change the scheduler's mind)."""
        return not self.has_live_trials() and not self.resume_ready and not self.reissue

    # ------------------------------------------------------------------ events
    def flush(self) -> None:
        """Hand the events recorded since the last flush to the listener."""
        events = self.scheduler.events
        if self.listener is not None and self._flushed < len(events):
            self.listener([(i, events[i]) for i in range(self._flushed, len(events))])
        self._flushed = len(events)

    # ------------------------------------------------------------------ scheduler calls (then flush)
    def next_trial(self, ray_trial_id: str) -> tuple[Suggestion, bool] | None:
        """The next trial to run for a new Ray trial slot, as ``(suggestion, resumed)``: paused trials the
        scheduler resumes first, then new ones; ``None`` when the scheduler waits or the budget is spent."""
        try:
            if self.exhausted():
                return None
            s = self.scheduler.resume()
            if s is not None:
                return s, True
            if not self.may_add_trials():
                return None
            out = self.scheduler.suggest(1)
            return (out[0], False) if out else None
        finally:
            self.flush()

    def report(self, sched_trial_id: int, step: int, value: float, result: Mapping[str, Any]) -> Decision:
        """Tell the scheduler one measurement (``result`` is Tune's full result, for richer sinks)."""
        elapsed = result.get("time_total_s")  # Tune's training seconds of the trial, across restores
        decision = self.scheduler.report(sched_trial_id, step, value, float(elapsed) if elapsed else None,
                                         TrialKeys.metrics_of(result))
        self.flush()
        return decision

    def end(self, sched_trial_id: int, error: str | None = None) -> None:
        """The Ray trial ended normally (``error`` None) or for good with an error."""
        t = self.scheduler.trial(sched_trial_id)
        if not t.state.is_final:
            if error is None:
                self.scheduler.complete(sched_trial_id)
            else:
                self.scheduler.fail(sched_trial_id, error)
        self.flush()


class SchedulerSearcher(Searcher):
    """Tune ``Searcher`` over a :class:`SchedulerBridge`: new trials come from ``Scheduler.suggest(1)``."""

    def __init__(self, bridge: SchedulerBridge, metric: str = TrialKeys.VALUE) -> None:
        mode = "min" if bridge.scheduler.problem.direction.value == "minimize" else "max"
        super().__init__(metric=metric, mode=mode)
        self.bridge = bridge

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        b = self.bridge
        if b.reissue:
            s = b.reissue.pop(0)
            b.bind(trial_id, s.trial_id)
            return b.trial_config(s)
        if len(b.scheduler.live_trials()) >= b.max_concurrent:
            return None
        nxt = b.next_trial(trial_id)
        if nxt is None:
            # the scheduler waits (e.g. a full bracket) or the budget is spent
            return Searcher.FINISHED if b.is_done() else None
        s, resumed = nxt
        ray_id = b.sched_to_ray.get(s.trial_id) if resumed else None
        if ray_id is not None and ray_id in b.paused_ray:
            # its Ray trial is PAUSED: the TrialScheduler restarts that one (from Tune's checkpoint)
            b.resume_ready[ray_id] = s
            return None
        b.bind(trial_id, s.trial_id)
        return b.trial_config(s)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tune gave up on a trial (``error``; retries under ``FailureConfig`` are exhausted): the scheduler
        records the failure. Tune calls this only for final failures, unlike ``on_trial_error`` which also
        fires before a retry. Normal completion is told by :class:`LadderTrialScheduler`."""
        if error:
            self.bridge.paused_ray.discard(trial_id)
            self.bridge.resume_ready.pop(trial_id, None)
            sched_id = self.bridge.sched_id(trial_id)
            if sched_id is not None:
                self.bridge.end(sched_id, "the trial's worker failed and Tune's retries are exhausted")

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the scheduler's state is its event history, persisted by the bridge's listener."""

    def restore(self, checkpoint_path: str) -> None:
        """See :meth:`save`: a restarted study replays the scheduler from its event history instead."""


class LadderTrialScheduler(FIFOScheduler):
    """Tune ``TrialScheduler`` over the same bridge: results become ``report`` calls and the scheduler's
    :class:`~schedulers.base.Decision` becomes Tune's CONTINUE / PAUSE / STOP."""

    def __init__(self, bridge: SchedulerBridge, metric: str = TrialKeys.VALUE) -> None:
        super().__init__()
        self.bridge = bridge
        self._metric = metric

    def on_trial_result(self, tune_controller: Any, trial: RayTrial, result: dict) -> str:
        b = self.bridge
        sched_id = b.sched_id(trial.trial_id)
        if sched_id is None or TrialKeys.STEP not in result:
            return TrialScheduler.CONTINUE
        step = int(result[TrialKeys.STEP])
        if result.get(TrialKeys.CHECKPOINT_DIR):
            b.checkpoints[sched_id] = (str(result[TrialKeys.CHECKPOINT_DIR]), step)
        value = result.get(self._metric)
        value = float("nan") if value is None else float(value)
        decision = b.report(sched_id, step, value, result)
        if decision is Decision.PAUSE:
            b.paused_ray.add(trial.trial_id)
        return _TO_TUNE[decision]

    def _ended(self, trial: RayTrial, error: str | None) -> None:
        self.bridge.paused_ray.discard(trial.trial_id)
        self.bridge.resume_ready.pop(trial.trial_id, None)
        sched_id = self.bridge.sched_id(trial.trial_id)
        if sched_id is not None:
            self.bridge.end(sched_id, error)

    def on_trial_complete(self, tune_controller: Any, trial: RayTrial, result: dict) -> None:
        # a trial the scheduler PAUSEd at its segment end stays PAUSED there (complete() keeps it)
        self._ended(trial, None)

    def on_trial_error(self, tune_controller: Any, trial: RayTrial) -> None:
        """Fires before each retry too (the trial then restarts from its checkpoint), so the scheduler is
        told only of final failures, by :meth:`SchedulerSearcher.on_trial_complete`."""

    def on_trial_remove(self, tune_controller: Any, trial: RayTrial) -> None:
        self.bridge.paused_ray.discard(trial.trial_id)

    def choose_trial_to_run(self, tune_controller: Any) -> RayTrial | None:
        b = self.bridge
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == RayTrial.PENDING:
                return trial
        for trial in trials:
            s = b.resume_ready.get(trial.trial_id)
            if s is not None and trial.status == RayTrial.PAUSED:
                # the new segment: the trainable continues from Tune's checkpoint up to the new budget
                trial.config = {**trial.config, TrialKeys.STEPS: s.steps, TrialKeys.START_STEP: s.start_step}
                del b.resume_ready[trial.trial_id]
                b.paused_ray.discard(trial.trial_id)
                return trial
        self._stop_unresumable(tune_controller, trials)
        return None

    def _stop_unresumable(self, tune_controller: Any, trials: list[RayTrial]) -> None:
        """At the end of a study, paused trials nobody will resume would keep Tune waiting forever."""
        b = self.bridge
        if not (tune_controller.search_alg.is_finished() or b.exhausted()) or b.resume_ready or b.reissue:
            return
        if any(t.status in (RayTrial.PENDING, RayTrial.RUNNING) for t in trials):
            return
        for trial in trials:
            if trial.status == RayTrial.PAUSED:
                b.paused_ray.discard(trial.trial_id)
                tune_controller.stop_trial(trial)

    def debug_string(self) -> str:
        return f"ScaleLadder scheduler {self.bridge.scheduler.name!r}"
