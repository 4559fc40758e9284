"""A small problem and a simulated executor for driving schedulers through their public ask/tell API.

The executor plays a pool of workers the way the Ray adapter does: ask ``resume()`` first, then
``suggest(1)``; report every ``report_every`` steps round-robin across running trials; end a segment at its
budget or on a non-CONTINUE decision; inject crashes and divergences on request. While driving it checks
the contract invariants every executor relies on (see ``schedulers/base.py``) and logs everything it saw,
so two runs can be compared.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pytest

from schedulers import Decision, IllegalTransitionError, Problem, Scheduler, Suggestion, TrialState
from schedulers.cost import AnalyticCost
from schedulers.problem import Direction, FidelityLadder, Target, sizes_from
from schedulers.space import SearchSpace

MIXED_SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {"name": "layers", "type": "int", "low": 1, "high": 4},
    {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"], "role": "scientific"},
    {"name": "momentum", "type": "float", "low": 0.5, "high": 0.99,
     "condition": {"parent": "optimizer", "values": ["sgd"]}},
    {"name": "mix", "type": "mixture", "components": ["web", "code", "books"]},
    {"name": "batch_size", "type": "ordinal", "values": [16, 32, 64]},
    {"name": "seq_len", "type": "fixed", "value": 128},
]


def make_problem(space: list[dict[str, Any]] | None = None,
                 direction: Direction = Direction.MINIMIZE) -> Problem:
    """Mixed space; steps 3..27 reported every 3; two sizes; target (27 steps, 'large')."""
    ladder = FidelityLadder(min_steps=3, max_steps=27, report_every=3,
                            sizes=sizes_from([("small", 1e6), ("large", 8e6)]))
    return Problem(space=SearchSpace.from_dicts(space or MIXED_SPACE), ladder=ladder,
                   target=Target(steps=27, size="large"), cost_model=AnalyticCost(), direction=direction)


def objective(params: Mapping[str, Any], size_params: float, step: int) -> float:
    """A cheap validation-loss-like surface: optimum near lr=1e-2, 3 layers, sgd with momentum 0.9, a web-heavy
    mixture, batch 32; larger models and longer training lower the loss."""
    loss = 0.5 * (math.log10(params["lr"]) + 2.0) ** 2 + 0.1 * (params.get("layers", 3) - 3) ** 2
    if params.get("optimizer") == "sgd":
        loss += 4.0 * (params["momentum"] - 0.9) ** 2
    else:
        loss += 0.05
    if "web" in params:
        loss += (params["web"] - 0.6) ** 2
    if "batch_size" in params:
        loss += 0.05 * abs(math.log2(params["batch_size"] / 32))
    return loss + (size_params / 1e6) ** -0.3 + 2.0 / math.sqrt(step)


class Fault(str, enum.Enum):
    CRASH = "crash"          # the executor calls fail()
    NAN = "nan"              # the trial reports NaN
    INF = "inf"              # the trial reports +inf


@dataclass
class Log:
    """What an executor saw: every suggestion/resume handed out and every decision (comparable by ==)."""

    handed_out: list[tuple[str, Suggestion]] = field(default_factory=list)
    decisions: list[tuple[int, int, Decision]] = field(default_factory=list)
    resumes: int = 0


def report_steps(problem: Problem, start: int, budget: int) -> list[int]:
    """The steps a segment from ``start`` to ``budget`` reports at."""
    every = problem.ladder.report_every
    steps = [s for s in range(every, budget + 1, every) if s > start]
    if not steps or steps[-1] != budget:
        steps.append(budget)
    return [s for s in steps if s > start]


def check_suggestion(sched: Scheduler, s: Suggestion) -> None:
    """Invariants of anything handed to an executor."""
    sched.space.validate(s.params)
    sched.ladder.size(s.size)
    assert sched.ladder.min_steps <= s.steps <= sched.ladder.max_steps
    assert 0 <= s.start_step <= s.steps
    assert sched.trial(s.trial_id).state is TrialState.PENDING


def drive(sched: Scheduler, *, max_trials: int, workers: int = 3,
          faults: Mapping[int, tuple[Fault, int]] | None = None, max_rounds: int | None = None,
          value: Callable[[Mapping[str, Any], float, int], float] = objective, log: Log | None = None) -> Log:
    """Run ``sched`` until ``max_trials`` new trials were issued and nothing is left to run (or for
    ``max_rounds`` report rounds, leaving trials in flight). ``faults`` maps trial id -> (fault, n-th report)."""
    faults = dict(faults or {})
    log = log or Log()
    problem = sched.problem
    active: dict[int, tuple[Suggestion, list[int]]] = {}
    budgets: dict[int, int] = {}
    issued = sum(1 for t in sched.trials.values() if t.replicate == 0)
    rounds = 0
    while True:
        while len(active) < workers:
            s = sched.resume()
            kind = "resume"
            if s is None:
                got = sched.suggest(1) if issued < max_trials else []
                if not got:
                    break
                s, kind = got[0], "suggest"
                assert s.trial_id == len(sched.trials) - 1, "trial ids are issued 0, 1, 2, ..."
                assert s.start_step == 0
                issued += 1
            else:
                trial = sched.trial(s.trial_id)
                assert s.start_step == trial.last_step, "a resumed trial continues from its last step"
                assert s.steps > budgets[s.trial_id], "a resumed trial gets a larger budget"
                log.resumes += 1
            check_suggestion(sched, s)
            budgets[s.trial_id] = s.steps
            log.handed_out.append((kind, s))
            active[s.trial_id] = (s, report_steps(problem, s.start_step, s.steps))
        if not active or (max_rounds is not None and rounds >= max_rounds):
            return log
        rounds += 1
        for tid in sorted(active):
            s, steps = active[tid]
            step = steps.pop(0)
            n_reported = len(sched.trial(tid).curve)
            fault = faults.get(tid)
            if fault and fault[1] == n_reported and fault[0] is Fault.CRASH:
                sched.fail(tid, "worker crashed")
                sched.fail(tid, "worker crashed")  # idempotent
                assert sched.trial(tid).state is TrialState.FAILED
                _assert_takes_no_reports(sched, tid, step)
                del active[tid]
                continue
            y = value(s.params, sched.ladder.size(s.size).params, step)
            if fault and fault[1] == n_reported:
                y = math.nan if fault[0] is Fault.NAN else math.inf
            if problem.direction is Direction.MAXIMIZE:
                y = -y
            d = sched.report(tid, step, y)
            assert isinstance(d, Decision)
            log.decisions.append((tid, step, d))
            if not math.isfinite(y):
                assert d is Decision.STOP, "a non-finite value is a divergence: STOP"
                assert sched.trial(tid).state is TrialState.FAILED
            if d is Decision.STOP:
                state, n_events = sched.trial(tid).state, len(sched.events)
                assert state.is_final
                sched.complete(tid)  # the executor ends the segment as usual; a final trial stays as it is
                assert sched.trial(tid).state is state and len(sched.events) == n_events
                _assert_takes_no_reports(sched, tid, step + problem.ladder.report_every)
                del active[tid]
            elif d is Decision.PAUSE or not steps:
                sched.complete(tid)
                expected = TrialState.PAUSED if d is Decision.PAUSE else TrialState.COMPLETED
                assert sched.trial(tid).state is expected
                if d is Decision.CONTINUE:
                    _assert_takes_no_reports(sched, tid, step + problem.ladder.report_every)
                del active[tid]


def _assert_takes_no_reports(sched: Scheduler, tid: int, step: int) -> None:
    n_events = len(sched.events)
    with pytest.raises(IllegalTransitionError):
        sched.report(tid, step, 1.0)
    assert len(sched.events) == n_events
