"""Ray Tune's trial schedulers (ASHA, HyperBand) driven through their own decision logic, without a cluster.

Ray's schedulers talk to a ``TuneController`` and to ``ray.tune.experiment.Trial`` objects. Here the
trials are real ``Trial`` objects built as stubs (no actor, no storage), and :class:`_PeerController` stands
in for the controller with exactly the calls the schedulers make (``stop_trial``, ``get_trials``,
``search_alg.searcher``), written after ``TuneController.stop_trial`` so the schedulers' bookkeeping runs as
it does inside Tune. Fidelity: Ray's time unit is one report (``training_iteration``), i.e. one
``report_every`` steps at the target model size; ``max_t`` is the target steps in those units.

Life of a Ray trial as we drive it: ``on_trial_add`` when we issue it (then RUNNING), ``on_trial_result``
for each report, PAUSE -> status PAUSED (our PAUSE), STOP -> ``stop_trial`` (our STOP), our complete ->
``on_trial_complete``, our fail or a divergence -> ``on_trial_error``. When the scheduler stops a PAUSED
trial (HyperBand's successive halving), our trial goes from PAUSED to STOPPED.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from ray.tune.experiment import Trial as RayTrial
from ray.tune.schedulers import AsyncHyperBandScheduler, HyperBandScheduler

from bench.peers.base import PeerAsk, PeerScheduler, seeded_global_numpy
from bench.peers.native_space import ray_domains, to_config
from schedulers.base import Decision, Trial, TrialState
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

#: the metric name we give Ray (always minimised: the base class flips maximisation)
METRIC = "objective"


class _SearcherHolder:
    """``tune_controller.search_alg``: Ray's schedulers reach the searcher as ``search_alg.searcher``."""

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher


class _PeerController:
    """The slice of ``ray.tune.execution.tune_controller.TuneController`` that trial schedulers call."""

    def __init__(self, owner: "RayTrialSchedulerPeer", searcher: Any = None) -> None:
        self._owner = owner
        self.search_alg = _SearcherHolder(searcher)

    def get_trials(self) -> list[Any]:
        return [*self._owner._ray_trials.values(), *self._owner._pending]

    def stop_trial(self, ray_trial: Any) -> None:
        """As ``TuneController.stop_trial``: PENDING/PAUSED -> ``on_trial_remove``; RUNNING ->
        ``on_trial_complete`` with the last result; the searcher hears ``on_trial_complete`` either way."""
        owner = self._owner
        if ray_trial.status in (RayTrial.ERROR, RayTrial.TERMINATED):
            return
        tid = owner._ours.get(ray_trial.trial_id)
        last = owner._last_result.get(tid) if tid is not None else None
        if ray_trial.status in (RayTrial.PENDING, RayTrial.PAUSED):
            owner._scheduler.on_trial_remove(self, ray_trial)
            if self.search_alg.searcher is not None:
                self.search_alg.searcher.on_trial_complete(ray_trial.trial_id)
        else:
            owner._scheduler.on_trial_complete(self, ray_trial, dict(last or {}))
            if self.search_alg.searcher is not None:
                self.search_alg.searcher.on_trial_complete(ray_trial.trial_id, result=dict(last or {}))
        ray_trial.set_status(RayTrial.TERMINATED)
        if ray_trial in owner._pending:
            owner._pending.remove(ray_trial)
        if tid is not None and owner.trials[tid].state is TrialState.PAUSED:
            # stopped while paused (successive halving): final, never handed out again
            owner.trials[tid].state = TrialState.STOPPED


