"""The Ray executor: a started study runs as a Ray Tune experiment inside a named Ray actor.

Layout of one study on Ray::

    control plane (RayExecutor)  --start-->  actor "scaleladder-study-<id>" (namespace "scaleladder")
                                                 Tuner.fit(): SchedulerSearcher + LadderTrialScheduler
                                                   over a DatabaseBridge (the study's scheduler)
                                                 trials "study-<id>-trial-<n>": workers.trainable.run_trial
                                                   (a trainable class per study: make_trainable)

Every decision goes through the service's own ask/tell path: the :class:`DatabaseBridge` calls
:class:`service.scheduling.StudyRuntime` (``suggest`` / ``report`` / ``complete`` / ``fail``) in one
transaction each, with the study row locked, so the scheduler's events, the trial rows and every
measurement (idempotent per (trial, step)) land in the same tables, in the same transaction, as with REST
ask/tell; REST and the SDK show progress live. A Tune :class:`StudyMetricsCallback` keeps Ray metrics
(``ray.util.metrics``): running and finished trials and the cost spent.

Failures:

- control plane (or the runner) killed: the study stays RUNNING in the database. A new
  :class:`RayExecutor` (``scaleladder serve`` again) calls :meth:`RayExecutor.recover`, which starts a
  runner for each RUNNING study without one; the runner replays the scheduler from the event log and
  re-issues the trials that were live from the checkpoint recorded with their last stored measurement,
  so no measurement is lost and no trial is duplicated;
- a trial's worker dies: Tune restarts it from its last checkpoint (``FailureConfig(max_failures)``);
- a worker node dies: its trials restart from their last checkpoint on another node, as above (the
  storage path must be one every node sees); runners live on the head node, so no runner dies with it;
- a runner's process dies (OOM kill): Ray restarts the actor (``max_restarts``) and the new instance
  resumes the study from the event log by itself, as :meth:`RayExecutor.recover` would;
- a diverged trial reports a non-finite value: the scheduler records it as failed and the study goes on;
- a trial's workload raises (after Tune's retries): the trial is FAILED with the first line of the worker's
  exception (e.g. ``UnknownWorkloadError: ... No module named 'my_project'``), and after
  ``max_consecutive_failures`` trials in a row failed with the same error the study is FAILED with it,
  instead of starting more trials that fail the same way.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import ray
from ray import tune
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.schemas import Decision as WireDecision
from api.schemas import MeasurementCreate, Study, StudySpec, StudyState
from schedulers.base import Decision, Scheduler, Suggestion
from schedulers.ray_adapter import SchedulerBridge, TrialKeys
from service.db import make_engine, make_session_factory, transaction
from service.errors import ConflictError, ExecutorError
from service.executors import Executor
from service.models import StudyRow, TrialRow, utcnow
from service.adaptation import StudyAdaptation, build_adaptive
from service.repositories import AdaptationEventRepository, EventRepository, StudyRepository, TrialRepository
from service.scheduling import SchedulerCache, StudyRuntime, build_problem, build_scheduler, decode_event
from service.settings import Settings
from workers.adaptation import MixtureBoard, board_name
from workers.errors import ForbiddenWorkloadError
from workers.experiment import build_tuner, experiment_config
from workers.trainable import checkpoint_prefix, is_within
from workers.workloads import BUILTIN_WORKLOADS

log = logging.getLogger(__name__)

NAMESPACE = "scaleladder"
DEFAULT_WORKLOAD = "mup_transformer"
#: a study FAILs after this many trials in a row failed with the same worker error
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3


def runner_name(study_id: int) -> str:
    """The study runner's actor name, as shown in the Ray dashboard."""
    return f"scaleladder-study-{study_id}"


