"""FastAPI dependencies: the request's session (one transaction per request), the caller's tenant, and the
app-wide singletons (settings, executor, scheduler cache) hung on ``app.state`` by :func:`create_app`.

Routers written elsewhere (``service/routes/scaling.py``) use the same ``SessionDep`` and ``TenantDep``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.errors import UnauthenticatedError
from service.executors import Executor
from service.repositories import TokenRepository
from service.scheduling import SchedulerCache
from service.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request: committed when the handler returns, rolled back if it
    raises. ``scope="function"`` (below) commits before the response is sent, so a failed commit is an
    error response and never a silently lost write."""
    factory = request.app.state.session_factory
    with factory() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="an API token from `scaleladder token create`")


def get_tenant(request: Request, session: SessionDep,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The tenant bound to the bearer token (or the default tenant when auth is explicitly disabled)."""
    settings: Settings = request.app.state.settings
    if not settings.auth_enabled:
        return settings.default_tenant
    if credentials is None or not credentials.credentials:
        raise UnauthenticatedError("missing bearer token (Authorization: Bearer <token>)")
    tenant = TokenRepository(session).tenant_for(credentials.credentials)
    if tenant is None:
        raise UnauthenticatedError("unknown or revoked token")
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


def get_scheduler_cache(request: Request) -> SchedulerCache:
    return request.app.state.scheduler_cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
CacheDep = Annotated[SchedulerCache, Depends(get_scheduler_cache)]
