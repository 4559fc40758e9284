"""DEHB (differential evolution + Hyperband) through the ``dehb`` package's ask/tell interface."""

from __future__ import annotations

import logging
import math
import tempfile
from typing import Any

from dehb import DEHB
from loguru import logger as loguru_logger

from bench.peers.base import PeerAsk, PeerScheduler
from bench.peers.native_space import to_unit_config
from schedulers.base import Decision, Trial, TrialState
from schedulers.problem import Problem


class Dehb(PeerScheduler):
    """``dehb.DEHB`` searching the unit hypercube of our space's encoding (DEHB's own representation:
    with a ConfigSpace it also works on [0, 1]^d and decodes; our encoding already log-scales, one-hot
    encodes and carries mixtures). ``ask`` gives (config, fidelity); the trial trains from scratch to that
    fidelity, snapped up to a reporting step; ``tell`` gets the value there. A failed or diverged trial is
    told fitness +inf, so it never enters a population.

    Single fidelity: steps at the target model size, from the first report at or after the ladder's
    ``min_steps`` to the target steps, ``eta`` 3. DEHB keeps its own seeded RNG, so a seed reproduces a run.
    """

    name = "dehb"

    def __init__(self, problem: Problem, seed: int = 0, eta: int = 3, **options: Any) -> None:
        super().__init__(problem, seed, **options)
        loguru_logger.disable("dehb")  # DEHB logs every bracket at INFO
        logging.getLogger("distributed").setLevel(logging.WARNING)
        self._workdir = tempfile.TemporaryDirectory(prefix="scaleladder-dehb-")
        self._dehb = DEHB(f=None, dimensions=self.space.dim, min_fidelity=self.min_budget,
                          max_fidelity=self.max_budget, eta=eta, n_workers=1, seed=self.seed,
                          output_path=self._workdir.name, save_freq=None)
        self._told: set[int] = set()

    def _ask(self, trial_id: int) -> PeerAsk | None:
        job = self._dehb.ask()
        return PeerAsk(job, to_unit_config(self.space, job["config"]), self.problem.target.size,
                       self.snap_steps(job["fidelity"]))

    def _tell(self, trial: Trial, fitness: float) -> None:
        if trial.trial_id in self._told:
            return
        job = self._handles[trial.trial_id]
        size = self._size(trial.size)
        self._dehb.tell(job, {"fitness": float(fitness),
                              "cost": self.problem.cost_model.cost(max(trial.last_step, 1), size)})
        self._told.add(trial.trial_id)

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        if step >= trial.steps:
            self._tell(trial, y)
        return Decision.CONTINUE

    def _peer_on_end(self, trial: Trial) -> None:
        finite = [v for _, v in trial.curve if math.isfinite(v)]
        if trial.state is TrialState.COMPLETED and finite:
            self._tell(trial, self._y(finite[-1]))
        else:
            self._tell(trial, math.inf)
