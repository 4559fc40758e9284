"""Service settings, read from the environment (prefix ``SCALELADDER_``) by pydantic-settings.

Nothing here runs at import time: build a :class:`Settings` where it is needed (the CLI, a test) and hand
it to :func:`service.app.create_app`.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import timedelta
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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NEVER = ("never", "none")


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``, a sum of them (``1d12h``) or plain seconds (``3600``) as a
    timedelta; ``never`` (or ``none``) is ``None``. The one parser of durations a person types:
    ``token create --expires-in`` and ``SCALELADDER_TOKEN_LIFETIME``. A ValueError says what is accepted."""
    spelled = text.strip().lower()
    if spelled in NEVER:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", spelled):
        spelled += "s"
    parts = _DURATION.findall(spelled)
    if not parts or _DURATION.sub("", spelled).strip():
        raise ValueError(f"cannot read {text!r} as a duration: use a number with a unit s, m, h, d or w "
                         "(30d, 12h, 1d12h) or 'never'")
    value = timedelta(seconds=sum(float(n) * _UNIT_SECONDS[unit] for n, unit in parts))
    if value <= timedelta(0):
        raise ValueError(f"a duration must be positive (got {text!r})")
    return value


class ExecutorKind(str, enum.Enum):
    """Who runs a started study's trials (``Settings.executor``); ``service.executors.EXECUTORS`` maps each
    to its class, and what differs between them is a property of that class, never a compare of this name."""

    EXTERNAL = "external"  #: ask/tell workers (the SDK, the CLI demo, a user's script)
    RAY = "ray"            #: Ray Tune: a local Ray, or the cluster at RAY_ADDRESS


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
    #: How long a token from ``scaleladder token create`` is valid when ``--expires-in`` is not given
    #: (``30d``, ``12h``, ``never``, ISO 8601 ``P30D`` or seconds); ``None``: never expires. An expired token is a 401
    #: saying it expired. The bootstrap token never expires: the deployment's environment holds it, and
    #: rotating it there (with ``token revoke``) is how it is replaced.
    token_lifetime: timedelta | None = None
    #: How studies run: ``external`` (ask/tell workers) or ``ray``; see ``service.executors.EXECUTORS``.
    executor: ExecutorKind = ExecutorKind.EXTERNAL
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
    #: Worker processes for scaling-law fits (``GET /v1/studies/{id}/scaling``, ``POST /v1/scaling/fit``); ``0``:
    #: one thread of the server's process instead. One: a fit is single-threaded and took up to 146 s on the
    #: issue-14 machine's 2 cores, so a second process would take the core the requests run on.
    scaling_fit_processes: int = Field(default=1, ge=0)
    #: Scaling fits kept, one per (study, fit settings), each valid until its study's data changes.
    scaling_fit_cache_size: int = Field(default=256, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=1000, ge=1)

    @field_validator("token_lifetime", mode="before")
    @classmethod
    def _read_lifetime(cls, value: Any) -> Any:
        # '30d' and 'never' as the CLI takes them; anything else (ISO 8601, seconds) is pydantic's to read
        if isinstance(value, str) and not value.strip().upper().startswith("P"):
            return parse_duration(value)
        return value

    @field_validator("token_lifetime")
    @classmethod
    def _positive_lifetime(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("token_lifetime must be positive, or None for tokens that never expire")
        return value

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
