"""One suite over both bucket stores: in memory and the Lua script in a real Redis.

Both run on the same fake clock (the script takes ``now`` from the test instead of
Redis's ``TIME``), so their answers must be identical, decision by decision. The script
runs on one Redis server and on a three-master cluster, with the key names the gateway
uses (``gateway.state.keyspace``): the keys one script call takes must share a hash slot.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.limits.buckets import Buckets, MemoryBuckets, RedisBuckets
from gateway.limits.gcra import MICROS, Quota
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis


class FakeMicros:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * MICROS

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * MICROS)


class Names:
    """The gateway's key names under a test prefix: a tenant's rate buckets (one hash tag,
    ``{acme}``), and a provider account's pacing bucket and pause (``{acct}``)."""

    def __init__(self, prefix: str) -> None:
        keys = Keyspace(prefix)
        self.key = keys.rate_bucket("acme", "kkey", "rps")
        self.other_key = keys.rate_bucket("acme", "kother", "rps")
        self.tenant = keys.rate_bucket("acme", "tenant", "rps")
        self.pace = keys.pacing("acct")
        self.pause = keys.pause("acct")
        self._keys = keys

    def bucket(self, n: int | str) -> str:
        return self._keys.rate_bucket(f"t{n}", "tenant", "rps")

    def account(self, n: int | str) -> tuple[str, str]:
        return self._keys.pacing(f"a{n}"), self._keys.pause(f"a{n}")


@pytest.fixture(params=["memory", *REDIS_BACKENDS, "redis-batched"])
async def store(request) -> AsyncIterator[tuple[Buckets, FakeMicros, Names]]:
    clock = FakeMicros()
    if request.param == "memory":
        yield MemoryBuckets(now_us=clock), clock, Names("t")
        return
    # "redis-batched": one server, the commands going out through the per-turn batcher.
    batched = request.param == "redis-batched"
    url = backend_url(request, "redis" if batched else request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        batcher = Batcher(client) if batched else None
        buckets = RedisBuckets(client, now_us=clock, batcher=batcher)
        yield buckets, clock, Names(client.test_prefix)


async def test_burst_then_steady_rate(store):
    buckets, clock, n = store
    quota = Quota(rate=10, period=1, burst=4)
    results = [(await buckets.check([(n.key, quota)]))[0] for _ in range(8)]
    assert results == [True] * 5 + [False] * 3
    admitted, [d] = await buckets.check([(n.key, quota)])
    assert not admitted and d.remaining == 0 and d.retry_after_us == 100_000
    clock.advance(0.1)
    admitted, [d] = await buckets.check([(n.key, quota)])
    assert admitted and d.remaining == 0 and d.reset_after_us == 500_000


async def test_several_buckets_are_charged_all_or_nothing(store):
    buckets, _, n = store
    roomy, tight = Quota(rate=100, burst=9), Quota(rate=1, burst=0)
    assert (await buckets.check([(n.key, roomy), (n.tenant, tight)]))[0]
    admitted, (key, tenant) = await buckets.check([(n.key, roomy), (n.tenant, tight)])
    assert not admitted and key.allowed and not tenant.allowed
    # The refused request charged nothing: the key bucket still has 9 of 10.
    _, [alone] = await buckets.check([(n.key, roomy)])
    assert alone.remaining == 8


async def test_keys_are_independent(store):
    buckets, _, n = store
    quota = Quota(rate=1, burst=1)
    for _ in range(5):
        await buckets.check([(n.key, quota)])
    assert (await buckets.check([(n.other_key, quota)]))[0]


async def test_reservations_are_spaced_by_the_rate_and_pushed_past_a_pause(store):
    buckets, clock, n = store
    quota = Quota(rate=10, burst=0)
    waits = [await buckets.reserve(n.pace, n.pause, quota, 5) for _ in range(3)]
    assert waits == [0, 0.1, 0.2]
    await buckets.pause(n.pause, 2)
    assert await buckets.paused_for(n.pause) == pytest.approx(2, abs=0.01)
    # The pause starts now; the first reservation after it goes at its end, the next one
    # an interval later: a paused backlog drains at the rate, not all at once.
    waits = [await buckets.reserve(n.pace, n.pause, quota, 5) for _ in range(2)]
    assert waits == [2.0, 2.1]
    assert await buckets.reserve(n.pace, n.pause, quota, 1) == pytest.approx(-2.2)
    # Without a rate, only the pause counts.
    assert await buckets.reserve(n.pace, n.pause, None, 5) == 2.0
    clock.advance(3)
    assert await buckets.reserve(n.pace, n.pause, None, 5) == 0


async def test_a_pause_is_never_shortened(store):
    buckets, _, n = store
    await buckets.pause(n.pause, 5)
    await buckets.pause(n.pause, 1)
    assert await buckets.reserve(n.pace, n.pause, None, 10) == 5.0


@pytest.mark.parametrize("backend", REDIS_BACKENDS)
async def test_memory_and_redis_agree_on_random_sequences(request, backend):
    """The Lua script and ``gcra_step`` give identical answers (T-L4 for the script)."""
    rng = random.Random(20261128)
    async with fresh_redis(backend_url(request, backend), cluster=backend == "cluster") as client:
        n = Names(client.test_prefix)
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
                key = [(n.bucket(trial), quota)]
                assert await memory.check(key, qty) == await script.check(key, qty)
                if rng.random() < 0.3:
                    args = (*n.account(trial), quota, rng.choice([0, 0.5, 5]))
                    assert await memory.reserve(*args) == await script.reserve(*args)


@pytest.mark.parametrize("backend", REDIS_BACKENDS)
async def test_without_a_given_clock_the_script_reads_redis_time(request, backend):
    """In service no clock is passed: decisions are timed by Redis, whatever a replica's
    own clock says (the skew test across gateway processes is in tests/e2e)."""
    async with fresh_redis(backend_url(request, backend), cluster=backend == "cluster") as client:
        n = Names(client.test_prefix)
        buckets = RedisBuckets(client)
        quota = Quota(rate=1, period=60, burst=4)
        admitted = [(await buckets.check([(n.key, quota)]))[0] for _ in range(7)]
        assert admitted == [True] * 5 + [False] * 2
        seconds, micros = await client.time()
        tat = int(await client.get(n.key))
        # Five units charged at Redis's "now": the TAT lies five minutes after it.
        assert abs(tat - (seconds * MICROS + micros) - 5 * 60 * MICROS) < 2 * MICROS
