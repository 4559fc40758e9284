"""Peer tuners for the benchmark, each wrapped as a :class:`~schedulers.base.Scheduler`.

``PEERS`` maps a peer's name to ``"module:Class"``; modules are imported only when a peer is used, so a
missing package fails that peer alone, with the package's own ``ImportError``. ``PEER_ERRORS`` records the
peers that cannot be installed next to this project's pinned numpy / torch / ray, with the exact error.
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
    "bohb": "bench.peers.ray_tune:RayBohb",
    "smac_mf": "bench.peers.smac_peer:SmacMultiFidelity",
    "botorch_mfkg": "bench.peers.botorch_mfkg:BotorchMfkg",
}

#: peer name -> the exact install / import error that keeps it out of this environment
PEER_ERRORS: dict[str, str] = {}


def peer_names() -> list[str]:
    return sorted(PEERS)


def peer_class(name: str) -> type[Scheduler]:
    """The peer's class; raises the package's ``ImportError`` if the peer's package is missing."""
    try:
        path = PEERS[name]
    except KeyError:
        raise InvalidProblemError(f"unknown peer {name!r}; known: {peer_names()}", field="scheduler.name") from None
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def make_peer(name: str, problem: Problem, seed: int = 0, **options: Any) -> Scheduler:
    return peer_class(name)(problem, seed=seed, **options)
