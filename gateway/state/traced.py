"""A ``JobStore`` whose calls are spans, when tracing is on (``create_app`` wraps it then).

One span per store call, named ``store <operation>`` with the job's id: a record's
content (its inputs, results, the caller's metadata) never goes in one.
"""

from __future__ import annotations

from opentelemetry.trace import Tracer

from adapters.base import JobStatus
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
