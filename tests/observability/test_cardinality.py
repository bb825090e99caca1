"""T-O2: thousands of requests with random paths, ids and keys leave the series bounded.

Each burst sends the same classes of request (every path shape x method x credential
kind) with fresh random values. If any label carried a path, id or key, every burst
would add series; bounded labels mean the second burst adds none, and the total stays
within the bound computed from the route table, the method list and the status codes.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

from gateway.metrics import KNOWN_METHODS
from tests.conftest import AUTH, Harness

PATHS = (
    "/v1/jobs/{r}",
    "/v1/jobs/job_{r}",
    "/v1/jobs/job_{r}/results",
    "/v1/jobs/job_{r}/results/{r}",
    "/v1/{r}",
    "/{r}/{r}",
    "/healthz?x={r}",
    "/v1/models",
)
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "PROPFIND", "MKCOL")
CREDENTIALS = ("valid", "bearer", "x-api-key", "none")
#: Every status the gateway answers with (the error tree plus aiohttp's own).
STATUS_CODES = (
    200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504,
)  # fmt: skip


def headers(kind: str, token: str) -> dict[str, str]:
    base = {"X-Request-ID": f"rid-{token}"}
    if kind == "valid":
        return {**base, **AUTH}
    if kind == "bearer":
        return {**base, "Authorization": f"Bearer key-{token}"}
    if kind == "x-api-key":
        return {**base, "X-API-Key": f"key-{token}"}
    return base


async def burst(h: Harness, tokens: list[str]) -> None:
    """Every class of request, each with a fresh random token; 256 requests."""
    classes = list(itertools.product(PATHS, METHODS, CREDENTIALS))
    sem = asyncio.Semaphore(32)

    async def one(path: str, method: str, cred: str) -> None:
        token = secrets.token_urlsafe(8)
        tokens.append(token)
        async with sem:
            resp = await h.client.request(
                method, path.format(r=token), headers=headers(cred, token), data=b"{}"
            )
            await resp.read()

    await asyncio.gather(*(one(*c) for c in classes))


def series(h: Harness) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for fam in h.registry.collect()
        for s in fam.samples
        if not s.name.startswith(("process_", "python_"))
    }


async def test_random_paths_ids_and_keys_do_not_grow_the_series(make_gateway):
    # The failed-auth limit stays out of the way: when it trips (after 20 bad keys from
    # this one address) every later request is a 429, so which (route, code) pairs the
    # first bursts saw would depend on the order the concurrent requests ran in.
    h = await make_gateway(["modzy"], auth={"failed_auth": {"limit": 100_000}})
    tokens: list[str] = []
    for _ in range(6):
        await burst(h, tokens)
    first = series(h)
    for _ in range(6):
        await burst(h, tokens)
    second = series(h)
    assert len(tokens) >= 3000
    counted = sum(
        s.value
        for fam in h.registry.collect()
        if fam.name == "gateway_http_requests"
        for s in fam.samples
        if s.name.endswith("_total")
    )
    assert counted == len(tokens)
    assert second == first, f"new series: {sorted(second - first)[:5]}"

    # Nothing random ever reached a label value.
    values = {v for _, labels in second for _, v in labels}
    leaked = [t for t in tokens if any(t in v for v in values)]
    assert not leaked, leaked[:5]

    # The computed bound: route templates (+ unmatched) x methods (+ other) x codes.
    routes = {r.resource.canonical for r in h.app.router.routes() if r.resource} | {"unmatched"}
    methods = KNOWN_METHODS | {"other"}
    requests = {labels for name, labels in second if name == "gateway_http_requests_total"}
    assert len(requests) <= len(routes) * len(methods) * len(STATUS_CODES)
    for labels in requests:
        d = dict(labels)
        assert d["route"] in routes and d["method"] in methods, d
        assert int(d["code"]) in STATUS_CODES, d
    # Histograms: one series per bucket per (route, method) at most.
    buckets = {
        labels for name, labels in second if name == "gateway_http_request_duration_seconds_bucket"
    }
    assert len(buckets) <= len(routes) * len(methods) * 17
