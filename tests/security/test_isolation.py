"""T-A11 (BOLA) and T-A12: another tenant's job id is a 404 everywhere; no admin reach.

Two replicas share one job store and one result cache (as they share Redis in
production), and the attacker asks both, with an API key and with JWTs.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.simulation import SIM_CONTROL
from gateway.clock import SystemClock
from gateway.http.app import create_app
from gateway.state.cache import MemoryResultCache
from gateway.state.store import MemoryJobStore
from tests.conftest import AUTH, OTHER_AUTH, make_settings, provider_settings
from tests.security.support import auth_settings, mint

ATTEMPTS = 10
ROUTES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("GET", "/v1/jobs/{id}", {}),
    ("GET", "/v1/jobs/{id}", {"Prefer": "wait=0.05"}),
    ("GET", "/v1/jobs/{id}/results", {}),
    ("GET", "/v1/jobs/{id}/results?format=csv", {}),
    ("GET", "/v1/jobs/{id}/results?format=ndjson", {}),
    ("GET", "/v1/jobs/{id}/results/review-1", {}),
    ("GET", "/v1/jobs/{id}/events", {}),
    ("GET", "/v1/jobs/{id}/events", {"Last-Event-ID": "0"}),
    ("DELETE", "/v1/jobs/{id}", {}),
)
BODY = {"model": "sentiment", "inputs": [{"name": "review-1", "text": "Great product"}]}


def attackers() -> dict[str, dict[str, str]]:
    return {
        "api-key-other-tenant": OTHER_AUTH,
        "jwt-other-tenant": {"Authorization": f"Bearer {mint(kid='hs', tenant='other')}"},
        "jwt-same-sub-other-tenant": {
            "Authorization": f"Bearer {mint(kid='hs', tenant='acme-eu', scope='admin')}"
        },
    }


def normalised(body: dict[str, Any], job_id: str) -> str:
    body = {k: v for k, v in body.items() if k != "request_id"}
    return re.sub(re.escape(job_id), "ID", json.dumps(body, sort_keys=True))


@pytest.fixture(params=["finished-and-cached", "running"])
async def replicas(request, aiohttp_server):
    fast = request.param == "finished-and-cached"
    sim = create_simulator(
        None,
        SimSettings(queue_seconds=0.02, item_seconds=0.02)
        if fast
        else SimSettings(queue_seconds=30, item_seconds=30),
    )
    server = await aiohttp_server(sim, host="127.0.0.1")
    settings = make_settings(
        [provider_settings("modzy", "modzy", str(server.make_url("/api")).rstrip("/"))],
        auth=auth_settings(),
        status_cache_seconds=0,
    )
    store, cache = (
        MemoryJobStore(retention_seconds=3600, now=SystemClock().now),
        MemoryResultCache(),
    )
    clients = []
    for _ in range(2):
        app = create_app(settings, store=store, cache=cache, registry=CollectorRegistry())
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
    yield fast, clients, sim[SIM_CONTROL]
    for client in clients:
        await client.close()


async def test_another_tenants_job_is_404_on_every_route_replica_and_attempt(replicas):
    fast, (one, two), sim = replicas
    resp = await one.post("/v1/jobs", json=BODY, headers=AUTH)
    job = await resp.json()
    assert resp.status == 202, job
    if fast:
        done = await one.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=5"})
        assert (await done.json())["done"] is True
        for client in (one, two):  # the results are now cached for the owner
            assert (await client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).status == 200
    never_issued = "job_" + secrets.token_urlsafe(16)
    provider_calls = len(sim.requests)
    for who, headers in attackers().items():
        for method, template, extra in ROUTES:
            path = template.format(id=job["id"])
            unknown = await one.request(
                method, template.format(id=never_issued), headers={**headers, **extra}
            )
            expected = normalised(await unknown.json(content_type=None), never_issued)
            for attempt in range(ATTEMPTS):
                client = (one, two)[attempt % 2]
                resp = await client.request(method, path, headers={**headers, **extra})
                text = await resp.text()
                assert resp.status == 404, (who, method, path, text)
                assert normalised(json.loads(text), job["id"]) == expected, (who, path)
                assert "review" not in text and "Great product" not in text
    assert len(sim.requests) == provider_calls, "an attacker's request reached the provider"
    # the owner, by API key or by a JWT of the same tenant, still sees the job on both
    owner_jwt = {"Authorization": f"Bearer {mint(kid='hs', tenant='acme')}"}
    for client in (one, two):
        for headers in (AUTH, owner_jwt):
            assert (await client.get(f"/v1/jobs/{job['id']}", headers=headers)).status == 200


async def test_job_ids_carry_at_least_122_random_bits(make_gateway):
    h = await make_gateway(["modzy"])
    ids = set()
    for _ in range(5):
        ids.add((await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json())["id"])
    assert len(ids) == 5
    for job_id in ids:
        token = job_id.removeprefix("job_")
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", token)
        assert len(token) * 6 >= 128  # token_urlsafe(16): 128 random bits


class TestFunctionLevelAuthorisation:
    async def test_metrics_are_not_routed_on_the_api_port_when_moved(self, make_gateway):
        """T-A12: with metrics_on_main_port off, tenant credentials cannot reach /metrics."""
        from gateway.config.settings import ServerSettings

        h = await make_gateway(["modzy"], server=ServerSettings(metrics_on_main_port=False))
        for headers in ({}, AUTH, {"Authorization": f"Bearer {mint(kid='hs', scope='admin')}"}):
            resp = await h.client.get("/metrics", headers=headers)
            assert resp.status == 404
            assert "gateway_http_requests_total" not in await resp.text()