class RayTrialSchedulerPeer(PeerScheduler):
    """Common driver of Ray Tune trial schedulers. Subclasses build :attr:`_scheduler` in
    :meth:`_make_scheduler` (and a searcher in :meth:`_make_searcher`, else configs are drawn as Ray's
    ``BasicVariantGenerator`` draws them: from Ray's own domains, seeded by (seed, Ray trial number)).

    As in ``TuneController``, Ray trials are created ahead as PENDING, up to :attr:`max_pending` of them
    (Ray's default is 200 for random search and 1 for a custom searcher), and added to the scheduler when
    created; a new trial of ours is the PENDING trial Ray's ``choose_trial_to_run`` picks. This matters for
    synchronous HyperBand, whose brackets are filled by pending trials before any of them runs.

    Segments. A Ray trial runs until its scheduler pauses or stops it; our executor wants a step budget
    per segment. The budget is the trial's next milestone (:meth:`_segment_steps`; the target steps for
    ASHA). When Ray lets a trial run on at the end of its segment (HyperBand keeps the trial that completed
    a rung), the segment ends with PAUSE while the trial stays RUNNING for Ray, and :meth:`resume` hands it
    out first, up to its next milestone: the price is one more segment start-up in the cost model.
    """

    #: how many PENDING Ray trials exist ahead of being run (``TUNE_MAX_PENDING_TRIALS_PG`` "auto")
    max_pending: int = 200

    def __init__(self, problem: Problem, seed: int = 0, reduction_factor: float = 3, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        if reduction_factor <= 1:
            raise InvalidProblemError("reduction_factor must be > 1", field="scheduler.options.reduction_factor")
        self.reduction_factor = reduction_factor
        #: Ray's time unit: one report
        self.max_t = max(1, math.ceil(self.max_budget / self.report_every))
        self._domains = ray_domains(self.space)
        self._ray_trials: dict[int, Any] = {}       # our trial id -> Ray trial
        self._ours: dict[str, int] = {}             # Ray trial id -> our trial id
        self._pending: list[Any] = []               # Ray trials created, not yet run
        self._n_created = 0
        self._last_result: dict[int, dict[str, Any]] = {}
        self._searcher = self._make_searcher()
        self._controller = _PeerController(self, self._searcher)
        self._scheduler = self._make_scheduler()
        self._next_resume: int | None = None
        self._segment_breaks: list[int] = []   # ours PAUSED at a segment end, RUNNING for Ray

    @abc.abstractmethod
    def _make_scheduler(self) -> Any:
        """The Ray trial scheduler, built for :attr:`max_t` and :attr:`reduction_factor`."""

    def _make_searcher(self) -> Any:
        """The Ray searcher whose suggestions new trials follow; ``None`` = Ray's random sampling."""
        return None

    def _iteration(self, step: int) -> int:
        return max(1, math.ceil(step / self.report_every))

    def _segment_steps(self, ray_trial: Any, last_step: int = 0) -> int:
        """The step budget of the trial's next segment: the target steps unless overridden."""
        return self.max_budget

    def _suggest_config(self, ray_id: str) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, int(ray_id)])
        native = {name: dom.sample(random_state=rng) for name, dom in self._domains.items()}
        return {k: (v[0] if isinstance(v, list) else v) for k, v in native.items()}

    def _create_pending(self) -> None:
        while len(self._pending) < self.max_pending:
            ray_id = str(self._n_created)
            self._n_created += 1
            rt = RayTrial("scaleladder_peer", config=self._suggest_config(ray_id), trial_id=ray_id, stub=True)
            with seeded_global_numpy(self.seed, int(ray_id), 1):  # ASHA draws its bracket from np.random
                self._scheduler.on_trial_add(self._controller, rt)
            self._pending.append(rt)

    # ---------------------------------------------------------------- peer hooks
    def _ask(self, trial_id: int) -> PeerAsk | None:
        self._create_pending()
        chosen = self._scheduler.choose_trial_to_run(self._controller)
        if chosen is None or chosen.status != RayTrial.PENDING:
            return None  # Ray wants a paused trial resumed first (see resume())
        self._pending.remove(chosen)
        chosen.set_status(RayTrial.RUNNING)
        return PeerAsk(chosen, to_config(self.space, chosen.config), self.problem.target.size,
                       self._segment_steps(chosen))

    def _peer_on_suggest(self, trial: Trial, handle: Any) -> None:
        self._ray_trials[trial.trial_id] = handle
        self._ours[handle.trial_id] = trial.trial_id

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        rt = self._ray_trials[trial.trial_id]
        result = {"training_iteration": self._iteration(step), METRIC: y, "step": step,
                  "trial_id": rt.trial_id}
        self._last_result[trial.trial_id] = result
        action = self._scheduler.on_trial_result(self._controller, rt, result)
        if self._searcher is not None:
            self._searcher.on_trial_result(rt.trial_id, result)
        if action == "PAUSE":
            rt.set_status(RayTrial.PAUSED)
            return Decision.PAUSE
        if action == "STOP":
            self._controller.stop_trial(rt)
            return Decision.STOP
        if step >= trial.steps and step < self.max_budget:
            self._segment_breaks.append(trial.trial_id)  # Ray runs on; our segment ends here
            return Decision.PAUSE
        return Decision.CONTINUE

    def _peer_on_resume(self, trial: Trial) -> None:
        if trial.trial_id in self._segment_breaks:
            self._segment_breaks.remove(trial.trial_id)
        self._ray_trials[trial.trial_id].set_status(RayTrial.RUNNING)

    def _peer_on_end(self, trial: Trial) -> None:
        rt = self._ray_trials[trial.trial_id]
        if rt.status in (RayTrial.TERMINATED, RayTrial.ERROR):
            return
        if trial.state is TrialState.COMPLETED:
            self._controller.stop_trial(rt)  # a RUNNING trial that ended normally: on_trial_complete
        elif trial.state is TrialState.FAILED:
            self._scheduler.on_trial_error(self._controller, rt)
            if self._searcher is not None:
                self._searcher.on_trial_complete(rt.trial_id, error=True)
            rt.set_status(RayTrial.ERROR)

    def _after_event(self) -> None:
        chosen = self._scheduler.choose_trial_to_run(self._controller)
        tid = None if chosen is None else self._ours.get(chosen.trial_id)
        self._next_resume = tid if tid is not None and self.trials[tid].state is TrialState.PAUSED else None

    def _choose_resume(self) -> tuple[int, int] | None:
        for tid in self._segment_breaks:
            if self.trials[tid].state is TrialState.PAUSED:
                return tid, self._segment_steps(self._ray_trials[tid], self.trials[tid].last_step)
        if self._next_resume is None or self.trials[self._next_resume].state is not TrialState.PAUSED:
            return None
        tid = self._next_resume
        return tid, self._segment_steps(self._ray_trials[tid], self.trials[tid].last_step)


