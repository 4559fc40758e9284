"""Errors raised on the worker side (workload loading, workload configuration, trial execution)."""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of every error this package raises."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownWorkloadError(WorkerError, LookupError):
    """The study names a workload that is neither built in nor an importable ``module:function``."""


class ForbiddenWorkloadError(WorkerError, PermissionError):
    """The study names code outside the modules this deployment lets workers import
    (:class:`workers.workloads.WorkloadPolicy`): a tenant would choose what Ray workers run."""


class InvalidWorkloadConfigError(WorkerError, ValueError):
    """A workload got a configuration it cannot run (missing size width, bad argument...)."""


class UnsafeCheckpointError(WorkerError, ValueError):
    """A checkpoint holds something other than tensors, numbers, strings and containers of them (it would
    run code when unpickled). Retrying does not help: the file itself is refused."""


class TrialStopped(WorkerError):
    """Raised by a reporter to end a workload early (the scheduler said STOP or PAUSE).

    Workloads must let it propagate; the runner that installed the reporter catches it.
    """
