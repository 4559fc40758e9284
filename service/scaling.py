"""Scaling-law fits: the one path from the wire request to the wire answer, and where fits run.

``POST /v1/scaling/fit`` and ``scaleladder scaling fit`` both call :func:`fit_points`, so the same points
and seed give the same intervals through the SDK, REST and the CLI (they differed, issue 15). Settings a
request leaves out take the scaling library's defaults (``HuberFitOptions``, ``fit_scaling``): the library is
their one home, and nothing here restates them.

Inside the service a fit never runs in the request's thread, and never inside a lock or a transaction:
:class:`ScalingFits` runs it in a worker process and keeps each study's fit until the study's data changes.
A 16-trial study's fit took 146 s inside the request (issue 14): the SDK's 30 s timeout retried it from
scratch, and on SQLite the open transaction held the write lock, so workers' reports and ``study show``
waited behind it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.scaling import LawKind as WireLawKind
from api.scaling import ScalingFit, ScalingFitRequest
from api.schemas import Direction as WireDirection
from api.schemas import TrialState
from schedulers.problem import Direction
from schedulers.scaling import HuberFitOptions, LawKind, ScalingRun, fit_scaling
from service.errors import InvalidArgumentError, UnavailableError
from service.models import StudyRow, utcnow
from service.repositories import TrialRepository


def _given(**settings: Any) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v is not None}


def fit_runs(runs: Sequence[ScalingRun], *, strict: bool, n_bootstrap: int | None = None, level: float | None = None,
             seed: int | None = None, tolerance: float | None = None, hyperparameter_bootstrap: int | None = None,
             **kwargs: Any) -> dict:
    """:func:`schedulers.scaling.fit_scaling` with the settings that were given; the rest are the library's.
    Raises the library's ``InvalidScalingDataError`` (a 422, mapped in ``service.errors``)."""
    options = HuberFitOptions(**_given(n_bootstrap=n_bootstrap, level=level, seed=seed))
    settings = _given(tolerance=tolerance, hyperparameter_bootstrap=hyperparameter_bootstrap)
    return fit_scaling(runs, strict=strict, options=options, **settings, **kwargs).to_dict()


def _points_settings(request: ScalingFitRequest) -> tuple[list[ScalingRun], dict[str, Any]]:
    runs = [ScalingRun(p.N, p.D, p.loss, p.params) for p in request.points]
    return runs, dict(strict=True, law=LawKind(request.law.value),
                      variable=request.variable.value if request.variable else None,
                      n_bootstrap=request.n_bootstrap, level=request.level, seed=request.seed,
                      tolerance=request.tolerance, hyperparameter_bootstrap=request.hyperparameter_bootstrap,
                      regressors={k: [v.value for v in vs] for k, vs in request.regressors.items()}
                      if request.regressors else None,
                      predict_at=[p.model_dump(exclude_none=True) for p in request.predict_at],
                      compute_budgets=request.compute_budgets)


def fit_points(request: ScalingFitRequest) -> ScalingFit:
    """Loss law with bootstrap intervals, predictions, compute-optimal allocations, and Step Law
    hyperparameter laws when the points carry ``params``; data that cannot support them is an error.
    Runs in the caller's thread (the CLI's path; the service's goes through :meth:`ScalingFits.fit_points`)."""
    runs, settings = _points_settings(request)
    return ScalingFit.model_validate(fit_runs(runs, **settings))


# ----------------------------------------------------------------------------------------- a study's data
#: trials read per query when loading a study's runs
_PAGE = 1000
#: a trial's last value is a data point unless the trial failed (crashed or diverged)
_MEASURED = (TrialState.COMPLETED, TrialState.STOPPED, TrialState.PAUSED, TrialState.RUNNING)


@dataclass(frozen=True)
class StudyData:
    """What a study's scaling fit reads: one run per trial with a measured value (N = its size's parameter
    count, D = its last reported step), the objective's direction, and the default prediction (the target)."""

    study_id: int
    runs: list[ScalingRun]
    direction: Direction
    target: dict[str, float]
    sizes: dict[str, float]

    @classmethod
    def read(cls, session: Session, study: StudyRow) -> "StudyData":
        spec = study.spec
        sizes = {s["name"]: float(s["params"]) for s in spec["fidelity"]["sizes"]}
        direction = Direction(WireDirection(spec.get("objective", {}).get("direction", "minimize")).value)
        trials, repo, after = [], TrialRepository(session), None
        while True:
            page = repo.list(study.id, after_id=after, limit=_PAGE)
            trials += [t for t in page if t.state in _MEASURED and t.last_value is not None and t.last_step]
            if len(page) < _PAGE:
                break
            after = page[-1].id
        runs = [ScalingRun(sizes[t.size], float(t.last_step), float(t.last_value), dict(t.params))
                for t in trials if t.size in sizes]
        target = spec.get("target") or {}
        size = target.get("size") or spec["fidelity"]["sizes"][-1]["name"]
        return cls(study.id, runs, direction, {"N": sizes[size],
                                               "D": float(target.get("steps") or spec["fidelity"]["steps"]["max"])},
                   sizes)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a run is added or a trial's last step or value changes (a new measurement)."""
        rows = [[r.n_params, r.data, r.value, r.params] for r in self.runs]
        return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()

    def fit(self, fits: "ScalingFits", *, law: WireLawKind, predict_N: Sequence[float], predict_D: Sequence[float],
            compute_budgets: Sequence[float], n_bootstrap: int | None, tolerance: float | None) -> ScalingFit:
        """The fit of these runs (from ``fits``' cache when the data and settings are unchanged); laws the data
        cannot support yet are ``null`` with the reason in ``warnings``."""
        if len(predict_N) != len(predict_D):
            raise InvalidArgumentError("predict_N and predict_D must pair up (same length)", field="predict_N")
        targets = [{"N": n, "D": d} for n, d in zip(predict_N, predict_D)] or [self.target]
        if not self.runs:
            return ScalingFit(study_id=self.study_id, variables=[], n_runs=0, loss_points=[],
                              warnings=["no trial has reported a value yet"])
        if len({(r.n_params, r.data) for r in self.runs}) < 2:
            # no law has a slope to fit (and the library's hyperparameter law then fails on an empty regressor
            # set: a 500 before issue 14); laws the data cannot support come back null with the reason
            return ScalingFit(study_id=self.study_id, variables=[], n_runs=len(self.runs), loss_points=[],
                              warnings=["every trial ran at one model size and one step count; a scaling law "
                                        "needs trials at two or more (size, steps) points"])
        settings = dict(strict=False, direction=self.direction, law=LawKind(law.value), n_bootstrap=n_bootstrap,
                        tolerance=tolerance, predict_at=targets, compute_budgets=list(compute_budgets))
        out, computed_at, cached = fits.cached(self.study_id, self.fingerprint, self.runs, settings)
        return ScalingFit.model_validate({**out, "study_id": self.study_id, "computed_at": computed_at,
                                          "cached": cached})


