"""The base class of every peer: a :class:`~schedulers.base.Scheduler` that drives another package's tuner.

The benchmark harness talks to every strategy through the same ask/tell interface, so a peer translates:
``suggest`` -> the peer's ask, ``report`` -> the peer's result / prune / tell calls, ``resume`` -> the peer's
choice of a paused trial. The peer's own objects (an Optuna trial, a Ray ``Trial``, a DEHB job) live in
:attr:`PeerScheduler._handles`, keyed by our trial id.

Replay. A peer's internal state (its RNG, its brackets, its model) cannot be rebuilt from our events by
reading them; it is rebuilt by re-driving the peer, built with the same seed, through the same event
history: on a SUGGEST event the peer is asked again (and must give back the recorded parameters, else
:class:`PeerReplayError`), and every REPORT / RESUME / COMPLETE / FAIL event drives it exactly as live.
For that to hold, subclasses keep three rules:

- :meth:`_ask` is the only call that asks the peer for a new trial, and it is made exactly once per issued
  trial (live from :meth:`_propose`, during replay from :meth:`_on_suggest`);
- :meth:`_peer_on_suggest` must not change what the next :meth:`_ask` returns (live, several asks may
  precede their ``_on_suggest`` calls; during replay they interleave);
- :meth:`_choose_resume` is read-only: any peer call that mutates state to pick a paused trial runs inside
  a hook (see :meth:`_after_event`), so it happens at the same point live and during replay.

Confirmation re-runs (``replicate > 0``) are outside the peer's algorithm: they are recorded, not shown
to the peer.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from schedulers.base import Decision, Scheduler, Trial
from schedulers.errors import SchedulerError
from schedulers.problem import Problem


class PeerReplayError(SchedulerError):
    """Re-driving the peer with the recorded history gave different parameters: the peer is not
    deterministic for this seed (or the history came from another seed / package version)."""


@dataclass(frozen=True)
class PeerAsk:
    """What the peer asked for: its own ``handle`` for the trial, the config, the size and the step budget."""

    handle: Any
    params: dict[str, Any]
    size: str
    steps: int


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, float) or isinstance(vb, float):
            try:
                if not math.isclose(float(va), float(vb), rel_tol=1e-9, abs_tol=1e-12):
                    return False
            except (TypeError, ValueError):
                return False
        elif va != vb:
            return False
    return True


@contextlib.contextmanager
def seeded_global_numpy(*key: int) -> Iterator[None]:
    """Run a peer call that draws from numpy's global RNG (hpbandster, Ray's ASHA bracket choice) with
    that RNG seeded from ``key``, and restore the caller's global state afterwards."""
    saved = np.random.get_state()
    np.random.seed(np.random.SeedSequence(list(key)).generate_state(1)[0])
    try:
        yield
    finally:
        np.random.set_state(saved)


class PeerScheduler(Scheduler, abc.ABC):
    """A scheduler whose decisions come from a peer package. See the module docstring for the contract.

    Single-fidelity peers run on the step ladder at the target model size: their budgets are the
    problem's reporting steps up to the target steps (:attr:`rungs`).
    """

    def __init__(self, problem: Problem, seed: int = 0, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        self._handles: dict[int, Any] = {}
        self._asked: dict[int, PeerAsk] = {}
        target = problem.target
        rungs = [s for s in problem.ladder.report_steps if problem.ladder.min_steps <= s <= target.steps]
        if not rungs or rungs[-1] != target.steps:
            rungs.append(target.steps)
        #: the steps at which a trial at the target size reports, up to the target steps
        self.rungs: list[int] = rungs

    # ---------------------------------------------------------------- fidelity helpers
    @property
    def min_budget(self) -> int:
        return self.rungs[0]

    @property
    def max_budget(self) -> int:
        return self.problem.target.steps

    @property
    def report_every(self) -> int:
        return self.problem.ladder.report_every

    def snap_steps(self, budget: float) -> int:
        """The smallest reporting step >= ``budget`` (a peer's continuous budget -> a step the trial
        actually reports at), capped at the target steps."""
        i = bisect.bisect_left(self.rungs, math.ceil(budget - 1e-9))
        return self.rungs[min(i, len(self.rungs) - 1)]

    # ---------------------------------------------------------------- extension points for peers
    @abc.abstractmethod
    def _ask(self, trial_id: int) -> PeerAsk | None:
        """Ask the peer for trial ``trial_id``; ``None`` when the peer wants to wait for results."""

    def _peer_on_suggest(self, trial: Trial, handle: Any) -> None:
        """The trial was issued with the peer's ``handle``."""

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        """Tell the peer minimisation value ``y`` at ``step``; return its decision."""
        return Decision.CONTINUE

    def _peer_on_resume(self, trial: Trial) -> None:
        """A paused trial was handed out again."""

    def _peer_on_end(self, trial: Trial) -> None:
        """The trial's segment ended; ``trial.state`` says how (completed, paused, stopped, failed)."""

    def _after_event(self) -> None:
        """Runs after every hook, live and during replay: the place for state-mutating peer calls that
        prepare the next :meth:`_choose_resume` answer."""

    # ---------------------------------------------------------------- Scheduler hooks
    def _propose(self, n: int) -> Sequence[tuple[dict[str, Any], str, int]]:
        out = []
        for i in range(n):
            trial_id = len(self.trials) + i
            ask = self._ask(trial_id)
            if ask is None:
                break
            self._asked[trial_id] = ask
            out.append((ask.params, ask.size, ask.steps))
        return out

    def _on_suggest(self, trial: Trial) -> None:
        if trial.replicate > 0:
            return
        ask = self._asked.pop(trial.trial_id, None)
        if ask is None:  # replay: re-drive the peer
            ask = self._ask(trial.trial_id)
            if ask is None or not _same_params(ask.params, trial.params):
                raise PeerReplayError(
                    f"{self.name}: re-driving the peer for trial {trial.trial_id} gave "
                    f"{None if ask is None else ask.params}, the history says {trial.params}")
        self._handles[trial.trial_id] = ask.handle
        self._peer_on_suggest(trial, ask.handle)
        self._after_event()

    def _on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if trial.trial_id not in self._handles:
            return Decision.CONTINUE
        decision = self._peer_on_report(trial, step, y)
        self._after_event()
        return decision

    def _on_resume(self, trial: Trial) -> None:
        if trial.trial_id in self._handles:
            self._peer_on_resume(trial)
            self._after_event()

    def _on_end(self, trial: Trial) -> None:
        if trial.trial_id in self._handles:
            self._peer_on_end(trial)
            self._after_event()

    def _extra_state(self) -> Any:
        return {"peer_trials": len(self._handles)}
