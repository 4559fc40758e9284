"""Studies over HTTP against a live server: CRUD, pagination, tenancy, state machine, bad input."""

from __future__ import annotations

import copy
import math

import pytest


def _create(http, spec, start=False):
    r = http.post("/v1/studies", json=spec)
    assert r.status_code == 201, r.text
    study = r.json()
    if start:
        assert http.post(f"/v1/studies/{study['id']}:start").status_code == 200
    return study


def test_create_get_list_delete(server, study_spec):
    with server.http("alice") as http:
        study = _create(http, study_spec)
        assert study["tenant"] == "alice" and study["state"] == "pending"
        assert study["space"][0]["name"] == "lr" and study["target"] == {"steps": 40, "size": "m"}
        got = http.get(f"/v1/studies/{study['id']}").json()
        assert got["name"] == study_spec["name"] and got["fidelity"]["sizes"][1]["cpus"] == 2
        listed = http.get("/v1/studies", params={"name": study_spec["name"]}).json()
        assert [s["id"] for s in listed["items"]] == [study["id"]]
        assert http.delete(f"/v1/studies/{study['id']}").status_code == 204
        assert http.get(f"/v1/studies/{study['id']}").status_code == 404


def test_list_paginates_and_filters_by_state(sqlite_server, study_spec):
    with sqlite_server.http("pager") as http:
        ids = []
        for i in range(5):
            spec = dict(study_spec, name=f"page-{i}")
            ids.append(_create(http, spec, start=(i % 2 == 0))["id"])
        seen, token = [], None
        while True:
            page = http.get("/v1/studies", params={"page_size": 2, "page_token": token}).json()
            seen += [s["id"] for s in page["items"]]
            token = page["next_page_token"]
            if not token:
                break
        assert seen == sorted(ids)
        running = http.get("/v1/studies", params={"state": "running"}).json()["items"]
        assert sorted(s["id"] for s in running) == [ids[0], ids[2], ids[4]]
        bad = http.get("/v1/studies", params={"page_token": "xyz"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "page_token"
        assert http.get("/v1/studies", params={"state": "sleeping"}).status_code == 422


def test_tenant_isolation(server, study_spec):
    """Bob can neither see nor touch Alice's study: every call answers 404, as for a missing id."""
    with server.http("alice") as alice, server.http("bob") as bob:
        study = _create(alice, study_spec, start=True)
        sid = study["id"]
        trial = alice.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "a"}).json()["trials"][0]
        assert sid not in [s["id"] for s in bob.get("/v1/studies").json()["items"]]
        for method, path, body in [
            ("GET", f"/v1/studies/{sid}", None), ("DELETE", f"/v1/studies/{sid}", None),
            ("POST", f"/v1/studies/{sid}:pause", None), ("POST", f"/v1/studies/{sid}:cancel", None),
            ("GET", f"/v1/studies/{sid}/trials", None), ("GET", f"/v1/studies/{sid}/progress", None),
            ("GET", f"/v1/studies/{sid}/recommendation", None),
            ("POST", f"/v1/studies/{sid}/trials:suggest", {"client_id": "b"}),
            ("POST", f"/v1/studies/{sid}/measurements:batch",
             {"measurements": [{"trial_id": trial["id"], "step": 10, "value": 1.0}]}),
            ("GET", f"/v1/trials/{trial['id']}", None), ("GET", f"/v1/trials/{trial['id']}:should_stop", None),
            ("POST", f"/v1/trials/{trial['id']}/measurements", {"step": 10, "value": 1.0}),
            ("POST", f"/v1/trials/{trial['id']}:complete", None), ("POST", f"/v1/trials/{trial['id']}:fail", None),
        ]:
            r = bob.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "not_found"
        # and nothing changed for Alice
        assert alice.get(f"/v1/studies/{sid}").json()["state"] == "running"
        assert alice.get(f"/v1/trials/{trial['id']}").json()["last_step"] is None


def test_auth_is_required(sqlite_server, study_spec):
    with sqlite_server.http(None) as anon:
        r = anon.get("/v1/studies")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = anon.get("/v1/studies", headers={"Authorization": "Bearer sl_not-a-token"})
        assert r.status_code == 401 and "unknown" in r.json()["error"]["message"]
        assert anon.get("/healthz").status_code == 200


def test_state_transitions(sqlite_server, study_spec):
    with sqlite_server.http() as http:
        sid = _create(http, study_spec)["id"]

        def act(verb):
            return http.post(f"/v1/studies/{sid}:{verb}")

        for verb in ("pause", "resume"):
            r = act(verb)
            assert r.status_code == 409 and "pending" in r.json()["error"]["message"]
        r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"})
        assert r.status_code == 409 and "start it" in r.json()["error"]["message"]
        assert act("start").json()["state"] == "running"
        assert act("start").status_code == 409
        assert act("pause").json()["state"] == "paused"
        # a paused study hands out nothing new, but says so rather than failing
        r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"}).json()
        assert r == {"trials": [], "study_state": "paused"}
        assert act("resume").json()["state"] == "running"
        trial = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"}).json()["trials"][0]
        cancelled = act("cancel").json()
        assert cancelled["state"] == "cancelled" and cancelled["finished_at"] is not None
        assert http.get(f"/v1/trials/{trial['id']}").json()["state"] == "stopped"
        for verb in ("start", "pause", "resume", "cancel"):
            r = act(verb)
            assert r.status_code == 409 and "cancelled" in r.json()["error"]["message"], verb
        r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w"}).json()
        assert r["trials"] == [] and r["study_state"] == "cancelled"


