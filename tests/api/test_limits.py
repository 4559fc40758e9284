"""Request size limit (issue 14): a body over ``max_request_bytes`` is a 413 in the service's error shape,
whether it declares its length or streams it in chunks, and nothing of it is stored."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from tests.conftest import LiveServer, _serve

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory) -> Iterator[LiveServer]:
    yield from _serve(f"sqlite:///{tmp_path_factory.mktemp('limits') / 'service.db'}", max_request_bytes=LIMIT)


def test_a_body_over_the_limit_is_a_413_and_a_smaller_one_passes(small_server, study_spec):
    with small_server.http() as http:
        sid = http.post("/v1/studies", json=study_spec).json()["id"]
        http.post(f"/v1/studies/{sid}:start")
        (trial,) = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w", "count": 1}).json()["trials"]
        big = {"measurements": [{"trial_id": trial["id"], "step": 10, "value": 1.0, "checkpoint": "x" * 100}] * 1000}
        r = http.post(f"/v1/studies/{sid}/measurements:batch", json=big)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large" and r.json()["error"]["field"] == "body"
        assert not r.json()["error"]["retryable"]

        def chunks():  # no Content-Length: the limit is enforced while the body arrives
            for _ in range(LIMIT // 1024 + 2):
                yield b" " * 1024
        r = http.post(f"/v1/trials/{trial['id']}/measurements", content=chunks(),
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert http.get(f"/v1/trials/{trial['id']}/measurements").json() == []
        ok = http.post(f"/v1/trials/{trial['id']}/measurements", json={"step": 10, "value": 1.0})
        assert ok.status_code == 200


def test_the_default_limit_takes_the_largest_batch_the_schema_allows():
    from api.schemas import MeasurementBatch
    from service.settings import Settings
    most = MeasurementBatch.model_fields["measurements"].metadata
    largest = max(getattr(m, "max_length", 0) or 0 for m in most)
    body = httpx.Request("POST", "http://x", json={"measurements": [
        {"trial_id": 123456, "step": 100000, "value": 0.1234567890123}] * largest}).content
    assert len(body) < Settings().max_request_bytes
