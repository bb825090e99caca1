"""The shared breaker's Redis record: trip, claim, settle and peek, in a real Redis.

The script takes ``now`` from the test (in service it reads Redis's ``TIME``), so each
answer's times are exact. It runs on one server, through the per-turn batcher, and on a
three-master cluster with the gateway's key name for an account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.limits.breaker_record import BreakerRecord
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis


class Millis:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class Records:
    """Records of one account as several replicas hold them (same key, same client)."""

    def __init__(self, client: Any, clock: Millis, batcher: Batcher | None) -> None:
        self.client = client
        self.key = Keyspace(client.test_prefix).breaker("acct")
        self.clock = clock
        self._batcher = batcher

    def replica(self) -> BreakerRecord:
        return BreakerRecord(
            self.client,
            self.key,
            open_seconds=30,
            max_open_seconds=300,
            lease_seconds=10,
            batcher=self._batcher,
            now_ms=self.clock,
        )


@pytest.fixture(params=[*REDIS_BACKENDS, "redis-batched"])
async def records(request) -> AsyncIterator[Records]:
    batched = request.param == "redis-batched"
    url = backend_url(request, "redis" if batched else request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        yield Records(client, Millis(), Batcher(client) if batched else None)


async def test_an_account_never_tripped_is_closed(records):
    state = await records.replica().peek()
    assert (state.verdict, state.version, state.level) == ("closed", 0, 0)
    assert await records.client.exists(records.key) == 0  # a peek writes nothing


async def test_a_trip_opens_for_everyone_and_a_second_trip_follows_the_first(records):
    a, b = records.replica(), records.replica()
    first = await a.trip(0.0)
    assert (first.verdict, first.probe_left, first.level) == ("open", 30.0, 0)
    records.clock.advance(5)
    second = await b.trip(0.1)  # b tripped too: the open time there is already set
    assert (second.verdict, second.probe_left, second.version) == ("open", 25.0, first.version)
    assert (await a.peek()).probe_left == 25.0
    ttl = await records.client.pttl(records.key)
    assert 600_000 < ttl <= 2 * 300_000 + 10_000 + 60_000  # outlives the longest open time


async def test_the_jitter_spreads_the_open_time(records):
    state = await records.replica().trip(-0.1)
    assert state.probe_left == 27.0


async def test_only_one_replica_gets_the_probe(records):
    a, b = records.replica(), records.replica()
    await a.trip(0.0)
    records.clock.advance(29.9)
    early = await a.claim("ta")
    assert early.verdict == "open" and early.probe_left == pytest.approx(0.1)
    records.clock.advance(0.1)
    assert (await a.claim("ta")).verdict == "won"
    busy = await b.claim("tb")
    assert (busy.verdict, busy.lease_left) == ("busy", 10.0)
    assert (await b.peek()).verdict == "busy"


async def test_a_probe_whose_lease_ran_out_is_taken_over(records):
    a, b = records.replica(), records.replica()
    await a.trip(0.0)
    records.clock.advance(30)
    await a.claim("ta")
    records.clock.advance(10)
    assert (await b.claim("tb")).verdict == "won"
    late = await a.settle("ta", "success", 0.0)  # a's verdict no longer counts
    assert late.verdict == "busy"
    closed = await b.settle("tb", "success", 0.0)
    assert closed.verdict == "closed"


async def test_the_probes_success_closes_for_everyone_with_a_newer_version(records):
    a, b = records.replica(), records.replica()
    opened = await a.trip(0.0)
    records.clock.advance(30)
    await b.claim("tb")
    closed = await b.settle("tb", "success", 0.0)
    assert closed.verdict == "closed" and closed.version > opened.version
    assert (await a.peek()).version == closed.version


async def test_the_probes_failure_opens_twice_as_long(records):
    a, b = records.replica(), records.replica()
    opened = await a.trip(0.0)
    records.clock.advance(30)
    await a.claim("ta")
    failed = await a.settle("ta", "failure", 0.0)
    assert (failed.verdict, failed.probe_left, failed.level) == ("open", 60.0, 1)
    assert failed.version > opened.version
    assert (await b.claim("tb")).probe_left == 60.0


async def test_an_abandoned_probe_can_be_claimed_at_once(records):
    a, b = records.replica(), records.replica()
    await a.trip(0.0)
    records.clock.advance(30)
    await a.claim("ta")
    given_back = await a.settle("ta", "abandon", 0.0)
    assert (given_back.verdict, given_back.probe_left) == ("open", 0.0)
    assert (await b.claim("tb")).verdict == "won"


async def test_a_trip_soon_after_a_close_doubles_and_a_late_one_starts_over(records):
    a = records.replica()
    await a.trip(0.0)
    records.clock.advance(30)
    await a.claim("t1")
    await a.settle("t1", "success", 0.0)
    records.clock.advance(100)  # closed for less than max_open_seconds: a flapping provider
    again = await a.trip(0.0)
    assert (again.probe_left, again.level) == (60.0, 1)
    records.clock.advance(60)
    await a.claim("t2")
    await a.settle("t2", "success", 0.0)
    records.clock.advance(301)
    fresh = await a.trip(0.0)
    assert (fresh.probe_left, fresh.level) == (30.0, 0)


async def test_the_open_time_never_passes_the_cap(records):
    a = records.replica()
    await a.trip(0.0)
    for n in range(6):
        records.clock.advance(300)
        await a.claim(f"t{n}")
        failed = await a.settle(f"t{n}", "failure", 0.1)
    assert failed.probe_left == 300.0 and failed.level == 6