def test_unknown_ids_are_404(server):
    with server.http() as http:
        for bad in ("999999", str(10 ** 15), "0", "-3"):  # including ids no row can have
            for method, path in [("GET", f"/v1/studies/{bad}"), ("POST", f"/v1/studies/{bad}:start"),
                                 ("GET", f"/v1/trials/{bad}"), ("POST", f"/v1/trials/{bad}:complete"),
                                 ("POST", f"/v1/trials/{bad}/measurements")]:
                r = http.request(method, path, json={"step": 1, "value": 1.0} if "measure" in path else None)
                assert r.status_code == 404, (path, r.text)
                assert bad in r.json()["error"]["message"]


def _with(spec, path, value):
    spec = copy.deepcopy(spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


BAD_INPUTS = [
    # (description, mutation, field, words in the message)
    ("log scale with low <= 0", (("space", 0, "low"), 0.0), "space.lr.low", "log scale needs low > 0"),
    ("target not on the ladder", (("target", "size"), "xl"), "target.size", "not on the model-size ladder"),
    ("unsorted sizes", (("fidelity", "sizes"), [{"name": "m", "params": 4e6}, {"name": "s", "params": 1e6}]),
     "fidelity.sizes", "sorted by strictly increasing"),
    ("duplicate sizes", (("fidelity", "sizes"), [{"name": "s", "params": 1e6}, {"name": "s", "params": 2e6}]),
     "fidelity.sizes", "duplicate model size"),
    ("unknown scheduler", (("scheduler", "name"), "no-such-scheduler"), "scheduler.name", "unknown scheduler"),
    ("unknown scheduler option", (("scheduler", "options"), {"bogus": 1}), "scheduler.options", "bogus"),
    ("empty space", (("space",), []), "space", "empty"),
    ("mixture group of one", (("space", 4, "components"), ["web"]), "space.mix.components", "at least two"),
    ("NaN bound", (("space", 0, "high"), "nan"), "space.lr", "finite"),
    ("target steps off the ladder", (("target", "steps"), 400), "target.steps", "outside"),
    ("unknown cost kind", (("cost", "kind"), "magic"), "cost.kind", "Input should be"),
    ("unknown param type", (("space", 1, "type"), "complex"), "space[1].type", "Input should be"),
    ("bad workload entrypoint", (("workload",), {"entrypoint": "not an entrypoint"}), "workload",
     "module:function"),
    ("misspelt built-in workload", (("workload",), {"name": "mup_transfomer"}), "workload.name",
     "did you mean 'mup_transformer'"),
    ("workload entrypoint outside the allowed modules", (("workload",), {"entrypoint": "os:system"}),
     "workload.entrypoint", "outside the modules this deployment lets workers import"),
    ("negative budget", (("budget", "max_cost"), -1), "budget.max_cost", "greater than 0"),
    ("cost table missing a size", (("cost",), {"kind": "table", "per_step": {"s": 1.0}}), "cost.table",
     "no entry for size 'm'"),
    ("cost formula that cannot be evaluated", (("cost",), {"kind": "formula", "formula": "log(steps - 1)"}),
     "cost", "math domain error"),
    ("cost formula dividing by zero", (("cost",), {"kind": "formula", "formula": "params / (steps - steps)"}),
     "cost", "division by zero"),
    ("steps beyond 32 bits", (("fidelity", "steps", "max"), 2 ** 40), "fidelity.steps.max", "less than or equal"),
]


@pytest.mark.parametrize("desc,mutation,field,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_study_is_422_naming_the_field(sqlite_server, study_spec, desc, mutation, field, words):
    path, value = mutation
    with sqlite_server.http() as http:
        r = http.post("/v1/studies", json=_with(study_spec, path, value))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_argument"
    assert err["field"] == field, err
    assert words in err["message"], err


def test_malformed_json_is_422_not_500(sqlite_server):
    with sqlite_server.http() as http:
        r = http.post("/v1/studies", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        r = http.post("/v1/studies", json={"name": "x"})
        assert r.status_code == 422 and r.json()["error"]["field"] in ("space", "fidelity")


def test_openapi_documents_the_v1_api(sqlite_server):
    with sqlite_server.http(None) as http:
        doc = http.get("/openapi.json").json()
    paths = doc["paths"]
    for p in ["/v1/studies", "/v1/studies/{study_id}", "/v1/studies/{study_id}:start",
              "/v1/studies/{study_id}/trials:suggest", "/v1/studies/{study_id}/measurements:batch",
              "/v1/trials/{trial_id}/measurements", "/v1/trials/{trial_id}:complete",
              "/v1/trials/{trial_id}:should_stop", "/v1/studies/{study_id}/recommendation",
              "/v1/studies/{study_id}/progress", "/healthz", "/readyz", "/metrics",
              "/v1/scaling/fit"]:  # the scaling router is mounted too
        assert p in paths, p
    assert math.isfinite(len(doc["components"]["schemas"]))
    assert "StudySpec" in doc["components"]["schemas"]
