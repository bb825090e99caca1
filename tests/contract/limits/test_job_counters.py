"""One suite over the job counters (``gateway.limits.job_limits``): in memory, and the two Lua
scripts on one Redis server and on a three-master cluster, under the gateway's own key
names (``gateway.state.keyspace``: a tenant's counters carry ``{tenant}`` as their hash tag).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.limits.job_limits import DAY, JobCounters, MemoryJobCounters, RedisJobCounters
from gateway.state.keyspace import Keyspace
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis


@dataclass
class Counters:
    counters: JobCounters
    keys: Keyspace
    client: Any = None

    def slots(self, tenant: str = "acme", who: str = "kone") -> str:
        return self.keys.job_slots(tenant, who)

    def daily(self, tenant: str = "acme", provider: str = "modzy") -> str:
        return self.keys.daily_jobs(tenant, provider)


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def c(request) -> AsyncIterator[Counters]:
    if request.param == "memory":
        yield Counters(MemoryJobCounters(), Keyspace("t"))
        return
    url = backend_url(request, request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        yield Counters(RedisJobCounters(client), Keyspace(client.test_prefix), client)


async def test_slots_up_to_the_limit_and_a_held_one_is_not_counted_twice(c):
    key = c.slots()
    taken = [await c.counters.take_slot(key, f"job{i}", 2, 60) for i in range(3)]
    assert [(t.admitted, t.used) for t in taken] == [(True, 1), (True, 2), (False, 2)]
    again = await c.counters.take_slot(key, "job0", 2, 60)
    assert (again.admitted, again.used) == (True, 2)
    assert await c.counters.slots_in_use(key) == 2


async def test_a_slot_given_back_is_free_again(c):
    key = c.slots()
    await c.counters.take_slot(key, "job0", 1, 60)
    assert not (await c.counters.take_slot(key, "job1", 1, 60)).admitted
    await c.counters.give_slot(key, "job0")
    await c.counters.give_slot(key, "never-held")
    assert await c.counters.slots_in_use(key) == 0
    assert (await c.counters.take_slot(key, "job1", 1, 60)).admitted


async def test_slots_are_per_credential_and_per_tenant(c):
    for key in (c.slots("acme", "kone"), c.slots("acme", "ktwo"), c.slots("other", "kone")):
        assert (await c.counters.take_slot(key, "job0", 1, 60)).admitted
    assert await c.counters.slots_in_use(c.slots("acme", "kone")) == 1


async def test_an_abandoned_slot_expires(c):
    key = c.slots()
    await c.counters.take_slot(key, "job0", 1, 0.2)
    assert await c.counters.slots_in_use(key) == 1
    await asyncio.sleep(0.35)
    assert await c.counters.slots_in_use(key) == 0
    assert (await c.counters.take_slot(key, "job1", 1, 60)).admitted


async def test_daily_jobs_up_to_the_limit_and_given_back(c):
    key = c.daily()
    taken = [await c.counters.take_daily(key, 2) for _ in range(3)]
    assert [(t.admitted, t.used) for t in taken] == [(True, 1), (True, 2), (False, 2)]
    today = int(time.time()) // DAY
    assert {t.day for t in taken} <= {today, today + 1}  # a run across midnight
    assert all(0 < t.reset <= DAY for t in taken)
    await c.counters.give_daily(key, taken[0].day - 1)  # another day's: nothing to give
    assert not (await c.counters.take_daily(key, 2)).admitted
    await c.counters.give_daily(key, taken[0].day)
    assert (await c.counters.take_daily(key, 2)).admitted
    # Other tenants and providers count on their own.
    assert (await c.counters.take_daily(c.daily("acme", "vody"), 1)).admitted
    assert (await c.counters.take_daily(c.daily("other"), 1)).admitted


async def test_every_redis_key_has_a_ttl(c):
    if c.client is None:
        return
    await c.counters.take_slot(c.slots(), "job0", 1, 60)
    await c.counters.take_daily(c.daily(), 1)
    keys = [k async for k in c.client.scan_iter(match=f"{c.client.test_prefix}:*")]
    assert len(keys) == 2
    for key in keys:
        assert await c.client.pttl(key) > 0, key
