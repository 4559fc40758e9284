"""FastAPI dependencies: the request's session (one transaction per request), the caller's tenant, and the
app-wide singletons (settings, executor, scheduler cache, scaling fits) hung on ``app.state`` by :func:`create_app`.

Routers written elsewhere (``service/routes/scaling.py``) use the same ``SessionDep`` and ``TenantDep``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.errors import UnauthenticatedError
from service.executors import Executor
from service.repositories import TokenRepository
from service.scaling import ScalingFits
from service.scheduling import SchedulerCache
from service.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request. The route commits it before returning
    (:class:`CommitBeforeResponseRoute`), so a failed commit is an error response, never a silently lost
    write; if the route raises, the transaction is rolled back here."""
    factory = request.app.state.session_factory
    with factory() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="an API token from `scaleladder token create`")


def get_tenant(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The tenant bound to the bearer token (or the default tenant when auth is explicitly disabled)."""
    settings: Settings = request.app.state.settings
    if not settings.auth_enabled:
        return settings.default_tenant
    if credentials is None or not credentials.credentials:
        raise UnauthenticatedError("missing bearer token (Authorization: Bearer <token>)")
    # its own short transaction, not the request's: no connection (and on SQLite no write lock) is held
    # across the hop from this dependency's worker thread to the route's
    with request.app.state.session_factory() as own, own.begin():
        return TokenRepository(own).authenticate(credentials.credentials)


TenantDep = Annotated[str, Depends(get_tenant)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


def get_scheduler_cache(request: Request) -> SchedulerCache:
    return request.app.state.scheduler_cache


def get_scaling_fits(request: Request) -> ScalingFits:
    return request.app.state.scaling_fits


SettingsDep = Annotated[Settings, Depends(get_settings)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
CacheDep = Annotated[SchedulerCache, Depends(get_scheduler_cache)]
ScalingFitsDep = Annotated[ScalingFits, Depends(get_scaling_fits)]


def _commit_in_route_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` followed by the commit of its request session, in the same worker thread.

    A yield dependency's exit runs after FastAPI has serialised the response, and both the serialisation and
    the exit of a sync dependency wait for a threadpool slot: with 50 clients on one study every slot was
    taken by requests queued on the study's row lock while its holder waited for a slot to commit
    (issue 14). Committing here releases the lock (and the connection) before anything else is awaited."""

    @functools.wraps(endpoint)  # FastAPI reads the wrapped signature (inspect.unwrap)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return result

    return run


class CommitBeforeResponseRoute(APIRoute):
    """The route class of every router: its (sync) endpoint commits the request's transaction itself."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _commit_in_route_thread(endpoint), **kwargs)
