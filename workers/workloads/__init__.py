"""Built-in workloads and the loader for user workloads.

A study names its workload either by a built-in name (:data:`BUILTIN_WORKLOADS`) or as an importable
``"module:function"``; either way the result is a ``fn(config, reporter)`` (see
:mod:`workers.workloads.base` for the contract).
"""

from __future__ import annotations

import importlib

from workers.errors import UnknownWorkloadError
from workers.workloads.base import Reporter, Workload, WorkloadConfig

#: built-in name -> "module:function", imported lazily
BUILTIN_WORKLOADS: dict[str, str] = {
    "mup_transformer": "workers.workloads.lm:mup_transformer",
    "sp_transformer": "workers.workloads.lm:sp_transformer",
    "mlp": "workers.workloads.mlp:mlp",
}


def load_workload(name: str) -> Workload:
    """Resolve a built-in name or ``module:function`` to the workload callable."""
    path = BUILTIN_WORKLOADS.get(name, name)
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise UnknownWorkloadError(
            f"unknown workload {name!r}: expected one of {sorted(BUILTIN_WORKLOADS)} or 'module:function'",
            field="workload")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UnknownWorkloadError(f"cannot load workload {name!r}: {e}", field="workload") from e
    if not callable(fn):
        raise UnknownWorkloadError(f"workload {name!r} is not callable", field="workload")
    return fn


__all__ = ["BUILTIN_WORKLOADS", "Reporter", "Workload", "WorkloadConfig", "load_workload"]
