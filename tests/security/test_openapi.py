"""T-F2: the served OpenAPI document is valid 3.1 and declares every error as problem+json.

429 and 503 declare ``Retry-After`` and the IETF draft ``RateLimit`` and
``RateLimit-Policy`` fields; the latter two are optional, because they are sent only
where limits are configured (and a 429 for failed authentications has no credential
to charge).
"""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from gateway.api.openapi import openapi_document

#: A readiness probe's 503 is read by the kubelet by status alone and carries the
#: component map (a Health body), not a problem; it has no Retry-After either.
EXEMPT = {("/readyz", "get", "503")}


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


async def test_served_document_is_valid_openapi_31(make_gateway):
    h = await make_gateway(["modzy"])
    resp = await h.client.get("/openapi.json")
    served = await resp.json()
    assert resp.status == 200
    assert served == openapi_document()
    assert served["openapi"].startswith("3.1")
    assert list(OpenAPIV31SpecValidator(served).iter_errors()) == []
    validate(served)


def test_every_error_is_problem_json_with_its_headers():
    doc = openapi_document()
    checked = 0
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or (path, method, status) in EXEMPT:
                continue
            checked += 1
            where = f"{method.upper()} {path} {status}"
            assert list(response["content"]) == ["application/problem+json"], where
            assert response["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }, where
            headers = response.get("headers", {})
            if status in ("429", "503"):
                assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(headers), where
            if status == "401":
                assert "WWW-Authenticate" in headers, where
        if path.startswith("/v1/"):
            # every authenticated route can answer 401, and 429 once an address fails too often
            assert {"401", "429"} <= set(op["responses"]), f"{method} {path}"
    assert checked > 40


def test_page_sizes_declare_their_bounds_and_the_clamping():
    """The bounds are the sizes served; sizes outside them are clamped, not refused
    (test_fuzz.py tells schemathesis so), and the description says it."""
    doc = openapi_document()
    sizes = {
        op["operationId"]: p
        for _, _, op in operations(doc)
        for p in op.get("parameters", [])
        if p["name"] == "page_size"
    }
    assert {op: (p["schema"]["minimum"], p["schema"]["maximum"]) for op, p in sizes.items()} == {
        "listJobs": (1, 100),
        "getResults": (1, 1000),
    }
    assert all("clamped" in p["description"] for p in sizes.values())
