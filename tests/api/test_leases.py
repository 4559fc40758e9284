"""Trial leases (issue 14): a worker that goes silent loses its trial at the next ask, so a dead worker can
neither hold a ``max_trials`` study open forever nor keep a segment another worker should run; a heartbeat
or a measurement renews the lease; the lost worker's later calls are refused or change nothing."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from service.executors import ExternalExecutor
from tests.conftest import LiveServer, _serve

LEASE = 1.0  # seconds: short, so the tests wait little; the default is an hour


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def leased_server(request, tmp_path_factory) -> Iterator[LiveServer]:
    url = (f"sqlite:///{tmp_path_factory.mktemp('lease') / 'service.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    yield from _serve(url, trial_lease_seconds=LEASE)


def _start(http, spec) -> int:
    sid = http.post("/v1/studies", json=spec).json()["id"]
    assert http.post(f"/v1/studies/{sid}:start").status_code == 200
    return sid


def _ask(http, sid, client_id) -> dict:
    r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": client_id, "count": 1})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_dead_worker_does_not_hold_a_max_trials_study_open(leased_server, study_spec):
    study_spec["budget"] = {"max_trials": 1}
    with leased_server.http() as http:
        sid = _start(http, study_spec)
        (held,) = _ask(http, sid, "A")["trials"]          # A takes the only trial and dies before reporting
        assert _ask(http, sid, "B") == {"trials": [], "study_state": "running"}
        time.sleep(LEASE * 1.3)
        answer = _ask(http, sid, "B")                      # the lease ran out: reclaimed, nothing left to run
        assert answer == {"trials": [], "study_state": "completed"}
        trial = http.get(f"/v1/trials/{held['id']}").json()
        assert trial["state"] == "stopped" and not trial["failure"]   # not counted against the config


def test_a_silent_worker_loses_its_segment_and_its_late_calls_are_refused(leased_server, study_spec):
    with leased_server.http() as http:
        sid = _start(http, study_spec)
        (trial,) = _ask(http, sid, "A")["trials"]
        segment = {"segment_start": trial["start_step"]}
        assert http.post(f"/v1/trials/{trial['id']}/measurements",
                         json={"step": 10, "value": 1.0, **segment}).status_code == 200
        time.sleep(LEASE * 1.3)
        (other,) = _ask(http, sid, "B")["trials"]           # the ask that reclaims A's trial
        assert other["id"] != trial["id"]
        assert http.get(f"/v1/trials/{trial['id']}").json()["state"] == "paused"   # resumable at step 10
        late = http.post(f"/v1/trials/{trial['id']}/measurements", json={"step": 20, "value": 0.9, **segment})
        assert late.status_code == 409
        assert http.post(f"/v1/trials/{trial['id']}:heartbeat", json=segment).status_code == 409
        # a retry of the step A did report is still answered (idempotent), not a new measurement
        again = http.post(f"/v1/trials/{trial['id']}/measurements", json={"step": 10, "value": 1.0, **segment})
        assert again.status_code == 200 and again.json()["duplicate"]


def test_heartbeats_and_measurements_keep_the_lease(leased_server, study_spec):
    with leased_server.http() as http:
        sid = _start(http, study_spec)
        (raw,) = _ask(http, sid, "A")["trials"]
        deadline = time.time() + LEASE * 2.5
        while time.time() < deadline:
            beat = http.post(f"/v1/trials/{raw['id']}:heartbeat", json={"segment_start": raw["start_step"]})
            assert beat.status_code == 200, beat.text
            _ask(http, sid, "B")                            # other workers' asks do not take it
            time.sleep(LEASE * 0.4)
        assert http.get(f"/v1/trials/{raw['id']}").json()["state"] == "pending"
        assert http.post(f"/v1/trials/{raw['id']}/measurements",
                         json={"step": 10, "value": 1.0, "segment_start": 0}).status_code == 200


class _OwnsItsTrials(ExternalExecutor):
    """An executor whose own fault tolerance owns the trials, as the Ray executor's does."""

    leases_trials = False


def test_an_executor_that_owns_its_trials_gets_no_leases(leased_server, study_spec, monkeypatch):
    """Leasing follows the executor (``Executor.leases_trials``), not a compare of the setting's name."""
    monkeypatch.setattr(leased_server.app.state, "executor", _OwnsItsTrials(leased_server.app.state.settings))
    study_spec["budget"] = {"max_trials": 1}
    with leased_server.http() as http:
        sid = _start(http, study_spec)
        (held,) = _ask(http, sid, "A")["trials"]
        time.sleep(LEASE * 1.3)
        assert _ask(http, sid, "B") == {"trials": [], "study_state": "running"}   # not reclaimed
        assert http.get(f"/v1/trials/{held['id']}").json()["state"] == "pending"
