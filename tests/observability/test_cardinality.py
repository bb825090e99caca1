"""T-O2: thousands of requests with random paths, ids, keys and tenants leave the series bounded.

Each burst sends the same classes of request (every path shape x method x credential
kind) with fresh random values. If any label carried a path, id or key, every burst
would add series; bounded labels mean the second burst adds none, and the total stays
within the bound computed from the route table, the method list and the status codes.

Tenants are labels only where ``metrics.tenant_labels`` allows: 10,000 requests from
keys of hundreds of random tenants (configured as API keys) leave
``gateway_tenant_requests_total`` within ``max_tenant_labels + 1`` series.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets

import pytest

from gateway.auth.settings import ApiKeySettings, hash_api_key
from gateway.observability.metrics import KNOWN_METHODS
from gateway.observability.settings import MetricsSettings
from tests.conftest import AUTH, KEY, MINTED, Harness, api_keys

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


#: Tenants (and their keys) made up for the tenant-label tests, far more than the cap.
RANDOM_TENANTS = 300
CAP = 12
LISTED = ("acme", "other-listed")


def random_tenant_keys(n: int) -> dict[str, str]:
    """API key -> tenant, for ``n`` tenants nobody listed; the keys join the log guard."""
    keys = {f"rk-{secrets.token_urlsafe(18)}": f"t-{secrets.token_hex(6)}" for _ in range(n)}
    MINTED.update(keys)
    return keys


def key_settings(keys: dict[str, str]) -> list[ApiKeySettings]:
    return [
        ApiKeySettings(id=f"rk{i}", sha256=hash_api_key(k), tenant=t, scopes=["jobs:read"])
        for i, (k, t) in enumerate(keys.items())
    ]


async def tenant_traffic(h: Harness, keys: list[str], total: int) -> None:
    """``total`` authenticated reads, each with a key picked at random (404s: cheap)."""
    sem = asyncio.Semaphore(48)
    rng = random.Random()

    async def one(key: str) -> None:
        async with sem:
            path = f"/v1/jobs/job_{secrets.token_hex(4)}" if rng.random() < 0.8 else "/v1/jobs"
            resp = await h.client.get(path, headers={"X-API-Key": key})
            assert resp.status in (200, 404), resp.status
            await resp.read()

    await asyncio.gather(*(one(rng.choice(keys)) for _ in range(total)))


def tenant_series(h: Harness) -> dict[str, float]:
    return {
        s.labels["tenant"]: s.value
        for fam in h.registry.collect()
        if fam.name == "gateway_tenant_requests"
        for s in fam.samples
        if s.name == "gateway_tenant_requests_total"
    }


@pytest.mark.timeout(120)
async def test_random_tenants_stay_within_the_tenant_label_cap(make_gateway):
    """10,000 requests from 300 random tenants: at most CAP labels of their own + other."""
    random_keys = random_tenant_keys(RANDOM_TENANTS)
    listed_key = f"rk-{secrets.token_urlsafe(18)}"
    MINTED.add(listed_key)
    h = await make_gateway(
        ["modzy"],
        api_keys=[*api_keys(), *key_settings(random_keys | {listed_key: "other-listed"})],
        metrics=MetricsSettings(tenant_labels=(*LISTED, "*"), max_tenant_labels=CAP),
    )
    await tenant_traffic(h, [*random_keys, KEY, listed_key], 10_000)

    counts = tenant_series(h)
    assert sum(counts.values()) == 10_000
    assert len(counts) <= CAP + 1, sorted(counts)
    # The listed tenants always have their own label; "*" filled the rest of the cap with
    # tenants first seen, and every later tenant went to the overflow bucket.
    assert set(LISTED) <= counts.keys()
    assert len(counts.keys() - {"other"}) == CAP
    assert counts["other"] > 0
    assert counts.keys() - {"other"} <= {*LISTED, *random_keys.values()}
    # The other metrics never name a tenant.
    values = {v for _, labels in series(h) for k, v in labels if k != "tenant"}
    assert not values & set(random_keys.values())


async def test_only_listed_tenants_get_a_label(make_gateway):
    random_keys = random_tenant_keys(50)
    h = await make_gateway(
        ["modzy"],
        api_keys=[*api_keys(), *key_settings(random_keys)],
        metrics=MetricsSettings(tenant_labels=("acme",), max_tenant_labels=CAP),
    )
    await tenant_traffic(h, [*random_keys, KEY], 1_000)
    counts = tenant_series(h)
    assert counts.keys() == {"acme", "other"}
    assert sum(counts.values()) == 1_000


async def test_by_default_no_tenant_is_a_label(make_gateway):
    h = await make_gateway(["modzy"])
    await tenant_traffic(h, [KEY], 20)
    assert tenant_series(h) == {"other": 20}
