"""Two workers racing on one study over PostgreSQL: the study row lock serialises them."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.postgres


def test_concurrent_asks_get_distinct_trials(postgres_server, study_spec):
    with postgres_server.http() as http:
        sid = http.post("/v1/studies", json=study_spec).json()["id"]
        http.post(f"/v1/studies/{sid}:start")
    got: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        with postgres_server.http() as http:
            barrier.wait()
            for i in range(8):
                r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": f"{name}-{i}", "count": 2})
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                got[name] += [t["id"] for t in r.json()["trials"]]

    threads = [threading.Thread(target=worker, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = got["a"] + got["b"]
    assert len(ids) == 32 and len(set(ids)) == 32
    with postgres_server.http() as http:
        trials = http.get(f"/v1/studies/{sid}/trials", params={"page_size": 100}).json()["items"]
        assert sorted(t["number"] for t in trials) == list(range(32))
        assert http.get(f"/v1/studies/{sid}").json()["n_trials"] == 32


def test_concurrent_reports_on_one_study_are_all_recorded(postgres_server, study_spec):
    with postgres_server.http() as http:
        sid = http.post("/v1/studies", json=study_spec).json()["id"]
        http.post(f"/v1/studies/{sid}:start")
        trials = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "x", "count": 2}).json()["trials"]

    errors: list[str] = []

    def worker(tid: int) -> None:
        with postgres_server.http() as http:
            for step in (10, 20, 30, 40):
                r = http.post(f"/v1/trials/{tid}/measurements", json={"step": step, "value": 1.0})
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=worker, args=(t["id"],)) for t in trials]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with postgres_server.http() as http:
        p = http.get(f"/v1/studies/{sid}/progress").json()
    assert p["n_measurements"] == 8 and p["cost_spent"] == pytest.approx(2.0)
