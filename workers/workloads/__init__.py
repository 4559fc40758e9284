"""Built-in workloads and the loader for user workloads.

A study names its workload either by a built-in name (:data:`BUILTIN_WORKLOADS`) or as an importable
``"module:function"``; either way the result is a ``fn(config, reporter)`` (see
:mod:`workers.workloads.base` for the contract).

Trust boundary: a study's author is a tenant, and whatever module it names is imported (and run) on the
Ray workers, next to other tenants' trials. So which modules may be named is the deployment's choice, a
:class:`WorkloadPolicy` (``Settings.workload_modules``): the built-in workloads, plus the module prefixes
the operator lists. It is checked when a study is created (422) and again where a worker loads the code.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
from dataclasses import dataclass

from workers.errors import ForbiddenWorkloadError, UnknownWorkloadError
from workers.workloads.base import Reporter, Workload, WorkloadConfig

#: built-in name -> "module:function", imported lazily
BUILTIN_WORKLOADS: dict[str, str] = {
    "mup_transformer": "workers.workloads.lm:mup_transformer",
    "sp_transformer": "workers.workloads.lm:sp_transformer",
    "mlp": "workers.workloads.mlp:mlp",
}


#: a dotted Python module name (``my_project.train``): what a policy's module prefixes must look like
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class WorkloadPolicy:
    """Which workload code studies may make workers import: the built-in workloads (by name or by their
    exact ``module:function``) and every module under one of ``modules`` (a prefix ``my_project`` allows
    ``my_project`` and ``my_project.train``, not ``my_projects``). The default allows the built-ins only.
    """

    modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for prefix in self.modules:
            if not MODULE_NAME.match(prefix):
                raise ValueError(f"workload module prefix {prefix!r} is not a dotted module name")

    def allows(self, entrypoint: str) -> bool:
        if entrypoint in BUILTIN_WORKLOADS.values():
            return True
        module = entrypoint.partition(":")[0]
        return any(module == p or module.startswith(p + ".") for p in self.modules)

    def check(self, entrypoint: str, field: str = "workload.entrypoint") -> None:
        """Raise :class:`ForbiddenWorkloadError` unless ``entrypoint`` may be imported. Nothing is imported
        or located here: a refused module's packages must not run their ``__init__`` either."""
        if not self.allows(entrypoint):
            allowed = f"modules under {list(self.modules)}" if self.modules else "no modules of your own"
            raise ForbiddenWorkloadError(
                f"workload entrypoint {entrypoint!r} is outside the modules this deployment lets workers import "
                f"(the built-in workloads {sorted(BUILTIN_WORKLOADS)} and {allowed}; the operator lists module "
                "prefixes in SCALELADDER_WORKLOAD_MODULES)", field=field)


#: the built-in workloads only: the default of every deployment
BUILTIN_ONLY = WorkloadPolicy()


def load_workload(name: str, policy: WorkloadPolicy = BUILTIN_ONLY) -> Workload:
    """Resolve a built-in name or ``module:function`` to the workload callable, if ``policy`` allows it."""
    path = BUILTIN_WORKLOADS.get(name, name)
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise UnknownWorkloadError(
            f"unknown workload {name!r}: expected one of {sorted(BUILTIN_WORKLOADS)} or 'module:function'",
            field="workload")
    policy.check(path)
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UnknownWorkloadError(f"cannot load workload {name!r}: {e}", field="workload") from e
    if not callable(fn):
        raise UnknownWorkloadError(f"workload {name!r} is not callable", field="workload")
    return fn


def check_workload(*, name: str | None = None, entrypoint: str | None = None,
                   policy: WorkloadPolicy = BUILTIN_ONLY) -> None:
    """Check a study's workload when the study is created, before any trial runs it: ``name`` must be a
    built-in workload, and ``entrypoint`` allowed by ``policy`` (:class:`ForbiddenWorkloadError`) and its
    module importable.

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
        policy.check(entrypoint)  # first: locating a module runs its parent packages' __init__
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


__all__ = ["BUILTIN_ONLY", "BUILTIN_WORKLOADS", "MODULE_NAME", "Reporter", "Workload", "WorkloadConfig", "WorkloadPolicy",
           "check_workload", "load_workload"]
