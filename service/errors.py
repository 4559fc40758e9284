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
from api.schemas import ErrorCode, ErrorResponse
from schedulers.errors import (IllegalTransitionError, InvalidProblemError, InvalidSpaceError, ModelFittingError,
                               SchedulerError, UnknownTrialError)
from schedulers.scaling.errors import InvalidScalingDataError
from workers.errors import ForbiddenWorkloadError, InvalidWorkloadConfigError, UnknownWorkloadError, WorkerError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class of the service's own errors."""

    status_code = 500
    code = ErrorCode.INTERNAL
    retryable = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgumentError(ServiceError):
    status_code = 422
    code = ErrorCode.INVALID_ARGUMENT


class NotFoundError(ServiceError):
    status_code = 404
    code = ErrorCode.NOT_FOUND


class ConflictError(ServiceError):
    """An illegal state transition (starting a cancelled study, completing a failed trial...)."""

    status_code = 409
    code = ErrorCode.FAILED_PRECONDITION


class UnauthenticatedError(ServiceError):
    status_code = 401
    code = ErrorCode.UNAUTHENTICATED


class TokenExpiredError(UnauthenticatedError):
    """A known, unrevoked token past its ``expires_at``: the caller needs a new token, not a retry, so the
    message says so (the 401 is the same as for an unknown token)."""


class PayloadTooLargeError(ServiceError):
    status_code = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnavailableError(ServiceError):
    status_code = 503
    code = ErrorCode.UNAVAILABLE
    retryable = True


class ExecutorError(UnavailableError):
    """The executor could not start, pause, resume or cancel a study."""


# scheduler-library error type -> (status, code); the most specific class wins (checked in MRO order)
_SCHEDULER_STATUS: dict[type[SchedulerError], tuple[int, ErrorCode]] = {
    InvalidSpaceError: (422, ErrorCode.INVALID_ARGUMENT),
    InvalidProblemError: (422, ErrorCode.INVALID_ARGUMENT),
    UnknownTrialError: (404, ErrorCode.NOT_FOUND),
    IllegalTransitionError: (409, ErrorCode.FAILED_PRECONDITION),
    ModelFittingError: (503, ErrorCode.UNAVAILABLE),
    InvalidScalingDataError: (422, ErrorCode.INVALID_ARGUMENT),
}


# worker-package error type -> (status, code), same rule (a study's workload checked at create time)
_WORKER_STATUS: dict[type[WorkerError], tuple[int, ErrorCode]] = {
    UnknownWorkloadError: (422, ErrorCode.INVALID_ARGUMENT),
    ForbiddenWorkloadError: (422, ErrorCode.INVALID_ARGUMENT),  # bad input of the study, not the caller's identity
    InvalidWorkloadConfigError: (422, ErrorCode.INVALID_ARGUMENT),
}


def _status(exc: Exception, table: dict[type, tuple[int, ErrorCode]]) -> tuple[int, ErrorCode]:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500, ErrorCode.INTERNAL


#: sent with every 503: the SDK (and any HTTP client) backs off and retries
RETRY_AFTER = {"Retry-After": "1"}


def _documented(description: str, **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model": ErrorResponse, "description": description}
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return out


#: The error answers of the ``/v1`` routes as their OpenAPI operations document them (``APIRouter(responses=...)``;
#: issue 14: the schema documented none, and FastAPI's default 422 body is not the one sent). Every route can
#: answer each: a token is checked first (401), ids are looked up (404), bodies are validated (422) and
#: bounded (413), and the database can be busy (503).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("no token, or an unknown, revoked or expired one",
                     **{"WWW-Authenticate": "Bearer"}),
    404: _documented("no such study or trial (another tenant's study answers the same)"),
    409: _documented("an illegal state transition, a stale segment (`failed_precondition`), or a concurrent "
                     "change (`aborted`, retryable)"),
    413: _documented("the request body is over `SCALELADDER_MAX_REQUEST_BYTES`"),
    422: _documented("invalid input; `field` names it"),
    503: _documented("overloaded or a dependency is unavailable; retry", **{"Retry-After": "seconds to wait"}),
}


def _body(code: ErrorCode, message: str, field: str | None, retryable: bool) -> dict[str, Any]:
    return {"error": {"code": code.value, "message": message, "field": field, "retryable": retryable}}


def _response(status: int, code: ErrorCode, message: str, field: str | None = None, retryable: bool = False,
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
        return _response(status, code, exc.message, exc.field, exc.retryable,
                         RETRY_AFTER if status == 503 else None)

    @app.exception_handler(WorkerError)
    async def _worker_error(_: Request, exc: WorkerError) -> JSONResponse:
        status, code = _status(exc, _WORKER_STATUS)
        return _response(status, code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = invalid_argument(exc.errors())  # the SDK's own check of a spec words it the same way
        return _response(422, ErrorCode.INVALID_ARGUMENT, err.message, err.field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(exc.status_code,
                                                                               ErrorCode.HTTP_ERROR)
        return _response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        # the schemas bound every value; this is the database's last word on one that slipped through
        log.warning("database rejected a value: %s", exc)
        return _response(422, ErrorCode.INVALID_ARGUMENT, f"the database cannot store a value: {exc.orig}")

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        # a concurrent writer won a race the row locks do not cover; retrying the call is safe
        log.warning("integrity error: %s", exc)
        return _response(409, ErrorCode.ABORTED, "a concurrent request changed the same data; retry", retryable=True)

    @app.exception_handler(OperationalError)
    async def _db_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database error: %s", exc)
        return _response(503, ErrorCode.UNAVAILABLE, "the database is unavailable; retry later", retryable=True,
                         headers=RETRY_AFTER)

    @app.exception_handler(PoolTimeoutError)
    async def _pool_exhausted(_: Request, exc: PoolTimeoutError) -> JSONResponse:
        # every connection of the pool is in use: overload, not a bug (was a 500 at 50 clients, issue 14)
        log.warning("database connection pool exhausted: %s", exc)
        return _response(503, ErrorCode.UNAVAILABLE, "the service is overloaded (no database connection free); retry",
                         retryable=True, headers=RETRY_AFTER)
