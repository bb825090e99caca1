"""T-U6: calls held back by a provider's Retry-After are released without a herd.

The provider (the Modzy simulator on loopback) answers one poll with 503 and
``Retry-After: 2``; the pause goes to Redis, and 500 polls queue behind it. When it
ends they must not arrive at once: at most 10 % of them in its first 100 ms. Without
a configured rate the pacer spreads them at random over ``release_jitter``; with a
rate, the shared schedule releases them one interval apart and fails fast (503) the
ones that could not get a turn within ``max_wait``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.errors import ProviderUnavailable
from adapters.registry import provider_type
from adapters.simulation import Fault
from adapters.upstream import Upstream
from gateway.limits.buckets import RedisBuckets
from gateway.limits.gcra import Quota
from gateway.limits.pacing import Pacer, account_id
from gateway.state.keyspace import Keyspace
from tests.support import wired_adapter

pytestmark = pytest.mark.redis

MODZY = provider_type("modzy")
POLLS = 500


async def herd(
    redis_client: Any, redis_url: str, quota: Quota | None, max_wait: float
) -> dict[str, float]:
    keys = Keyspace(redis_client.test_prefix)
    # 500 reservations at once: a pool that waits for a free connection, where
    # redis-py's default pool (100 connections) would refuse the rest outright.
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=50, timeout=5)
    shared = aioredis.Redis(connection_pool=pool)
    try:
        return await _herd(shared, keys, quota, max_wait)
    finally:
        await shared.aclose()
        await pool.disconnect()


async def _herd(
    shared: aioredis.Redis, keys: Keyspace, quota: Quota | None, max_wait: float
) -> dict[str, float]:
    async with wired_adapter(MODZY) as w:
        account = account_id("modzy", w.base_url, "test")
        pacer = Pacer(
            "modzy",
            bucket_key=keys.pacing(account),
            pause_key=keys.pause(account),
            quota=quota,
            max_wait=max_wait,
            release_jitter=2.0,
            shared=RedisBuckets(shared),
        )
        up = Upstream(w.upstream.settings, pacer=pacer)
        await up.start()
        try:
            w.control.set_faults([Fault(kind="status", status=503, retry_after="2", times=1)])

            async def poll(i: int) -> str:
                try:
                    resp = await up.request("GET", f"/jobs/job-{i}", operation="status")
                except ProviderUnavailable:
                    return "shed"
                return str(resp.status)

            first = asyncio.ensure_future(poll(-1))
            for _ in range(200):  # bounded: until the 503 arrived and paused the provider
                if w.control.requests and w.control.requests[0].status == 503:
                    break
                await asyncio.sleep(0.01)
            paused_until = time.monotonic() + await pacer.paused_for()
            throttled_at = w.control.requests[0].at
            outcomes = await asyncio.wait_for(
                asyncio.gather(first, *(poll(i) for i in range(POLLS))), 30
            )
        finally:
            await up.close()
        arrivals = sorted(r.at for r in w.control.requests[1:])
    inside = sum(1 for t in arrivals if throttled_at < t < paused_until - 0.01)
    first_100ms = sum(1 for t in arrivals if t < paused_until + 0.1)
    return {
        "pause": paused_until - throttled_at,
        "inside": inside,
        "sent": len(arrivals),
        "shed": outcomes.count("shed"),
        "first_100ms": first_100ms,
        "spread": arrivals[-1] - arrivals[0] if arrivals else 0.0,
    }


async def test_without_a_rate_the_release_is_jittered(redis_client, redis_url, measured):
    got = await herd(redis_client, redis_url, quota=None, max_wait=10)
    measured(
        f"T-U6 no rate: {POLLS} polls queued behind a {got['pause']:.2f} s pause; "
        f"{got['inside']:.0f} sent inside it; {got['first_100ms']:.0f} "
        f"({got['first_100ms'] / POLLS:.1%}) in the first 100 ms after it; "
        f"released over {got['spread']:.2f} s"
    )
    assert got["inside"] == 0
    assert got["sent"] == POLLS + 1  # every poll went, after the pause
    assert got["first_100ms"] <= 0.1 * POLLS


async def test_with_a_rate_the_schedule_spreads_them_and_sheds_the_rest(
    redis_client, redis_url, measured
):
    got = await herd(redis_client, redis_url, quota=Quota(rate=200, burst=0), max_wait=3.0)
    measured(
        f"T-U6 at 200/s: {got['sent']:.0f} of {POLLS + 1} polls sent after the pause, "
        f"{got['shed']:.0f} failed fast (no turn within max_wait); {got['inside']:.0f} sent "
        f"inside it; {got['first_100ms']:.0f} in the first 100 ms after it "
        f"(schedule allows 21); released over {got['spread']:.2f} s"
    )
    assert got["inside"] == 0
    assert got["first_100ms"] <= 0.1 * POLLS
    assert got["first_100ms"] <= 200 * 0.1 + 1 + 5  # the schedule, plus loop latency
    assert got["shed"] > 0 and got["sent"] + got["shed"] == POLLS + 1