def trial_error_message(trial: Any, limit: int = 1000) -> str | None:
    """The first line of the exception a Tune trial last failed with, as raised in its worker
    (``"ModuleNotFoundError: No module named 'my_project'"``), or ``None`` if Tune recorded none."""
    exc = None
    path = getattr(trial, "pickled_error_file", None)
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                exc = ray.cloudpickle.load(f)
        except Exception:  # an exception class the driver cannot unpickle: use the text trace below
            exc = None
    if exc is not None:
        cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the worker's exception
        name = type(cause).__name__
        text = str(cause).strip()
        line = f"{name}: {text.splitlines()[0]}" if text else name
        return line[:limit]
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        # the text trace ends with the exception line ("Failure # n ..." headers precede each trace)
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][:limit]
    return None


def checkpoint_step(path: str | None) -> int | None:
    """The step of a checkpoint directory written by the trainable (``.../step-<n>``)."""
    m = re.search(r"step-(\d+)/?$", path or "")
    return int(m.group(1)) if m else None


class DatabaseBridge(SchedulerBridge):
    """A :class:`SchedulerBridge` whose scheduler calls go through :class:`StudyRuntime`, one transaction
    each, so they are persisted exactly as REST ask/tell persists them.

    The bridge's scheduler instance is lent to the runtime through a one-entry :class:`SchedulerCache`;
    if anyone else changed the study in between (its event count differs), the runtime replays from the
    database and the bridge adopts the replayed instance.
    """

    def __init__(self, scheduler: Scheduler, *, session_factory: sessionmaker[Session], study_id: int,
                 tenant: str, max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
                 **kw: Any) -> None:
        super().__init__(scheduler, **kw)
        self.session_factory = session_factory
        self.study_id = study_id
        self.tenant = tenant
        self.cache = SchedulerCache(1)
        self.study_state = StudyState.RUNNING
        self.cost_spent = 0.0  # target-run units
        self._state_checked = 0.0
        #: the study FAILs after this many trials in a row failed with the same error (0: never)
        self.max_consecutive_failures = max(0, int(max_consecutive_failures))
        self._failures: tuple[str | None, int] = (None, 0)  # (last error, trials in a row that failed with it)
        #: Ray trials by id, told by :class:`StudyMetricsCallback` when they start: where a failed trial's
        #: worker exception is read from
        self.ray_trials: dict[str, Any] = {}
        #: an adaptive study's :class:`workers.adaptation.MixtureBoard` (``None`` otherwise)
        self.board: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the experiment (searcher, scheduler, callbacks) for its own restore files; a
        # restarted study is rebuilt from the database instead, so the connection is not part of it
        state = dict(self.__dict__)
        state["session_factory"] = None
        state["cache"] = None
        state["ray_trials"] = {}
        state["board"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.cache = SchedulerCache(1)

    def _runtime_call(self, fn):
        """Run ``fn(runtime)`` in one transaction with the study locked; returns its result."""
        self.cache.put(self.study_id, self.scheduler)
        try:
            with transaction(self.session_factory) as session:
                study = StudyRepository(session).get(self.tenant, self.study_id, lock=True)
                rt = StudyRuntime(session, study, self.cache)
                out = fn(rt)
                self.scheduler = rt.sched
                self.study_state = study.state
                self.cost_spent = float(study.cost_spent or 0.0)
        except Exception:
            # the transaction rolled back: the instance may hold events that were never stored
            self.cache.discard(self.study_id)
            self.scheduler = self._reload()
            raise
        self._flushed = len(self.scheduler.events)
        return out

    def _reload(self) -> Scheduler:
        with transaction(self.session_factory) as session:
            study = StudyRepository(session).get(self.tenant, self.study_id)
            spec = StudySpec.model_validate(study.spec)
            events = [decode_event(p) for p in EventRepository(session).load(self.study_id)]
            return build_scheduler(spec, build_problem(spec)).replay(events)

    def _row(self, rt: StudyRuntime, number: int) -> TrialRow:
        return TrialRepository(rt.session).by_numbers(self.study_id, [number])[number]

    # -- the four scheduler calls -------------------------------------------------------------------
    def exhausted(self) -> bool:
        return self.study_state.is_final

    def is_done(self) -> bool:
        if self.study_state.is_final:
            # the study ended (budget, cancel): trials still running get STOP at their next report, and
            # the scheduler may still count them live (ending the study does not tell it), so do not wait
            return True
        if self.study_state is StudyState.PAUSED:
            return False  # a paused study waits for :resume
        return super().is_done()

    def next_trial(self, ray_trial_id: str) -> tuple[Suggestion, bool] | None:
        if self.study_state is not StudyState.RUNNING and time.monotonic() - self._state_checked < 1.0:
            return None  # paused or pending: look again in a second, not on every Tune loop
        self._state_checked = time.monotonic()
        known = set(self.scheduler.trials)

        def ask(rt: StudyRuntime):
            rows = rt.suggest(f"ray:{ray_trial_id}", 1)
            return (rows[0].number, rows[0].start_step, rows[0].adapted) if rows else None

        try:
            handed = self._runtime_call(ask)
        except ConflictError:
            # the start's commit has not landed yet (the executor hook runs before it)
            return None
        if handed is None:
            return None
        number, start_step, adapted = handed
        if adapted is not None and self.board is not None:
            # the mixture the trial starts (or resumes) with, for the trainable's start (workers.adaptation)
            self.board.post.remote(number, start_step, adapted)
        suggestion = self._as_suggestion(number)
        log.info("study %s trial %s %s: %s, steps %s..%s", self.study_id, number,
                 "resumed" if number in known else "started", suggestion.size, suggestion.start_step,
                 suggestion.steps)
        return suggestion, number in known

    def report(self, sched_trial_id: int, step: int, value: float, result: Mapping[str, Any]) -> Decision:
        ckpt = result.get(TrialKeys.CHECKPOINT_DIR)
        prefix = self.base_config.get("checkpoint_prefix")
        if ckpt and prefix and not is_within(str(ckpt), prefix):
            # the trainable writes under the study's prefix; anything else is not recorded for a restore
            log.warning("study %s trial %s: checkpoint %s is outside %s; not recorded",
                        self.study_id, sched_trial_id, ckpt, prefix)
            ckpt = None
        m = MeasurementCreate(step=step, value=value, checkpoint=str(ckpt) if ckpt else None,
                              domains=TrialKeys.domains_of(result), metrics=TrialKeys.metrics_of(result),
                              elapsed_seconds=float(result.get("time_total_s") or 0.0) or None)

        def tell(rt: StudyRuntime) -> tuple[WireDecision, dict[str, float] | None]:
            row = self._row(rt, sched_trial_id)
            if row.state.is_final and (row.last_step is None or step > row.last_step):
                # the study ended under the running trial (budget, cancel): it takes no more measurements
                return WireDecision.STOP, None
            answer = rt.report([(row, m)]).results[0]
            return answer.decision, answer.adapted

        wire_decision, adapted = self._runtime_call(tell)
        decision = Decision(wire_decision.value)
        if adapted is not None and self.board is not None:
            # the trainable waits for it right after its tune.report returns (workers.adaptation)
            self.board.post.remote(sched_trial_id, step, adapted)
        # one line per report (what the runner's log is for: following a study); PAUSE and STOP say why
        # the trial's segment ends
        log.info("study %s trial %s reported %.6g at step %s%s: %s", self.study_id, sched_trial_id, value, step,
                 " (checkpoint)" if ckpt else "", {Decision.CONTINUE: "continue", Decision.PAUSE: "paused",
                                                   Decision.STOP: "stopped"}.get(decision, decision))
        return decision

    def end(self, sched_trial_id: int, error: str | None = None) -> None:
        """The Ray trial ended. A failure is recorded with the worker's own exception (the adapter only
        knows that Tune's retries are spent), and ends the study once ``max_consecutive_failures`` trials
        in a row failed with the same error."""
        if error is not None:
            ray_trial = self.ray_trials.get(self.sched_to_ray.get(sched_trial_id, ""))
            error = (trial_error_message(ray_trial) if ray_trial is not None else None) or error

        def finish(rt: StudyRuntime) -> None:
            row = self._row(rt, sched_trial_id)
            if row.state.is_final:
                return
            if error is None:
                self._failures = (None, 0)
                rt.complete(row)
                log.info("study %s trial %s ended: %s", self.study_id, sched_trial_id, row.state.value)
                return
            log.info("study %s trial %s failed: %s", self.study_id, sched_trial_id, error)
            last, count = self._failures
            self._failures = (error, count + 1 if error == last else 1)
            rt.fail(row, error)
            n = self._failures[1]
            if self.max_consecutive_failures and n >= self.max_consecutive_failures \
                    and rt.study.state is StudyState.RUNNING:
                log.warning("study %s: %d trials in a row failed with %r; the study fails", self.study_id, n, error)
                rt.finish(StudyState.FAILED, utcnow(), f"{n} trials in a row failed: {error}")

        self._runtime_call(finish)

    def close_study(self, error: str | None = None) -> None:
        """The experiment ended: a RUNNING study whose scheduler has nothing left is COMPLETED (FAILED with
        ``error``); a PAUSED or already final one is left as it is."""

        def close(rt: StudyRuntime) -> None:
            if rt.study.state is StudyState.RUNNING:
                rt.finish(StudyState.FAILED if error else StudyState.COMPLETED, utcnow(), error)

        self._runtime_call(close)


class StudyMetricsCallback(tune.Callback):
    """Ray metrics of one study (``ray.util.metrics``, tagged by study): running trials, finished trials,
    cost spent. Created in :meth:`setup` because callbacks are pickled with the experiment."""

    def __init__(self, study_id: int, bridge: DatabaseBridge | None = None) -> None:
        self.study_id = study_id
        self.bridge = bridge
        self._running: set[str] = set()

    def setup(self, **info: Any) -> None:
        from ray.util.metrics import Counter, Gauge

        tags = ("study_id",)
        self.running = Gauge("scaleladder_trials_running", "Trials of the study running on Ray", tag_keys=tags)
        self.finished = Counter("scaleladder_trials_finished", "Trials of the study that ended", tag_keys=tags)
        self.cost = Gauge("scaleladder_cost_spent", "Cost spent, in target-run units", tag_keys=tags)
        self.tags = {"study_id": str(self.study_id)}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.bridge is not None:
            self.bridge.ray_trials[trial.trial_id] = trial
        self._running.add(trial.trial_id)
        self.running.set(len(self._running), tags=self.tags)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.bridge is not None:
            self.cost.set(float(self.bridge.cost_spent), tags=self.tags)

    def _ended(self, trial: Any) -> None:
        self._running.discard(trial.trial_id)
        self.running.set(len(self._running), tags=self.tags)
        self.finished.inc(1, tags=self.tags)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)


