"""Search spaces: parameter kinds, validation, sampling and the unit-cube encoding used by surrogates.

A space is described by plain JSON-able dicts (the same shape as the REST wire contract in ``api/``), so
the service can hand a study's space over without this package importing ``api``::

    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": true}
    {"name": "layers", "type": "int", "low": 1, "high": 8}
    {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"]}
    {"name": "batch_size", "type": "ordinal", "values": [16, 32, 64, 128]}
    {"name": "mix", "type": "mixture", "components": ["wiki", "code", "books"]}
    {"name": "momentum", "type": "float", "low": 0.8, "high": 0.99,
     "condition": {"parent": "optimizer", "values": ["sgd"]}}
    {"name": "seq_len", "type": "fixed", "value": 512}

Every parameter may carry ``role``: ``scientific``, ``nuisance`` (both are searched) or ``fixed``
(a ``fixed`` parameter always takes ``value``), as in the tuning playbook. A playbook round
(``schedulers/playbook.py``) tunes the nuisance parameters once per value of the scientific ones.

A mixture group yields one config key per component; the components are non-negative and sum to 1.
A conditional parameter is absent from a config when its parent's value is not in ``values``.

Encoding: ``encode`` maps configs to ``n x d`` arrays in [0, 1]^d (log scale where declared, one-hot for
categoricals, the proportions themselves for mixtures, 0.5 for inactive conditional parameters);
``decode`` is its inverse up to rounding and projection, so any point of the cube decodes to a valid config.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from schedulers.errors import InvalidSpaceError


class ParamType(str, enum.Enum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"
    ORDINAL = "ordinal"
    MIXTURE = "mixture"
    FIXED = "fixed"


class ParamRole(str, enum.Enum):
    SCIENTIFIC = "scientific"
    NUISANCE = "nuisance"
    FIXED = "fixed"


@dataclass(frozen=True)
class Condition:
    parent: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Param:
    """One parameter (or one mixture group) of a search space."""

    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    components: tuple[str, ...] = ()
    value: Any = None
    role: ParamRole = ParamRole.NUISANCE
    condition: Condition | None = None

    @property
    def width(self) -> int:
        """Number of encoded dimensions."""
        if self.type in (ParamType.FLOAT, ParamType.INT, ParamType.ORDINAL):
            return 1
        if self.type is ParamType.CATEGORICAL:
            return len(self.choices)
        if self.type is ParamType.MIXTURE:
            return len(self.components)
        return 0

    @property
    def keys(self) -> tuple[str, ...]:
        """Config keys this parameter produces."""
        return self.components if self.type is ParamType.MIXTURE else (self.name,)

    # -- scalar transforms for float/int ---------------------------------------------------------
    def _to_unit(self, v: float) -> float:
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if hi == lo:
            return 0.5
        if self.log:
            return (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (v - lo) / (hi - lo)

    def _from_unit(self, u: float) -> float | int:
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        u = min(max(u, 0.0), 1.0)
        v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log else lo + u * (hi - lo)
        if self.type is ParamType.INT:
            return int(min(max(round(v), lo), hi))
        return float(min(max(v, lo), hi))


def _parse_param(raw: Mapping[str, Any]) -> Param:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSpaceError("every parameter needs a non-empty string 'name'", field="name")
    try:
        ptype = ParamType(raw.get("type"))
    except ValueError:
        raise InvalidSpaceError(
            f"parameter {name!r}: unknown type {raw.get('type')!r}; expected one of "
            f"{[t.value for t in ParamType]}", field=f"{name}.type") from None
    role = ParamRole(raw.get("role", "fixed" if ptype is ParamType.FIXED else "nuisance"))
    cond = None
    if raw.get("condition"):
        c = raw["condition"]
        cond = Condition(parent=c["parent"], values=tuple(c["values"]))
    kw: dict[str, Any] = dict(name=name, type=ptype, role=role, condition=cond)
    if ptype in (ParamType.FLOAT, ParamType.INT):
        low, high, log = raw.get("low"), raw.get("high"), bool(raw.get("log", False))
        if low is None or high is None:
            raise InvalidSpaceError(f"parameter {name!r}: 'low' and 'high' are required", field=name)
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InvalidSpaceError(f"parameter {name!r}: bounds must be finite", field=name)
        if low > high:
            raise InvalidSpaceError(f"parameter {name!r}: low ({low}) > high ({high})", field=f"{name}.low")
        if log and low <= 0:
            raise InvalidSpaceError(
                f"parameter {name!r}: log scale needs low > 0 (got {low})", field=f"{name}.low")
        kw.update(low=low, high=high, log=log)
    elif ptype is ParamType.CATEGORICAL:
        choices = tuple(raw.get("choices") or ())
        if len(choices) < 1 or len(set(map(repr, choices))) != len(choices):
            raise InvalidSpaceError(f"parameter {name!r}: 'choices' must be non-empty and unique", field=name)
        kw.update(choices=choices)
    elif ptype is ParamType.ORDINAL:
        values = tuple(raw.get("values") or ())
        if len(values) < 1:
            raise InvalidSpaceError(f"parameter {name!r}: 'values' must be non-empty", field=name)
        kw.update(choices=values)
    elif ptype is ParamType.MIXTURE:
        comps = tuple(raw.get("components") or ())
        if len(comps) < 2:
            raise InvalidSpaceError(
                f"mixture group {name!r} needs at least two components (got {len(comps)})",
                field=f"{name}.components")
        if len(set(comps)) != len(comps):
            raise InvalidSpaceError(f"mixture group {name!r}: duplicate components", field=name)
        kw.update(components=comps)
    elif ptype is ParamType.FIXED:
        if "value" not in raw:
            raise InvalidSpaceError(f"fixed parameter {name!r} needs a 'value'", field=name)
        kw.update(value=raw["value"], role=ParamRole.FIXED)
    if role is ParamRole.FIXED and ptype is not ParamType.FIXED:
        if "value" not in raw:
            raise InvalidSpaceError(f"parameter {name!r} has role 'fixed' but no 'value'", field=name)
        kw.update(value=raw["value"])
    return Param(**kw)


@dataclass
class SearchSpace:
    """An ordered collection of parameters. Build it with :meth:`from_dicts`."""

    params: list[Param]
    _slices: dict[str, slice] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.params:
            raise InvalidSpaceError("the search space is empty", field="space")
        seen: set[str] = set()
        for p in self.params:
            for k in dict.fromkeys((p.name, *p.components)):
                if k in seen:
                    raise InvalidSpaceError(f"duplicate parameter name {k!r}", field=k)
                seen.add(k)
        by_name = {p.name: p for p in self.params}
        for p in self.params:
            if p.condition is not None:
                parent = by_name.get(p.condition.parent)
                if parent is None or parent.condition is not None:
                    raise InvalidSpaceError(
                        f"parameter {p.name!r}: condition parent {p.condition.parent!r} must be an "
                        "unconditional parameter of the space", field=f"{p.name}.condition")
                if parent.type not in (ParamType.CATEGORICAL, ParamType.ORDINAL, ParamType.FIXED):
                    raise InvalidSpaceError(
                        f"parameter {p.name!r}: condition parent must be categorical or ordinal",
                        field=f"{p.name}.condition")
        start = 0
        for p in self.searched:
            self._slices[p.name] = slice(start, start + p.width)
            start += p.width
        self.dim = start

    @classmethod
    def from_dicts(cls, raw: Sequence[Mapping[str, Any]]) -> "SearchSpace":
        return cls([_parse_param(r) for r in raw])

    def to_dicts(self) -> list[dict[str, Any]]:
        out = []
        for p in self.params:
            d: dict[str, Any] = {"name": p.name, "type": p.type.value, "role": p.role.value}
            if p.type in (ParamType.FLOAT, ParamType.INT):
                d.update(low=p.low, high=p.high, log=p.log)
            elif p.type is ParamType.CATEGORICAL:
                d["choices"] = list(p.choices)
            elif p.type is ParamType.ORDINAL:
                d["values"] = list(p.choices)
            elif p.type is ParamType.MIXTURE:
                d["components"] = list(p.components)
            if p.value is not None:
                d["value"] = p.value
            if p.condition:
                d["condition"] = {"parent": p.condition.parent, "values": list(p.condition.values)}
            out.append(d)
        return out

    @property
    def searched(self) -> list[Param]:
        """Parameters that take part in the search (everything but fixed ones)."""
        return [p for p in self.params if p.role is not ParamRole.FIXED and p.type is not ParamType.FIXED]

    def _active(self, p: Param, config: Mapping[str, Any]) -> bool:
        return p.condition is None or config.get(p.condition.parent) in p.condition.values

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int = 1) -> list[dict[str, Any]]:
        """``n`` configs drawn uniformly (log-uniform where declared; Dirichlet(1) on mixtures)."""
        u = rng.random((n, self.dim))
        for p in self.searched:
            if p.type is ParamType.MIXTURE:
                u[:, self._slices[p.name]] = rng.dirichlet(np.ones(len(p.components)), size=n)
        return self.decode(u)

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Configs -> ``n x d`` array in [0, 1]^d."""
        x = np.full((len(configs), self.dim), 0.5)
        for i, c in enumerate(configs):
            for p in self.searched:
                sl = self._slices[p.name]
                if not self._active(p, c):
                    continue
                if p.type in (ParamType.FLOAT, ParamType.INT):
                    x[i, sl] = p._to_unit(float(c[p.name]))
                elif p.type is ParamType.ORDINAL:
                    k = len(p.choices)
                    x[i, sl] = p.choices.index(c[p.name]) / (k - 1) if k > 1 else 0.5
                elif p.type is ParamType.CATEGORICAL:
                    x[i, sl] = 0.0
                    x[i, sl.start + p.choices.index(c[p.name])] = 1.0
                elif p.type is ParamType.MIXTURE:
                    x[i, sl] = [float(c[k]) for k in p.components]
        return x

    def decode(self, x: np.ndarray) -> list[dict[str, Any]]:
        """``n x d`` array -> configs (rounded, clipped, mixtures projected onto the simplex)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        out: list[dict[str, Any]] = []
        for row in x:
            c: dict[str, Any] = {}
            for p in self.params:
                if p.role is ParamRole.FIXED or p.type is ParamType.FIXED:
                    c[p.name] = p.value
            # unconditional parameters first so conditions can be evaluated
            for p in sorted(self.searched, key=lambda q: q.condition is not None):
                if not self._active(p, c):
                    continue
                v = row[self._slices[p.name]]
                if p.type in (ParamType.FLOAT, ParamType.INT):
                    c[p.name] = p._from_unit(float(v[0]))
                elif p.type is ParamType.ORDINAL:
                    k = len(p.choices)
                    c[p.name] = p.choices[int(round(min(max(float(v[0]), 0.0), 1.0) * (k - 1)))]
                elif p.type is ParamType.CATEGORICAL:
                    c[p.name] = p.choices[int(np.argmax(v))]
                elif p.type is ParamType.MIXTURE:
                    w = np.clip(v, 0.0, None)
                    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
                    for k, wk in zip(p.components, w):
                        c[k] = float(wk)
            out.append(c)
        return out

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidSpaceError` if ``config`` is not a point of this space."""
        for p in self.params:
            if not self._active(p, config):
                continue
            for k in p.keys:
                if k not in config:
                    raise InvalidSpaceError(f"config lacks parameter {k!r}", field=k)
            if p.type in (ParamType.FLOAT, ParamType.INT):
                v = config[p.name]
                if not (p.low - 1e-12 <= float(v) <= p.high + 1e-12):  # type: ignore[operator]
                    raise InvalidSpaceError(f"{p.name}={v} outside [{p.low}, {p.high}]", field=p.name)
            elif p.type in (ParamType.CATEGORICAL, ParamType.ORDINAL) and config[p.name] not in p.choices:
                raise InvalidSpaceError(f"{p.name}={config[p.name]!r} is not one of {list(p.choices)}",
                                        field=p.name)
            elif p.type is ParamType.MIXTURE:
                w = [float(config[k]) for k in p.components]
                if min(w) < -1e-9 or abs(sum(w) - 1.0) > 1e-6:
                    raise InvalidSpaceError(f"mixture {p.name!r} must be non-negative and sum to 1",
                                            field=p.name)

    def border_warnings(self, config: Mapping[str, Any], tol: float = 0.05) -> list[str]:
        """Tuning-playbook check: numeric parameters within ``tol`` of their normalised range's border."""
        warnings = []
        for p in self.searched:
            if p.type in (ParamType.FLOAT, ParamType.INT) and self._active(p, config) and p.high != p.low:
                u = p._to_unit(float(config[p.name]))
                if u <= tol or u >= 1.0 - tol:
                    side = "lower" if u <= tol else "upper"
                    warnings.append(
                        f"{p.name}={config[p.name]:.6g} lies within {tol:.0%} of the {side} border of "
                        f"[{p.low:.6g}, {p.high:.6g}]; consider widening the search space")
        return warnings
