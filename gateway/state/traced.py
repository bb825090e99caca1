"""State whose calls are spans, when tracing is on (``create_app`` wraps them then).

One span per call of the job store (``store <operation>``), the result cache, the
idempotency store and the item cache, with the job's id where there is one: a
record's content (inputs, results, the caller's metadata), an idempotency key and an
item cache key (a hash of an input) never go in one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.trace import Tracer

from adapters.base import ItemResult, JobStatus, ResultSet
from gateway.state.cache import ResultCache
from gateway.state.idempotency import Claim, IdempotencyStore
from gateway.state.item_cache import ItemCache
from gateway.state.store import JobPage, JobRecord, JobStore


class TracedJobStore:
    def __init__(self, inner: JobStore, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def create(self, record: JobRecord) -> None:
        with self._tracer.start_as_current_span("store create", attributes={"job.id": record.id}):
            await self._inner.create(record)

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        with self._tracer.start_as_current_span("store get", attributes={"job.id": job_id}):
            return await self._inner.get(tenant, job_id)

    async def update(self, record: JobRecord) -> None:
        with self._tracer.start_as_current_span("store update", attributes={"job.id": record.id}):
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
        with self._tracer.start_as_current_span("store list"):
            return await self._inner.list(
                tenant, status=status, provider=provider, page_size=page_size, cursor=cursor
            )

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()


class TracedResultCache:
    """A ``ResultCache`` whose calls are spans (``cache get``/``cache put``, the job's id)."""

    def __init__(self, inner: ResultCache, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def get(self, tenant: str, job_id: str) -> ResultSet | None:
        with self._tracer.start_as_current_span("cache get", attributes={"job.id": job_id}):
            return await self._inner.get(tenant, job_id)

    async def put(
        self, tenant: str, job_id: str, results: ResultSet, ttl: float | None = None
    ) -> None:
        with self._tracer.start_as_current_span("cache put", attributes={"job.id": job_id}):
            await self._inner.put(tenant, job_id, results, ttl)


class TracedIdempotencyStore:
    """An ``IdempotencyStore`` whose calls are spans: the key is the caller's text, so
    a span carries the outcome and the job it names, never the key itself."""

    def __init__(self, inner: IdempotencyStore, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self.lease_seconds = inner.lease_seconds

    async def claim(
        self, tenant: str, key: str, fingerprint: str, owner: str, *, replacing: str | None = None
    ) -> Claim:
        with self._tracer.start_as_current_span(
            "idempotency claim", attributes={"job.id": owner}
        ) as span:
            claim = await self._inner.claim(tenant, key, fingerprint, owner, replacing=replacing)
            span.set_attribute("gateway.idempotency.outcome", claim.outcome)
            return claim

    async def renew(self, tenant: str, key: str, owner: str) -> bool:
        with self._tracer.start_as_current_span("idempotency renew", attributes={"job.id": owner}):
            return await self._inner.renew(tenant, key, owner)

    async def complete(
        self, tenant: str, key: str, fingerprint: str, job_id: str, owner: str
    ) -> bool:
        with self._tracer.start_as_current_span(
            "idempotency complete", attributes={"job.id": job_id}
        ):
            return await self._inner.complete(tenant, key, fingerprint, job_id, owner)

    async def release(self, tenant: str, key: str, owner: str) -> None:
        with self._tracer.start_as_current_span(
            "idempotency release", attributes={"job.id": owner}
        ):
            await self._inner.release(tenant, key, owner)


class TracedItemCache:
    """An ``ItemCache`` whose calls are spans: how many entries, never their keys (a
    hash of the caller's input) or content."""

    def __init__(self, inner: ItemCache, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def get_many(self, keys: Sequence[str]) -> list[ItemResult | None]:
        with self._tracer.start_as_current_span(
            "item cache get", attributes={"gateway.items": len(keys)}
        ) as span:
            found = await self._inner.get_many(keys)
            span.set_attribute("gateway.items.found", sum(1 for f in found if f is not None))
            return found

    async def put_many(self, entries: Mapping[str, ItemResult], ttl_seconds: float) -> None:
        with self._tracer.start_as_current_span(
            "item cache put", attributes={"gateway.items": len(entries)}
        ):
            await self._inner.put_many(entries, ttl_seconds)
