"""The shared breaker: replicas on one real Redis, one probe among them, and the fallback.

Each "replica" is a ``SharedBreaker`` over its own local breaker; all of them, and the
Redis script, read one fake clock. The background watcher sleeps forever here: the
tests take its step themselves (``sync``), so nothing depends on real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.breaker import PROBE_RETRY_AFTER, BreakerState, CircuitBreaker
from gateway.limits.breaker_record import BreakerRecord
from gateway.limits.shared_breaker import SharedBreaker
from gateway.observability.metrics import Metrics
from gateway.state.keyspace import Keyspace
from tests.support import FakeClock


async def forever(_: float) -> None:
    await asyncio.Event().wait()


class Replicas:
    def __init__(self, client: Any, clock: FakeClock) -> None:
        self.client = client
        self.clock = clock
        self.key = Keyspace(getattr(client, "test_prefix", "t")).breaker("acct")
        self.metrics = Metrics(CollectorRegistry())
        self.metrics.init_provider("p")
        self.built: list[SharedBreaker] = []
        self.moves: list[list[BreakerState]] = []

    def replica(self) -> SharedBreaker:
        moves: list[BreakerState] = []
        local = CircuitBreaker(
            failures=3,
            open_seconds=30,
            max_open_seconds=300,
            jitter=0,
            now=self.clock,
            on_change=moves.append,
        )
        record = BreakerRecord(
            self.client,
            self.key,
            open_seconds=30,
            max_open_seconds=300,
            lease_seconds=10,
            now_ms=lambda: int(self.clock.now * 1000),
        )
        b = SharedBreaker(
            "p",
            local,
            record,
            jitter=0,
            recheck_seconds=0.5,
            observer=self.metrics,
            now=self.clock,
            sleep=forever,
        )
        self.built.append(b)
        self.moves.append(moves)
        return b

    def fallbacks(self) -> float | None:
        return self.metrics.registry.get_sample_value(
            "gateway_circuit_fallback_total", {"provider": "p"}
        )


@pytest.fixture
async def replicas(redis_client) -> AsyncIterator[Replicas]:
    r = Replicas(redis_client, FakeClock())
    yield r
    for b in r.built:
        await b.close()


@pytest.fixture
async def unreachable() -> AsyncIterator[Replicas]:
    """Replicas whose Redis refuses every connection (nothing listens on port 1)."""
    # No retries: redis-py's default backoff would make each refusal take seconds.
    client = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    r = Replicas(client, FakeClock())
    yield r
    for b in r.built:
        await b.close()
    await client.aclose()


def state(b: SharedBreaker) -> BreakerState:
    # A call, not the property: mypy would keep the first assert's narrowing.
    return b.state


async def call(b: SharedBreaker, ok: bool) -> float | None:
    """One attempt: refused (the wait), or sent with the given outcome (None)."""
    wait = await b.admit()
    if wait is None and ok:
        b.success()
    elif wait is None:
        b.failure()
    await b.settled()
    return wait


async def trip(b: SharedBreaker) -> None:
    for _ in range(3):
        assert await call(b, ok=False) is None
    assert state(b) is BreakerState.OPEN


class TestSharing:
    async def test_a_closed_breaker_never_asks_redis(self, unreachable):
        """Calls through a closed breaker succeed with Redis unreachable: none asked it."""
        b = unreachable.replica()
        for _ in range(100):
            assert await call(b, ok=True) is None
        assert unreachable.fallbacks() == 0

    async def test_one_replicas_trip_opens_another_on_its_first_failure(self, replicas):
        a, b = replicas.replica(), replicas.replica()
        await trip(a)
        replicas.clock.advance(5)
        assert await call(b, ok=False) is None  # b's own count is 1 of 3
        assert state(b) is BreakerState.OPEN
        assert await b.admit() == pytest.approx(25.0)  # a's open time, not one of its own
        assert replicas.moves[1] == [BreakerState.OPEN]

    async def test_only_one_replica_probes_and_its_success_closes_the_others(self, replicas):
        a, b, c = replicas.replica(), replicas.replica(), replicas.replica()
        await trip(a)
        for other in (b, c):
            await call(other, ok=False)
        replicas.clock.advance(30)
        assert await a.admit() is None  # the probe
        assert state(a) is BreakerState.HALF_OPEN
        assert await b.admit() == PROBE_RETRY_AFTER
        assert await c.admit() == PROBE_RETRY_AFTER
        assert await a.admit() == PROBE_RETRY_AFTER  # and one probe within a replica
        a.success()
        await a.settled()
        assert state(a) is BreakerState.CLOSED
        await b.sync()  # the watcher's next look, within recheck_seconds
        assert state(b) is BreakerState.CLOSED
        replicas.clock.advance(0.5)  # c's look comes with its next call after the recheck
        assert await c.admit() is None
        assert state(c) is BreakerState.CLOSED
        assert replicas.moves[1] == [BreakerState.OPEN, BreakerState.CLOSED]

    async def test_a_failed_probe_keeps_every_replica_open_twice_as_long(self, replicas):
        a, b = replicas.replica(), replicas.replica()
        await trip(a)
        await call(b, ok=False)
        replicas.clock.advance(30)
        assert await call(a, ok=False) is None
        assert await a.admit() == pytest.approx(60.0)
        await b.sync()
        assert await b.admit() == pytest.approx(60.0)

    async def test_an_abandoned_probe_goes_to_the_next_call_anywhere(self, replicas):
        a, b = replicas.replica(), replicas.replica()
        await trip(a)
        await call(b, ok=False)
        replicas.clock.advance(30)
        assert await a.admit() is None
        a.abandon()  # refused by pacing, say: it never reached the provider
        await a.settled()
        assert await b.admit() is None
        assert state(b) is BreakerState.HALF_OPEN and state(a) is BreakerState.OPEN

    async def test_a_probe_that_never_answers_is_taken_over_when_its_lease_ends(self, replicas):
        a, b = replicas.replica(), replicas.replica()
        await trip(a)
        await call(b, ok=False)
        replicas.clock.advance(30)
        assert await a.admit() is None  # and then the process hangs, or dies
        for _ in range(19):
            replicas.clock.advance(0.5)
            assert await b.admit() is not None
        replicas.clock.advance(0.5)
        assert await b.admit() is None  # the 10 s lease is over
        b.success()
        await b.settled()
        assert state(b) is BreakerState.CLOSED

    async def test_redis_losing_the_trip_leaves_each_replica_to_probe_alone(self, replicas):
        a = replicas.replica()
        await trip(a)
        await replicas.client.delete(replicas.key)  # a restart, a flush
        replicas.clock.advance(30)
        assert await a.admit() is None
        assert await call(a, ok=False) is not None  # still half-open: one probe at a time
        a.failure()
        await a.settled()
        assert await a.admit() == pytest.approx(60.0)
        assert (await replicas.client.hget(replicas.key, "state")) == b"open"


class TestRedisUnreachable:
    async def test_each_replica_falls_back_to_its_own_breaker(self, unreachable, captured_logs):
        b = unreachable.replica()
        await trip(b)
        assert await b.admit() == pytest.approx(30.0)
        unreachable.clock.advance(30)
        assert await b.admit() is None  # its own probe: the claim failed
        b.success()
        await b.settled()
        assert state(b) is BreakerState.CLOSED
        assert unreachable.fallbacks() == 2  # the first failure's look, the claim
        fell_back = [e for e in captured_logs if e["event"] == "circuit_breaker_fallback"]
        assert len(fell_back) == 2 and fell_back[0]["provider"] == "p"

    async def test_after_a_failure_redis_rests_and_the_breaker_does_not_wait_on_it(
        self, unreachable
    ):
        b = unreachable.replica()
        await trip(b)
        unreachable.clock.advance(30)
        assert await b.admit() is None
        b.failure()  # the probe failed: written nowhere, Redis is resting
        await b.settled()
        assert unreachable.fallbacks() == 2
        assert await b.admit() == pytest.approx(60.0)
        await b.sync()  # resting: the watcher does not ask either
        assert unreachable.fallbacks() == 2
