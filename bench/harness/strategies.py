"""Which strategies the benchmark can run: the scheduler registry, the benchmark's own baselines in
``bench.baselines`` and the peers in ``bench.peers``.

A strategy is a :class:`schedulers.Scheduler` subclass named in ``schedulers.registry`` (ours), in
``bench.baselines.BASELINES`` (simple strategies from the literature, no other package) or in
``bench.peers.PEERS`` (wrapped peer tuners, ``name -> "module:Class"``). All are imported lazily. A peer
that fails to import is not dropped: :func:`load_strategy` returns its exact error, which the summary lists.
Peers that cannot even be installed here are listed by ``bench.peers.PEER_ERRORS`` (``name -> error``);
they count among the strategy names too, so ``all`` records them as unavailable instead of skipping them.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass

from schedulers.base import Scheduler
from schedulers.registry import SCHEDULERS, scheduler_names

PEERS_MODULE = "bench.peers"
BASELINES_MODULE = "bench.baselines"


class Origin(str, enum.Enum):
    """Where a strategy comes from (recorded with each run as its value)."""

    SCHEDULER = "scheduler"   # schedulers.registry
    BASELINE = "baseline"     # bench.baselines
    PEER = "peer"             # bench.peers


class UnknownStrategyError(ValueError):
    """A strategy name that is neither a registered scheduler nor a peer."""


@dataclass(frozen=True)
class Strategy:
    """A resolved strategy: its class, or the exact error that kept it from loading."""

    name: str
    origin: Origin
    path: str                           # "module:Class"
    cls: type[Scheduler] | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.cls is not None


def _baselines() -> dict[str, str]:
    return dict(importlib.import_module(BASELINES_MODULE).BASELINES)


def _peers_module() -> tuple[object | None, str | None]:
    try:
        return importlib.import_module(PEERS_MODULE), None
    except ModuleNotFoundError as e:
        if e.name == PEERS_MODULE:
            return None, None
        return None, f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - any import failure is recorded verbatim
        return None, f"{type(e).__name__}: {e}"


def peer_paths() -> tuple[dict[str, str], str | None]:
    """``(name -> "module:Class", error)``: the peers, or ``({}, None)`` when ``bench.peers`` does not
    exist, or ``({}, error)`` when it exists but fails to import."""
    module, error = _peers_module()
    return dict(getattr(module, "PEERS", {}) or {}), error


def peer_install_errors() -> dict[str, str]:
    """Peers that cannot be installed in this environment, with the exact error (``PEER_ERRORS``)."""
    module, _ = _peers_module()
    return dict(getattr(module, "PEER_ERRORS", {}) or {})


def strategy_names() -> list[str]:
    """Every name: registered schedulers first, then baselines, then peers (runnable or not), none
    shadowing an earlier one."""
    peers, _ = peer_paths()
    baselines = sorted(n for n in _baselines() if n not in SCHEDULERS)
    names = set(peers) | set(peer_install_errors())
    return scheduler_names() + baselines + sorted(n for n in names if n not in SCHEDULERS and n not in baselines)


def expand(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of names -> names (order kept, duplicates dropped)."""
    names = strategy_names() if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def load_strategy(name: str) -> Strategy:
    """Resolve ``name``; an import failure is captured in ``Strategy.error``, an unknown name raises."""
    baselines = _baselines()
    if name in SCHEDULERS:
        origin, path = Origin.SCHEDULER, SCHEDULERS[name]
    elif name in baselines:
        origin, path = Origin.BASELINE, baselines[name]
    else:
        peers, peers_error = peer_paths()
        install_errors = peer_install_errors()
        if name not in peers and name in install_errors:
            return Strategy(name, Origin.PEER, "", None, install_errors[name])
        if name not in peers:
            hint = f" ({PEERS_MODULE} failed to import: {peers_error})" if peers_error else ""
            raise UnknownStrategyError(f"unknown strategy {name!r}; known: {strategy_names()}{hint}")
        origin, path = Origin.PEER, peers[name]
    module, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as e:  # noqa: BLE001 - recorded verbatim in the summary, never dropped
        return Strategy(name, origin, path, None, f"{type(e).__name__}: {e}")
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        return Strategy(name, origin, path, None, f"TypeError: {path} is not a schedulers.Scheduler subclass")
    return Strategy(name, origin, path, cls)
