"""Peer tuners for the benchmark, each wrapped as a :class:`~schedulers.base.Scheduler`.

``PEERS`` maps a peer's name to ``"module:Class"``; modules are imported only when a peer is used, so a
missing package fails that peer alone, with the package's own ``ImportError``. ``PEER_ERRORS`` records the
peers that cannot be installed next to this project's pinned numpy / torch / ray, with the exact error;
asking for one raises :class:`PeerUnavailableError` with that record.
"""

from __future__ import annotations

import importlib
from typing import Any

from schedulers.base import Scheduler
from schedulers.errors import InvalidProblemError
from schedulers.problem import Problem

PEERS: dict[str, str] = {
    "ray_asha": "bench.peers.ray_tune:RayAsha",
    "ray_hyperband": "bench.peers.ray_tune:RayHyperBand",
    "optuna_tpe_hb": "bench.peers.optuna_tpe:OptunaTpeHyperband",
    "dehb": "bench.peers.dehb_peer:Dehb",
    "bohb": "bench.peers.bohb:RayBohb",
    "smac_mf": "bench.peers.smac_peer:SmacMultiFidelity",
    "botorch_mfkg": "bench.peers.botorch_mfkg:BotorchMfkg",
    "mfms_gp": "bench.peers.mfms_gp:MfmsGp",
    "syne_mobster": "bench.peers.syne_tune_peer:SyneMobster",
    "syne_hypertune": "bench.peers.syne_tune_peer:SyneHyperTune",
    "syne_dyhpo": "bench.peers.syne_tune_peer:SyneDyHpo",
}

#: peer name -> the exact install / import error that keeps it out of this environment
_NEPS_ERROR = ("`pip install neural-pipeline-search` (0.17.0, checked with --dry-run on 2026-12-03) would replace "
               "torch 2.13.0+cpu with 2.14.1 (through torchvision 0.29.1, with the CUDA 13 wheels), gpytorch 1.15.2 "
               "with its pin gpytorch==1.13.0 and so botorch 0.18.1 (the BoTorch peers') with 0.12.0; not "
               "installed (an install with --no-deps on these versions is untried)")
PEER_ERRORS: dict[str, str] = {
    "neps_priorband": _NEPS_ERROR,
    "neps_bo": _NEPS_ERROR,
    "vizier_default": (
        "`pip install 'google-vizier[jax]==0.1.24'` (tried on 2026-12-03, 68 s, torch / numpy / scipy untouched) "
        "resolves jax 0.10.2 next to its pin equinox==0.11.7, and `import vizier._src.algorithms.designers"
        ".gp_ucb_pe` then fails: AttributeError: module 'jax.core' has no attribute 'Primitive'; with "
        "jax==0.4.38 / jaxlib==0.4.38 added (65 s more) the default designer (VizierGPUCBPEBandit) runs, "
        "but 6 trials of the peer tests' tiny problem took 248 s (JIT compilation included, its acquisition "
        "optimiser cut to 2,000 evaluations, on this machine's 2 cores shared with a benchmark run), too slow "
        "for the benchmark budgets; uninstalled again"),
}


class PeerUnavailableError(ImportError):
    """The peer's package cannot be installed in this environment; the message is the recorded error."""


def peer_names() -> list[str]:
    """The peers that can run here (those recorded in :data:`PEER_ERRORS` are not among them)."""
    return sorted(PEERS)


def peer_class(name: str) -> type[Scheduler]:
    """The peer's class; raises the package's ``ImportError`` if the peer's package is missing, and
    :class:`PeerUnavailableError` for a peer recorded in :data:`PEER_ERRORS`."""
    if name in PEER_ERRORS:
        raise PeerUnavailableError(f"peer {name!r} is not available here: {PEER_ERRORS[name]}")
    try:
        path = PEERS[name]
    except KeyError:
        raise InvalidProblemError(f"unknown peer {name!r}; known: {peer_names()}", field="scheduler.name") from None
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def make_peer(name: str, problem: Problem, seed: int = 0, **options: Any) -> Scheduler:
    return peer_class(name)(problem, seed=seed, **options)
