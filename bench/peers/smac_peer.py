"""SMAC3's multi-fidelity facade (random-forest surrogate + Hyperband intensifier) via SMAC's ask/tell."""

from __future__ import annotations

import math
import tempfile
from typing import Any

import pyrfr.regression  # noqa: F401 - SMAC's random forest; SMAC imports it only when the model is built
from smac import MultiFidelityFacade, Scenario
from smac.runhistory.dataclasses import TrialValue
from smac.runhistory.enumerations import StatusType

from bench.peers.base import PeerAsk, PeerScheduler
from bench.peers.native_space import configspace, to_config
from schedulers.base import Decision, Trial, TrialState
from schedulers.problem import Problem


class SmacMultiFidelity(PeerScheduler):
    """``smac.MultiFidelityFacade`` with its ``Hyperband`` intensifier (``eta`` 3), no target function:
    ``smac.ask()`` gives a ``TrialInfo`` (config, budget); the trial trains from scratch to the budget,
    snapped up to a reporting step; ``smac.tell(info, TrialValue(cost=value))`` at that step. A failed or
    diverged trial is told ``StatusType.CRASHED`` (SMAC then charges its crash cost).

    Single fidelity: steps at the target model size (``min_budget`` = the first report at or after the
    ladder's ``min_steps``, ``max_budget`` = the target steps). The scenario is deterministic and seeded;
    SMAC writes its run history into a private temporary directory.
    """

    name = "smac_mf"

    def __init__(self, problem: Problem, seed: int = 0, eta: int = 3, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        self._workdir = tempfile.TemporaryDirectory(prefix="scaleladder-smac-")
        scenario = Scenario(configspace(self.space, self.seed), name="scaleladder-peer",
                            output_directory=self._workdir.name, deterministic=True, n_trials=10**9,
                            min_budget=self.min_budget, max_budget=self.max_budget, seed=self.seed)
        self._smac = MultiFidelityFacade(scenario, None,
                                         intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=eta),
                                         overwrite=True, logging_level=40)
        self._told: set[int] = set()

    def _ask(self, trial_id: int) -> PeerAsk | None:
        info = self._smac.ask()
        return PeerAsk(info, to_config(self.space, dict(info.config)), self.problem.target.size,
                       self.snap_steps(info.budget if info.budget is not None else self.max_budget))

    def _tell(self, trial: Trial, value: float | None) -> None:
        if trial.trial_id in self._told:
            return
        info = self._handles[trial.trial_id]
        if value is None:
            self._smac.tell(info, TrialValue(cost=math.inf, status=StatusType.CRASHED), save=False)
        else:
            self._smac.tell(info, TrialValue(cost=float(value)), save=False)
        self._told.add(trial.trial_id)

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if step >= trial.steps:
            self._tell(trial, y)
        return Decision.CONTINUE

    def _peer_on_end(self, trial: Trial) -> None:
        finite = [v for _, v in trial.curve if math.isfinite(v)]
        ok = trial.state is TrialState.COMPLETED and finite
        self._tell(trial, self._y(finite[-1]) if ok else None)
