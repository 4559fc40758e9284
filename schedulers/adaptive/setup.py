"""A study's adaptive setup: which policy adapts which mixture group, with which options, and which of the
policy's hyperparameters the study tunes (each read from a numeric parameter of the search space).

The plain-dict shape (``api.schemas.AdaptiveSpec`` types it)::

    {"policy": "exp3", "group": "mix", "options": {"smoothing": 0.8}, "tuned": {"lr": "odm_lr"}}

The trial's initial mixture is its value of the group (the scheduler searches it like any mixture), and
a tuned hyperparameter its value of the named parameter, so the trial scheduler tunes the policy's
initial mixture and hyperparameters across sizes while the policy adapts the mixture within each trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from schedulers.adaptive.base import AdaptationPolicy, Mixture, PolicyKind
from schedulers.adaptive.errors import InvalidAdaptationError
from schedulers.adaptive.registry import policy_class
from schedulers.space import ParamRole, ParamType, SearchSpace


@dataclass(frozen=True)
class AdaptiveSetup:
    kind: PolicyKind
    group: str
    components: tuple[str, ...]
    options: Mapping[str, float] = field(default_factory=dict)
    tuned: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], space: SearchSpace) -> "AdaptiveSetup":
        """Validate ``raw`` against ``space``; errors name the field (``adaptive.group``, ...)."""
        try:
            kind = PolicyKind(raw.get("policy"))
        except ValueError:
            raise InvalidAdaptationError(f"unknown adaptation policy {raw.get('policy')!r}; known: "
                                         f"{[k.value for k in PolicyKind]}", field="adaptive.policy") from None
        by_name = {p.name: p for p in space.params}
        group = by_name.get(str(raw.get("group")))
        if group is None or group.type is not ParamType.MIXTURE:
            mixtures = [p.name for p in space.params if p.type is ParamType.MIXTURE]
            raise InvalidAdaptationError(f"adaptive group {raw.get('group')!r} must name a mixture parameter of "
                                         f"the space (mixtures: {mixtures})", field="adaptive.group")
        if group.condition is not None:
            raise InvalidAdaptationError(f"adaptive group {group.name!r} must be unconditional",
                                         field="adaptive.group")
        options = dict(raw.get("options") or {})
        tuned = {str(k): str(v) for k, v in dict(raw.get("tuned") or {}).items()}
        cls_ = policy_class(kind)
        probe = cls_(group.components, **options)  # checks the option names and values
        for hyper, name in tuned.items():
            where = f"adaptive.tuned.{hyper}"
            if hyper not in cls_.hyperparameters:
                raise InvalidAdaptationError(f"policy {kind.value!r} has no hyperparameter {hyper!r}; it has "
                                             f"{sorted(cls_.hyperparameters)}", field=where)
            p = by_name.get(name)
            if p is None or p.type not in (ParamType.FLOAT, ParamType.INT) or p.condition is not None:
                raise InvalidAdaptationError(f"{hyper} is tuned by {name!r}, which must be an unconditional "
                                             "float or int parameter of the space", field=where)
            lo, hi = (p.value, p.value) if p.role is ParamRole.FIXED else (p.low, p.high)
            probe._check_hyper({hyper: lo}, "adaptive.tuned")
            probe._check_hyper({hyper: hi}, "adaptive.tuned")
        return cls(kind, group.name, tuple(group.components), {k: float(v) for k, v in options.items()}, tuned)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.kind.value, "group": self.group, "options": dict(self.options),
                "tuned": dict(self.tuned)}

    def make_policy(self, seed: int = 0) -> AdaptationPolicy:
        return policy_class(self.kind)(self.components, seed=seed, **self.options)

    def initial(self, params: Mapping[str, Any]) -> Mixture | None:
        """A trial's initial mixture: its values of the group's components (``None``: uniform)."""
        if not all(c in params for c in self.components):
            return None
        return {c: float(params[c]) for c in self.components}

    def hyper(self, params: Mapping[str, Any]) -> dict[str, float]:
        """A trial's values of the tuned hyperparameters."""
        return {h: float(params[name]) for h, name in self.tuned.items() if name in params}

    def start(self, policy: AdaptationPolicy, trial_id: int, params: Mapping[str, Any]) -> Mixture:
        """Start ``trial_id`` on ``policy`` from its parameters."""
        return policy.start(trial_id, self.initial(params), self.hyper(params))
