"""Settings come from the environment (prefix SCALELADDER_); auth can be turned off only explicitly."""

from __future__ import annotations

import httpx
import pytest

from pydantic import ValidationError

from service.app import create_app
from service.executors import EXECUTORS
from service.server import ServerThread
from service.settings import ExecutorKind, Settings


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    default = Settings()
    assert default.auth_enabled is True and default.executor is ExecutorKind.EXTERNAL
    assert default.database_url == f"sqlite:///{tmp_path / '.scaleladder' / 'scaleladder.db'}"
    assert default.should_migrate_on_startup is True
    monkeypatch.setenv("SCALELADDER_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SCALELADDER_EXECUTOR_OPTIONS", '{"storage_path": "/x"}')
    monkeypatch.setenv("SCALELADDER_AUTH_ENABLED", "false")
    monkeypatch.setenv("SCALELADDER_EXECUTOR", "ray")
    s = Settings()
    assert s.executor is ExecutorKind.RAY
    assert s.database_url == "postgresql+psycopg://u@h/db" and s.should_migrate_on_startup is False
    assert s.executor_options == {"storage_path": "/x"} and s.auth_enabled is False


def test_unknown_executor_is_rejected(tmp_path):
    """Refused when the settings are read (naming the setting and the choices), before any app is built."""
    with pytest.raises(ValidationError, match=r"executor\n.*'external' or 'ray'"):
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", executor="slurm")


def test_every_executor_kind_has_a_class_and_only_external_workers_hold_leases():
    """What differs between executors is a property of the class (issue 14: the route compared the setting
    with the string "external"); Ray's own fault tolerance owns its trials, so it takes no leases."""
    import importlib

    assert set(EXECUTORS) == set(ExecutorKind)
    for kind, path in EXECUTORS.items():
        module, attr = path.split(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls.name == kind and cls.leases_trials is (kind is ExecutorKind.EXTERNAL), kind


def test_auth_disabled_acts_as_the_default_tenant(tmp_path, study_spec):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'open.db'}", auth_enabled=False,
                              default_tenant="lab"))
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as http:
        created = http.post("/v1/studies", json=study_spec)
        assert created.status_code == 201 and created.json()["tenant"] == "lab"
        assert [s["id"] for s in http.get("/v1/studies").json()["items"]] == [created.json()["id"]]


def test_workload_modules_come_from_the_environment_as_a_list(monkeypatch):
    assert Settings().workload_modules == ()  # built-in workloads only
    monkeypatch.setenv("SCALELADDER_WORKLOAD_MODULES", "my_project, team.models")
    s = Settings()
    assert s.workload_modules == ("my_project", "team.models")
    assert s.workload_policy.allows("team.models.lm:train") and not s.workload_policy.allows("os:system")
    monkeypatch.setenv("SCALELADDER_WORKLOAD_MODULES", '["my_project"]')
    assert Settings().workload_modules == ("my_project",)
    monkeypatch.setenv("SCALELADDER_WORKLOAD_MODULES", "os; rm -rf")
    with pytest.raises(ValueError, match="not a dotted module name"):
        Settings()
