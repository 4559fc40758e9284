"""Token expiry (issue 14): `token create --expires-in`, a default lifetime setting, a 401 that says the token
expired, `token list` showing the expiry, and the migration that adds the column to existing databases."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.client import Client
from api.errors import AuthenticationError
from service.cli import app
from service.db import make_engine, make_session_factory, transaction
from service.migrate import current_revision, head_revision, upgrade
from service.repositories import TokenRepository
from service.settings import Settings
from tests.conftest import fresh_postgres_database

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """`token list` rows on one line each (CliRunner's terminal is 80 columns, where rich wraps the cells)."""
    from service.cli_common import console

    monkeypatch.setattr(console, "width", 200)


def _create(server, tenant: str, *args: str, **env: str) -> str:
    result = runner.invoke(app, ["token", "create", "--tenant", tenant, "--name", f"n-{tenant}", *args],
                           env={"SCALELADDER_DATABASE_URL": server.app.state.settings.database_url, **env})
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def _listed(server, tenant: str) -> list[str]:
    """The cells of the `token list` row of ``tenant``'s one token."""
    result = runner.invoke(app, ["token", "list", "--tenant", tenant],
                           env={"SCALELADDER_DATABASE_URL": server.app.state.settings.database_url})
    assert result.exit_code == 0, result.output
    assert "expires (UTC)" in result.output
    row = next(line for line in result.output.splitlines() if f"n-{tenant}" in line)
    return [cell.strip() for cell in row.strip("│ ").split("│")]


def test_an_expired_token_is_a_401_saying_it_expired(server):
    tenant = f"exp-{uuid.uuid4().hex[:6]}"
    token = _create(server, tenant, "--expires-in", "2s")
    with server.http(tenant=None) as http:
        auth = {"Authorization": f"Bearer {token}"}
        assert http.get("/v1/studies", headers=auth).status_code == 200
        assert not _listed(server, tenant)[4].endswith("(expired)")
        time.sleep(2.2)
        response = http.get("/v1/studies", headers=auth)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] == "unauthenticated" and "expired at" in error["message"], error
        # an unknown token still says only that
        unknown = http.get("/v1/studies", headers={"Authorization": f"Bearer {token}x"}).json()["error"]
        assert "expired" not in unknown["message"]
    with Client(server.url, token) as client, pytest.raises(AuthenticationError, match="expired at"):
        client.list_studies()
    assert _listed(server, tenant)[4].endswith("(expired)")


def test_expiry_defaults_to_the_setting_and_never(server):
    forever = f"forever-{uuid.uuid4().hex[:6]}"
    _create(server, forever)
    assert _listed(server, forever)[4] == "never"
    month = f"month-{uuid.uuid4().hex[:6]}"
    token = _create(server, month, SCALELADDER_TOKEN_LIFETIME="30d")
    expires = _listed(server, month)[4]
    assert expires not in ("never", "-") and not expires.endswith("(expired)")
    with transaction(server.app.state.session_factory) as session:
        stored = next(r for r in TokenRepository(session).list(month))
        assert 29.9 * 86400 < (stored.expires_at - stored.created_at).total_seconds() <= 30 * 86400 + 1
        assert TokenRepository(session).tenant_for(token) == month
    explicit = f"explicit-{uuid.uuid4().hex[:6]}"  # --expires-in never overrides the setting
    _create(server, explicit, "--expires-in", "never", SCALELADDER_TOKEN_LIFETIME="30d")
    assert _listed(server, explicit)[4] == "never"


def test_a_bad_duration_is_refused_naming_the_option(server):
    result = runner.invoke(app, ["token", "create", "--tenant", "x", "--expires-in", "30 days"],
                           env={"SCALELADDER_DATABASE_URL": server.app.state.settings.database_url})
    assert result.exit_code == 1 and "--expires-in" in result.output and "30d" in result.output, result.output


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path):
    """A database with no schema yet, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    yield from fresh_postgres_database("scaleladder_mig")


def test_migration_keeps_existing_tokens_valid_forever(empty_database):
    engine = make_engine(Settings(database_url=empty_database))
    try:
        upgrade(engine, "0001")  # a database from before expiry, with a token in it
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_tokens (tenant, token_hash, name, created_at) "
                              "VALUES ('old', :h, 'legacy', CURRENT_TIMESTAMP)"), {"h": "0" * 64})
        upgrade(engine)
        assert current_revision(engine) == head_revision() != "0001"  # head moves on (0003: issue 17)
        with transaction(make_session_factory(engine)) as session:
            (row,) = TokenRepository(session).list("old")
            assert row.expires_at is None and row.name == "legacy"
    finally:
        engine.dispose()
