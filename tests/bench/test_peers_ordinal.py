"""The GP peers on ordinal parameters (issue 12, "Peer fidelity"): on a tiny tabular problem with two
ordinal parameters whose optimum is interior, a short run must not recommend a corner of the grid.

On steplaw (ordinal lr and bs) MFMS-GP recommended a corner of the grid in 9 of 10 seeds: its first fit
(6 points, 5 initial trials) collapsed to the linear mean (output scale 3e-10), every later fit was
warm-started from it and could not leave it, and a mean linear in the config is lowest at a vertex of the
unit cube (bench/README.md, "Peer fidelity on ordinal parameters").
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.peers import make_peer
from schedulers.cost import AnalyticCost
from schedulers.problem import FidelityLadder, Problem, Target, sizes_from
from schedulers.space import SearchSpace
from tests.bench.test_peers import _peer_or_skip

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")

LRS = [1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3, 3.2e-3, 6.4e-3]
BSS = [16, 32, 64, 128, 256]
BEST = (3, 2)  # lr 8e-4, bs 64: interior


def ordinal_problem() -> Problem:
    space = SearchSpace.from_dicts([{"name": "lr", "type": "ordinal", "values": LRS},
                                    {"name": "bs", "type": "ordinal", "values": BSS}])
    ladder = FidelityLadder(min_steps=10, max_steps=90, report_every=10,
                            sizes=sizes_from([("small", 1e6), ("base", 4e6)]))
    return Problem(space, ladder, Target(90, "base"), AnalyticCost(overhead=1e6))


def loss(params: dict[str, Any], step: int, size: str) -> float:
    """A table as steplaw's: a bowl in (lr index, bs index) around BEST, the largest lr diverged (a loss
    far above the rest, so a mean linear in lr slopes towards the smallest lr), falling with steps and size."""
    i, j = LRS.index(params["lr"]), BSS.index(params["bs"])
    if i == len(LRS) - 1:
        return 7.0
    return 2.0 + 0.05 * (i - BEST[0]) ** 2 + 0.04 * (j - BEST[1]) ** 2 + 1.0 / math.sqrt(step) \
        + (0.2 if size == "small" else 0.0)


def run(name: str, seed: int, n_trials: int, **options: Any) -> dict[str, Any]:
    """Trials one at a time, each run to its steps and reported at every reporting step."""
    _peer_or_skip(name)
    sched = make_peer(name, ordinal_problem(), seed=seed, **options)
    for _ in range(n_trials):
        (s,) = sched.suggest(1)
        for step in sched.problem.ladder.report_steps:
            if s.start_step < step <= s.steps:
                sched.report(s.trial_id, step, loss(s.params, step, s.size))
    return sched.recommend().params


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_mfms_gp_does_not_recommend_a_corner(seed: int) -> None:
    params = run("mfms_gp", seed, 16, n_init=5, raw_samples=64, fit_maxiter=60)
    i, j = LRS.index(params["lr"]), BSS.index(params["bs"])
    assert not (i in (0, len(LRS) - 1) and j in (0, len(BSS) - 1)), params
    assert abs(i - BEST[0]) <= 2 and abs(j - BEST[1]) <= 2, params


def test_collapsed_kernel_is_not_a_warm_start() -> None:
    import torch

    from bench.peers.mf_gp import collapsed

    assert collapsed({"covar_module.raw_outputscale": torch.tensor(-21.9), "mean_module.bias": torch.tensor(1.0)})
    assert not collapsed({"covar_module.raw_outputscale": torch.tensor(0.0)})
    assert not collapsed({"mean_module.bias": torch.tensor(-30.0)})
