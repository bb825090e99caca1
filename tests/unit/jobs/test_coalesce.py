"""Coalescing: one provider call for many concurrent readers, in one process and across."""

from __future__ import annotations

import asyncio

import pytest

from adapters.errors import ProviderBadResponse
from gateway.errors import GatewayError
from gateway.jobs.coalesce import Coalescer
from gateway.state.keyspace import Keyspace
from tests.conftest import fresh_redis


class Counter:
    def __init__(self, fail: bool = False, delay: float = 0.05) -> None:
        self.calls = 0
        self.fail = fail
        self.delay = delay

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ProviderBadResponse("p", "boom")
        return f"value-{self.calls}"


async def nothing() -> None:
    return None


class TestInProcess:
    async def test_one_call_for_a_hundred_concurrent_readers(self):
        seen = []
        c = Coalescer(on_coalesced=lambda: seen.append(1))
        lead = Counter()
        got = await asyncio.gather(*(c.run("k", lead, nothing) for _ in range(100)))
        assert lead.calls == 1
        assert set(got) == {"value-1"}
        assert len(seen) == 99

    async def test_followers_get_the_leaders_error_and_the_next_call_retries(self):
        c = Coalescer()
        lead = Counter(fail=True)
        results = await asyncio.gather(
            *(c.run("k", lead, nothing) for _ in range(20)), return_exceptions=True
        )
        assert lead.calls == 1
        assert all(isinstance(r, ProviderBadResponse) for r in results)
        lead.fail = False
        assert await c.run("k", lead, nothing) == "value-2"

    async def test_different_keys_do_not_share(self):
        c = Coalescer()
        lead = Counter()
        await asyncio.gather(c.run("a", lead, nothing), c.run("b", lead, nothing))
        assert lead.calls == 2


class TestAcrossReplicas:
    async def test_a_second_replica_follows_the_leader(self, redis_url):
        async with fresh_redis(redis_url) as client:
            keys = Keyspace(client.test_prefix)
            store: dict[str, str] = {}
            a = Coalescer(client=client, keys=keys, lease_seconds=2)
            b = Coalescer(client=client, keys=keys, lease_seconds=2)
            lead_a, lead_b = Counter(delay=0.2), Counter(delay=0.2)

            async def lead_and_store() -> str:
                value = await lead_a()
                store["k"] = value
                return value

            async def follow() -> str | None:
                return store.get("k")

            first = asyncio.ensure_future(a.run("k", lead_and_store, follow))
            await asyncio.sleep(0.05)
            second = await b.run("k", lead_b, follow)
            assert await first == second == "value-1"
            assert (lead_a.calls, lead_b.calls) == (1, 0)

    async def test_a_second_replica_gets_the_leaders_error(self, redis_url):
        async with fresh_redis(redis_url) as client:
            keys = Keyspace(client.test_prefix)
            a = Coalescer(client=client, keys=keys, lease_seconds=2)
            b = Coalescer(client=client, keys=keys, lease_seconds=2)
            lead_a, lead_b = Counter(fail=True, delay=0.2), Counter()
            first = asyncio.ensure_future(a.run("k", lead_a, nothing))
            await asyncio.sleep(0.05)
            with pytest.raises(GatewayError) as info:
                await b.run("k", lead_b, nothing)
            assert (info.value.status, info.value.code) == (502, "provider_error")
            with pytest.raises(ProviderBadResponse):
                await first
            assert lead_b.calls == 0
            # the error is not kept: the next read leads again
            assert await b.run("k", lead_b, nothing) == "value-1"

    async def test_a_new_leader_first_looks_for_what_the_last_one_stored(self, redis_url):
        """Replica B missed just before A stored and released: B must not fetch again."""
        async with fresh_redis(redis_url) as client:
            keys = Keyspace(client.test_prefix)
            store: dict[str, str] = {}
            a = Coalescer(client=client, keys=keys, lease_seconds=2)
            b = Coalescer(client=client, keys=keys, lease_seconds=2)
            lead_a, lead_b = Counter(delay=0.01), Counter(delay=0.01)

            async def lead_and_store() -> str:
                store["k"] = await lead_a()
                return store["k"]

            async def follow() -> str | None:
                return store.get("k")

            # B's own cache check ran before A's flight: B reaches run() with a miss
            # in hand, after A has stored its answer and given the lease back.
            assert await a.run("k", lead_and_store, follow) == "value-1"
            assert await b.run("k", lead_b, follow) == "value-1"
            assert (lead_a.calls, lead_b.calls) == (1, 0)

    async def test_redis_down_degrades_to_leading_locally(self):
        import redis.asyncio as aioredis

        client = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
        c = Coalescer(client=client, keys=Keyspace("x"))
        lead = Counter()
        assert await c.run("k", lead, nothing) == "value-1"
        await client.aclose()
