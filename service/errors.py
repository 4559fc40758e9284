"""Service errors and the ONE place that maps every error type to an HTTP status code.

Status policy: 422 for bad input (naming the field and the problem), 404 for unknown ids and for other
tenants' studies (never 403, so ids do not leak), 409 for illegal state transitions, 401 for a missing,
unknown or revoked token, or an expired one (its message says it expired), 503 when a dependency (database, executor,
surrogate fit) is unavailable and a retry may help.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import invalid_argument
from schedulers.errors import (IllegalTransitionError, InvalidProblemError, InvalidSpaceError, ModelFittingError,
                               SchedulerError, UnknownTrialError)
from schedulers.scaling.errors import InvalidScalingDataError
from workers.errors import ForbiddenWorkloadError, InvalidWorkloadConfigError, UnknownWorkloadError, WorkerError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class of the service's own errors."""

    status_code = 500
    code = "internal"
    retryable = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgumentError(ServiceError):
    status_code = 422
    code = "invalid_argument"


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class ConflictError(ServiceError):
    """An illegal state transition (starting a cancelled study, completing a failed trial...)."""

    status_code = 409
    code = "failed_precondition"


class UnauthenticatedError(ServiceError):
    status_code = 401
    code = "unauthenticated"


class TokenExpiredError(UnauthenticatedError):
    """A known, unrevoked token past its ``expires_at``: the caller needs a new token, not a retry, so the
    message says so (the 401 is the same as for an unknown token)."""


class PayloadTooLargeError(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnavailableError(ServiceError):
    status_code = 503
    code = "unavailable"
    retryable = True


class ExecutorError(UnavailableError):
    """The executor could not start, pause, resume or cancel a study."""


# scheduler-library error type -> (status, code); the most specific class wins (checked in MRO order)
_SCHEDULER_STATUS: dict[type[SchedulerError], tuple[int, str]] = {
    InvalidSpaceError: (422, "invalid_argument"),
    InvalidProblemError: (422, "invalid_argument"),
    UnknownTrialError: (404, "not_found"),
    IllegalTransitionError: (409, "failed_precondition"),
    ModelFittingError: (503, "unavailable"),
    InvalidScalingDataError: (422, "invalid_argument"),
}


# worker-package error type -> (status, code), same rule (a study's workload checked at create time)
_WORKER_STATUS: dict[type[WorkerError], tuple[int, str]] = {
    UnknownWorkloadError: (422, "invalid_argument"),
    ForbiddenWorkloadError: (422, "invalid_argument"),  # bad input of the study, not the caller's identity
    InvalidWorkloadConfigError: (422, "invalid_argument"),
}


def _status(exc: Exception, table: dict[type, tuple[int, str]]) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500, "internal"


#: sent with every 503: the SDK (and any HTTP client) backs off and retries
RETRY_AFTER = {"Retry-After": "1"}


def _body(code: str, message: str, field: str | None, retryable: bool) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "retryable": retryable}}


def _response(status: int, code: str, message: str, field: str | None = None, retryable: bool = False,
              headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_body(code, message, field, retryable), status_code=status, headers=headers)


def error_response(exc: ServiceError) -> JSONResponse:
    """The response for a service error raised outside a route (middleware), as the handlers shape it."""
    return _response(exc.status_code, exc.code, exc.message, exc.field, exc.retryable,
                     RETRY_AFTER if exc.retryable else None)


def install_error_handlers(app: FastAPI) -> None:
    """Register the exception handlers: every error leaves the service as ``{"error": {...}}``."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthenticatedError) else \
            RETRY_AFTER if exc.retryable else None
        return _response(exc.status_code, exc.code, exc.message, exc.field, exc.retryable, headers)

    @app.exception_handler(SchedulerError)
    async def _scheduler_error(_: Request, exc: SchedulerError) -> JSONResponse:
        status, code = _status(exc, _SCHEDULER_STATUS)
        return _response(status, code, exc.message, exc.field, exc.retryable)

    @app.exception_handler(WorkerError)
    async def _worker_error(_: Request, exc: WorkerError) -> JSONResponse:
        status, code = _status(exc, _WORKER_STATUS)
        return _response(status, code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = invalid_argument(exc.errors())  # the SDK's own check of a spec words it the same way
        return _response(422, "invalid_argument", err.message, err.field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        # the schemas bound every value; this is the database's last word on one that slipped through
        log.warning("database rejected a value: %s", exc)
        return _response(422, "invalid_argument", f"the database cannot store a value: {exc.orig}")

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        # a concurrent writer won a race the row locks do not cover; retrying the call is safe
        log.warning("integrity error: %s", exc)
        return _response(409, "aborted", "a concurrent request changed the same data; retry", retryable=True)

    @app.exception_handler(OperationalError)
    async def _db_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database error: %s", exc)
        return _response(503, "unavailable", "the database is unavailable; retry later", retryable=True,
                         headers=RETRY_AFTER)

    @app.exception_handler(PoolTimeoutError)
    async def _pool_exhausted(_: Request, exc: PoolTimeoutError) -> JSONResponse:
        # every connection of the pool is in use: overload, not a bug (was a 500 at 50 clients, issue 14)
        log.warning("database connection pool exhausted: %s", exc)
        return _response(503, "unavailable", "the service is overloaded (no database connection free); retry",
                         retryable=True, headers=RETRY_AFTER)
