"""SQLAlchemy 2 ORM models: studies, trials, measurements, the scheduler and adaptation event logs and API
tokens.

The scheduler event log (``scheduler_events``) is the source of truth for scheduler state: a scheduler is
rebuilt by ``make_scheduler(...).replay(events)``; the ``trials`` and ``measurements`` rows are the
queryable projection of the same history, written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Enum, Float, ForeignKey, Index, Integer, String, Text,
                        TypeDecorator, UniqueConstraint)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.schemas import StudyState, TrialState


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every backend (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


def _enum(cls: type) -> Enum:
    # stored as the enum's value in a VARCHAR, so adding a state needs no ALTER TYPE
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, create_constraint=False)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, datetime: UTCDateTime}


class StudyRow(Base):
    __tablename__ = "studies"
    # ids are never reused (SQLite would otherwise recycle the largest one after a delete, and a cached
    # scheduler or a client holding the old id could then reach a different study)
    __table_args__ = (Index("ix_studies_tenant_state", "tenant", "state"),
                      Index("ix_studies_tenant_name", "tenant", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[StudyState] = mapped_column(_enum(StudyState), default=StudyState.PENDING)
    #: the submitted ``api.schemas.StudySpec`` as JSON
    spec: Mapped[dict[str, Any]]
    n_trials: Mapped[int] = mapped_column(Integer, default=0)
    #: length of this study's scheduler event log (the next event's ``seq``)
    n_events: Mapped[int] = mapped_column(Integer, default=0)
    n_measurements: Mapped[int] = mapped_column(BigInteger, default=0)
    #: in units of one run at the target fidelity
    cost_spent: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
                      Index("ix_trials_study_client", "study_id", "client_id"),
                      Index("ix_trials_study_state", "study_id", "state"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    #: the scheduler's trial id within the study
    number: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    size: Mapped[str] = mapped_column(String(200))
    steps: Mapped[int] = mapped_column(Integer)
    start_step: Mapped[int] = mapped_column(Integer, default=0)
    replicate: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[TrialState] = mapped_column(_enum(TrialState), default=TrialState.PENDING)
    client_id: Mapped[str | None] = mapped_column(String(200), default=None)
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    gpus: Mapped[float] = mapped_column(Float, default=0.0)
    checkpoint: Mapped[str | None] = mapped_column(Text, default=None)
    last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    #: ``None`` when the last value was non-finite (the trial then failed as diverged)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    failure: Mapped[str | None] = mapped_column(Text, default=None)
    #: an adaptive study's current mixture for the trial (the policy's last answer, mirrored like ``state``)
    adapted: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class MeasurementRow(Base):
    """One reported step of one trial. The primary key (trial, step) makes a retried report land once.

    Kept lean on purpose (it is the table every batch fills): one index (the key) and one foreign key; the
    study is reached through the trial. SQLite stores a NaN REAL as NULL, so a non-finite value is kept
    explicitly: ``value`` is NULL and ``non_finite`` holds ``"nan"``, ``"inf"`` or ``"-inf"``.
    """

    __tablename__ = "measurements"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    non_finite: Mapped[str | None] = mapped_column(String(8), default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    #: the objective per data domain, as reported (``MeasurementCreate.domains``)
    domains: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    elapsed_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    #: cost charged for this step, and the study's cumulative cost after it (target-run units)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    study_cost: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerEventRow(Base):
    """The ``Scheduler.events`` history in order, one row per transaction that added events: ``events`` holds
    events ``seq, seq + 1, ...``. Chunking keeps a 1,000-measurement batch at one row instead of 1,000, and
    the (study, seq) key still lets only one of two racing writers append at a given position."""

    __tablename__ = "scheduler_events"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: plain JSON (not JSONB) on PostgreSQL: stored as written, never queried inside the database
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AdaptationEventRow(Base):
    """The ``AdaptationPolicy.events`` of an adaptive study, per trial in order (``seq`` 0, 1, ... within the
    trial): the policy's state for a trial is rebuilt by replaying that trial's events alone, since trials
    are independent (``schedulers/adaptive/base.py``). The key lets one of two racing writers append."""

    __tablename__ = "adaptation_events"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    trial_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)


class ApiTokenRow(Base):
    """A bearer token bound to a tenant. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    #: from this time on the token is refused (a 401 saying it expired); ``None``: it never expires
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
