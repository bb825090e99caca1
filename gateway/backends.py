"""Choosing where shared state lives: in this process, or in Redis for every replica.

With ``redis.url`` set, job records, results, status freshness, idempotency keys,
coalescing leases and the limit buckets and counters live in Redis (one connection
pool per process), and finished records and results are also kept in process so they
stay readable if Redis fails. Without it, all of them live in this process.
Redis-backed components are wrapped (``gateway.redis_observed``) so their latency and
failures are metered per component.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from gateway.buckets import Buckets, RedisBuckets
from gateway.cache import (
    CacheErrors,
    Freshness,
    MemoryFreshness,
    MemoryResultCache,
    RedisFreshness,
    RedisResultCache,
    ResultCache,
)
from gateway.clock import Clock
from gateway.coalesce import Coalescer
from gateway.idempotency import IdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore
from gateway.job_limits import JobCounters, RedisJobCounters
from gateway.keyspace import Keyspace
from gateway.metrics import Metrics
from gateway.redis_observed import (
    COMPONENTS,
    ObservedFreshness,
    ObservedIdempotencyStore,
    ObservedJobStore,
    ObservedResultCache,
)
from gateway.redis_store import RedisJobStore
from gateway.settings import Settings
from gateway.store import JobStore, MemoryJobStore


@dataclass
class Backends:
    store: JobStore
    cache: ResultCache
    local_cache: ResultCache | None
    freshness: Freshness
    idempotency: IdempotencyStore
    coalescer: Coalescer
    redis: aioredis.Redis | None
    #: Shared limit buckets and job counters (None: in this process only).
    buckets: Buckets | None = None
    counters: JobCounters | None = None


def redis_client(settings: Settings) -> aioredis.Redis:
    r = settings.redis
    assert r.url is not None
    options = {
        "socket_timeout": r.socket_timeout,
        "socket_connect_timeout": r.connect_timeout,
        "max_connections": r.max_connections,
    }
    if r.mode == "cluster":
        cluster: aioredis.Redis = RedisCluster.from_url(r.url, **options)  # type: ignore[assignment]
        return cluster
    return aioredis.from_url(r.url, **options)


def build_backends(
    settings: Settings,
    clock: Clock,
    metrics: Metrics,
    *,
    client: aioredis.Redis | None = None,
) -> Backends:

    def cache_error() -> None:
        metrics.cache_error()
        metrics.redis_error("cache")

    errors = CacheErrors(on_error=cache_error)
    retention = settings.job_retention_seconds
    if client is None and settings.redis.url is not None:
        client = redis_client(settings)
    if client is None:
        return Backends(
            store=MemoryJobStore(retention_seconds=retention, now=clock.now),
            cache=MemoryResultCache(),
            local_cache=None,
            freshness=MemoryFreshness(clock.monotonic),
            idempotency=MemoryIdempotencyStore(
                ttl_seconds=settings.idempotency_ttl_seconds, clock=clock.monotonic
            ),
            coalescer=Coalescer(on_coalesced=metrics.coalesced),
            redis=None,
        )
    keys = Keyspace(settings.redis.prefix)
    metrics.track_redis(COMPONENTS)
    return Backends(
        store=ObservedJobStore(
            RedisJobStore(client, keys, retention_seconds=retention, now=clock.now), metrics
        ),
        cache=ObservedResultCache(
            RedisResultCache(client, keys, retention_seconds=retention, errors=errors), metrics
        ),
        local_cache=MemoryResultCache(),
        freshness=ObservedFreshness(RedisFreshness(client, keys, errors), metrics),
        idempotency=ObservedIdempotencyStore(
            RedisIdempotencyStore(client, keys, ttl_seconds=settings.idempotency_ttl_seconds),
            metrics,
        ),
        coalescer=Coalescer(
            client=client,
            keys=keys,
            lease_seconds=settings.redis.lease_seconds,
            errors=errors,
            on_coalesced=metrics.coalesced,
        ),
        redis=client,
        buckets=RedisBuckets(client),
        counters=RedisJobCounters(client),
    )


async def close_redis(app: web.Application, client: aioredis.Redis | None) -> None:
    if client is not None:
        await client.aclose()
