"""Typed errors of the client SDK, one per HTTP status class the service answers with.

The service sends ``{"error": {"code", "message", "field", "retryable"}}``; :func:`error_from_response`
turns that into the matching exception so callers can ``except NotFoundError`` instead of parsing codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def field_message(field: str | None, message: str) -> str:
    """``field: message``, the form of the service's validation messages (the message alone without a field,
    or when it already starts with the field)."""
    return f"{field}: {message}" if field and not message.startswith(f"{field}:") else message


class ScaleLadderError(Exception):
    """Base class of every SDK error. ``status`` is the HTTP status (``None`` for transport failures).

    ``str(error)`` is ``field: message``, the form of the service's own validation messages, so the CLI and
    callers print one shape whether the service or the SDK found the problem."""

    status: int | None = None
    retryable: bool = False

    def __init__(self, message: str, *, code: str = "error", field: str | None = None,
                 status: int | None = None, retryable: bool | None = None) -> None:
        super().__init__(field_message(field, message))
        self.message = message
        self.code = code
        self.field = field
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable


class InvalidArgumentError(ScaleLadderError):
    """422 / 400: the request is malformed; ``field`` names the offending field."""

    status = 422


class AuthenticationError(ScaleLadderError):
    """401: no token, or a token the service does not know."""

    status = 401


class PermissionDeniedError(ScaleLadderError):
    status = 403


class NotFoundError(ScaleLadderError):
    """404: no such study or trial (other tenants' studies are reported as absent too)."""

    status = 404


class ConflictError(ScaleLadderError):
    """409: the call is illegal in the resource's current state (e.g. pausing a completed study)."""

    status = 409


class UnavailableError(ScaleLadderError):
    """503 (and 502/504/429): try again later."""

    status = 503
    retryable = True


class ServerError(ScaleLadderError):
    """Any other 5xx."""

    status = 500


class TransportError(ScaleLadderError):
    """The request never got an HTTP answer (connection refused, timeout...)."""

    retryable = True


_BY_STATUS: dict[int, type[ScaleLadderError]] = {
    400: InvalidArgumentError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 422: InvalidArgumentError, 429: UnavailableError, 502: UnavailableError,
    503: UnavailableError, 504: UnavailableError,
}


#: where pydantic puts a request's parts; not part of a field's name
_REQUEST_PARTS = ("body", "query", "path", "header")


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as the API names fields: ``("body", "space", 0, "high")`` -> ``space[0].high``."""
    parts = list(loc[1:] if loc and loc[0] in _REQUEST_PARTS else loc)
    out = ""
    for p in map(str, parts):
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or ".".join(map(str, loc))


def invalid_argument(errors: Sequence[Mapping[str, Any]], limit: int = 5) -> InvalidArgumentError:
    """The one 422 for a list of pydantic errors (the service's answer, and the SDK's own check of a spec
    before sending it): the first error's field, and ``field: message`` for the first ``limit`` errors."""
    if not errors:
        return InvalidArgumentError("invalid request")
    message = "; ".join(f"{field_path(e.get('loc', ()))}: {e.get('msg')}" for e in errors[:limit])
    return InvalidArgumentError(message, code="invalid_argument", field=field_path(errors[0].get("loc", ())))


def error_from_response(status: int, body: Any) -> ScaleLadderError:
    """Build the typed error for an HTTP error answer (``body`` is the decoded JSON, or text)."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ScaleLadderError)
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return cls(str(err.get("message", "")), code=str(err.get("code", "error")), field=err.get("field"),
                   status=status, retryable=err.get("retryable"))
    detail = body.get("detail") if isinstance(body, dict) else body
    return cls(f"HTTP {status}: {detail}", status=status)


__all__ = [
    "AuthenticationError", "ConflictError", "InvalidArgumentError", "NotFoundError", "PermissionDeniedError",
    "ScaleLadderError", "ServerError", "TransportError", "UnavailableError", "error_from_response",
    "field_message", "field_path", "invalid_argument",
]
