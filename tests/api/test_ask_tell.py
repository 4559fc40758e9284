"""Ask/tell over HTTP against a live server: idempotent ask, retried and non-finite measurements,
finished trials, batch ingest, should_stop, budgets, recommendation, progress, health and metrics."""

from __future__ import annotations

import time

import pytest


def _start(http, spec):
    r = http.post("/v1/studies", json=spec)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert http.post(f"/v1/studies/{sid}:start").status_code == 200
    return sid


def _ask(http, sid, client_id, count=1):
    r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": client_id, "count": count})
    assert r.status_code == 200, r.text
    return r.json()


def _report(http, tid, step, value):
    return http.post(f"/v1/trials/{tid}/measurements", json={"step": step, "value": value})


def test_ask_is_idempotent_per_client(server, study_spec):
    with server.http() as http:
        sid = _start(http, study_spec)
        first = _ask(http, sid, "worker-1")["trials"]
        again = _ask(http, sid, "worker-1")["trials"]
        other = _ask(http, sid, "worker-2")["trials"]
        assert [t["id"] for t in first] == [t["id"] for t in again]
        assert first[0]["client_id"] == "worker-1" and other[0]["id"] != first[0]["id"]
        # still the same after it started reporting (running is live too)
        assert _report(http, first[0]["id"], 10, 1.0).status_code == 200
        assert _ask(http, sid, "worker-1")["trials"][0]["id"] == first[0]["id"]
        # asking for more tops up with new trials
        more = _ask(http, sid, "worker-1", count=3)["trials"]
        assert len(more) == 3 and more[0]["id"] == first[0]["id"] and len({t["id"] for t in more}) == 3
        trials = http.get(f"/v1/studies/{sid}/trials").json()["items"]
        assert len(trials) == 4  # worker-1: 3, worker-2: 1
        t = trials[0]
        assert set(t["params"]) >= {"lr", "layers", "optimizer", "web", "code", "seq_len"}
        assert t["resources"] == {"cpu": 2.0, "gpu": 0.0} and t["size"] == "m" and t["steps"] == 40


def test_retried_measurement_is_stored_once(server, study_spec):
    with server.http() as http:
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        first = _report(http, tid, 10, 0.5).json()
        retry = _report(http, tid, 10, 0.5).json()
        assert first["duplicate"] is False and retry["duplicate"] is True
        assert first["decision"] == retry["decision"] == "continue"
        batch = {"measurements": [{"trial_id": tid, "step": 10, "value": 0.5},
                                  {"trial_id": tid, "step": 20, "value": 0.4}]}
        r1 = http.post(f"/v1/studies/{sid}/measurements:batch", json=batch).json()
        r2 = http.post(f"/v1/studies/{sid}/measurements:batch", json=batch).json()
        assert (r1["inserted"], r1["duplicates"]) == (1, 1) and (r2["inserted"], r2["duplicates"]) == (0, 2)
        ms = http.get(f"/v1/trials/{tid}/measurements").json()
        assert [(m["step"], m["value"]) for m in ms] == [(10, 0.5), (20, 0.4)]
        progress = http.get(f"/v1/studies/{sid}/progress").json()
        assert progress["n_measurements"] == 2
        assert progress["cost_spent"] == pytest.approx(0.5)  # 20 of 40 target steps


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_value_marks_trial_diverged(sqlite_server, study_spec, value):
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        assert _report(http, tid, 10, 1.0).json()["decision"] == "continue"
        r = _report(http, tid, 20, value)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "stop" and body["diverged"] is True and body["trial_state"] == "failed"
        trial = http.get(f"/v1/trials/{tid}").json()
        assert trial["state"] == "failed" and "non-finite" in trial["failure"] and trial["last_value"] is None
        ms = http.get(f"/v1/trials/{tid}/measurements").json()
        assert ms[-1]["value"] == value  # marked as such on the way out
        # the study goes on
        assert _ask(http, sid, "w")["trials"][0]["id"] != tid
        assert http.get(f"/v1/studies/{sid}/progress").status_code == 200


