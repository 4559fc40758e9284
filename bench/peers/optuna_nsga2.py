"""Optuna's NSGA-II, the single-fidelity multi-objective peer: every trial runs at the target fidelity."""

from __future__ import annotations

import math
from typing import Any

import optuna

from bench.peers.base import PeerAsk, PeerScheduler
from bench.peers.native_space import optuna_distributions, to_config
from schedulers.base import Trial, TrialState
from schedulers.problem import Problem


class OptunaNsga2(PeerScheduler):
    """``NSGAIISampler(seed, population_size)`` on an in-memory study with one direction per objective of
    the problem (``problem.objectives``; constraints through the sampler's ``constraints_func``, a violation
    of a constrained metric > 0). Each trial runs at the target size to the target steps (no pruning) and
    is told its objective vector at the last step when it completes, FAIL when it fails or diverges."""

    name = "optuna_nsga2"

    def __init__(self, problem: Problem, seed: int = 0, population_size: int = 8, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._dists = optuna_distributions(self.space)
        objectives = problem.objectives
        constraints = (lambda ft: ft.user_attrs.get("violations", [0.0])) if objectives.constraints else None
        self._study = optuna.create_study(
            study_name="scaleladder-nsga2", directions=["minimize"] * len(objectives.defs),
            sampler=optuna.samplers.NSGAIISampler(seed=self.seed, population_size=population_size,
                                                  constraints_func=constraints))

    def _ask(self, trial_id: int) -> PeerAsk | None:
        ot = self._study.ask(self._dists)
        return PeerAsk(ot, to_config(self.space, ot.params), self.problem.target.size, self.max_budget)

    def _peer_on_end(self, trial: Trial) -> None:
        ot = self._handles[trial.trial_id]
        objectives = self.problem.objectives
        outcomes = self.outcomes_at(trial, trial.last_step) if trial.curve else None
        vector = objectives.vector(outcomes) if outcomes is not None else None
        if trial.state is TrialState.COMPLETED and vector is not None and all(math.isfinite(v) for v in vector):
            if objectives.constraints:
                ot.set_user_attr("violations", [float(v) for v in objectives.violations(outcomes)])
            self._study.tell(ot, [float(v) for v in vector])
        else:
            self._study.tell(ot, state=optuna.trial.TrialState.FAIL)