class StudyStopper(tune.Stopper):
    """Ends the whole experiment when the runner is told to stop (cancel, shutdown), or once the bridge
    has seen the study end (budget spent, FAILED, cancelled): its unfinished trials are already STOPPED in
    the database, and the scheduler, which ending the study does not tell, may count them live forever, so
    the searcher would wait for a free slot instead of finishing. Picklable: the flag lives in the runner
    process, looked up by study id."""

    requested: set[int] = set()

    def __init__(self, study_id: int, bridge: DatabaseBridge | None = None) -> None:
        self.study_id = study_id
        self.bridge = bridge

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        ended = self.bridge is not None and self.bridge.study_state.is_final
        return ended or self.study_id in StudyStopper.requested


def mixtures_sent(session: Session, study_id: int, spec: StudySpec, problem: Any) -> dict[int, list] | None:
    """Every mixture an adaptive study's trials were sent, by trial (``None`` when it adapts nothing): what a
    (re)started runner seeds the study's board with."""
    setup = build_adaptive(spec, problem)
    if setup is None:
        return None
    adaptation = StudyAdaptation(session, study_id, setup, spec.scheduler.seed)
    numbers = list(AdaptationEventRepository(session).load(study_id))
    adaptation.load(numbers)
    return {n: adaptation.policy(n).sent(n) for n in numbers}


