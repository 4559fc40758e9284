"""Service settings, read from the environment (prefix ``SCALELADDER_``) by pydantic-settings.

Nothing here runs at import time: build a :class:`Settings` where it is needed (the CLI, a test) and hand
it to :func:`service.app.create_app`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workers.workloads import WorkloadPolicy


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
    #: Module prefixes (``my_project``, ``team.models``) whose code a study may name as its workload
    #: entrypoint; empty: the built-in workloads only. Every listed module runs on the Ray workers at a
    #: tenant's request, so list only code you trust (docs/deployment.md, "Trust model"). The environment
    #: takes a comma-separated list or a JSON array.
    workload_modules: Annotated[tuple[str, ...], NoDecode] = ()
    #: How long an external worker may go without a word about a live trial (a measurement, or a heartbeat:
    #: ``POST /v1/trials/{id}:heartbeat``) before the next ask reclaims it (``Scheduler.abandon``: paused at its
    #: last step for another worker, or stopped if it never reported), so a dead worker cannot hold a trial
    #: (or a ``max_trials`` study) forever. An hour by default: a first report at a large size can take tens
    #: of minutes. ``None``: never. Ray's own fault tolerance owns the trials of the ``ray`` executor.
    trial_lease_seconds: float | None = Field(default=3600.0, gt=0)
    #: Largest request body accepted (a 413 above it). 16 MiB: a batch of the most measurements a request
    #: may carry (100,000) is 6.4 MB as the SDK sends it (6-digit trial ids, 17-digit values).
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: Live scheduler instances kept per process (keyed by study), so the usual ask/tell does not replay.
    scheduler_cache_size: int = Field(default=128, ge=0)
    db_pool_size: int = Field(default=10, ge=1)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=1000, ge=1)

    @field_validator("workload_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return tuple(json.loads(text)) if text.startswith("[") else tuple(p.strip() for p in text.split(",")
                                                                               if p.strip())
        return value

    @field_validator("workload_modules")
    @classmethod
    def _check_modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        WorkloadPolicy(value)  # its ValueError names a prefix that is not a module name
        return value

    @property
    def workload_policy(self) -> WorkloadPolicy:
        return WorkloadPolicy(self.workload_modules)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate_on_startup(self) -> bool:
        return self.is_sqlite if self.migrate_on_startup is None else self.migrate_on_startup
