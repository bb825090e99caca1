"""Result cache, status freshness and idempotency keys: one suite, memory and real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.base import ItemResult, ItemStatus, ResultSet
from adapters.outputs import ClassificationOutput, Factor, FactorsOutput, LabelScore
from gateway.errors import StoreUnavailable
from gateway.state.cache import (
    CacheErrors,
    MemoryFreshness,
    MemoryResultCache,
    RedisFreshness,
    RedisResultCache,
)
from gateway.state.idempotency import MemoryIdempotencyStore, RedisIdempotencyStore
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis

RESULTS = ResultSet(
    items={
        "a": ItemResult(
            input="a",
            status=ItemStatus.SUCCEEDED,
            output=ClassificationOutput(
                label="pos", score=0.9, scores=[LabelScore(label="pos", score=0.9)]
            ),
            raw={"anything": [1, 2]},
        ),
        "b": ItemResult(input="b", status=ItemStatus.PENDING),
    },
    job_outputs=(FactorsOutput(factors=[Factor(id=0, description="d", captured_variance=0.4)]),),
)


@pytest.fixture(params=["memory", *REDIS_BACKENDS, "redis-batched"])
async def backend(request) -> AsyncIterator[dict[str, Any]]:
    if request.param == "memory":
        yield {
            "cache": MemoryResultCache(),
            "fresh": MemoryFreshness(),
            "idem": MemoryIdempotencyStore(ttl_seconds=3600, pending_seconds=60),
        }
        return
    # "redis-batched": one server, the commands going out through the per-turn batcher.
    batched = request.param == "redis-batched"
    url = backend_url(request, "redis" if batched else request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        keys = Keyspace(client.test_prefix)
        errors = CacheErrors()
        batcher = Batcher(client) if batched else None
        yield {
            "cache": RedisResultCache(
                client, keys, retention_seconds=3600, errors=errors, batcher=batcher
            ),
            "fresh": RedisFreshness(client, keys, errors, batcher=batcher),
            "idem": RedisIdempotencyStore(
                client, keys, ttl_seconds=3600, pending_seconds=60, batcher=batcher
            ),
            "client": client,
            "keys": keys,
        }


class TestResultCacheContract:
    async def test_round_trips_whole_and_per_tenant(self, backend):
        cache = backend["cache"]
        await cache.put("acme", "j1", RESULTS)
        assert await cache.get("acme", "j1") == RESULTS
        assert await cache.get("other", "j1") is None
        assert await cache.get("acme", "j2") is None

    async def test_short_lived_entries_expire(self, backend):
        cache = backend["cache"]
        await cache.put("acme", "j1", RESULTS, ttl=0.05)
        assert await cache.get("acme", "j1") == RESULTS
        await asyncio.sleep(0.15)
        assert await cache.get("acme", "j1") is None

    async def test_every_redis_key_has_a_ttl(self, backend):
        if "client" not in backend:
            return
        await backend["cache"].put("acme", "j1", RESULTS)
        await backend["fresh"].mark("j1", 1.0)
        await backend["idem"].claim("acme", "k", "fp")
        client = backend["client"]
        keys = [k async for k in client.scan_iter(match=f"{client.test_prefix}:*")]
        assert len(keys) == 3
        for key in keys:
            assert await client.pttl(key) > 0, key


class TestFreshnessContract:
    async def test_marked_status_is_fresh_for_its_time(self, backend):
        fresh = backend["fresh"]
        assert not await fresh.is_fresh("j1")
        await fresh.mark("j1", 0.1)
        assert await fresh.is_fresh("j1")
        assert not await fresh.is_fresh("j2")
        await asyncio.sleep(0.2)
        assert not await fresh.is_fresh("j1")


class TestIdempotencyContract:
    async def test_new_then_in_flight_then_replay(self, backend):
        idem = backend["idem"]
        assert (await idem.claim("acme", "k1", "fp")).outcome == "new"
        assert (await idem.claim("acme", "k1", "fp")).outcome == "in_flight"
        await idem.complete("acme", "k1", "fp", "job_1")
        replay = await idem.claim("acme", "k1", "fp")
        assert (replay.outcome, replay.job_id) == ("replay", "job_1")

    async def test_a_different_body_is_a_mismatch(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp")
        await idem.complete("acme", "k1", "fp", "job_1")
        assert (await idem.claim("acme", "k1", "other-fp")).outcome == "mismatch"

    async def test_keys_are_per_tenant(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp")
        assert (await idem.claim("other", "k1", "fp")).outcome == "new"

    async def test_a_released_key_can_be_used_again(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp")
        await idem.release("acme", "k1")
        assert (await idem.claim("acme", "k1", "fp2")).outcome == "new"


class TestRedisDown:
    async def test_cache_failures_are_soft_and_counted(self):
        import redis.asyncio as aioredis

        client = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
        seen = []
        errors = CacheErrors(on_error=lambda: seen.append(1), interval=60)
        cache = RedisResultCache(client, Keyspace("x"), retention_seconds=60, errors=errors)
        fresh = RedisFreshness(client, Keyspace("x"), errors)
        assert await cache.get("acme", "j1") is None
        await cache.put("acme", "j1", RESULTS)
        assert not await fresh.is_fresh("j1")
        assert len(seen) == 3
        idem = RedisIdempotencyStore(client, Keyspace("x"), ttl_seconds=60)
        with pytest.raises(StoreUnavailable):
            await idem.claim("acme", "k", "fp")
        await client.aclose()

    def test_cache_errors_log_once_per_interval(self, captured_logs):
        errors = CacheErrors(interval=60)
        for _ in range(50):
            errors.record("results.get", ConnectionError("down"))
        assert len([e for e in captured_logs if e["event"] == "cache_unavailable"]) == 1