def run_study(settings: Settings, study_id: int, *, storage_path: str | os.PathLike | None = None,
              max_concurrent: int | None = None, max_failures: int = 2,
              max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES) -> StudyState:
    """Run (or continue) one study as a Tune experiment in this process until it ends; returns its state.
    ``max_failures``: Tune's retries of a failed trial; ``max_consecutive_failures``: failed trials in a
    row (same error) after which the study FAILs (0: never).

    Used by the runner actor and by ``python -m service.ray_runner`` (a runner as a plain process).
    Ray must be initialised.
    """
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    storage = Path(storage_path or Path.home() / ".scaleladder" / "ray").resolve()
    board = None
    try:
        with transaction(factory) as session:
            study = session.get(StudyRow, study_id)
            if study is None:
                raise ExecutorError(f"study {study_id} not found")
            spec = StudySpec.model_validate(study.spec)
            tenant = study.tenant
            prefix = checkpoint_prefix(storage / "checkpoints", tenant, study_id)
            problem = build_problem(spec)
            events = [decode_event(p) for p in EventRepository(session).load(study_id)]
            sched = build_scheduler(spec, problem).replay(events)
            sent = mixtures_sent(session, study_id, spec, problem)
            checkpoints = {}
            for row in session.scalars(select(TrialRow).where(TrialRow.study_id == study_id,
                                                              TrialRow.checkpoint.is_not(None))):
                step = checkpoint_step(row.checkpoint)
                if not is_within(row.checkpoint, prefix):
                    # a client's report or complete can set any string here (external workers keep their
                    # own checkpoints); only this study's own directory is ever restored from
                    log.warning("study %s trial %s: recorded checkpoint %s is outside %s; the trial restarts "
                                "from step 0", study_id, row.number, row.checkpoint, prefix)
                elif step is not None and Path(row.checkpoint).exists():
                    checkpoints[row.number] = (row.checkpoint, step)
        workload = (spec.workload.name or spec.workload.entrypoint) if spec.workload else DEFAULT_WORKLOAD
        args = dict(spec.workload.args) if spec.workload else {}
        cpus = float(ray.available_resources().get("CPU", 1.0)) if ray.is_initialized() else 1.0
        bridge = DatabaseBridge(
            sched, session_factory=factory, study_id=study_id, tenant=tenant, checkpoints=checkpoints,
            max_consecutive_failures=max_consecutive_failures,
            base_config=experiment_config(workload, args, study_id=study_id, seed=spec.scheduler.seed,
                                          checkpoint_prefix=str(prefix),
                                          workload_modules=list(settings.workload_modules)),
            max_concurrent=max_concurrent or max(1, int(cpus // max(s.cpus for s in problem.ladder.sizes))))
        if sent is not None:
            board = MixtureBoard.options(name=board_name(study_id), namespace=NAMESPACE, get_if_exists=True,
                                         resources={HEAD_NODE_RESOURCE: RUNNER_HEAD_SHARE}).remote()
            ray.get(board.seed.remote(sent))
            bridge.board = board
            bridge.base_config[TrialKeys.ADAPTIVE] = {"board": board_name(study_id), "namespace": NAMESPACE}
        try:
            # the deployment's policy may have narrowed since the study was created: refuse before any trial
            settings.workload_policy.check(BUILTIN_WORKLOADS.get(workload, workload))
        except ForbiddenWorkloadError as e:
            log.warning("study %s: %s", study_id, e.message)
            bridge.close_study(e.message)
            return StudyState.FAILED
        callback = StudyMetricsCallback(study_id, bridge)
        StudyStopper.requested.discard(study_id)
        tuner = build_tuner(bridge, name=f"study-{study_id}-{int(time.time())}", storage_path=storage,
                            callbacks=[callback], max_failures=max_failures,
                            stop=StudyStopper(study_id, bridge))
        error = None
        try:
            tuner.fit()
        except Exception as e:  # the experiment itself broke (not a trial): the study failed
            log.exception("study %s: the Tune experiment failed", study_id)
            error = f"{type(e).__name__}: {e}"
        if study_id not in StudyStopper.requested:
            bridge.close_study(error)
        with transaction(factory) as session:
            return StudyState(session.get(StudyRow, study_id).state)
    finally:
        if board is not None:
            ray.kill(board)
        engine.dispose()


def show_progress() -> None:
    """This module's INFO lines (trial started, reported, paused, stopped, ended) on stderr: in a runner
    actor that is its Ray log (dashboard: Actors -> scaleladder-study-<id> -> logs). Python's default
    (WARNING) would leave only errors there."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


#: Ray's resource that only the head node has, 1.0 of it (Ray Train pins its state actor with it too)
HEAD_NODE_RESOURCE = "node:__internal_head__"
#: a runner's share of it: 0.001 of 1.0 leaves room for 1,000 runners on the head
RUNNER_HEAD_SHARE = 0.001
#: how many times Ray restarts a runner whose process died (killed by the OOM killer, say). A restart
#: resumes from the event log and costs the live trials their progress since their last checkpoint (on 2
#: loaded cores a killed runner's study completed 27-30 s after the kill, 5 runs of
#: tests/ray/test_multinode.py); a runner dying more often than this is crash-looping, and it is left to
#: `recover()` of the next control plane.
RUNNER_MAX_RESTARTS = 5


@ray.remote(num_cpus=0, max_concurrency=4, max_restarts=RUNNER_MAX_RESTARTS,
            resources={HEAD_NODE_RESOURCE: RUNNER_HEAD_SHARE})
class StudyRunner:
    """The named actor (``scaleladder-study-<id>``) that runs one study's Tune experiment.

    It lives on the head node: an actor with ``num_cpus=0`` and no placement goes to any node, and a
    runner on a worker node dies with that node, taking the Tune driver and all its trials with it
    (issue 13: on a head and two worker nodes, unpinned runners of two studies landed on worker nodes in 7
    of 10 placements, and each study whose runner's node was removed stayed RUNNING with no runner, while
    the others completed). The head node outlives its workers (without it there is no cluster). If the
    runner's process dies anyway, Ray restarts it (``max_restarts``) and the new instance resumes the
    study by itself (:meth:`run`)."""

    def __init__(self, settings: dict[str, Any], study_id: int, options: dict[str, Any]) -> None:
        show_progress()
        self.settings = Settings(**settings)
        self.study_id = study_id
        self.options = options
        self.state: str | None = None
        self._running = threading.Lock()
        if ray.get_runtime_context().was_current_actor_reconstructed:
            # The previous process died mid-study, and with it the caller's `run` (Ray does not retry it):
            # nobody else would continue the study. run_study replays the scheduler from the event log and
            # re-issues the trials that were live from their recorded checkpoints.
            log.warning("study %s: runner restarted; resuming the study from its event log", study_id)
            threading.Thread(target=self.run, name=f"study-{study_id}-resume", daemon=True).start()

    def run(self) -> str:
        """Run the study until it ends; returns its state. A call while a run is in progress (the one a
        restarted runner resumed by itself) waits for that run and returns its state: one Tune
        experiment per study at a time."""
        if not self._running.acquire(blocking=False):
            with self._running:
                return self.state or StudyState.FAILED.value
        try:
            self.state = None
            try:
                self.state = run_study(self.settings, self.study_id, **self.options).value
            except BaseException:
                self.state = StudyState.FAILED.value
                raise
            return self.state
        finally:
            self._running.release()

    def stop(self) -> None:
        StudyStopper.requested.add(self.study_id)

    def status(self) -> str | None:
        return self.state

    def database(self) -> str:
        """The database this runner writes to: tells a control plane whether the runner is its own."""
        return self.settings.database_url

    def node_id(self) -> str:
        """The Ray node the runner lives on (the head node)."""
        return ray.get_runtime_context().get_node_id()


class RayExecutor(Executor):
    """Runs started studies on Ray (see the module docstring). ``scaleladder serve`` with
    ``SCALELADDER_EXECUTOR=ray`` builds one: it connects to ``RAY_ADDRESS`` (a cluster; runners are then
    detached actors that outlive the control plane) or starts a local Ray, then recovers running studies.

    Options (``SCALELADDER_EXECUTOR_OPTIONS``): ``address``, ``storage_path``, ``max_concurrent``,
    ``max_failures`` (Tune's retries of a failed trial, default 2), ``max_consecutive_failures`` (failed
    trials in a row, with the same error, after which the study FAILs; default 3, 0: never), ``recover``
    (default true), ``num_cpus`` (local Ray only).
    """

    name = "ray"

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(settings, **options)
        address = options.get("address") or os.environ.get("RAY_ADDRESS")
        self.detached = bool(address)
        if not address:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, single-user Ray
        self._started_ray = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"namespace": NAMESPACE, "ignore_reinit_error": True, "log_to_driver": False}
            # without an address, a Ray of our own: with address None, ray.init joins whatever cluster a
            # `ray start` on this machine last recorded (/tmp/ray/ray_current_cluster), even a dead one
            kw["address"] = address or "local"
            if not address and options.get("num_cpus"):
                kw["num_cpus"] = int(options["num_cpus"])
            ray.init(**kw)
            self._started_ray = not address
        self.runner_options = {k: options[k] for k in ("storage_path", "max_concurrent", "max_failures",
                                                       "max_consecutive_failures")
                               if options.get(k) is not None}
        self._runs: dict[int, Any] = {}
        self._lock = threading.Lock()
        if options.get("recover", True):
            self.recover()

    # -- runners ---------------------------------------------------------------------------------------
    def _actor(self, study_id: int) -> Any | None:
        try:
            return ray.get_actor(runner_name(study_id), namespace=NAMESPACE)
        except ValueError:
            return None

    def _release(self, actor: Any, study_id: int, timeout: float = 30.0) -> None:
        try:
            ray.kill(actor)
        except Exception:  # already dead: only its name may linger
            log.debug("runner of study %s was already gone", study_id)
        deadline = time.monotonic() + timeout
        while self._actor(study_id) is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    def launch(self, study_id: int) -> Any:
        """Start the study's runner unless one is alive; returns its actor handle."""
        with self._lock:
            actor = self._actor(study_id)
            if actor is not None:
                try:
                    database, state = ray.get([actor.database.remote(), actor.status.remote()], timeout=30)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    database, state = None, None
                if database == self.settings.database_url:
                    if state is None:
                        return actor  # it is running this study right now
                    # A finished runner keeps its name until it dies: run the study again on it (a study
                    # resumed after its runner ended).
                    self._runs[study_id] = actor.run.remote()
                    return actor
                # The name is held by a dying runner or by another database's (a control plane that shared
                # this Ray before us): free the name, then start our own.
                self._release(actor, study_id)
            opts: dict[str, Any] = {"name": runner_name(study_id), "namespace": NAMESPACE}
            if self.detached:
                opts["lifetime"] = "detached"
            actor = StudyRunner.options(**opts).remote(self.settings.model_dump(mode="json"), study_id,
                                                       self.runner_options)
            self._runs[study_id] = actor.run.remote()
            return actor

    def recover(self) -> list[int]:
        """Start a runner for every RUNNING or PAUSED study that has none (after a control-plane restart)."""
        engine = make_engine(self.settings)
        try:
            with transaction(make_session_factory(engine)) as session:
                # across tenants: the executor serves them all
                ids = list(session.scalars(select(StudyRow.id).where(
                    StudyRow.state.in_([StudyState.RUNNING, StudyState.PAUSED]))))
        finally:
            engine.dispose()
        for study_id in ids:
            self.launch(study_id)
        return ids

    def wait(self, study_id: int, timeout: float | None = None) -> str:
        """Block until the study's runner (launched by this executor) ends; returns the study state."""
        try:
            return ray.get(self._runs[study_id], timeout=timeout)
        except ray.exceptions.RayActorError:
            # the runner's process died under this call; Ray restarts it and it resumes the study by
            # itself (StudyRunner): follow that run through its status, unless the runner is gone for good
            deadline = None if timeout is None else time.monotonic() + timeout
            while deadline is None or time.monotonic() < deadline:
                actor = self._actor(study_id)
                if actor is None:
                    raise
                try:
                    state = ray.get(actor.status.remote(), timeout=30)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    state = None  # still restarting
                if state is not None:
                    return state
                time.sleep(0.5)  # a run takes seconds to minutes: poll, do not spin
            raise ray.exceptions.GetTimeoutError(f"the runner of study {study_id} did not end in {timeout} s")

    # -- Executor hooks --------------------------------------------------------------------------------
    def start(self, study: Study) -> None:
        try:
            self.launch(study.id)
        except Exception as e:  # Ray unreachable: the start is rolled back (503)
            raise ExecutorError(f"cannot start study {study.id} on Ray: {e}") from e

    def pause(self, study: Study) -> None:
        """Nothing to send: the runner's next ask sees the PAUSED study and hands out no new trials, while
        running trials finish their segments and report."""

    def resume(self, study: Study) -> None:
        self.start(study)  # the runner may have ended while the study was paused

    def cancel(self, study: Study) -> None:
        actor = self._actor(study.id)
        if actor is not None:
            actor.stop.remote()

    def close(self) -> None:
        if not self.detached and ray.is_initialized():
            # Runners of a local control plane die with it; otherwise their names (scaleladder-study-<id>)
            # would outlive it and a later control plane on the same Ray would find another database's runner.
            for study_id, run in list(self._runs.items()):
                actor = self._actor(study_id)
                if actor is None:
                    continue
                # Stop the Tune experiment first and let it return: it removes its trials' placement
                # groups, which a killed driver would leak (holding the cluster's CPUs).
                actor.stop.remote()
                try:
                    ray.get(run, timeout=60)
                except Exception:  # it failed or did not stop in time: killed below either way
                    log.warning("runner of study %s did not stop cleanly", study_id)
                self._release(actor, study_id)
            self._runs.clear()
        if self._started_ray and ray.is_initialized():
            ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m service.ray_runner STUDY_ID``: run one study's runner in this process on a local Ray
    (or ``RAY_ADDRESS``), with settings from the environment. Used to run a study without the API."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("study_id", type=int)
    p.add_argument("--storage-path", default=None)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--num-cpus", type=int, default=None)
    a = p.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    show_progress()
    address = os.environ.get("RAY_ADDRESS")   # unset: a Ray of our own, not one a `ray start` recorded
    ray.init(address=address or "local", num_cpus=None if address else a.num_cpus, namespace=NAMESPACE,
             include_dashboard=False, log_to_driver=False)
    try:
        state = run_study(Settings(), a.study_id, storage_path=a.storage_path, max_concurrent=a.max_concurrent)
    finally:
        ray.shutdown()
    print(state.value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
