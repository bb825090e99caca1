"""The result cache port, in memory and in Redis, plus the freshness of job statuses.

A finished job's results never change, so once read they are kept per tenant and job
and served again without asking the provider. A running job's results and status are
kept for a short time only (``status_cache_seconds``), so many polling clients cost
one provider call per interval. Cache failures are soft by contract: a cache that
cannot answer reports a miss, counts the error and logs it at most once per interval.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
import structlog

from adapters.base import ResultSet
from gateway.state.codec import results_from_json, results_to_json
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.redis_store import REDIS_ERRORS

_log = structlog.get_logger("gateway.cache")


class ResultCache(Protocol):
    async def get(self, tenant: str, job_id: str) -> ResultSet | None: ...

    async def put(
        self, tenant: str, job_id: str, results: ResultSet, ttl: float | None = None
    ) -> None:
        """Keep ``results``; ``ttl`` None keeps them for the cache's full lifetime."""
        ...


class Freshness(Protocol):
    """Whether a job's stored status was refreshed from the provider very recently."""

    async def is_fresh(self, job_id: str) -> bool: ...

    async def mark(self, job_id: str, seconds: float) -> None: ...


class CacheErrors:
    """Counts soft cache failures and logs them at most once per interval."""

    def __init__(
        self,
        on_error: Callable[[], None] | None = None,
        interval: float = 10.0,
        event: str = "cache_unavailable",
    ):
        self._on_error = on_error or (lambda: None)
        self._event = event
        self._interval = interval
        self._last_log = float("-inf")
        self._suppressed = 0

    def record(self, where: str, exc: BaseException) -> None:
        self._on_error()
        now = time.monotonic()
        if now - self._last_log >= self._interval:
            _log.warning(
                self._event,
                where=where,
                error=type(exc).__name__,
                suppressed=self._suppressed,
            )
            self._last_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1


class MemoryResultCache:
    """Least-recently-used results, bounded by entry count, with optional expiry."""

    def __init__(self, max_entries: int = 2_000, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[tuple[str, str], tuple[ResultSet, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, tenant: str, job_id: str) -> ResultSet | None:
        key = (tenant, job_id)
        found = self._entries.get(key)
        if found is None:
            return None
        results, expires = found
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return results

    async def put(
        self, tenant: str, job_id: str, results: ResultSet, ttl: float | None = None
    ) -> None:
        expires = float("inf") if ttl is None else self._clock() + ttl
        self._entries[(tenant, job_id)] = (results, expires)
        self._entries.move_to_end((tenant, job_id))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class MemoryFreshness:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000):
        self._until: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._max = max_entries

    async def is_fresh(self, job_id: str) -> bool:
        return self._until.get(job_id, float("-inf")) > self._clock()

    async def mark(self, job_id: str, seconds: float) -> None:
        self._until[job_id] = self._clock() + seconds
        self._until.move_to_end(job_id)
        while len(self._until) > self._max:
            self._until.popitem(last=False)


class RedisResultCache:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        *,
        retention_seconds: int,
        errors: CacheErrors,
        batcher: Batcher | None = None,
    ) -> None:
        self._r = client
        self._keys = keys
        self._retention = retention_seconds
        self._errors = errors
        self._batch = batcher

    async def get(self, tenant: str, job_id: str) -> ResultSet | None:
        key = self._keys.results(tenant, job_id)
        try:
            raw = await (self._batch.execute("GET", key) if self._batch else self._r.get(key))
        except REDIS_ERRORS as exc:
            self._errors.record("results.get", exc)
            return None
        return results_from_json(raw) if raw is not None else None

    async def put(
        self, tenant: str, job_id: str, results: ResultSet, ttl: float | None = None
    ) -> None:
        millis = int((ttl if ttl is not None else self._retention) * 1000)
        if millis <= 0:
            return
        try:
            await self._r.set(
                self._keys.results(tenant, job_id), results_to_json(results), px=millis
            )
        except REDIS_ERRORS as exc:
            self._errors.record("results.put", exc)


class RedisFreshness:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        errors: CacheErrors,
        *,
        batcher: Batcher | None = None,
    ) -> None:
        self._r = client
        self._keys = keys
        self._errors = errors
        self._batch = batcher

    async def is_fresh(self, job_id: str) -> bool:
        # Every read of an unfinished job asks this while the status cache is on.
        key = self._keys.fresh(job_id)
        try:
            return bool(
                await (self._batch.execute("EXISTS", key) if self._batch else self._r.exists(key))
            )
        except REDIS_ERRORS as exc:
            self._errors.record("fresh.get", exc)
            return False

    async def mark(self, job_id: str, seconds: float) -> None:
        millis = int(seconds * 1000)
        if millis <= 0:
            return
        try:
            await self._r.set(self._keys.fresh(job_id), b"1", px=millis)
        except REDIS_ERRORS as exc:
            self._errors.record("fresh.put", exc)
