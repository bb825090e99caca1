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


#: The idempotency lease in these tests: long enough for a loaded box, short to wait out.
LEASE = 0.3


@pytest.fixture(params=["memory", *REDIS_BACKENDS, "redis-batched"])
async def backend(request) -> AsyncIterator[dict[str, Any]]:
    if request.param == "memory":
        yield {
            "cache": MemoryResultCache(),
            "fresh": MemoryFreshness(),
            "idem": MemoryIdempotencyStore(
                ttl_seconds=3600, lease_seconds=LEASE, pending_seconds=60
            ),
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
                client,
                keys,
                ttl_seconds=3600,
                lease_seconds=LEASE,
                pending_seconds=60,
                batcher=batcher,
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
        await backend["idem"].claim("acme", "k", "fp", "job_a")
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
        assert (await idem.claim("acme", "k1", "fp", "job_1")).outcome == "new"
        assert (await idem.claim("acme", "k1", "fp", "job_2")).outcome == "in_flight"
        assert await idem.complete("acme", "k1", "fp", "job_1", "job_1")
        replay = await idem.claim("acme", "k1", "fp", "job_3")
        assert (replay.outcome, replay.job_id) == ("replay", "job_1")

    async def test_a_different_body_is_a_mismatch(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        assert (await idem.claim("acme", "k1", "other-fp", "job_2")).outcome == "mismatch"
        await idem.complete("acme", "k1", "fp", "job_1", "job_1")
        assert (await idem.claim("acme", "k1", "other-fp", "job_2")).outcome == "mismatch"

    async def test_keys_are_per_tenant(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        assert (await idem.claim("other", "k1", "fp", "job_2")).outcome == "new"

    async def test_a_released_key_can_be_used_again(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        await idem.release("acme", "k1", "job_1")
        assert (await idem.claim("acme", "k1", "fp2", "job_2")).outcome == "new"

    async def test_a_lapsed_lease_is_taken_over_naming_the_job_its_owner_planned(self, backend):
        """The owner died mid-submit: after its lease, the next claim owns the key and
        learns which job the dead owner planned (its record may exist)."""
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_dead")
        await asyncio.sleep(LEASE + 0.1)
        taken = await idem.claim("acme", "k1", "fp", "job_new")
        assert (taken.outcome, taken.taken_over) == ("new", "job_dead")
        assert (await idem.claim("acme", "k1", "fp", "job_3")).outcome == "in_flight"
        # The old owner, had it only stalled, can neither renew, complete nor drop it.
        assert not await idem.renew("acme", "k1", "job_dead")
        assert not await idem.complete("acme", "k1", "fp", "job_dead", "job_dead")
        await idem.release("acme", "k1", "job_dead")
        assert (await idem.claim("acme", "k1", "fp", "job_3")).outcome == "in_flight"
        assert await idem.complete("acme", "k1", "fp", "job_new", "job_new")
        replay = await idem.claim("acme", "k1", "fp", "job_4")
        assert (replay.outcome, replay.job_id) == ("replay", "job_new")

    async def test_a_renewed_lease_is_not_taken_over(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        for _ in range(4):
            await asyncio.sleep(LEASE / 2)
            assert await idem.renew("acme", "k1", "job_1")
        assert (await idem.claim("acme", "k1", "fp", "job_2")).outcome == "in_flight"

    async def test_a_completed_key_is_never_taken_over(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        await idem.complete("acme", "k1", "fp", "job_1", "job_1")
        await asyncio.sleep(LEASE + 0.1)
        assert not await idem.renew("acme", "k1", "job_1")
        replay = await idem.claim("acme", "k1", "fp", "job_2")
        assert (replay.outcome, replay.job_id, replay.taken_over) == ("replay", "job_1", None)

    async def test_replacing_a_job_whose_record_is_gone_lets_one_claim_through(self, backend):
        idem = backend["idem"]
        await idem.claim("acme", "k1", "fp", "job_1")
        await idem.complete("acme", "k1", "fp", "job_1", "job_1")
        first = await idem.claim("acme", "k1", "fp", "job_2", replacing="job_1")
        second = await idem.claim("acme", "k1", "fp", "job_3", replacing="job_1")
        assert (first.outcome, first.taken_over) == ("new", None)
        assert second.outcome == "in_flight"


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
            await idem.claim("acme", "k", "fp", "job_1")
        await client.aclose()

    def test_cache_errors_log_once_per_interval(self, captured_logs):
        errors = CacheErrors(interval=60)
        for _ in range(50):
            errors.record("results.get", ConnectionError("down"))
        assert len([e for e in captured_logs if e["event"] == "cache_unavailable"]) == 1
