"""Translate a ScaleLadder search space into each peer package's own search-space language, and back.

A peer samples in its own terms (Optuna distributions, a ConfigSpace space, Ray Tune domains, or the unit
hypercube for DEHB), then :func:`to_config` turns the peer's native values into a valid config of our space
through the space's own unit-cube decoding, so fixed parameters, conditions and mixtures come out right.

The native parameters are one per encoded column group of the space:

- float / int: the same bounds and log flag;
- categorical / ordinal: the choices as strings (``"0"``, ``"1"``, ... = their index), since peers want
  plain scalar choices and ours may be any JSON value;
- mixture: one float in [0, 1] per component; :meth:`SearchSpace.decode` normalises them onto the simplex
  (so a peer sees a mixture as independent weights, the usual workaround when a package has no simplex);
- conditional parameters are searched unconditionally; decoding drops them where their parent says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from schedulers.space import ParamType, SearchSpace


class NativeKind(str, enum.Enum):
    FLOAT = "float"
    INT = "int"
    CHOICE = "choice"


@dataclass(frozen=True)
class NativeParam:
    """One peer-side parameter: ``column`` is its first encoded column in the space's unit cube."""

    name: str
    kind: NativeKind
    column: int
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    n_choices: int = 0
    ordered: bool = False

    @property
    def choices(self) -> list[str]:
        return [str(i) for i in range(self.n_choices)]


def native_params(space: SearchSpace) -> list[NativeParam]:
    """The peer-side parameters of ``space``, in encoding order."""
    out: list[NativeParam] = []
    col = 0
    for p in space.searched:
        if p.type in (ParamType.FLOAT, ParamType.INT):
            kind = NativeKind.FLOAT if p.type is ParamType.FLOAT else NativeKind.INT
            out.append(NativeParam(p.name, kind, col, float(p.low), float(p.high), p.log))
        elif p.type in (ParamType.CATEGORICAL, ParamType.ORDINAL):
            out.append(NativeParam(p.name, NativeKind.CHOICE, col, n_choices=len(p.choices),
                                   ordered=p.type is ParamType.ORDINAL))
        elif p.type is ParamType.MIXTURE:
            for i, comp in enumerate(p.components):
                out.append(NativeParam(comp, NativeKind.FLOAT, col + i, 0.0, 1.0, False))
        col += p.width
    return out


def to_config(space: SearchSpace, native: Mapping[str, Any]) -> dict[str, Any]:
    """A peer's native values (keyed by :attr:`NativeParam.name`) -> a config of ``space``."""
    u = np.full(space.dim, 0.5)
    by_name = {p.name: p for p in space.searched}
    for q in native_params(space):
        v = native[q.name]
        if q.kind is NativeKind.CHOICE:
            idx = int(v)
            param = by_name[q.name]
            if param.type is ParamType.ORDINAL:
                u[q.column] = idx / (q.n_choices - 1) if q.n_choices > 1 else 0.5
            else:
                u[q.column:q.column + q.n_choices] = 0.0
                u[q.column + idx] = 1.0
        elif q.name in by_name:
            u[q.column] = by_name[q.name]._to_unit(float(v))
        else:  # a mixture component: its raw weight, normalised by decode
            u[q.column] = float(v)
    return space.decode(u[None, :])[0]


def to_unit_config(space: SearchSpace, x: Sequence[float]) -> dict[str, Any]:
    """A point of the unit hypercube (peers that search it directly, like DEHB) -> a config."""
    return space.decode(np.asarray(x, dtype=float)[None, :])[0]


# ------------------------------------------------------------------------ per-package translations
def optuna_distributions(space: SearchSpace) -> dict[str, Any]:
    import optuna

    out: dict[str, Any] = {}
    for q in native_params(space):
        if q.kind is NativeKind.FLOAT:
            out[q.name] = optuna.distributions.FloatDistribution(q.low, q.high, log=q.log)
        elif q.kind is NativeKind.INT:
            out[q.name] = optuna.distributions.IntDistribution(int(q.low), int(q.high), log=q.log)
        else:
            out[q.name] = optuna.distributions.CategoricalDistribution(q.choices)
    return out


def configspace(space: SearchSpace, seed: int, ordinal_as_int: bool = False) -> Any:
    """A ``ConfigSpace.ConfigurationSpace`` (ConfigSpace >= 1.0 API), seeded. ``ordinal_as_int`` encodes
    an ordinal as its integer index (hpbandster's BOHB rejects ordinal hyperparameters)."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    hps = []
    for q in native_params(space):
        if q.kind is NativeKind.FLOAT:
            hps.append(CS.UniformFloatHyperparameter(q.name, lower=q.low, upper=q.high, log=q.log))
        elif q.kind is NativeKind.INT:
            hps.append(CS.UniformIntegerHyperparameter(q.name, lower=int(q.low), upper=int(q.high), log=q.log))
        elif q.ordered and ordinal_as_int:
            hps.append(CS.UniformIntegerHyperparameter(q.name, lower=0, upper=q.n_choices - 1))
        elif q.ordered:
            hps.append(CS.OrdinalHyperparameter(q.name, sequence=q.choices))
        else:
            hps.append(CS.CategoricalHyperparameter(q.name, choices=q.choices))
    cs.add(hps)
    return cs


def ray_domains(space: SearchSpace) -> dict[str, Any]:
    """Ray Tune search-space domains (``tune.uniform``, ``tune.loguniform``, ``tune.randint``...)."""
    from ray import tune

    out: dict[str, Any] = {}
    for q in native_params(space):
        if q.kind is NativeKind.FLOAT:
            out[q.name] = tune.loguniform(q.low, q.high) if q.log else tune.uniform(q.low, q.high)
        elif q.kind is NativeKind.INT:
            # randint's upper bound is exclusive
            out[q.name] = (tune.lograndint(int(q.low), int(q.high) + 1) if q.log
                           else tune.randint(int(q.low), int(q.high) + 1))
        else:
            out[q.name] = tune.choice(q.choices)
    return out
