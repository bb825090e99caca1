"""Caller limits when Redis dies or hangs, in each failure mode (T-L6, T-L7).

Each test owns a throw-away redis-server it can kill, stop (SIGSTOP) and restart, and
a gateway over real HTTP pointed at it. The route is ``GET /v1/models``: it needs the
limiter and nothing else from Redis, so what a test sees is the limiter's doing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.limits.ratelimit import hashed
from gateway.state.keyspace import Keyspace
from tests.conftest import AUTH, Harness
from tests.e2e.replicas import RedisServer

pytestmark = pytest.mark.redis

LIMIT = {"requests": 10, "per_seconds": 60, "burst": 9}  # 10 at once, then one per 6 s
SOCKET_TIMEOUT = 0.25
CONNECT_TIMEOUT = 0.1


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.resume()
    server.stop()


async def gateway(make_gateway, server: RedisServer, mode: str) -> Harness:
    h: Harness = await make_gateway(
        redis={
            "url": server.url(),
            "prefix": "rlf",
            "socket_timeout": SOCKET_TIMEOUT,
            "connect_timeout": CONNECT_TIMEOUT,
        },
        ratelimit={
            "per_key": {"read": LIMIT},
            "failure_mode": mode,
            "replicas": 2,  # the local fallback allows 10 / 2 = 5
            "retry_redis_after_seconds": 0.5,
        },
    )
    return h


def bucket_key() -> str:
    return Keyspace("rlf").rate_bucket("acme", f"k{hashed('acme-svc')}", "read")


async def timed_reads(h: Harness, n: int) -> list[tuple[int, float, Any]]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        resp = await h.client.get("/v1/models", headers=AUTH)
        body = await resp.json(content_type=None)
        out.append((resp.status, time.perf_counter() - started, (resp.headers, body)))
    return out


def sample(h: Harness, name: str, **labels: str) -> float:
    return h.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("mode", ["open", "closed", "local"])
async def test_redis_killed_in_the_middle_of_a_run(
    make_gateway, redis_server, mode, captured_logs, measured
):
    """T-L6: no 500, bounded latency, the mode's behaviour, metered, one log line, and
    enforcement by Redis again within 5 s of its restart."""
    h = await gateway(make_gateway, redis_server, mode)
    before = await timed_reads(h, 3)
    assert [s for s, _, _ in before] == [200] * 3
    with redis_server.client() as c:
        assert c.exists(bucket_key())

    redis_server.kill()
    during = await timed_reads(h, 30)
    statuses = [s for s, _, _ in during]
    latencies = sorted(t for _, t, _ in during)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    measured(
        f"T-L6 [{mode}]: statuses {dict((s, statuses.count(s)) for s in set(statuses))}, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert 500 not in statuses
    assert p99 <= CONNECT_TIMEOUT + 0.020 + 0.030  # + 30 ms for this loaded 2-core box
    if mode == "open":
        assert statuses == [200] * 30
    elif mode == "closed":
        assert statuses == [503] * 30
        for _, _, (headers, body) in during:
            assert body["code"] == "store_unavailable" and int(headers["Retry-After"]) >= 1
    else:
        assert statuses.count(200) in (4, 5, 6)  # the per-replica share, +-1
        assert set(statuses) == {200, 429}
    assert sample(h, "gateway_ratelimit_backend_errors_total") > 0
    assert sample(h, "gateway_ratelimit_fallback_total", mode=mode) >= 30
    warnings = [e for e in captured_logs if e["event"] == "ratelimit_store_unavailable"]
    assert len(warnings) == 1, warnings  # one line per interval, not one per request

    redis_server.start()
    started = time.monotonic()
    while True:
        await timed_reads(h, 1)
        with redis_server.client() as c:
            if c.exists(bucket_key()):  # a decision was made by the script in Redis again
                break
        assert time.monotonic() - started < 5, "enforcement did not resume within 5 s"
        await asyncio.sleep(0.05)
    measured(
        f"T-L6 [{mode}]: Redis deciding again {time.monotonic() - started:.2f} s after restart"
    )


@pytest.mark.parametrize("mode", ["open", "closed", "local"])
async def test_redis_hung_costs_a_request_one_socket_timeout(
    make_gateway, redis_server, mode, measured
):
    """T-L7: with Redis stopped (SIGSTOP), a request waits at most the socket timeout
    (+50 ms), the mode decides, and the event loop keeps answering /healthz meanwhile."""
    h = await gateway(make_gateway, redis_server, mode)
    assert (await h.client.get("/v1/models", headers=AUTH)).status == 200
    redis_server.hang()

    async def health() -> list[float]:
        times = []
        for _ in range(10):
            started = time.perf_counter()
            resp = await h.client.get("/healthz")
            assert resp.status == 200
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        return times

    reads, health_times = await asyncio.gather(timed_reads(h, 5), health())
    slowest = max(t for _, t, _ in reads)
    measured(
        f"T-L7 [{mode}]: slowest read {slowest * 1000:.0f} ms (socket timeout "
        f"{SOCKET_TIMEOUT * 1000:.0f} ms); /healthz median "
        f"{statistics.median(health_times) * 1000:.1f} ms, max {max(health_times) * 1000:.1f} ms"
    )
    # Five reads fit the local share (10 / 2 replicas); closed refuses them all.
    assert [s for s, _, _ in reads] == [503 if mode == "closed" else 200] * 5
    assert slowest <= SOCKET_TIMEOUT + 0.050
    assert statistics.median(health_times) < 0.050
    # Only the first read waited for Redis; the others were decided locally at once.
    assert sorted(t for _, t, _ in reads)[-2] < 0.050
    assert sample(h, "gateway_ratelimit_fallback_total", mode=mode) >= 5
