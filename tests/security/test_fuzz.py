"""T-F1: schemathesis against the served API, with and without credentials (bounded).

The schema is the one ``/openapi.json`` serves (``test_openapi`` checks the two are equal).
Every default check runs (no 5xx, status codes, content types, response schemas and
headers, negative data rejected, ignored auth ...); the two operation overrides below
say where a schema-valid request may still be refused, and why. ``Prefer: wait`` is
capped at 0.2 s, so every answer must come within a second (schemathesis'
``--max-response-time 1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gateway.api.openapi import openapi_document
from gateway.auth.settings import AuthSettings, FailedAuthSettings
from tests.conftest import AUTH
from tests.security.served import Served, serve_gateway

CONFIG = schemathesis.Config.from_str(
    """
seed = 20261122

[[operations]]
include-operation-id = "submitJob"
# Whether a model exists, takes an input kind or accepts its provider options is the
# provider's answer (404/422), beyond what a schema can say about a well-formed body.
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429",
]

[[operations]]
include-operation-id = ["listJobs", "getResults"]
# page_token is opaque: any string is well formed, but only tokens the gateway issued
# are accepted (422).
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]
# page_size declares the sizes served (1..100, 1..1000), but a size outside them is
# clamped, not refused (the description says so): a fixed size keeps schemathesis from
# calling an out-of-range one a violation that was accepted, and every other parameter
# is still fuzzed, negative cases included.
parameters = { "query.page_size" = 2 }
"""
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)

FUZZ = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # a fixed seed: the same cases on every run
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serve_gateway(
        max_wait_seconds=0.2,
        auth=AuthSettings(failed_auth=FailedAuthSettings(limit=100_000)),
    ) as s:
        yield s


@schema.parametrize()
@FUZZ
def test_with_credentials(case, served):
    response = case.call_and_validate(base_url=served.url, headers=AUTH)
    assert response.elapsed < 1.0


@schema.parametrize()
@FUZZ
def test_without_credentials(case, served):
    response = case.call_and_validate(base_url=served.url)
    if case.path.startswith("/v1/"):
        assert response.status_code == 401
    assert response.elapsed < 1.0
