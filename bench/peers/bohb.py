"""BOHB as Ray Tune runs it: Ray's ``TuneBOHB`` searcher (hpbandster's BOHB config generator over a
ConfigSpace space) with Ray's ``HyperBandForBOHB`` scheduler, driven like the other Ray schedulers
(:mod:`bench.peers.ray_tune`)."""

from __future__ import annotations

from typing import Any

import ConfigSpace  # noqa: F401 - imported here so a missing package fails with its own ImportError
import hpbandster.optimizers.config_generators.bohb  # noqa: F401 - Ray's TuneBOHB asserts on it otherwise
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.search.bohb import TuneBOHB

from bench.peers.base import seeded_global_numpy
from bench.peers.native_space import configspace
from bench.peers.ray_tune import METRIC, RayTrialSchedulerPeer, _MilestoneSegments
from schedulers.base import Decision, Trial


class RayBohb(_MilestoneSegments, RayTrialSchedulerPeer):
    """BOHB as Ray Tune runs it: the ``TuneBOHB`` searcher (hpbandster's BOHB config generator: a KDE
    per budget over a ConfigSpace space) with the ``HyperBandForBOHB`` scheduler, which pauses trials at
    its milestones and feeds each milestone result to the searcher as an observation at that budget.

    Single fidelity: steps at the target model size, segments up to the next milestone, as for
    :class:`~bench.peers.ray_tune.RayHyperBand`. Ray keeps one pending
    trial ahead for a custom searcher, so each new trial's config is drawn when it is needed. hpbandster
    samples from numpy's global RNG: each call runs with it seeded by (seed, Ray trial number).
    """

    name = "bohb"
    max_pending = 1

    def _make_searcher(self) -> Any:
        return TuneBOHB(space=configspace(self.space, self.seed, ordinal_as_int=True), metric=METRIC, mode="min", seed=self.seed)

    def _make_scheduler(self) -> Any:
        return HyperBandForBOHB(time_attr="training_iteration", metric=METRIC, mode="min", max_t=self.max_t,
                                reduction_factor=self.reduction_factor)

    def _suggest_config(self, ray_id: str) -> dict[str, Any]:
        with seeded_global_numpy(self.seed, int(ray_id), 2):
            return dict(self._searcher.suggest(ray_id))

    def _peer_on_report(self, trial: Trial, step: int, y: float) -> Decision:
        with seeded_global_numpy(self.seed, trial.trial_id, step, 3):  # the KDE refit draws too
            return super()._peer_on_report(trial, step, y)
