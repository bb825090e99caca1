"""Every Redis failure the shared state meets is counted, and every call is timed, by component.

A real redis-server (started by the test, then killed with SIGKILL) behind a gateway on
loopback: the job store, the idempotency keys and the result cache each meet the outage
on their own path, and ``gateway_redis_errors_total{component}`` must rise for each.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.observability.metrics import Metrics
from gateway.state.redis_observed import COMPONENTS
from gateway.state.settings import RedisSettings
from tests.conftest import AUTH, Harness
from tests.e2e.replicas import RedisServer

BODY = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def errors(h: Harness, component: str) -> float:
    value = h.registry.get_sample_value("gateway_redis_errors_total", {"component": component})
    assert value is not None, f"no gateway_redis_errors_total series for {component}"
    return value


def calls(h: Harness, component: str) -> float:
    value = h.registry.get_sample_value(
        "gateway_redis_operation_duration_seconds_count", {"component": component}
    )
    assert value is not None, f"no gateway_redis_operation_duration_seconds for {component}"
    return value


async def gateway_on(make_gateway: Any, server: RedisServer) -> Harness:
    redis = RedisSettings(url=server.url(), prefix=f"t{uuid.uuid4().hex[:10]}")
    h: Harness = await make_gateway(["modzy"], redis=redis, status_cache_seconds=1.0)
    return h


class TestRedisMetrics:
    async def test_calls_are_timed_per_component_and_errors_start_at_zero(
        self, make_gateway, redis_server
    ):
        h = await gateway_on(make_gateway, redis_server)
        r = await h.client.post("/v1/jobs", json=BODY, headers={**AUTH, "Idempotency-Key": "k1"})
        assert r.status == 202, await r.text()
        job = await r.json()
        r = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        assert r.status == 200
        for component in COMPONENTS:
            assert calls(h, component) > 0, component
            assert errors(h, component) == 0, component

    async def test_a_killed_redis_is_counted_by_every_component_that_meets_it(
        self, make_gateway, redis_server
    ):
        h = await gateway_on(make_gateway, redis_server)
        c = h.client
        job = await (await c.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        done = await c.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"})
        assert (await done.json())["done"]

        redis_server.kill()

        # The job store: a lookup of an unknown job needs Redis.
        assert (await c.get("/v1/jobs/job_unknown", headers=AUTH)).status == 503
        assert errors(h, "job_store") >= 1
        # Idempotency keys: the claim is the first thing a keyed submit does.
        keyed = {**AUTH, "Idempotency-Key": "after-the-crash"}
        assert (await c.post("/v1/jobs", json=BODY, headers=keyed)).status == 503
        assert errors(h, "idempotency") >= 1
        # The result cache: a soft failure, read through to the provider.
        r = await c.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        assert r.status == 200, await r.text()
        assert errors(h, "cache") >= 1
        cache_errors = h.registry.get_sample_value("gateway_cache_errors_total")
        assert cache_errors is not None and cache_errors >= 1

    async def test_without_redis_no_redis_series_is_exported(self, make_gateway):
        h = await make_gateway(["modzy"])
        text = await (await h.client.get("/metrics")).text()
        assert 'gateway_redis_errors_total{component="' not in text


def test_component_label_values_are_bounded():
    metrics = Metrics()
    metrics.track_redis(COMPONENTS)
    labels = {
        s.labels["component"]
        for family in metrics.registry.collect()
        if family.name.startswith("gateway_redis_")
        for s in family.samples
        if family.name != "gateway_redis_unavailable"  # one process-wide gauge, no labels
    }
    assert labels == set(COMPONENTS) == {"job_store", "idempotency", "cache"}
