"""Adaptation policies by kind."""

from __future__ import annotations

import importlib
from typing import Any, Sequence

from schedulers.adaptive.base import AdaptationPolicy, PolicyKind

POLICIES: dict[PolicyKind, str] = {
    PolicyKind.EXP3: "schedulers.adaptive.exp3:Exp3Mixing",
    PolicyKind.LEARNABLE_LOSS: "schedulers.adaptive.learnable:LearnableLossMixing",
}


def policy_class(kind: PolicyKind | str) -> type[AdaptationPolicy]:
    module, attr = POLICIES[PolicyKind(kind)].split(":")
    return getattr(importlib.import_module(module), attr)


def make_policy(kind: PolicyKind | str, components: Sequence[str], seed: int = 0, **options: Any) -> AdaptationPolicy:
    return policy_class(kind)(components, seed=seed, **options)
