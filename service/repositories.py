"""Repositories: every SQL statement the service runs lives here, behind small per-table classes.

Each repository works inside the caller's session and transaction (one per request); none commits.
Tenancy is enforced here: every lookup by id takes the tenant and answers :class:`NotFoundError` for
another tenant's rows exactly as for missing ones.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.schemas import INT32_MAX, StudySpec, StudyState, TrialState
from service.errors import NotFoundError, TokenExpiredError, UnauthenticatedError
from service.models import (AdaptationEventRow, ApiTokenRow, MeasurementRow, SchedulerEventRow, StudyRow, TrialRow,
                            utcnow)

TOKEN_PREFIX = "sl_"

_PG_INSERT_MEASUREMENTS = text("""
WITH new AS (
    INSERT INTO measurements (trial_id, step, value, non_finite, metrics, domains, elapsed_seconds, cost,
                              study_cost, created_at)
    SELECT r.*, CAST(:created_at AS timestamptz)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(trial_id integer, step integer, value double precision,
         non_finite varchar, metrics jsonb, domains jsonb, elapsed_seconds double precision,
         cost double precision, study_cost double precision)
    ON CONFLICT (trial_id, step) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM new
""")



def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough (no salt or slow hash needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _storable_id(value: int) -> bool:
    """Ids are 32-bit serials: anything outside cannot name a row (and must not reach the database)."""
    return 1 <= value <= INT32_MAX


def _insert_ignoring_duplicates(session: Session, model: type, index_elements: Sequence[str]):
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=list(index_elements))
    raise ValueError(f"unsupported database dialect {dialect!r}; use PostgreSQL or SQLite")


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, tenant: str, name: str | None = None, expires_in: timedelta | None = None) -> str:
        """Make a new token for ``tenant``, valid for ``expires_in`` (``None``: until revoked); the plain token
        is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = None if expires_in is None else utcnow() + expires_in
        self.session.add(ApiTokenRow(tenant=tenant, token_hash=hash_token(token), name=name, expires_at=expires_at))
        self.session.flush()
        return token

    def ensure(self, token: str, tenant: str, name: str | None = None) -> bool:
        """Register a token chosen elsewhere (a deployment's bootstrap token); False if it already exists."""
        digest = hash_token(token)
        if self.session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.token_hash == digest)) is not None:
            return False
        self.session.add(ApiTokenRow(tenant=tenant, token_hash=digest, name=name))
        self.session.flush()
        return True

    def authenticate(self, token: str) -> str:
        """The tenant of a valid token: known, not revoked and not expired (the one rule of validity).
        Raises :class:`UnauthenticatedError`, or :class:`TokenExpiredError` for a token past its expiry, so
        its holder learns it needs a new token rather than that it mistyped one."""
        row = self.session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token),
                                                            ApiTokenRow.revoked_at.is_(None)))
        if row is None:
            raise UnauthenticatedError("unknown or revoked token")
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise TokenExpiredError(f"token {row.id} expired at {row.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
                                    "make a new one with `scaleladder token create`")
        return row.tenant

    def tenant_for(self, token: str) -> str | None:
        """The tenant of a valid token, or ``None`` (:meth:`authenticate` without the reason)."""
        try:
            return self.authenticate(token)
        except UnauthenticatedError:
            return None

    def revoke(self, token: str) -> bool:
        res = self.session.execute(update(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token))
                                   .values(revoked_at=utcnow()))
        return bool(res.rowcount)

    def revoke_id(self, token_id: int) -> ApiTokenRow | None:
        """Revoke by the id ``list`` shows (the plain token is never stored); an already revoked token keeps
        its first revocation time. ``None``: no such token."""
        row = self.session.get(ApiTokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            self.session.flush()
        return row

    def list(self, tenant: str | None = None) -> list[ApiTokenRow]:
        stmt = select(ApiTokenRow).order_by(ApiTokenRow.id)
        if tenant is not None:
            stmt = stmt.where(ApiTokenRow.tenant == tenant)
        return list(self.session.scalars(stmt))


class StudyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, tenant: str, spec: StudySpec) -> StudyRow:
        row = StudyRow(tenant=tenant, name=spec.name, state=StudyState.PENDING,
                       spec=spec.model_dump(mode="json"))
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, tenant: str, study_id: int, *, lock: bool = False) -> StudyRow:
        """The study, row-locked (``SELECT ... FOR UPDATE``) when ``lock``: ask/tell on one study serialise."""
        if not _storable_id(study_id):
            raise NotFoundError(f"study {study_id} not found", field="study_id")
        stmt = select(StudyRow).where(StudyRow.id == study_id, StudyRow.tenant == tenant)
        if lock:
            stmt = stmt.with_for_update()
        row = self.session.scalar(stmt.execution_options(populate_existing=lock))
        if row is None:
            raise NotFoundError(f"study {study_id} not found", field="study_id")
        return row

    def list(self, tenant: str, *, state: StudyState | None = None, name: str | None = None,
             after_id: int | None = None, limit: int = 50) -> list[StudyRow]:
        """Studies in id order (keyset pagination: pass the last id seen as ``after_id``)."""
        stmt = select(StudyRow).where(StudyRow.tenant == tenant)
        if state is not None:
            stmt = stmt.where(StudyRow.state == state)
        if name is not None:
            stmt = stmt.where(StudyRow.name == name)
        if after_id is not None:
            stmt = stmt.where(StudyRow.id > after_id)
        return list(self.session.scalars(stmt.order_by(StudyRow.id).limit(limit)))

    def delete(self, row: StudyRow) -> None:
        # the database cascades to trials, measurements and events
        self.session.execute(delete(StudyRow).where(StudyRow.id == row.id))
        self.session.expunge(row)

    def count_by_state(self) -> dict[StudyState, int]:
        """All tenants: for the ``studies by state`` metric."""
        rows = self.session.execute(select(StudyRow.state, func.count()).group_by(StudyRow.state))
        return {StudyState(s): int(n) for s, n in rows}


class TrialRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant: str, trial_id: int) -> TrialRow:
        row = None if not _storable_id(trial_id) else self.session.scalar(
            select(TrialRow).join(StudyRow, StudyRow.id == TrialRow.study_id)
            .where(TrialRow.id == trial_id, StudyRow.tenant == tenant))
        if row is None:
            raise NotFoundError(f"trial {trial_id} not found", field="trial_id")
        return row

    def study_id_of(self, tenant: str, trial_id: int) -> int:
        sid = None if not _storable_id(trial_id) else self.session.scalar(
            select(TrialRow.study_id).join(StudyRow, StudyRow.id == TrialRow.study_id)
            .where(TrialRow.id == trial_id, StudyRow.tenant == tenant))
        if sid is None:
            raise NotFoundError(f"trial {trial_id} not found", field="trial_id")
        return int(sid)

    def add(self, row: TrialRow) -> TrialRow:
        self.session.add(row)
        return row

    def by_ids(self, study_id: int, ids: Iterable[int]) -> dict[int, TrialRow]:
        ids = sorted(set(ids))
        if not ids:
            return {}
        rows = self.session.scalars(select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.id.in_(ids)))
        return {r.id: r for r in rows}

    def by_numbers(self, study_id: int, numbers: Iterable[int]) -> dict[int, TrialRow]:
        numbers = sorted(set(numbers))
        if not numbers:
            return {}
        rows = self.session.scalars(
            select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.number.in_(numbers)))
        return {r.number: r for r in rows}

    def live_for_client(self, study_id: int, client_id: str) -> list[TrialRow]:
        return list(self.session.scalars(
            select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.client_id == client_id,
                                   TrialRow.state.in_([TrialState.PENDING, TrialState.RUNNING]))
            .order_by(TrialRow.id)))

    def unfinished(self, study_id: int) -> list[TrialRow]:
        return list(self.session.scalars(
            select(TrialRow).where(TrialRow.study_id == study_id,
                                   TrialRow.state.in_([TrialState.PENDING, TrialState.RUNNING,
                                                       TrialState.PAUSED]))))

    def list(self, study_id: int, *, state: TrialState | None = None, after_id: int | None = None,
             limit: int = 50) -> list[TrialRow]:
        stmt: Select = select(TrialRow).where(TrialRow.study_id == study_id)
        if state is not None:
            stmt = stmt.where(TrialRow.state == state)
        if after_id is not None:
            stmt = stmt.where(TrialRow.id > after_id)
        return list(self.session.scalars(stmt.order_by(TrialRow.id).limit(limit)))

    def count_by_state(self, study_id: int) -> dict[TrialState, int]:
        rows = self.session.execute(select(TrialRow.state, func.count()).where(TrialRow.study_id == study_id)
                                    .group_by(TrialRow.state))
        return {TrialState(s): int(n) for s, n in rows}


class MeasurementRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    _COLUMNS = ("trial_id", "step", "value", "non_finite", "metrics", "domains", "elapsed_seconds", "cost",
                "study_cost")
    _DEFAULTS = {"cost": 0.0, "study_cost": 0.0}

    def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Bulk insert; a (trial, step) already stored is skipped. Returns how many rows were new.

        On PostgreSQL this is ONE statement whatever the batch size: the rows travel as one JSON document
        that ``jsonb_to_recordset`` turns back into rows (``INSERT ... SELECT ... ON CONFLICT DO NOTHING``),
        which avoids per-row round trips, per-parameter adaptation and parsing a thousand-row VALUES list.
        One ``created_at`` (the first row's) stamps the whole batch.
        """
        if not rows:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            doc = json.dumps([{c: r.get(c, self._DEFAULTS.get(c)) for c in self._COLUMNS} for r in rows],
                             allow_nan=False)
            params = {"rows": doc, "created_at": rows[0].get("created_at") or utcnow()}
            return int(self.session.execute(_PG_INSERT_MEASUREMENTS, params).scalar_one())
        stmt = _insert_ignoring_duplicates(self.session, MeasurementRow, ["trial_id", "step"])
        result = self.session.execute(stmt.returning(MeasurementRow.step), list(rows))
        return len(result.all())

    def existing(self, trial_ids: Iterable[int], steps: Iterable[int]) -> set[tuple[int, int]]:
        """The stored (trial, step) keys among ``trial_ids`` x ``steps`` (a retry check: small sets)."""
        rows = self.session.execute(select(MeasurementRow.trial_id, MeasurementRow.step).where(
            MeasurementRow.trial_id.in_(sorted(set(trial_ids))), MeasurementRow.step.in_(sorted(set(steps)))))
        return {(int(t), int(s)) for t, s in rows}

    def for_trial(self, trial_id: int) -> list[MeasurementRow]:
        return list(self.session.scalars(
            select(MeasurementRow).where(MeasurementRow.trial_id == trial_id).order_by(MeasurementRow.step)))

    def for_trials(self, trial_ids: Sequence[int]) -> list[MeasurementRow]:
        """Every measurement of ``trial_ids``, by trial then step (one page of a study's curves)."""
        if not trial_ids:
            return []
        return list(self.session.scalars(
            select(MeasurementRow).where(MeasurementRow.trial_id.in_(sorted(set(trial_ids))))
            .order_by(MeasurementRow.trial_id, MeasurementRow.step)))

    def at_fidelity(self, study_id: int, size: str, min_step: int) -> list[tuple[float, float | None, int]]:
        """(cumulative study cost, value, trial id) of measurements at ``size`` and ``step >= min_step``, in
        the order they were charged. Non-finite values come back as ``None``."""
        rows = self.session.execute(
            select(MeasurementRow.study_cost, MeasurementRow.value, MeasurementRow.trial_id)
            .join(TrialRow, TrialRow.id == MeasurementRow.trial_id)
            .where(TrialRow.study_id == study_id, TrialRow.size == size, MeasurementRow.step >= min_step)
            .order_by(MeasurementRow.study_cost, MeasurementRow.created_at, MeasurementRow.trial_id))
        return [(float(c), v, int(t)) for c, v, t in rows]


class AdaptationEventRepository:
    """An adaptive study's policy events, per trial, numbered 0, 1, 2, ... within each trial."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, study_id: int, trial_number: int, first_seq: int, events: Sequence[dict[str, Any]]) -> None:
        """Write a trial's events ``first_seq, first_seq + 1, ...`` (already JSON-safe)."""
        for i, ev in enumerate(events):
            self.session.add(AdaptationEventRow(study_id=study_id, trial_number=trial_number, seq=first_seq + i,
                                                event=ev))
        if events:
            self.session.flush()

    def load(self, study_id: int, trial_numbers: Iterable[int] | None = None) -> dict[int, list[dict[str, Any]]]:
        """Trial number -> its events in order (every trial of the study when ``trial_numbers`` is None)."""
        q = select(AdaptationEventRow.trial_number, AdaptationEventRow.event).where(
            AdaptationEventRow.study_id == study_id)
        if trial_numbers is not None:
            q = q.where(AdaptationEventRow.trial_number.in_(list(trial_numbers)))
        out: dict[int, list[dict[str, Any]]] = {}
        for number, ev in self.session.execute(q.order_by(AdaptationEventRow.trial_number, AdaptationEventRow.seq)):
            out.setdefault(number, []).append(ev)
        return out


class EventRepository:
    """The scheduler event log: events are numbered 0, 1, 2, ... per study and stored in chunks (one row per
    appending transaction), so the log is replayable in order and a batch costs one row."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, study_id: int, first_seq: int, events: Sequence[dict[str, Any]]) -> None:
        """Write events ``first_seq, first_seq + 1, ...`` (already JSON-safe). A second writer appending
        at the same ``first_seq`` violates the key: the log never forks."""
        if events:
            self.session.add(SchedulerEventRow(study_id=study_id, seq=first_seq, events=list(events)))
            self.session.flush()

    def load(self, study_id: int) -> list[dict[str, Any]]:
        """Every event of the study, in order."""
        out: list[dict[str, Any]] = []
        for chunk in self.session.scalars(select(SchedulerEventRow.events)
                                          .where(SchedulerEventRow.study_id == study_id)
                                          .order_by(SchedulerEventRow.seq)):
            out.extend(chunk)
        return out
