"""One suite over both bucket stores: in memory and the Lua script in a real Redis.

Both run on the same fake clock (the script takes ``now`` from the test instead of
Redis's ``TIME``), so their answers must be identical, decision by decision.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.buckets import Buckets, MemoryBuckets, RedisBuckets
from gateway.gcra import MICROS, Quota
from gateway.redis_batch import Batcher


class FakeMicros:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * MICROS

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * MICROS)


@pytest.fixture(params=["memory", "redis", "redis-batched"])
async def store(request, redis_url) -> AsyncIterator[tuple[Buckets, FakeMicros, str]]:
    clock = FakeMicros()
    if request.param == "memory":
        yield MemoryBuckets(now_us=clock), clock, "t"
        return
    from tests.conftest import fresh_redis

    async with fresh_redis(redis_url) as client:
        batcher = Batcher(client) if request.param == "redis-batched" else None
        yield RedisBuckets(client, now_us=clock, batcher=batcher), clock, client.test_prefix


async def test_burst_then_steady_rate(store):
    buckets, clock, p = store
    quota = Quota(rate=10, period=1, burst=4)
    results = [(await buckets.check([(f"{p}:a", quota)]))[0] for _ in range(8)]
    assert results == [True] * 5 + [False] * 3
    admitted, [d] = await buckets.check([(f"{p}:a", quota)])
    assert not admitted and d.remaining == 0 and d.retry_after_us == 100_000
    clock.advance(0.1)
    admitted, [d] = await buckets.check([(f"{p}:a", quota)])
    assert admitted and d.remaining == 0 and d.reset_after_us == 500_000


async def test_several_buckets_are_charged_all_or_nothing(store):
    buckets, _, p = store
    roomy, tight = Quota(rate=100, burst=9), Quota(rate=1, burst=0)
    assert (await buckets.check([(f"{p}:key", roomy), (f"{p}:tenant", tight)]))[0]
    admitted, (key, tenant) = await buckets.check([(f"{p}:key", roomy), (f"{p}:tenant", tight)])
    assert not admitted and key.allowed and not tenant.allowed
    # The refused request charged nothing: the key bucket still has 9 of 10.
    _, [alone] = await buckets.check([(f"{p}:key", roomy)])
    assert alone.remaining == 8


async def test_keys_are_independent(store):
    buckets, _, p = store
    quota = Quota(rate=1, burst=1)
    for _ in range(5):
        await buckets.check([(f"{p}:a", quota)])
    assert (await buckets.check([(f"{p}:b", quota)]))[0]


async def test_reservations_are_spaced_by_the_rate_and_pushed_past_a_pause(store):
    buckets, clock, p = store
    quota = Quota(rate=10, burst=0)
    waits = [await buckets.reserve(f"{p}:pace", f"{p}:pause", quota, 5) for _ in range(3)]
    assert waits == [0, 0.1, 0.2]
    await buckets.pause(f"{p}:pause", 2)
    assert await buckets.paused_for(f"{p}:pause") == pytest.approx(2, abs=0.01)
    # The pause starts now; the first reservation after it goes at its end, the next one
    # an interval later: a paused backlog drains at the rate, not all at once.
    waits = [await buckets.reserve(f"{p}:pace", f"{p}:pause", quota, 5) for _ in range(2)]
    assert waits == [2.0, 2.1]
    assert await buckets.reserve(f"{p}:pace", f"{p}:pause", quota, 1) == pytest.approx(-2.2)
    # Without a rate, only the pause counts.
    assert await buckets.reserve(f"{p}:free", f"{p}:pause", None, 5) == 2.0
    clock.advance(3)
    assert await buckets.reserve(f"{p}:free", f"{p}:pause", None, 5) == 0


async def test_a_pause_is_never_shortened(store):
    buckets, _, p = store
    await buckets.pause(f"{p}:pause", 5)
    await buckets.pause(f"{p}:pause", 1)
    assert await buckets.reserve(f"{p}:x", f"{p}:pause", None, 10) == 5.0


async def test_memory_and_redis_agree_on_random_sequences(redis_url):
    """The Lua script and ``gcra_step`` give identical answers (T-L4 for the script)."""
    from tests.conftest import fresh_redis

    rng = random.Random(20261128)
    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        clock = FakeMicros()
        memory: Any = MemoryBuckets(now_us=clock)
        script: Any = RedisBuckets(client, now_us=clock)
        for trial in range(20):
            quota = Quota(
                rate=rng.randint(1, 50), period=rng.choice([0.5, 1, 7]), burst=rng.randint(0, 9)
            )
            for _ in range(60):
                clock.now += rng.randint(0, 300_000)
                qty = rng.randint(0, quota.limit + 1)
                key = [(f"{p}:{trial}", quota)]
                assert await memory.check(key, qty) == await script.check(key, qty)
                if rng.random() < 0.3:
                    args = (f"{p}:r{trial}", f"{p}:pz{trial}", quota, rng.choice([0, 0.5, 5]))
                    assert await memory.reserve(*args) == await script.reserve(*args)


async def test_without_a_given_clock_the_script_reads_redis_time(redis_url):
    """In service no clock is passed: decisions are timed by Redis, whatever a replica's
    own clock says (the skew test across gateway processes is in tests/e2e)."""
    from tests.conftest import fresh_redis

    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        buckets = RedisBuckets(client)
        quota = Quota(rate=1, period=60, burst=4)
        admitted = [(await buckets.check([(f"{p}:k", quota)]))[0] for _ in range(7)]
        assert admitted == [True] * 5 + [False] * 2
        seconds, micros = await client.time()
        tat = int(await client.get(f"{p}:k"))
        # Five units charged at Redis's "now": the TAT lies five minutes after it.
        assert abs(tat - (seconds * MICROS + micros) - 5 * 60 * MICROS) < 2 * MICROS
