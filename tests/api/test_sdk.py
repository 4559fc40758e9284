"""The Python SDK against a live server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api import (AuthenticationError, Client, ConflictError, Decision, InvalidArgumentError, NotFoundError,
                 StudyState, TransportError, TrialState)
from api.client import load_study_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_ask_tell_loop_to_completion(sqlite_server, study_spec):
    study_spec["budget"] = {"max_trials": 4}
    with sqlite_server.client() as client:
        study = client.create_study(study_spec)
        assert study.state is StudyState.RUNNING
        seen = []
        while (trial := study.ask(timeout=5)) is not None:
            assert trial.report_steps() == [10, 20, 30, 40]
            for step in trial.report_steps():
                decision = trial.report(step, trial.params["lr"] * 100 / step, metrics={"acc": 0.5},
                                        elapsed_seconds=0.01)
                assert decision is Decision.CONTINUE
            assert not trial.should_stop() or trial.data.last_step == trial.steps
            assert trial.complete(checkpoint=f"mem://{trial.id}").state is TrialState.COMPLETED
            seen.append(trial)
        assert len(seen) == 4
        assert study.refresh().state is StudyState.COMPLETED
        assert study.wait(timeout=5, show_progress=False).state is StudyState.COMPLETED
        best = study.best()
        lowest = min(seen, key=lambda t: t.params["lr"])
        assert best.trial_id == lowest.id and best.predicted == pytest.approx(lowest.params["lr"] * 100 / 40)
        trials = study.trials()
        assert [t.id for t in trials] == [t.id for t in seen]
        assert all(t.checkpoint == f"mem://{t.id}" for t in trials)
        assert [m.step for m in seen[0].measurements()] == [10, 20, 30, 40]
        assert study.trials(state="completed") == trials
        assert client.get_study(study.id).data.n_trials == 4
        assert [s.id for s in client.list_studies(name=study_spec["name"])] == [study.id]
        assert study.id in [s.id for s in client.list_studies(state=StudyState.COMPLETED)]


def test_create_from_yaml_and_kwargs(sqlite_server):
    with sqlite_server.client() as client:
        study = client.create_study(EXAMPLES / "random_small.yaml", name="from-yaml", start=False)
        assert study.name == "from-yaml" and study.state is StudyState.PENDING
        assert study.data.fidelity.sizes[1].cpus == 2
        raw = load_study_spec(EXAMPLES / "random_small.yaml").model_dump(mode="json", exclude_none=True)
        raw.pop("name")
        kw = client.create_study(name="from-kwargs", **raw)
        assert kw.name == "from-kwargs" and kw.state is StudyState.RUNNING
        assert kw.pause().state is StudyState.PAUSED and kw.resume().state is StudyState.RUNNING
        assert kw.cancel().state is StudyState.CANCELLED
        kw.delete()
        with pytest.raises(NotFoundError):
            client.get_study(kw.id)


def test_typed_errors(sqlite_server, study_spec):
    with sqlite_server.client() as client:
        with pytest.raises(NotFoundError):
            client.get_study(10 ** 8)
        bad = dict(study_spec, target={"size": "xl", "steps": 40})
        with pytest.raises(InvalidArgumentError) as err:
            client.create_study(bad)
        assert err.value.field == "target.size" and err.value.status == 422
        study = client.create_study(study_spec)
        with pytest.raises(ConflictError):
            study.start()
        trial = study.ask()
        assert trial.report(10, float("nan")) is Decision.STOP
        assert trial.last_result.diverged and trial.last_result.trial_state is TrialState.FAILED
        with pytest.raises(InvalidArgumentError, match="failed"):
            trial.report(20, 1.0)
    with Client(sqlite_server.url, "sl_wrong") as stranger:
        with pytest.raises(AuthenticationError):
            stranger.list_studies()


def test_report_batch(server, study_spec):
    with server.client() as client:
        study = client.create_study(study_spec)
        a, b = study.ask_many(2)[0]
        result = study.report_batch([(a.id, 10, 1.0), (a.id, 20, 0.9),
                                     {"trial_id": b.id, "step": 10, "value": float("inf")}])
        assert result.inserted == 3 and result.decisions == {a.id: Decision.CONTINUE, b.id: Decision.STOP}
        again = study.report_batch([(a.id, 20, 0.9)])
        assert (again.inserted, again.duplicates) == (0, 1)
        assert b.refresh().state is TrialState.FAILED


class _FlakyTransport(httpx.BaseTransport):
    """Fails the first ``failures`` requests, then passes through. With ``lose_response`` the request does
    reach the server and only the answer is lost (the case that makes retries need idempotence)."""

    def __init__(self, failures: int, error: type[httpx.TransportError], lose_response: bool = False) -> None:
        self.failures = failures
        self.error = error
        self.lose_response = lose_response
        self.calls = 0
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            if self.lose_response:
                self.inner.handle_request(request).read()
            raise self.error("simulated network failure", request=request)
        return self.inner.handle_request(request)


def test_idempotent_calls_are_retried_with_backoff(sqlite_server, study_spec):
    token = sqlite_server.token("alice")
    flaky = _FlakyTransport(2, httpx.ReadTimeout)
    with Client(sqlite_server.url, token, transport=flaky, backoff=0.01) as client:
        assert client.list_studies(name="nothing-by-this-name") == []
        assert flaky.calls == 3
    with sqlite_server.client() as client:
        study = client.create_study(study_spec, start=False)
    # a state transition is not idempotent: a timeout surfaces instead of being replayed
    flaky = _FlakyTransport(1, httpx.ReadTimeout)
    with Client(sqlite_server.url, token, transport=flaky, backoff=0.01) as client:
        with pytest.raises(TransportError):
            client.request("POST", f"/v1/studies/{study.id}:start")
    assert flaky.calls == 1
    # ...but a refused connection never reached the server, so even a transition is retried
    flaky = _FlakyTransport(1, httpx.ConnectError)
    with Client(sqlite_server.url, token, transport=flaky, backoff=0.01) as client:
        assert client.request("POST", f"/v1/studies/{study.id}:start")["state"] == "running"
    # ask and report retried after a lost response: same trial, measurement stored once
    flaky = _FlakyTransport(0, httpx.ReadTimeout, lose_response=True)
    with Client(sqlite_server.url, token, transport=flaky, backoff=0.01, client_id="w") as client:
        study = client.get_study(study.id)
        trial = study.ask()
        flaky.failures = flaky.calls + 1
        assert study.ask().id == trial.id
        flaky.failures = flaky.calls + 1
        assert trial.report(10, 0.5) is Decision.CONTINUE
        assert trial.last_result.duplicate  # the first delivery was stored; the retry found it
        assert [m.step for m in trial.measurements()] == [10]
        assert len(study.trials()) == 1


def test_unreachable_server_is_a_transport_error():
    with Client("http://127.0.0.1:9", "t", retries=1, backoff=0.01) as client:
        with pytest.raises(TransportError):
            client.list_studies()
        assert client.healthy() is False
