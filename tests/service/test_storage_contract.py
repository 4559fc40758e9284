"""The storage contract: the same suite against SQLite and the real PostgreSQL.

Covers the migration (it builds exactly the models' schema), the repositories' tenancy, uniqueness and
idempotent bulk insert, event-log order and non-finite encoding, hashed tokens, cascading deletes and locks.
"""

from __future__ import annotations

import math
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from api.schemas import StudySpec, StudyState, TrialState
from service.db import make_engine, make_session_factory, transaction
from service.errors import NotFoundError
from service.migrate import current_revision, head_revision, upgrade
from service.models import ApiTokenRow, Base, MeasurementRow, StudyRow, TrialRow
from service.repositories import (EventRepository, MeasurementRepository, StudyRepository, TokenRepository,
                                  TrialRepository, hash_token)
from service.scheduling import decode_event, encode_event
from service.settings import Settings
from tests.conftest import STUDY_SPEC


@pytest.fixture(scope="module")
def engine(database_url):
    eng = make_engine(Settings(database_url=database_url))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _study(factory, tenant, **changes):
    spec = StudySpec.model_validate({**STUDY_SPEC, **changes})
    with transaction(factory) as s:
        return StudyRepository(s).add(tenant, spec).id


def _trial(session, study_id, number, **kw) -> TrialRow:
    row = TrialRow(study_id=study_id, number=number, params={"lr": 0.01}, size="m", steps=40, **kw)
    session.add(row)
    session.flush()
    return row


