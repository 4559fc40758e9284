"""The trust boundary at study creation (issue 13): a study may name as its workload only the built-in
workloads and the module prefixes the deployment lists (``SCALELADDER_WORKLOAD_MODULES``); anything else
is a 422 naming ``workload.entrypoint`` before any of its code is imported or located."""

from __future__ import annotations

import sys

import pytest

from api.errors import InvalidArgumentError
from tests.conftest import _serve


@pytest.fixture(scope="module")
def trusting_server(tmp_path_factory):
    """A server whose operator lets studies use ``my_project`` (not installed) and ``tests.ray``."""
    yield from _serve(f"sqlite:///{tmp_path_factory.mktemp('trust') / 'service.db'}",
                      workload_modules=("my_project", "tests.ray"))


def _create(server, spec, workload):
    with server.http() as http:
        return http.post("/v1/studies", json={**spec, "workload": workload})


@pytest.mark.parametrize("entrypoint", ["os:system", "subprocess:run", "builtins:exec",
                                        "tests.ray.workloads:paced",  # only where the operator lists it
                                        "workers.workloads.corpus:load_corpus",  # not a built-in workload
                                        "workers.workloads_evil:fn"])
def test_by_default_only_builtin_workloads_may_be_named(sqlite_server, study_spec, entrypoint):
    r = _create(sqlite_server, study_spec, {"entrypoint": entrypoint})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "workload.entrypoint", err
    assert "outside the modules this deployment lets workers import" in err["message"]
    assert "SCALELADDER_WORKLOAD_MODULES" in err["message"]


def test_builtin_workloads_by_name_or_entrypoint_are_accepted(sqlite_server, study_spec):
    for workload in ({"name": "mlp"}, {"entrypoint": "workers.workloads.mlp:mlp"}):
        r = _create(sqlite_server, study_spec, workload)
        assert r.status_code == 201, r.text


def test_listed_module_prefixes_are_accepted_and_nothing_else(trusting_server, study_spec):
    assert _create(trusting_server, study_spec, {"entrypoint": "tests.ray.workloads:paced"}).status_code == 201
    # listed but not installed: refused as missing (it is located, not run)
    r = _create(trusting_server, study_spec, {"entrypoint": "my_project.train:run"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "workload.entrypoint"
    assert "No module named 'my_project'" in r.json()["error"]["message"]
    # a prefix is a whole module name: 'my_project' does not allow 'my_projects'
    for entrypoint in ("os:system", "my_projects.x:run", "tests:fn"):
        r = _create(trusting_server, study_spec, {"entrypoint": entrypoint})
        assert r.status_code == 422, (entrypoint, r.text)
        assert "outside the modules" in r.json()["error"]["message"], entrypoint


def test_a_refused_module_is_not_even_imported(sqlite_server, study_spec):
    # locating a module runs its parent packages' __init__; a refused one must not get that far
    sys.modules.pop("email.mime", None)
    sys.modules.pop("email.mime.text", None)
    r = _create(sqlite_server, study_spec, {"entrypoint": "email.mime.text:MIMEText"})
    assert r.status_code == 422
    assert "email.mime" not in sys.modules


def test_the_sdk_raises_a_typed_error_naming_the_field(sqlite_server, study_spec):
    with sqlite_server.client() as client, pytest.raises(InvalidArgumentError) as e:
        client.create_study({**study_spec, "workload": {"entrypoint": "os:system"}})
    assert e.value.field == "workload.entrypoint"
