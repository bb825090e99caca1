"""Choosing where shared state lives: in this process, or in Redis for every replica.

With ``redis.url`` set (one server, a Cluster, or the master a Sentinel names), job
records, results, status freshness and idempotency keys live in Redis (one connection
pool per process), and finished records and results are also kept in process so they
stay readable if Redis fails. Without it, all of them live in this process. The other
wings' shared parts (coalescing leases, limit buckets and counters) are built on the
same client by ``create_app``. Redis-backed components are wrapped
(``gateway.state.redis_observed``) so their latency and failures are metered per component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from gateway.clock import Clock
from gateway.config.settings import ConfigError, Settings
from gateway.observability.metrics import Metrics
from gateway.state.cache import (
    CacheErrors,
    Freshness,
    MemoryFreshness,
    MemoryResultCache,
    RedisFreshness,
    RedisResultCache,
    ResultCache,
)
from gateway.state.idempotency import (
    IdempotencyStore,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
)
from gateway.state.keyspace import Keyspace
from gateway.state.recall import RecallingJobStore
from gateway.state.redis_batch import Batcher, batcher_for
from gateway.state.redis_cluster import BoundedRedisCluster
from gateway.state.redis_gate import GatedRedis, RedisGate
from gateway.state.redis_observed import (
    COMPONENTS,
    ObservedFreshness,
    ObservedIdempotencyStore,
    ObservedJobStore,
    ObservedResultCache,
)
from gateway.state.redis_store import RedisJobStore
from gateway.state.redis_url import SENTINEL_SCHEME, SentinelUrl, parse_sentinel_url
from gateway.state.redis_watch import RedisWatch
from gateway.state.store import JobStore, MemoryJobStore


@dataclass
class Backends:
    store: JobStore
    cache: ResultCache
    local_cache: ResultCache | None
    freshness: Freshness
    idempotency: IdempotencyStore
    redis: aioredis.Redis | None
    #: Where soft failures of the shared state (cache, leases) are counted and logged.
    errors: CacheErrors
    keys: Keyspace
    #: Shares the trips of per-request commands (``gateway.state.redis_batch``).
    batcher: Batcher | None = None
    #: Fails Redis calls at once while Redis is hung or gone (``gateway.state.redis_gate``).
    gate: RedisGate | None = None
    #: The job store again (``store`` is it), as the writer-back of records Redis lost.
    recall: RecallingJobStore | None = None
    #: Redis's persistence (said once, shown in /readyz) and restarts (started by the app).
    watch: RedisWatch | None = None


def _retry() -> Retry:
    # redis-py retries a failed command 10 times with backoff up to 1 s by default: a dead
    # Redis would cost every request seconds. One immediate retry on a broken connection
    # (a pooled socket that died with a Redis restart) reconnects; a timeout is final, so
    # a hung Redis costs a request one socket timeout, as the settings promise.
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def redis_client(settings: Settings, gate: RedisGate | None = None) -> aioredis.Redis:
    """The process's one Redis client (and pool) for ``redis.url``, behind ``gate``
    (a new one if not given; a Cluster client is never gated).

    Raises:
        ConfigError: naming ``redis.url`` if redis-py refuses it (settings check the
            URL first; this keeps a traceback out of ``serve`` whatever slips through).
    """
    r = settings.redis
    assert r.url is not None
    gate = gate or RedisGate()
    options: dict[str, Any] = {
        "socket_timeout": r.socket_timeout,
        "socket_connect_timeout": r.connect_timeout,
        "max_connections": r.max_connections,
        "retry": _retry(),
    }
    try:
        if r.url.lower().startswith(SENTINEL_SCHEME + "://"):
            return _sentinel_master(parse_sentinel_url(r.url), options).attach(gate)
        if r.mode == "cluster":
            # redis-py's RedisCluster, made to wait for a connection and to spend one
            # socket timeout on a hung node, as the standalone client does.
            cluster: aioredis.Redis = BoundedRedisCluster.for_url(r.url, **options)  # type: ignore[assignment]
            return cluster
        # A blocking pool: past max_connections a command waits (up to the socket
        # timeout) for a free connection instead of failing at once with "Too many
        # connections", which under a burst would look like an outage and send every
        # limit decision to its fallback.
        pool = aioredis.BlockingConnectionPool.from_url(r.url, timeout=r.socket_timeout, **options)
        return GatedRedis(connection_pool=pool).attach(gate)
    except (ValueError, TypeError, RedisClusterException) as exc:
        raise ConfigError([("redis.url", str(exc))]) from None


def _sentinel_master(url: SentinelUrl, options: dict[str, Any]) -> GatedRedis:
    """A client of whichever server the sentinels name master; it follows failovers.

    The sentinels get the timeouts only (redis-py's default); the master gets the
    URL's database and credentials too.
    """
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        list(url.sentinels),
        sentinel_kwargs={k: v for k, v in options.items() if k.startswith("socket_")},
    )
    master: GatedRedis = sentinel.master_for(
        url.service_name,
        redis_class=GatedRedis,
        db=url.db,
        username=url.username,
        password=url.password,
        **options,
    )
    return master


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
    gate = None
    if client is None and settings.redis.url is not None:
        gate = RedisGate(on_change=metrics.redis_available)
        client = redis_client(settings, gate)
    if client is None:
        return Backends(
            store=MemoryJobStore(retention_seconds=retention, now=clock.now),
            cache=MemoryResultCache(),
            local_cache=None,
            freshness=MemoryFreshness(clock.monotonic),
            idempotency=MemoryIdempotencyStore(
                ttl_seconds=settings.idempotency_ttl_seconds,
                lease_seconds=settings.submit_lease_seconds,
                clock=clock.monotonic,
            ),
            redis=None,
            errors=errors,
            keys=Keyspace(settings.redis.prefix),
        )
    keys = Keyspace(settings.redis.prefix)
    metrics.track_redis(COMPONENTS)
    # Per-request commands (limit decisions, record reads, a submit's steps) share trips.
    batcher = batcher_for(client)
    records = RedisJobStore(
        client, keys, retention_seconds=retention, now=clock.now, batcher=batcher
    )
    # The records this process wrote are written back if Redis loses them (a restart of
    # a Redis without an append-only file): the watch says when it restarted.
    recall = RecallingJobStore(ObservedJobStore(records, metrics), records)
    watch = RedisWatch(
        client, interval=settings.redis.restart_check_seconds, on_restart=recall.lost
    )
    return Backends(
        store=recall,
        cache=ObservedResultCache(
            RedisResultCache(
                client, keys, retention_seconds=retention, errors=errors, batcher=batcher
            ),
            metrics,
        ),
        local_cache=MemoryResultCache(),
        freshness=ObservedFreshness(RedisFreshness(client, keys, errors, batcher=batcher), metrics),
        idempotency=ObservedIdempotencyStore(
            RedisIdempotencyStore(
                client,
                keys,
                ttl_seconds=settings.idempotency_ttl_seconds,
                lease_seconds=settings.submit_lease_seconds,
                batcher=batcher,
            ),
            metrics,
        ),
        redis=client,
        errors=errors,
        keys=keys,
        batcher=batcher,
        gate=gate,
        recall=recall,
        watch=watch,
    )


async def close_redis(backends: Backends) -> None:
    if backends.gate is not None:
        await backends.gate.close()
    client = backends.redis
    if client is None:
        return
    await client.aclose()
    # A Sentinel master's pool also holds clients of the sentinels themselves. (A
    # RedisCluster has no connection_pool: one pool per node, closed by aclose().)
    pool = getattr(client, "connection_pool", None)
    manager = getattr(pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()
