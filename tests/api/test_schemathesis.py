"""A bounded schemathesis run over the service's own OpenAPI schema (issue 14), against a live server.

Every operation of ``/openapi.json`` gets ``EXAMPLES`` generated requests (valid and invalid bodies, query and
path values) with a valid token, on SQLite and on PostgreSQL (which refused values SQLite stored). Asserted
for every response: no 5xx, the status code is one the schema documents for the operation, and the body,
headers and content type conform to the schema. Path ids point at
a real study and trial half of the time, so requests get past the 404 into the handlers. The issue's run of
7,715 requests found 500s; this one runs in CI. Before the error answers were documented (``ERROR_RESPONSES`` in
``service.errors``), the same run failed 317 of its 581 requests on SQLite (undocumented 404s and 409s).
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup

pytestmark = pytest.mark.slow

#: requests generated per operation: 581 requests per backend over the 26 operations, about 50 s on SQLite and
#: 35 s on PostgreSQL on this 2-core machine under load
EXAMPLES = 25

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


def _checks():
    return [getattr(schemathesis.checks, name) for name in CHECKS]


def _seed(server) -> dict[str, int]:
    """A running study with a trial that has reported, for path parameters to hit."""
    from tests.conftest import STUDY_SPEC

    with server.http("alice") as http:
        study = http.post("/v1/studies", json={**STUDY_SPEC, "name": "schemathesis"}).json()
        http.post(f"/v1/studies/{study['id']}:start").raise_for_status()
        (trial,) = http.post(f"/v1/studies/{study['id']}/trials:suggest",
                             json={"client_id": "st", "count": 1}).json()["trials"]
        http.post(f"/v1/trials/{trial['id']}/measurements", json={"step": 10, "value": 1.5}).raise_for_status()
    return {"study_id": study["id"], "trial_id": trial["id"]}


def test_no_5xx_and_conformant_responses(server):
    ids = _seed(server)
    token = server.token("alice")
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    operations = [r.ok() for r in schema.get_all_operations()]
    # what ends the seeded study last (a cancel makes later asks 409s, a delete makes every real id a 404)
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path.endswith(":cancel")))
    for operation in operations:
        if operation.path.startswith("/ui") or operation.path in ("/docs", "/redoc"):
            continue
        strategy = operation.as_strategy()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
        @given(case=strategy, real=st.booleans())
        def run(case, real):
            if real and case.path_parameters:
                case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
            response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=_checks())
            except FailureGroup as exc:  # a BaseException: each is reported, the run goes on
                failures.append(f"{operation.label} -> {response.status_code}: {str(exc)[:800]}")

        run()

    print(f"schemathesis: {statuses.total()} requests, statuses {dict(sorted(statuses.items()))}, "
          f"{len(failures)} failures")
    assert sum(n for s, n in statuses.items() if s < 300) > 0, statuses  # some got past validation and lookup
    assert not failures, "\n\n".join(failures[:20])