def test_migration_builds_the_models_schema(engine):
    assert current_revision(engine) == head_revision() is not None
    upgrade(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_studies_are_scoped_to_their_tenant(factory, tenant):
    sid = _study(factory, tenant)
    with transaction(factory) as s:
        repo = StudyRepository(s)
        row = repo.get(tenant, sid)
        assert row.state is StudyState.PENDING and row.spec["name"] == "small" and row.created_at.tzinfo
        with pytest.raises(NotFoundError):
            repo.get("someone-else", sid)
        assert repo.list("someone-else") == []


def test_list_filters_and_pages_in_id_order(factory, tenant):
    ids = [_study(factory, tenant, name=f"n{i % 2}") for i in range(5)]
    with transaction(factory) as s:
        repo = StudyRepository(s)
        assert [r.id for r in repo.list(tenant, limit=2)] == ids[:2]
        assert [r.id for r in repo.list(tenant, after_id=ids[1], limit=10)] == ids[2:]
        assert [r.id for r in repo.list(tenant, name="n1")] == [ids[1], ids[3]]
        repo.get(tenant, ids[4]).state = StudyState.RUNNING
    with transaction(factory) as s:
        assert [r.id for r in StudyRepository(s).list(tenant, state=StudyState.RUNNING)] == [ids[4]]


def test_trial_numbers_are_unique_per_study(factory, tenant):
    sid = _study(factory, tenant)
    with pytest.raises(IntegrityError):
        with transaction(factory) as s:
            _trial(s, sid, 0)
            _trial(s, sid, 0)
    with transaction(factory) as s:
        a = _trial(s, sid, 0, client_id="c1")
        _trial(s, sid, 1, client_id="c1", state=TrialState.COMPLETED)
        repo = TrialRepository(s)
        assert [t.id for t in repo.live_for_client(sid, "c1")] == [a.id]
        assert repo.count_by_state(sid) == {TrialState.PENDING: 1, TrialState.COMPLETED: 1}
        assert repo.get(tenant, a.id).number == 0
        with pytest.raises(NotFoundError):
            repo.get("someone-else", a.id)


def test_measurements_insert_once_per_trial_and_step(factory, tenant):
    sid = _study(factory, tenant)
    with transaction(factory) as s:
        tid = _trial(s, sid, 0).id
    rows = [{"trial_id": tid, "step": step, "value": 1.0 / step, "cost": 0.25,
             "study_cost": 0.25 * step / 10} for step in (10, 20)]
    with transaction(factory) as s:
        assert MeasurementRepository(s).insert_many(rows) == 2
    with transaction(factory) as s:
        retry = rows + [{**rows[0], "step": 30, "value": None, "non_finite": "nan"}]
        assert MeasurementRepository(s).insert_many(retry) == 1
    with transaction(factory) as s:
        stored = MeasurementRepository(s).for_trial(tid)
        assert [(m.step, m.value, m.non_finite) for m in stored] == [(10, 0.1, None), (20, 0.05, None),
                                                                     (30, None, "nan")]
        at = MeasurementRepository(s).at_fidelity(sid, "m", 20)
        assert [(c, v) for c, v, _ in at] == [(0.25, None), (0.5, 0.05)]


def test_event_log_keeps_order_and_non_finite_values(factory, tenant):
    sid = _study(factory, tenant)
    events = [{"kind": "suggest", "trial_id": 0, "params": {"lr": 0.1}, "size": "m", "steps": 40, "replicate": 0},
              {"kind": "report", "trial_id": 0, "step": 10, "value": float("nan")},
              {"kind": "report", "trial_id": 0, "step": 20, "value": float("-inf")},
              {"kind": "fail", "trial_id": 0, "reason": "diverged"}]
    with transaction(factory) as s:
        EventRepository(s).append(sid, 0, [encode_event(e) for e in events[:2]])
        EventRepository(s).append(sid, 2, [encode_event(e) for e in events[2:]])
    with transaction(factory) as s:
        loaded = [decode_event(p) for p in EventRepository(s).load(sid)]
    assert [e["kind"] for e in loaded] == ["suggest", "report", "report", "fail"]
    assert math.isnan(loaded[1]["value"]) and loaded[2]["value"] == float("-inf")
    with pytest.raises(IntegrityError):  # two writers cannot both append at position 2: the log never forks
        with transaction(factory) as s:
            EventRepository(s).append(sid, 2, [encode_event(events[0])])


def test_tokens_are_stored_hashed_and_bound_to_a_tenant(factory, tenant):
    with transaction(factory) as s:
        token = TokenRepository(s).create(tenant, name="ci")
    with transaction(factory) as s:
        stored = s.scalars(select(ApiTokenRow.token_hash).where(ApiTokenRow.tenant == tenant)).all()
        assert stored == [hash_token(token)] and token not in stored
        assert TokenRepository(s).tenant_for(token) == tenant
        assert TokenRepository(s).tenant_for(token + "x") is None
        assert TokenRepository(s).revoke(token)
    with transaction(factory) as s:
        assert TokenRepository(s).tenant_for(token) is None


def test_deleting_a_study_cascades(factory, tenant):
    sid = _study(factory, tenant)
    with transaction(factory) as s:
        tid = _trial(s, sid, 0).id
        MeasurementRepository(s).insert_many([{"trial_id": tid, "step": 1, "value": 1.0}])
        EventRepository(s).append(sid, 0, [{"kind": "complete", "trial_id": 0}])
    with transaction(factory) as s:
        repo = StudyRepository(s)
        repo.delete(repo.get(tenant, sid))
    with transaction(factory) as s:
        assert s.get(TrialRow, tid) is None
        assert s.scalars(select(MeasurementRow).where(MeasurementRow.trial_id == tid)).all() == []
        assert EventRepository(s).load(sid) == []


@pytest.mark.postgres
def test_study_lock_is_exclusive_on_postgres(postgres_url, tenant):
    """While one transaction holds a study (``SELECT ... FOR UPDATE``), another cannot take it. (SQLite has
    no row locks: there every transaction starts with BEGIN IMMEDIATE, see service/db.py.)"""
    engine = make_engine(Settings(database_url=postgres_url))
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        sid = _study(factory, tenant)
        with transaction(factory) as first:
            StudyRepository(first).get(tenant, sid, lock=True)
            with factory() as second, second.begin():
                with pytest.raises(OperationalError, match="could not obtain lock"):
                    second.execute(select(StudyRow).where(StudyRow.id == sid).with_for_update(nowait=True))
        with transaction(factory) as third:  # released at commit
            assert StudyRepository(third).get(tenant, sid, lock=True).id == sid
    finally:
        engine.dispose()
