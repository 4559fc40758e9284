"""Shared fixtures: real databases and live servers.

- ``postgres_url``: a fresh PostgreSQL database for this test session, created with a unique name on the
  server named by ``SCALELADDER_TEST_POSTGRES_URL`` (default: the local server) and dropped at the end.
- ``sqlite_url``: a SQLite file in a temporary folder.
- ``database_url``: parametrised over both (the storage contract suite runs against each).
- ``sqlite_server`` / ``postgres_server``: the app under uvicorn in a thread on a free port, with its schema
  migrated; :class:`LiveServer` makes tokens (``server.token("tenant")``) and SDK clients.
- ``study_spec``: a small valid study (dict), to be tweaked by tests.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from api.client import Client
from service.app import create_app
from service.db import transaction
from service.repositories import TokenRepository
from service.server import ServerThread
from service.settings import Settings

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_engine():
    url = os.environ.get("SCALELADDER_TEST_POSTGRES_URL", DEFAULT_PG)
    return make_url(url), create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def fresh_postgres_database(prefix: str = "scaleladder_test") -> Iterator[str]:
    """Create a uniquely named database on the test server, yield its URL, drop it; skip when there is no
    server (PostgreSQL-backed tests cannot run here). The body of ``postgres_url`` and of any test that needs
    a database of its own (a migration from an old revision)."""
    base, admin = _admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable at {base.render_as_string()}: {e.orig}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from fresh_postgres_database()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'scaleladder.db'}"


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


class LiveServer:
    """A running service: ``url``, ``app``, and helpers for tokens and SDK clients."""

    def __init__(self, thread: ServerThread, app) -> None:
        self.thread = thread
        self.app = app
        self.url = thread.url
        self._tokens: dict[str, str] = {}

    def token(self, tenant: str) -> str:
        """A token for ``tenant`` (one per tenant per server, made directly in the database)."""
        if tenant not in self._tokens:
            with transaction(self.app.state.session_factory) as session:
                self._tokens[tenant] = TokenRepository(session).create(tenant, name="tests")
        return self._tokens[tenant]

    def http(self, tenant: str | None = "alice") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(tenant)}"} if tenant else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def client(self, tenant: str = "alice", **kwargs: Any) -> Client:
        return Client(self.url, self.token(tenant), **kwargs)


def _serve(database_url: str, **settings: Any) -> Iterator[LiveServer]:
    app = create_app(Settings(database_url=database_url, migrate_on_startup=True, **settings))
    with ServerThread(app) as thread:
        yield LiveServer(thread, app)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _serve(f"sqlite:///{tmp_path_factory.mktemp('server') / 'service.db'}")


@pytest.fixture(scope="session")
def postgres_server(postgres_url: str) -> Iterator[LiveServer]:
    yield from _serve(postgres_url)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest) -> LiveServer:
    """A live server on each backend (for the API tests worth running on both)."""
    return request.getfixturevalue(f"{request.param}_server")


STUDY_SPEC: dict[str, Any] = {
    "name": "small",
    "objective": {"metric": "loss", "direction": "minimize"},
    "space": [
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True, "role": "scientific"},
        {"name": "layers", "type": "int", "low": 1, "high": 4},
        {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"]},
        {"name": "momentum", "type": "float", "low": 0.8, "high": 0.99,
         "condition": {"parent": "optimizer", "values": ["sgd"]}},
        {"name": "mix", "type": "mixture", "components": ["web", "code"]},
        {"name": "seq_len", "type": "fixed", "value": 128},
    ],
    "fidelity": {"steps": {"min": 10, "max": 40, "report_every": 10},
                 "sizes": [{"name": "s", "params": 1e6}, {"name": "m", "params": 4e6, "cpus": 2}]},
    "target": {"steps": 40, "size": "m"},
    "cost": {"kind": "analytic"},
    "budget": {"max_trials": 50},
    "scheduler": {"name": "random", "seed": 1},
}


@pytest.fixture
def study_spec() -> dict[str, Any]:
    spec = copy.deepcopy(STUDY_SPEC)
    spec["name"] = f"small-{uuid.uuid4().hex[:8]}"
    return spec
