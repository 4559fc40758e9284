"""Service settings, read from the environment (prefix ``SCALELADDER_``) by pydantic-settings.

Nothing here runs at import time: build a :class:`Settings` where it is needed (the CLI, a test) and hand
it to :func:`service.app.create_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """An embedded SQLite file in the user's data directory (created on first use)."""
    folder = Path.home() / ".scaleladder"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'scaleladder.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCALELADDER_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url,
                              description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://...")
    #: Run ``alembic upgrade head`` when the app starts. ``None``: only for SQLite (the embedded default);
    #: a PostgreSQL deployment migrates explicitly with ``scaleladder db upgrade``.
    migrate_on_startup: bool | None = None
    #: Bearer-token authentication. Turning it off is explicit; every request then acts as ``default_tenant``.
    auth_enabled: bool = True
    default_tenant: str = "default"
    #: A token registered (hashed) for ``bootstrap_tenant`` at start-up, so a fresh deployment has a first
    #: token without shell access (docker/env.example). More come from ``scaleladder token create``.
    bootstrap_token: SecretStr | None = None
    bootstrap_tenant: str = "default"
    #: How studies run: ``external`` (ask/tell workers) or ``ray``; see ``service.executors.EXECUTORS``.
    executor: str = "external"
    executor_options: dict[str, Any] = Field(default_factory=dict)
    #: Live scheduler instances kept per process (keyed by study), so the usual ask/tell does not replay.
    scheduler_cache_size: int = Field(default=128, ge=0)
    db_pool_size: int = Field(default=10, ge=1)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=1000, ge=1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate_on_startup(self) -> bool:
        return self.is_sqlite if self.migrate_on_startup is None else self.migrate_on_startup
