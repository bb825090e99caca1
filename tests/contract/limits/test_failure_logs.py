"""One suite over the failed-authentication logs (``gateway.auth.failed_auth``): in memory,
and the Lua script (``gateway.limits.auth_failures``) on one Redis server and on a
three-master cluster, under the gateway's own key names, on one fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.auth.failed_auth import FailureLog, MemoryFailureLog
from gateway.limits.auth_failures import RedisFailureLog
from gateway.limits.ratelimit import SharedLimits
from gateway.limits.settings import RateLimitSettings
from gateway.state.keyspace import Keyspace
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis

LIMIT = 3
WINDOW = 60.0
KNOWN = 600.0


class FakeMillis:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def seconds(self) -> float:
        return self.ms / 1000

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


class QuietObserver:
    def ratelimit_decision(self, policy: str, outcome: str) -> None: ...

    def ratelimit_fallback(self, mode: str) -> None: ...

    def ratelimit_backend_error(self) -> None: ...


@dataclass
class Log:
    log: FailureLog
    clock: FakeMillis
    client: Any = None


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def f(request) -> AsyncIterator[Log]:
    clock = FakeMillis()
    if request.param == "memory":
        memory = MemoryFailureLog(
            clock.seconds, limit=LIMIT, window=WINDOW, max_tracked=100, known_seconds=KNOWN
        )
        yield Log(memory, clock)
        return
    url = backend_url(request, request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        guard = SharedLimits(RateLimitSettings(), QuietObserver(), shared=True)
        log = RedisFailureLog(
            client,
            Keyspace(client.test_prefix),
            guard,
            limit=LIMIT,
            window=WINDOW,
            known_seconds=KNOWN,
            now_ms=lambda: clock.ms,
        )
        yield Log(log, clock, client)


async def charges(f: Log, n: int, address: str = "198.51.100.7", digest: str = "d0") -> list[Any]:
    return [await f.log.charge(address, digest, f"t{i}") for i in range(n)]


async def test_the_limit_at_once_then_refused_until_the_oldest_leaves_the_window(f):
    got = await charges(f, LIMIT + 1)
    assert [c.admitted for c in got] == [True] * LIMIT + [False]
    assert all(c.reserved and not c.known for c in got[:LIMIT])
    assert got[-1].retry_after == pytest.approx(WINDOW)
    f.clock.advance(WINDOW - 1)
    refused = await f.log.charge("198.51.100.7", "d0", "late")
    assert not refused.admitted and refused.retry_after == pytest.approx(1)
    f.clock.advance(1)
    assert [c.admitted for c in await charges(f, LIMIT + 1)] == [True] * LIMIT + [False]


async def test_a_sliding_window_never_holds_more_than_the_limit(f):
    """One attempt a second for three windows: the limit per window, never a burst and
    then a steady rate on top of it (the GCRA behaviour this replaced let 2x through)."""
    admitted_at: list[float] = []
    for second in range(int(3 * WINDOW)):
        charge = await f.log.charge("198.51.100.7", "d0", f"t{second}")
        if charge.admitted:
            admitted_at.append(second)
        f.clock.advance(1)
    assert len(admitted_at) == 3 * LIMIT
    for start in range(int(3 * WINDOW)):
        assert sum(start <= t < start + WINDOW for t in admitted_at) <= LIMIT


async def test_a_charge_settled_is_given_back(f):
    await charges(f, LIMIT)
    assert await f.log.settle("198.51.100.7", "t1", None)
    assert (await f.log.charge("198.51.100.7", "d0", "again")).admitted
    assert not (await f.log.charge("198.51.100.7", "d0", "over")).admitted


async def test_a_credential_known_good_is_admitted_over_the_limit_and_only_there(f):
    first = await f.log.charge("198.51.100.7", "good", "t-good")
    assert first.reserved
    assert await f.log.settle("198.51.100.7", "t-good", "good")
    await charges(f, LIMIT + 2)
    known = await f.log.charge("198.51.100.7", "good", "t-known")
    assert known.admitted and known.known and not known.reserved
    assert not (await f.log.charge("198.51.100.7", "never-good", "t-new")).admitted
    # known good from that address only, and for a while only
    assert (await f.log.charge("203.0.113.9", "good", "t-elsewhere")).reserved
    f.clock.advance(KNOWN + 1)
    assert not (await f.log.charge("198.51.100.7", "good", "t-later")).known


async def test_a_known_credential_that_fails_is_forgotten_and_counted(f):
    await f.log.settle("198.51.100.7", None, "good")
    assert await f.log.fail("198.51.100.7", "good", "t-failed")
    assert not (await f.log.charge("198.51.100.7", "good", "t-next")).known
    # the failure counted: with the charge just taken, one more reaches the limit
    got = await charges(f, LIMIT - 1)
    assert [c.admitted for c in got] == [True] * (LIMIT - 2) + [False]


async def test_addresses_count_on_their_own(f):
    await charges(f, LIMIT + 1)
    assert (await f.log.charge("2001:db8::1", "d0", "t0")).admitted


async def test_every_redis_key_has_a_ttl_and_no_address_in_its_name(f):
    if f.client is None:
        return
    await charges(f, 1)
    await f.log.settle("198.51.100.7", None, "good")
    keys = [k async for k in f.client.scan_iter(match=f"{f.client.test_prefix}:*")]
    assert len(keys) == 2
    for key in keys:
        assert b"198.51.100.7" not in key
        assert await f.client.pttl(key) > 0, key
