"""Built-in workloads and the loader for user workloads.

A study names its workload either by a built-in name (:data:`BUILTIN_WORKLOADS`) or as an importable
``"module:function"``; either way the result is a ``fn(config, reporter)`` (see
:mod:`workers.workloads.base` for the contract).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util

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


def check_workload(*, name: str | None = None, entrypoint: str | None = None) -> None:
    """Check a study's workload when the study is created, before any trial runs it: ``name`` must be a
    built-in workload and ``entrypoint``'s module must be importable.

    The entrypoint's module is located (``importlib.util.find_spec``), not executed, so creating a study
    runs none of the study's own code where it is checked (only the ``__init__`` of the packages above the
    module); a missing function in an existing module is found when the first trial loads it. Raises
    :class:`UnknownWorkloadError` whose ``field`` is ``workload.name`` or ``workload.entrypoint``.
    """
    if name is not None and name not in BUILTIN_WORKLOADS:
        close = difflib.get_close_matches(name, list(BUILTIN_WORKLOADS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownWorkloadError(
            f"unknown built-in workload {name!r}: known are {sorted(BUILTIN_WORKLOADS)} (a workload of your own "
            f"goes in 'entrypoint' as 'module:function'){hint}", field="workload.name")
    if entrypoint is not None:
        module = entrypoint.partition(":")[0]  # its form is the schema's to check (api.schemas.WorkloadSpec)
        try:
            found = importlib.util.find_spec(module)
        except ImportError as e:  # a missing parent package
            found, reason = None, str(e)
        except Exception as e:  # a parent package whose __init__ fails, a malformed name
            found, reason = None, f"{type(e).__name__}: {e}"
        else:
            reason = f"No module named {module!r}"
        if found is None:
            raise UnknownWorkloadError(f"cannot import the module of workload entrypoint {entrypoint!r}: {reason}",
                                       field="workload.entrypoint")


__all__ = ["BUILTIN_WORKLOADS", "Reporter", "Workload", "WorkloadConfig", "check_workload", "load_workload"]