# ----------------------------------------------------------------------------------------- where fits run
def _fit_in_worker(runs: list[ScalingRun], settings: dict[str, Any]) -> dict:
    """The pool's task (module level, so a worker process can import it)."""
    return fit_runs(runs, **settings)


@dataclass
class _Entry:
    fingerprint: str
    result: Future  # Future[tuple[dict, datetime]]


class ScalingFits:
    """Where the service's scaling fits run, and the fits of studies' current data.

    Fits run in ``processes`` worker processes (``0``: a thread, for a machine that cannot start processes),
    so their CPU never holds the service's interpreter lock: a fit is Python-heavy numpy/scipy (multi-start
    L-BFGS per bootstrap resample; 12-25 s for a 40-trial study at the default 200 resamples on this 2-core
    machine under load 5), and beside it in the server's own process ``GET /v1/studies/{id}`` took up to
    296 ms, against 116 ms with the fit in a worker process (9-23 ms with no fit running). A study's fit is keyed by the study, the fit settings and a fingerprint of its
    runs: it is computed once per change of the study's data, concurrent requests for the same data wait on
    the one computation (a client's retry after a timeout joins it instead of starting again), and the
    newest ``capacity`` (study, settings) pairs are kept.
    """

    def __init__(self, processes: int, capacity: int, *, on_fit: Callable[[bool], None] | None = None,
                 running: Any = None) -> None:
        self.processes = processes
        self.capacity = capacity
        self._on_fit = on_fit        # called once per fit computed (True: it succeeded)
        self._running = running      # a gauge (inc/dec) of fits in progress
        self._entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                # spawn, never fork: the server process runs threads (uvicorn's pool, Ray's driver) that a
                # forked child would inherit mid-operation
                self._pool = (ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
                              if self.processes > 0 else ThreadPoolExecutor(1, thread_name_prefix="scaling-fit"))
            return self._pool

    def _run(self, runs: list[ScalingRun], settings: dict[str, Any]) -> dict:
        if self._running is not None:
            self._running.inc()
        ok = False
        try:
            out = self._executor().submit(_fit_in_worker, runs, settings).result()
            ok = True
            return out
        except BrokenProcessPool:
            with self._lock:  # the worker died (killed, out of memory): the next fit starts a new one
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise UnavailableError("the scaling fit's worker process died; retry") from None
        finally:
            if self._running is not None:
                self._running.dec()
            if self._on_fit is not None:
                self._on_fit(ok)

    def fit_points(self, request: ScalingFitRequest) -> ScalingFit:
        """:func:`fit_points` in the pool (posted points are not cached: the request carries all its data)."""
        runs, settings = _points_settings(request)
        return ScalingFit.model_validate(self._run(runs, settings))

    def cached(self, study_id: int, fingerprint: str, runs: list[ScalingRun],
               settings: dict[str, Any]) -> tuple[dict, datetime, bool]:
        """``(fit, computed_at, cached)`` of a study's runs: the kept fit when ``fingerprint`` and ``settings``
        match, the one in progress when another request is computing it, else computed now. A failed fit is
        not kept (every waiter gets its error; the next request tries again)."""
        key = (study_id, json.dumps(settings, sort_keys=True, default=str))
        with self._lock:
            entry = self._entries.get(key)
            mine = entry is None or entry.fingerprint != fingerprint
            if mine:
                entry = self._entries[key] = _Entry(fingerprint, Future())
            self._entries.move_to_end(key)
            while len(self._entries) > max(self.capacity, 1):
                self._entries.popitem(last=False)
        if mine:
            try:
                entry.result.set_result((self._run(runs, settings), utcnow()))
            except BaseException as exc:
                entry.result.set_exception(exc)
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
        out, computed_at = entry.result.result()
        return out, computed_at, not mine

    def discard(self, study_id: int) -> None:
        """Forget a study's fits (it was deleted)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == study_id]:
                del self._entries[key]

    def close(self) -> None:
        """Stop the pool; a fit in progress is abandoned (its worker process is terminated): it can take
        minutes, and an interpreter exiting waits for a pool's processes to finish their task."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to stop a running task before Python 3.14 (terminate_workers)
        processes = list((getattr(pool, "_processes", None) or {}).values())  # none for the thread pool
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