def test_measurement_for_finished_trial_is_422(sqlite_server, study_spec):
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        _report(http, tid, 10, 1.0)
        assert http.post(f"/v1/trials/{tid}:complete").json()["state"] == "completed"
        r = _report(http, tid, 20, 1.0)
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "trial_id" and "completed" in r.json()["error"]["message"]
        # a retry of an already stored step is still answered (not an error)
        retry = _report(http, tid, 10, 1.0)
        assert retry.status_code == 200 and retry.json()["decision"] == "stop" and retry.json()["duplicate"]
        r = http.post(f"/v1/studies/{sid}/measurements:batch",
                      json={"measurements": [{"trial_id": tid, "step": 30, "value": 1.0}]})
        assert r.status_code == 422 and r.json()["error"]["field"] == "trial_id"
        # completing again is a no-op; failing a completed trial is an illegal transition
        assert http.post(f"/v1/trials/{tid}:complete").status_code == 200
        r = http.post(f"/v1/trials/{tid}:fail", json={"reason": "late"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "failed_precondition"


def test_bad_measurements_are_422(sqlite_server, study_spec):
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        for body, field in [({"step": -1, "value": 1.0}, "step"), ({"step": 1}, "value"),
                            ({"step": 1, "value": "abc"}, "value")]:
            r = http.post(f"/v1/trials/{tid}/measurements", json=body)
            assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        r = http.post(f"/v1/studies/{sid}/measurements:batch",
                      json={"measurements": [{"trial_id": tid, "step": 1, "value": 1.0},
                                             {"trial_id": 987654, "step": 1, "value": 1.0}]})
        assert r.status_code == 404 and r.json()["error"]["field"] == "measurements[1].trial_id"
        assert http.get(f"/v1/trials/{tid}/measurements").json() == []  # the batch is all or nothing


def test_fail_and_should_stop(sqlite_server, study_spec):
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        s = http.get(f"/v1/trials/{tid}:should_stop").json()
        assert s == {"trial_id": tid, "should_stop": False, "decision": "continue", "trial_state": "pending"}
        failed = http.post(f"/v1/trials/{tid}:fail", json={"reason": "OOM"}).json()
        assert failed["state"] == "failed" and failed["failure"] == "OOM"
        assert http.post(f"/v1/trials/{tid}:fail", json={"reason": "OOM"}).status_code == 200
        assert http.post(f"/v1/trials/{tid}:complete").status_code == 409
        s = http.get(f"/v1/trials/{tid}:should_stop").json()
        assert s["should_stop"] is True and s["decision"] == "stop"


def test_batch_ingest_drives_the_scheduler(server, study_spec):
    with server.http() as http:
        sid = _start(http, study_spec)
        trials = _ask(http, sid, "w", count=4)["trials"]
        batch = [{"trial_id": t["id"], "step": s, "value": 1.0 / s + 0.01 * i, "elapsed_seconds": 0.1,
                  "metrics": {"acc": 0.5}} for i, t in enumerate(trials) for s in (10, 20, 30, 40)]
        r = http.post(f"/v1/studies/{sid}/measurements:batch", json={"measurements": batch})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["inserted"] == 16 and body["duplicates"] == 0
        assert set(body["decisions"]) == {str(t["id"]) for t in trials}
        for t in trials:
            assert http.post(f"/v1/trials/{t['id']}:complete").json()["state"] == "completed"
        rec = http.get(f"/v1/studies/{sid}/recommendation").json()
        assert rec["trial_id"] == trials[0]["id"] and rec["predicted"] == pytest.approx(1 / 40)
        assert rec["params"] == trials[0]["params"] and (rec["size"], rec["steps"]) == ("m", 40)
        p = http.get(f"/v1/studies/{sid}/progress").json()
        assert p["cost_spent"] == pytest.approx(4.0) and p["n_measurements"] == 16
        assert p["best_value"] == pytest.approx(1 / 40) and p["best_trial_id"] == trials[0]["id"]
        assert p["trials_by_state"] == {"completed": 4}
        costs = [pt["cost"] for pt in p["best_over_cost"]]
        assert costs == sorted(costs) and p["best_over_cost"][-1]["best"] == pytest.approx(1 / 40)
        m = http.get(f"/v1/trials/{trials[1]['id']}/measurements").json()[0]
        assert m["metrics"] == {"acc": 0.5} and m["elapsed_seconds"] == 0.1 and m["cost"] == pytest.approx(0.25)


def test_trial_budget_completes_the_study(sqlite_server, study_spec):
    study_spec["budget"] = {"max_trials": 2}
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        trials = _ask(http, sid, "w", count=5)["trials"]
        assert len(trials) == 2
        assert _ask(http, sid, "x")["trials"] == []  # nothing left, but two are still running
        assert http.get(f"/v1/studies/{sid}").json()["state"] == "running"
        for t in trials:
            _report(http, t["id"], 40, 1.0)
            http.post(f"/v1/trials/{t['id']}:complete")
        study = http.get(f"/v1/studies/{sid}").json()
        assert study["state"] == "completed" and study["finished_at"] is not None
        assert _ask(http, sid, "w") == {"trials": [], "study_state": "completed"}
        assert http.post(f"/v1/studies/{sid}:pause").status_code == 409


def test_cost_budget_completes_the_study_and_stops_live_trials(sqlite_server, study_spec):
    study_spec["budget"] = {"max_cost": 1.5}  # one and a half target runs
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        a, b = _ask(http, sid, "w", count=2)["trials"]
        assert _report(http, a["id"], 40, 1.0).json()["decision"] == "continue"
        assert _report(http, b["id"], 10, 1.0).json()["decision"] == "continue"   # 1.25
        last = _report(http, b["id"], 20, 1.0).json()                             # 1.5: spent
        assert last["decision"] == "stop" and last["trial_state"] == "stopped"
        study = http.get(f"/v1/studies/{sid}").json()
        assert study["state"] == "completed" and study["cost_spent"] == pytest.approx(1.5)
        assert _report(http, b["id"], 30, 1.0).status_code == 422


def test_wall_clock_budget_completes_the_study(sqlite_server, study_spec):
    study_spec["budget"] = {"max_wall_clock_seconds": 0.3}
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        assert len(_ask(http, sid, "w")["trials"]) == 1
        time.sleep(0.4)
        assert http.get(f"/v1/studies/{sid}").json()["state"] == "completed"
        assert _ask(http, sid, "w")["trials"] == []


def test_health_readiness_and_metrics(server, study_spec):
    with server.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["database"] == "ok"
        sid = _start(http, study_spec)
        tid = _ask(http, sid, "w")["trials"][0]["id"]
        _report(http, tid, 10, 1.0)
        text = http.get("/metrics").text
    assert 'scaleladder_studies{state="running"}' in text
    assert "scaleladder_measurements_ingested_total" in text
    assert 'route="/v1/trials/{trial_id}/measurements"' in text
    assert "scaleladder_http_request_duration_seconds_bucket" in text


def test_paused_trial_continues_only_through_ask(sqlite_server, study_spec):
    """Hyperband pauses a trial at the end of its rung; a worker that keeps reporting gets 409, a retry of
    the pausing report gets PAUSE again, and the promotion comes back through ask with a larger budget."""
    study_spec["scheduler"] = {"name": "hyperband", "seed": 0}
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        first = _ask(http, sid, "w")["trials"][0]
        assert first["steps"] < 40
        answer = _report(http, first["id"], first["steps"], 0.1).json()
        assert answer["decision"] == "pause" and answer["trial_state"] == "paused"
        assert _report(http, first["id"], first["steps"], 0.1).json()["decision"] == "pause"
        r = _report(http, first["id"], first["steps"] + 10, 0.1)
        assert r.status_code == 409 and "paused" in r.json()["error"]["message"]
        # finish the rung with worse trials, then the best one is resumed from its checkpoint step
        resumed = None
        for i in range(30):
            trials = _ask(http, sid, f"w{i}")["trials"]
            if not trials:
                break
            t = trials[0]
            if t["id"] == first["id"]:
                resumed = t
                break
            _report(http, t["id"], t["steps"], 1.0 + i)
            http.post(f"/v1/trials/{t['id']}:complete")
        assert resumed is not None and resumed["start_step"] == first["steps"] and resumed["steps"] > first["steps"]
        assert resumed["state"] == "pending"
        assert _report(http, first["id"], resumed["steps"], 0.05).status_code == 200


def test_a_late_complete_or_fail_for_an_earlier_segment_leaves_the_resumed_trial_alone(sqlite_server, study_spec):
    """Worker A's trial is paused and handed to worker B; A's retried ``:complete`` (or a late ``:fail``)
    names A's segment by its start step, so it answers 200 and changes nothing: B's segment goes on (seen
    before the fix in 3 of 224 pause/complete pairs on two replicas: A's retry completed B's trial)."""
    study_spec["scheduler"] = {"name": "hyperband", "seed": 0}
    with sqlite_server.http() as http:
        sid = _start(http, study_spec)
        first = _ask(http, sid, "A")["trials"][0]
        assert _report(http, first["id"], first["steps"], 0.1).json()["decision"] == "pause"
        segment_a = {"segment_start": first["start_step"]}
        assert http.post(f"/v1/trials/{first['id']}:complete", json=segment_a).json()["state"] == "paused"
        resumed = None
        for i in range(30):
            t = _ask(http, sid, f"B{i}")["trials"][0]
            if t["id"] == first["id"]:
                resumed = t
                break
            _report(http, t["id"], t["steps"], 1.0 + i)
            http.post(f"/v1/trials/{t['id']}:complete", json={"segment_start": t["start_step"]})
        assert resumed is not None and resumed["start_step"] > first["start_step"]
        # A's retry, and a late failure report from A's dying process: both about A's ended segment
        late = http.post(f"/v1/trials/{first['id']}:complete", json={**segment_a, "checkpoint": "a/stale"})
        assert late.status_code == 200 and late.json()["state"] == "pending"
        assert late.json()["checkpoint"] != "a/stale"
        late = http.post(f"/v1/trials/{first['id']}:fail", json={**segment_a, "reason": "A died"})
        assert late.status_code == 200 and late.json()["state"] == "pending"
        # B's segment is intact: it reports and completes as usual
        assert _report(http, first["id"], resumed["steps"], 0.05).status_code == 200
        done = http.post(f"/v1/trials/{first['id']}:complete", json={"segment_start": resumed["start_step"]})
        assert done.json()["state"] in ("completed", "paused")
