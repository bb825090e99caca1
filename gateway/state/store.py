"""The job store port and its in-memory implementation.

A ``JobRecord`` is everything the gateway must remember of a job between requests:
whose it is, where it runs, and what was last learned of it. The store answers
per tenant: a lookup with the wrong tenant finds nothing, which is how another
tenant's job id becomes a 404 everywhere.

The in-memory store serves one process (``gateway demo``, single-replica ``serve``);
the Redis store (shared by replicas) implements the same Protocol and passes the
same contract suite.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from adapters.base import Counts, ErrorInfo, ItemResult, JobStatus


@dataclass(frozen=True, slots=True)
class Notification:
    """Where the webhook of a job submitted with ``webhook_url`` stands."""

    #: pending (not yet delivered; being tried), delivered, or failed (given up).
    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    tenant: str
    key_id: str
    model: str
    provider: str
    input_names: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    status: JobStatus = JobStatus.QUEUED
    upstream_id: str | None = None
    upstream_status: str | None = None
    upstream_state: Mapping[str, Any] = field(default_factory=dict)
    counts: Counts | None = None
    error: ErrorInfo | None = None
    finished_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    notification: Notification | None = None
    #: Inputs answered from the item cache at submit, by name: never sent to the provider.
    cached_items: Mapping[str, ItemResult] = field(default_factory=dict)
    #: The item cache key of each input sent to the provider (a model with an item
    #: cache): its answer is kept under it once the job finishes.
    cache_keys: Mapping[str, str] = field(default_factory=dict)
    #: The alias the job was submitted under (``model`` is the target that served it).
    alias: str | None = None
    #: Inputs repeating an earlier input of the job (a model with an item cache), by
    #: name: the earlier input's name. Never sent; answered with the earlier one's answer.
    copies: Mapping[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status.done

    @property
    def settled(self) -> bool:
        """Done, and nothing about it will change again: no webhook delivery of it is
        still pending (its outcome is part of the job's view)."""
        return self.status.done and (
            self.notification is None or self.notification.status != "pending"
        )

    def evolve(self, **changes: Any) -> JobRecord:
        return replace(self, **changes)

    @property
    def provider_inputs(self) -> tuple[str, ...]:
        """The inputs the provider's job holds, in order: all but those answered from the
        cache and the repeats of another input."""
        if not self.cached_items and not self.copies:
            return self.input_names
        return tuple(
            n for n in self.input_names if n not in self.cached_items and n not in self.copies
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    records: list[JobRecord]
    next_cursor: str | None


class JobStore(Protocol):
    """Where job records live; every read is scoped to one tenant."""

    async def create(self, record: JobRecord) -> None: ...

    async def get(self, tenant: str, job_id: str) -> JobRecord | None: ...

    async def update(self, record: JobRecord) -> None:
        """Replace a record (same id and tenant); an unknown record is ignored.

        A finished record is never replaced by an unfinished one: two replicas (or the
        engine and a read) may store what they learned in either order, and a late
        writer must not send a finished job back to running.
        """
        ...

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        provider: str | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """The tenant's jobs, newest first."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot serve (used by /readyz)."""
        ...

    async def close(self) -> None: ...


#: Cursor positions outside these bounds are forged: no job was created then, and
#: the stores compute with the timestamp (Redis scores it in microseconds).
_CURSOR_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CURSOR_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_CURSOR_MAX_CHARS = 512


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The (created_at, id) position a cursor names, or None if it is not ours.

    A cursor is the caller's own position in its own tenant's listing, so a forged
    one can reveal nothing; it must only never crash a store. Hence: an aware
    timestamp in a plausible range (a naive or year-1 one breaks the comparisons and
    ``timestamp()``), and a string id.
    """
    if len(cursor) > _CURSOR_MAX_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, job_id = json.loads(raw)
        if not isinstance(when, str) or not isinstance(job_id, str):
            return None
        created = datetime.fromisoformat(when)
        if created.tzinfo is None or created.utcoffset() is None:
            return None
        if not _CURSOR_EARLIEST <= created <= _CURSOR_LATEST:
            return None
    except (ValueError, TypeError, OverflowError, binascii.Error, RecursionError):
        return None
    return created, job_id


class MemoryJobStore:
    """Job records in a dict, bounded by retention and a maximum count."""

    def __init__(
        self,
        *,
        retention_seconds: float,
        now: Callable[[], datetime],
        max_records: int = 100_000,
    ) -> None:
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._retention = retention_seconds
        self._now = now
        self._max = max_records
        self._lock = asyncio.Lock()

    def _expire(self) -> None:
        now = self._now()
        # Records are kept in creation order, so expiry stops at the first live one.
        while self._records:
            first = next(iter(self._records.values()))
            age = (now - first.created_at).total_seconds()
            if age <= self._retention and len(self._records) <= self._max:
                break
            self._records.popitem(last=False)

    async def create(self, record: JobRecord) -> None:
        async with self._lock:
            self._records[record.id] = record
            self._expire()

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        self._expire()
        record = self._records.get(job_id)
        return record if record is not None and record.tenant == tenant else None

    async def update(self, record: JobRecord) -> None:
        async with self._lock:
            current = self._records.get(record.id)
            if current is None or current.tenant != record.tenant:
                return
            if current.done and not record.done:
                return
            self._records[record.id] = record

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        provider: str | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        self._expire()
        after = decode_cursor(cursor) if cursor else None
        # Newest first by (created_at, id), the cursor's own order, as Redis lists them:
        # insertion order is not that order when times tie or the clock steps back, and
        # paging by one while walking the other skipped jobs.
        matching = (
            record
            for record in self._records.values()
            if record.tenant == tenant
            and (after is None or (record.created_at, record.id) < after)
            and (status is None or record.status == status)
            and (provider is None or record.provider == provider)
        )
        out = heapq.nlargest(page_size + 1, matching, key=lambda r: (r.created_at, r.id))
        more = len(out) > page_size
        page = out[:page_size]
        last = page[-1] if page else None
        return JobPage(
            records=page,
            next_cursor=encode_cursor(last.created_at, last.id) if more and last else None,
        )

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
