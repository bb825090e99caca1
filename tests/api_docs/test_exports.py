"""The export operations (``results.csv``, ``results.ndjson``) answer what the contract's
``?format=`` and ``Accept`` spellings on ``/results`` answer, byte for byte."""

from __future__ import annotations

import pytest

from tests.conftest import AUTH


@pytest.mark.parametrize(
    ("route", "query", "accept"),
    [
        ("results.csv", "format=csv", "text/csv"),
        ("results.ndjson", "format=ndjson", "application/x-ndjson"),
    ],
    ids=["csv", "ndjson"],
)
async def test_export_route_equals_format_and_accept(make_gateway, route, query, accept):
    h = await make_gateway(["modzy"])
    body = {
        "model": "modzy/ed542963de@1.0.1",
        "inputs": [{"name": "a", "text": "Great"}, {"name": "b", "text": "Awful"}],
    }
    submitted = await h.client.post("/v1/jobs", json=body, headers={**AUTH, "Prefer": "wait=10"})
    job = await submitted.json()
    assert job["done"], job
    base = f"/v1/jobs/{job['id']}"
    own = await h.client.get(f"{base}/{route}?status=succeeded", headers=AUTH)
    by_format = await h.client.get(f"{base}/results?{query}&status=succeeded", headers=AUTH)
    by_accept = await h.client.get(
        f"{base}/results?status=succeeded", headers={**AUTH, "Accept": accept}
    )
    assert own.status == by_format.status == by_accept.status == 200
    assert own.content_type == by_format.content_type == accept
    assert await own.read() == await by_format.read() == await by_accept.read()
    assert (await own.text()).count("\n") >= 2  # a header or item line per item at least
