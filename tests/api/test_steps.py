"""Report steps are validated against the trial's segment and the study's reporting grid (issue 14): a step
outside ``(start_step, steps]``, off a declared ``report_every`` grid, or before the trial's last step
without being a stored retry is a 422 naming ``step``, and nothing is charged or stored for it."""

from __future__ import annotations

import pytest

from api.errors import InvalidArgumentError


def _start(http, spec) -> int:
    r = http.post("/v1/studies", json=spec)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert http.post(f"/v1/studies/{sid}:start").status_code == 200
    return sid


def _trial(http, sid, client_id="w") -> dict:
    r = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": client_id})
    assert r.status_code == 200, r.text
    return r.json()["trials"][0]


def _report(http, tid, step, value=1.0):
    return http.post(f"/v1/trials/{tid}/measurements", json={"step": step, "value": value})


def _grid_spec(spec, *, report_every=10, max_steps=90):
    spec["fidelity"]["steps"] = {"min": 10, "max": max_steps, **({"report_every": report_every} if report_every
                                                                 else {})}
    spec["target"] = {"steps": max_steps, "size": "m"}
    return spec


def _assert_step_error(r, field="step"):
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field and r.json()["error"]["code"] == "invalid_argument", r.text


def test_step_beyond_the_budget_is_422_and_costs_nothing(server, study_spec):
    with server.http() as http:
        sid = _start(http, _grid_spec(study_spec))
        t = _trial(http, sid)
        assert t["steps"] == 90
        for step in (1_000_000, 2_147_483_647, 91, 0):
            _assert_step_error(_report(http, t["id"], step))
        p = http.get(f"/v1/studies/{sid}/progress").json()
        assert p["cost_spent"] == 0 and p["n_measurements"] == 0
        assert http.get(f"/v1/trials/{t['id']}/measurements").json() == []
        # the trial is untouched: valid steps go through, the last one at its budget
        assert _report(http, t["id"], 10).status_code == 200
        assert _report(http, t["id"], 90).status_code == 200
        _assert_step_error(_report(http, t["id"], 100))
        assert http.get(f"/v1/studies/{sid}/progress").json()["cost_spent"] == pytest.approx(1.0)


def test_off_grid_step_is_422_where_the_study_declares_a_grid(server, study_spec):
    with server.http() as http:
        sid = _start(http, _grid_spec(study_spec, max_steps=45))
        t = _trial(http, sid)
        assert t["steps"] == 45
        r = _report(http, t["id"], 15)
        _assert_step_error(r)
        assert "report_every" in r.json()["error"]["message"]
        # multiples of report_every, and the segment's own end even though it is off the grid
        for step in (10, 40, 45):
            assert _report(http, t["id"], step).status_code == 200, step

        free = _start(http, _grid_spec(dict(study_spec, name=study_spec["name"] + "-free"), report_every=None))
        t = _trial(http, free)
        for step in (3, 15, 89):  # no declared grid: any step inside the segment
            assert _report(http, t["id"], step).status_code == 200, step


def test_an_earlier_step_never_reported_is_422_a_retry_is_not(server, study_spec):
    with server.http() as http:
        sid = _start(http, _grid_spec(study_spec))
        t = _trial(http, sid)
        assert _report(http, t["id"], 30, 0.5).json()["duplicate"] is False
        _assert_step_error(_report(http, t["id"], 20))          # never reported, before the last step
        retry = _report(http, t["id"], 30, 0.5)
        assert retry.status_code == 200 and retry.json()["duplicate"] is True
        assert [m["step"] for m in http.get(f"/v1/trials/{t['id']}/measurements").json()] == [30]


def test_batch_steps_are_checked_in_order_and_all_or_nothing(server, study_spec):
    with server.http() as http:
        sid = _start(http, _grid_spec(study_spec))
        a, b = http.post(f"/v1/studies/{sid}/trials:suggest",
                         json={"client_id": "w", "count": 2}).json()["trials"]
        bad = [{"trial_id": a["id"], "step": 10, "value": 1.0}, {"trial_id": b["id"], "step": 20, "value": 1.0},
               {"trial_id": a["id"], "step": 20, "value": 1.0}, {"trial_id": b["id"], "step": 15, "value": 1.0}]
        r = http.post(f"/v1/studies/{sid}/measurements:batch", json={"measurements": bad})
        _assert_step_error(r, "measurements[3].step")
        out_of_order = bad[:2] + [{"trial_id": a["id"], "step": 5 * 1, "value": 1.0}]
        r = http.post(f"/v1/studies/{sid}/measurements:batch", json={"measurements": out_of_order})
        _assert_step_error(r, "measurements[2].step")
        assert http.get(f"/v1/studies/{sid}/progress").json()["n_measurements"] == 0
        # a step repeated within a batch is a retry, not an error
        ok = bad[:3] + [bad[2]]
        body = http.post(f"/v1/studies/{sid}/measurements:batch", json={"measurements": ok}).json()
        assert (body["inserted"], body["duplicates"]) == (3, 1)


def test_sdk_report_steps_are_the_steps_the_service_accepts(server, study_spec):
    with server.client() as client:
        study = client.create_study(_grid_spec(study_spec, max_steps=45))
        trial = study.ask()
        assert trial.report_steps() == [10, 20, 30, 40, 45]
        for step in trial.report_steps():
            trial.report(step, 1.0 / step)
        with pytest.raises(InvalidArgumentError) as err:
            trial.report(50, 0.1)
        assert err.value.field == "step"
        assert trial.complete().state.value == "completed"
