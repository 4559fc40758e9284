"""Optuna's TPE sampler with its Hyperband pruner, through Optuna's ask-and-tell interface."""

from __future__ import annotations

from typing import Any

import optuna

from bench.peers.base import PeerAsk, PeerScheduler
from bench.peers.native_space import optuna_distributions, to_config
from schedulers.base import Decision, Trial, TrialState
from schedulers.problem import Problem


class OptunaTpeHyperband(PeerScheduler):
    """``TPESampler(seed)`` + ``HyperbandPruner`` on an in-memory study: ``study.ask`` per trial,
    ``trial.report`` / ``trial.should_prune`` per report (pruned -> STOP, told PRUNED), ``study.tell`` with
    the last value when the trial completes, FAIL when it fails or diverges.

    Single fidelity: steps at the target model size; the pruner's resource is the step (``min_resource`` =
    the first report at or after the ladder's ``min_steps``, ``max_resource`` = the target steps,
    ``reduction_factor`` 3). The study name is fixed because the pruner assigns brackets by hashing
    (study name, trial number): a fixed name keeps runs deterministic for a seed.
    """

    name = "optuna_tpe_hb"

    def __init__(self, problem: Problem, seed: int = 0, reduction_factor: int = 3,
                 n_startup_trials: int = 10, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._dists = optuna_distributions(self.space)
        self._study = optuna.create_study(
            study_name="scaleladder-peer", direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=n_startup_trials),
            pruner=optuna.pruners.HyperbandPruner(min_resource=self.min_budget, max_resource=self.max_budget,
                                                  reduction_factor=reduction_factor))
        self._told: set[int] = set()

    def _ask(self, trial_id: int) -> PeerAsk | None:
        ot = self._study.ask(self._dists)
        return PeerAsk(ot, to_config(self.space, ot.params), self.problem.target.size, self.max_budget)

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        ot = self._handles[trial.trial_id]
        ot.report(y, step)
        if step < self.max_budget and ot.should_prune():
            self._study.tell(ot, state=optuna.trial.TrialState.PRUNED)
            self._told.add(trial.trial_id)
            return Decision.STOP
        return Decision.CONTINUE

    def _peer_on_end(self, trial: Trial) -> None:
        if trial.trial_id in self._told:
            return
        ot = self._handles[trial.trial_id]
        states = optuna.trial.TrialState
        finite = [v for _, v in trial.curve if v == v and abs(v) != float("inf")]
        if trial.state is TrialState.COMPLETED and finite:
            self._study.tell(ot, self._y(finite[-1]))
        elif trial.state is TrialState.STOPPED:
            self._study.tell(ot, state=states.PRUNED)
        else:
            self._study.tell(ot, state=states.FAIL)
        self._told.add(trial.trial_id)