class RayAsha(RayTrialSchedulerPeer):
    """Ray Tune's ``AsyncHyperBandScheduler`` (ASHA) with random configs. Single fidelity: steps at the
    target size (grace period = the first report at or after the ladder's ``min_steps``, ``max_t`` = target
    steps, ``reduction_factor`` 3, one bracket: Ray's defaults). Never pauses, so nothing to resume."""

    name = "ray_asha"
    #: ASHA is asynchronous and places a trial when it is added: creating trials ahead changes nothing
    max_pending = 1

    def _make_scheduler(self) -> Any:
        return AsyncHyperBandScheduler(time_attr="training_iteration", metric=METRIC, mode="min",
                                       max_t=self.max_t, grace_period=self._iteration(self.min_budget),
                                       reduction_factor=self.reduction_factor)


class _MilestoneSegments:
    """Segment budgets at the trial's HyperBand milestone: its bracket's current rung (Ray's private
    ``_Bracket._cumul_r``, in reports; ray is pinned below 2.61), at least one report past the last step."""

    def _segment_steps(self, ray_trial: Any, last_step: int = 0) -> int:
        bracket, _ = self._scheduler._trial_info[ray_trial]
        steps = max(int(bracket._cumul_r) * self.report_every, last_step + self.report_every)
        return min(steps, self.max_budget)


class RayHyperBand(_MilestoneSegments, RayTrialSchedulerPeer):
    """Ray Tune's synchronous ``HyperBandScheduler`` with random configs. Single fidelity: steps at the
    target size, ``max_t`` = target steps in reports. Ray's PAUSE at a milestone is our PAUSE; the trial
    Ray picks with ``choose_trial_to_run`` is handed out by :meth:`resume` with the rest of the target
    steps as its budget (Ray pauses it again at the next milestone)."""

    name = "ray_hyperband"

    def _make_scheduler(self) -> Any:
        return HyperBandScheduler(time_attr="training_iteration", metric=METRIC, mode="min", max_t=self.max_t,
                                  reduction_factor=self.reduction_factor)

