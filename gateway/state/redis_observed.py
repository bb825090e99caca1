"""Redis latency and failures per shared-state component, measured around each store call.

The Redis-backed job store, idempotency store, result cache and status freshness are
wrapped in thin decorators that time every call and count the failures it meets, under
a bounded ``component`` label (``COMPONENTS``). Timing the store call, not the socket,
keeps this independent of redis-py's internals and of standalone versus cluster mode:
one call is one command, pipeline or script, except a job listing, which may take a
few round trips.

Failures are seen where each component already turns them into its own outcome: the
job and idempotency stores raise ``StoreUnavailable`` (503), the cache reports a miss
through ``CacheErrors`` (which the backends wire to ``Metrics.redis_error``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal, Protocol

from adapters.base import JobStatus, ResultSet
from gateway.errors import StoreUnavailable
from gateway.state.cache import Freshness, ResultCache
from gateway.state.idempotency import Claim, IdempotencyStore
from gateway.state.store import JobPage, JobRecord, JobStore

Component = Literal["job_store", "idempotency", "cache"]
#: Every value the ``component`` label takes.
COMPONENTS: Final[tuple[Component, ...]] = ("job_store", "idempotency", "cache")


class RedisObserver(Protocol):
    def redis_operation(self, component: str, seconds: float) -> None: ...

    def redis_error(self, component: str) -> None: ...


class _Timed:
    def __init__(self, observer: RedisObserver, component: Component) -> None:
        self._observer = observer
        self._component = component

    @contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except StoreUnavailable:
            self._observer.redis_error(self._component)
            raise
        finally:
            self._observer.redis_operation(self._component, time.perf_counter() - start)


class ObservedJobStore(_Timed):
    """A ``JobStore`` whose calls are timed and whose Redis failures are counted."""

    def __init__(self, inner: JobStore, observer: RedisObserver) -> None:
        super().__init__(observer, "job_store")
        self._inner = inner

    async def create(self, record: JobRecord) -> None:
        with self._timed():
            await self._inner.create(record)

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        with self._timed():
            return await self._inner.get(tenant, job_id)

    async def update(self, record: JobRecord) -> None:
        with self._timed():
            await self._inner.update(record)

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        provider: str | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        with self._timed():
            return await self._inner.list(
                tenant, status=status, provider=provider, page_size=page_size, cursor=cursor
            )

    async def ping(self) -> None:
        with self._timed():
            await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()


class ObservedIdempotencyStore(_Timed):
    """An ``IdempotencyStore`` whose calls are timed and whose Redis failures are counted."""

    def __init__(self, inner: IdempotencyStore, observer: RedisObserver) -> None:
        super().__init__(observer, "idempotency")
        self._inner = inner
        self.lease_seconds = inner.lease_seconds

    async def claim(
        self, tenant: str, key: str, fingerprint: str, owner: str, *, replacing: str | None = None
    ) -> Claim:
        with self._timed():
            return await self._inner.claim(tenant, key, fingerprint, owner, replacing=replacing)

    async def renew(self, tenant: str, key: str, owner: str) -> bool:
        with self._timed():
            return await self._inner.renew(tenant, key, owner)

    async def complete(
        self, tenant: str, key: str, fingerprint: str, job_id: str, owner: str
    ) -> bool:
        with self._timed():
            return await self._inner.complete(tenant, key, fingerprint, job_id, owner)

    async def release(self, tenant: str, key: str, owner: str) -> None:
        with self._timed():
            await self._inner.release(tenant, key, owner)


class ObservedResultCache(_Timed):
    """A ``ResultCache`` whose calls are timed (its failures are soft: see ``CacheErrors``)."""

    def __init__(self, inner: ResultCache, observer: RedisObserver) -> None:
        super().__init__(observer, "cache")
        self._inner = inner

    async def get(self, tenant: str, job_id: str) -> ResultSet | None:
        with self._timed():
            return await self._inner.get(tenant, job_id)

    async def put(
        self, tenant: str, job_id: str, results: ResultSet, ttl: float | None = None
    ) -> None:
        with self._timed():
            await self._inner.put(tenant, job_id, results, ttl)


class ObservedFreshness(_Timed):
    """A ``Freshness`` whose calls are timed (its failures are soft: see ``CacheErrors``)."""

    def __init__(self, inner: Freshness, observer: RedisObserver) -> None:
        super().__init__(observer, "cache")
        self._inner = inner

    async def is_fresh(self, job_id: str) -> bool:
        with self._timed():
            return await self._inner.is_fresh(job_id)

    async def mark(self, job_id: str, seconds: float) -> None:
        with self._timed():
            await self._inner.mark(job_id, seconds)
