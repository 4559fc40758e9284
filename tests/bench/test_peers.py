"""Every peer tuner keeps the scheduler contract as far as its package allows: legal suggestions and
decisions, determinism for a seed, replay by re-driving the peer, divergence (NaN) handled.

Each peer runs a small asynchronous ask/tell loop (two workers, segments interleaved report by report) on a
tiny synthetic problem with every kind of parameter. A peer whose package is missing is skipped with the
exact ImportError.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from bench.peers import PEER_ERRORS, PEERS, make_peer, peer_class
from schedulers.base import Decision, Scheduler, TrialState
from schedulers.cost import AnalyticCost
from schedulers.problem import Direction, FidelityLadder, Problem, Target, sizes_from
from schedulers.space import SearchSpace

# hpbandster and BoTorch warn about their own deprecated calls
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: trials per run; the BoTorch peers fit a GP per suggestion, so they get fewer (and smaller settings)
N_TRIALS = {"botorch_mfkg": 5, "mfms_gp": 6}
OPTIONS: dict[str, dict[str, Any]] = {
    "botorch_mfkg": {"n_init": 4, "num_fantasies": 2, "raw_samples": 16, "maxiter": 10, "fit_maxiter": 15},
    "mfms_gp": {"n_init": 4, "raw_samples": 32, "fit_maxiter": 30},
}


def tiny_problem(direction: Direction = Direction.MINIMIZE) -> Problem:
    space = SearchSpace.from_dicts([
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        {"name": "layers", "type": "int", "low": 1, "high": 4},
        {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"]},
        {"name": "batch", "type": "ordinal", "values": [16, 32, 64]},
        {"name": "mix", "type": "mixture", "components": ["web", "code"]},
        {"name": "seq_len", "type": "fixed", "value": 128},
    ])
    ladder = FidelityLadder(min_steps=10, max_steps=90, report_every=10,
                            sizes=sizes_from([("small", 1e6), ("base", 4e6)]))
    return Problem(space, ladder, Target(90, "base"), AnalyticCost(overhead=1e6), direction)


def objective(params: dict[str, Any], step: int, size: str) -> float:
    """A smooth loss: best near lr = 3e-3, 2 layers, adam, batch 32, web 0.7; falls with steps and size."""
    x = ((math.log10(params["lr"]) + 2.5) ** 2 + 0.05 * (params["layers"] - 2) ** 2
         + (0.2 if params["optimizer"] == "sgd" else 0.0) + 0.1 * abs(params["batch"] - 32) / 32
         + (params["web"] - 0.7) ** 2)
    return x + 2.0 / math.sqrt(step) + (0.3 if size == "small" else 0.0)


def drive(sched: Scheduler, n_trials: int, nan_trial: int | None = None, workers: int = 2) -> list[tuple]:
    """Run the ask/tell loop; return a log of everything the scheduler answered."""
    problem = sched.problem
    log: list[tuple] = []
    running: list[tuple[Any, list[int]]] = []  # (suggestion, steps still to report)
    issued = 0
    for _ in range(2000):
        while len(running) < workers:
            s = sched.resume()
            if s is None and issued < n_trials:
                new = sched.suggest(1)
                s = new[0] if new else None
                issued += len(new)
            if s is None:
                break
            assert s.size in [z.name for z in problem.ladder.sizes]
            assert problem.ladder.min_steps <= s.steps <= problem.ladder.max_steps
            assert s.start_step < s.steps or s.start_step == s.steps == problem.ladder.max_steps
            problem.space.validate(s.params)
            steps = [st for st in problem.ladder.report_steps if st > s.start_step]
            cut = next((i for i, st in enumerate(steps) if st >= s.steps), len(steps) - 1)
            running.append((s, steps[:cut + 1]))
            log.append(("ask", s.trial_id, s.size, s.steps, s.start_step, tuple(sorted(s.params.items()))))
        if not running:
            break
        # one report from the first running segment, then rotate: segments interleave as on a cluster
        s, steps = running.pop(0)
        step = steps.pop(0)
        value = float("nan") if s.trial_id == nan_trial else objective(s.params, step, s.size)
        if problem.direction is Direction.MAXIMIZE:
            value = -value
        decision = sched.report(s.trial_id, step, value)
        assert isinstance(decision, Decision)
        log.append(("tell", s.trial_id, step, decision.value))
        if decision is Decision.CONTINUE and steps:
            running.append((s, steps))
        else:
            sched.complete(s.trial_id)
    return log


def _peer_or_skip(name: str) -> type[Scheduler]:
    try:
        return peer_class(name)
    except ImportError as e:
        pytest.skip(f"{name}: {type(e).__name__}: {e}")


#: peers whose contract run takes more than ~10 s on two busy cores (a GP fit or a KDE per suggestion)
SLOW = {"botorch_mfkg", "mfms_gp", "bohb", "syne_mobster", "syne_hypertune", "syne_dyhpo"}
ALL = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(set(PEERS) | set(PEER_ERRORS))]


@pytest.mark.parametrize("name", ALL)
def test_peer_contract(name: str) -> None:
    _peer_or_skip(name)
    problem = tiny_problem()
    n = N_TRIALS.get(name, 14)
    opts = OPTIONS.get(name, {})
    sched = make_peer(name, problem, seed=3, **opts)
    log = drive(sched, n, nan_trial=1)
    asked = {entry[1] for entry in log if entry[0] == "ask"}
    assert len(asked) >= min(n, 3), f"{name} issued only {sorted(asked)}"
    # the diverged trial failed, nothing raised, and it is kept as evidence
    assert sched.trial(1).state is TrialState.FAILED
    assert all(t.state.is_final or t.state is TrialState.PAUSED for t in sched.trials.values())
    rec = sched.recommend()
    problem.space.validate(rec.params)
    assert rec.size == problem.target.size and rec.steps == problem.target.steps
    # a config that diverged is never the recommendation
    assert rec.trial_id is None or sched.trial(rec.trial_id).state is not TrialState.FAILED

    # determinism for a seed
    again = make_peer(name, problem, seed=3, **opts)
    assert drive(again, n, nan_trial=1) == log

    # replay re-drives the peer: same snapshot, same next answers
    fresh = make_peer(name, problem, seed=3, **opts).replay(sched.events)
    assert fresh.snapshot() == sched.snapshot()
    nxt_live, nxt_replayed = sched.suggest(1), fresh.suggest(1)
    assert [(s.trial_id, s.params, s.size, s.steps) for s in nxt_live] == \
        [(s.trial_id, s.params, s.size, s.steps) for s in nxt_replayed]


@pytest.mark.parametrize("name", ["ray_asha", "optuna_tpe_hb", "dehb"])
def test_peer_maximisation_and_seeds(name: str) -> None:
    """Maximisation flips sign consistently, and another seed gives other configs."""
    _peer_or_skip(name)
    problem = tiny_problem(Direction.MAXIMIZE)
    a = drive(make_peer(name, problem, seed=0), 6)
    b = drive(make_peer(name, problem, seed=1), 6)
    assert [e for e in a if e[0] == "ask"] != [e for e in b if e[0] == "ask"]
    sched = make_peer(name, problem, seed=0)
    drive(sched, 6)
    best = max(v for t in sched.trials.values() for _, v in t.curve if math.isfinite(v))
    rec = sched.recommend()
    assert rec.predicted is None or rec.predicted <= best + 1e-9


def test_hyperband_pauses_and_resumes() -> None:
    """Ray's HyperBand PAUSEs at its milestones; the paused trials come back through resume()."""
    _peer_or_skip("ray_hyperband")
    sched = make_peer("ray_hyperband", tiny_problem(), seed=0)
    log = drive(sched, 24)  # the 9-trial bracket halves once all 9 reached its first milestone
    assert any(e[0] == "tell" and e[3] == "pause" for e in log)
    assert any(e[0] == "ask" and e[4] > 0 for e in log), "no paused trial was resumed"


@pytest.mark.slow
def test_syne_dyhpo_pauses_and_resumes() -> None:
    """Syne Tune's DyHPO pauses every trial at its next rung; its own suggest() picks paused trials to
    promote, and those come back through resume() from their checkpoint, one rung further."""
    _peer_or_skip("syne_dyhpo")
    sched = make_peer("syne_dyhpo", tiny_problem(), seed=0)
    log = drive(sched, 10)
    assert any(e[0] == "tell" and e[3] == "pause" for e in log)
    resumed = [e for e in log if e[0] == "ask" and e[4] > 0]
    assert resumed, "no paused trial was resumed"
    assert all(e[3] > e[4] for e in resumed)


def test_unknown_peer_and_unavailable_peer_errors() -> None:
    from bench.peers import PeerUnavailableError, peer_names
    from schedulers.errors import InvalidProblemError

    with pytest.raises(InvalidProblemError):
        peer_class("no_such_peer")
    for name, why in PEER_ERRORS.items():
        assert name not in peer_names()
        with pytest.raises(PeerUnavailableError, match=re.escape(why)):
            make_peer(name, tiny_problem())
