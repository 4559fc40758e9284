"""Engines and sessions. An engine is built from :class:`~service.settings.Settings` by :func:`make_engine`,
never at import time.

SQLite (the embedded default) has no row locks; every transaction there starts with ``BEGIN IMMEDIATE``,
which takes the database write lock up front, so two requests racing on one study serialise instead of
failing with "database is locked" when a reader tries to upgrade to a writer. On PostgreSQL the
repositories take ``SELECT ... FOR UPDATE`` row locks instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings


#: seconds a request waits for a pooled connection before giving up (SQLAlchemy's default is 30, longer
#: than the SDK's timeout, so a client retried requests the server was still queueing)
POOL_TIMEOUT = 10.0


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
            # let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's implicit BEGIN is deferred)
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # a request that cannot get a connection within POOL_TIMEOUT seconds answers 503 with Retry-After
    return create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size,
                         pool_timeout=POOL_TIMEOUT, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work outside a request (CLI, executors): commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session
