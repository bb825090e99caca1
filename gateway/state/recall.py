"""Job records this process wrote, written back to Redis when Redis lost them.

A Redis that keeps nothing on disk forgets every job when it restarts, though the
providers still run them and callers hold their ids (202 answered). The process that
created or moved a job still knows it, so ``RecallingJobStore`` keeps, in front of the
Redis store, the last version of each record this process created, updated or holds
finished (``hold``), and writes it back when Redis turns out to have lost it:

* a read (or the engine) that finds a held record missing writes that one back at
  once and counts as evidence that Redis lost state, so every other held record is
  written back too, in the background;
* ``lost`` says the same from outside: ``gateway.state.redis_watch`` calls it when the
  server's run_id changes (a restart or a failover);
* a read answered from this process's memory (``JobService``'s finished records) writes
  its record back first if a loss was seen since Redis last had it, so other replicas
  see the job again.

A write-back is SET NX (``RedisJobStore.restore``): a record another replica wrote
meanwhile, newer or not, is never replaced, and a record keeps what is left of its
retention. Memory is bounded: at most ``max_records`` records (the most recently
written first kept), and a record past its retention is dropped, not written. Records
created in another process and never read here are not known here: a Redis with an
append-only file is still what keeps every job (docs/operations.md "What Redis the gateway needs").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from adapters.base import JobStatus
from gateway.errors import StoreUnavailable
from gateway.state.store import JobPage, JobRecord, JobStore
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.state")

#: Records written back per Redis round trip.
_BATCH = 200

#: Per record: written back (True), already there (False), past its retention (None).
Written = list[bool | None]


class Restorer(Protocol):
    """Writes records back where absent (``RedisJobStore.restore``)."""

    async def restore(self, records: Sequence[JobRecord]) -> Written: ...


class _Held:
    __slots__ = ("epoch", "record")

    def __init__(self, record: JobRecord, epoch: int) -> None:
        self.record = record
        #: The loss count when Redis last had this record (written, read or restored).
        self.epoch = epoch


class RecallingJobStore:
    """A ``JobStore`` that writes back the records it knows when the one below lost them."""

    def __init__(self, inner: JobStore, restorer: Restorer, *, max_records: int = 10_000) -> None:
        self._inner = inner
        self._restorer = restorer
        self._max = max_records
        self._held: OrderedDict[str, _Held] = OrderedDict()
        #: How many losses of Redis state this process has seen.
        self._epoch = 0
        self._task: asyncio.Task[None] | None = None
        #: Called with each unfinished record written back (the engine tracks it again:
        #: its tracking entry was lost with it).
        self.on_restored: list[Callable[[JobRecord], Awaitable[None]]] = []
        self.restored_total = 0

    @property
    def held(self) -> int:
        return len(self._held)

    # -- the JobStore port -----------------------------------------------------------------

    async def create(self, record: JobRecord) -> None:
        await self._inner.create(record)
        self.hold(record)

    async def update(self, record: JobRecord) -> None:
        await self._inner.update(record)
        self.hold(record)

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        found = await self._inner.get(tenant, job_id)
        held = self._held.get(job_id)
        if found is not None:
            if held is not None:
                self.hold(found)
            return found
        if held is None or held.record.tenant != tenant:
            return None
        if held.epoch == self._epoch:
            # Redis had it since the last loss seen: this is a new one.
            self.lost("record_missing")
        record = held.record
        (written,) = await self._restore([record])
        if written is None:
            return None  # past its retention
        if not written:
            # Another replica wrote it back (or moved it on) meanwhile: take that one.
            return await self._inner.get(tenant, job_id) or record
        _log.warning("job_record_restored", job_id=job_id, status=record.status.value)
        return record

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        provider: str | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        return await self._inner.list(
            tenant, status=status, provider=provider, page_size=page_size, cursor=cursor
        )

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._inner.close()

    # -- what JobService and the Redis watch call --------------------------------------------

    def hold(self, record: JobRecord) -> None:
        """Remember ``record`` as Redis has it now (just written, or just read there)."""
        held = self._held.get(record.id)
        if held is not None and held.record.done and not record.done:
            return  # a late unfinished version never replaces a finished one
        self._held[record.id] = _Held(record, self._epoch)
        self._held.move_to_end(record.id)
        while len(self._held) > self._max:
            self._held.popitem(last=False)

    async def confirm(self, record: JobRecord) -> None:
        """A read answered from this process's memory: if Redis may have lost the record
        since it last had it, write it back now, so other replicas see the job too."""
        held = self._held.get(record.id)
        if held is None:
            # Known here but no longer held (evicted): Redis had it when it was read.
            self.hold(record)
            return
        if held.epoch == self._epoch:
            return  # no loss seen since: no Redis round trip
        # This read must not fail for Redis's sake: the background pass tries again.
        with contextlib.suppress(StoreUnavailable):
            await self._restore([held.record])

    def lost(self, reason: str) -> None:
        """Redis may have lost state (restarted, failed over, a held record missing):
        write every held record back, in the background."""
        self._epoch += 1
        _log.warning("redis_state_lost", reason=reason, held=len(self._held))
        if self._task is None or self._task.done():
            self._task = spawn(self._restore_pending(reason), name="job-records-restore")

    async def restore_pending(self) -> int:
        """Write back every held record not seen in Redis since the last loss; the count
        written. (The background pass; tests and the Redis watch call it directly.)"""
        pending = [h.record for h in self._held.values() if h.epoch < self._epoch]
        written = 0
        for start in range(0, len(pending), _BATCH):
            answers = await self._restore(pending[start : start + _BATCH])
            written += sum(1 for a in answers if a is True)
        return written

    async def settled(self) -> None:
        """Wait for the background pass, if one runs (tests, and a drain that cares)."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    @property
    def pending(self) -> int:
        return sum(1 for h in self._held.values() if h.epoch < self._epoch)

    # -- internals -----------------------------------------------------------------------------

    async def _restore_pending(self, reason: str) -> None:
        # A loss seen while a pass runs leaves records pending: run until none is.
        delay = 0.5
        while self.pending:
            try:
                written = await self.restore_pending()
            except StoreUnavailable as exc:
                _log.info("job_records_restore_waiting", error=repr(exc.__cause__))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            # Written: records Redis had lost; the others were back already (another
            # replica wrote them, or only part of the state was lost).
            (_log.warning if written else _log.info)(
                "job_records_restored", reason=reason, written=written, held=len(self._held)
            )

    async def _restore(self, records: Sequence[JobRecord]) -> Written:
        epoch = self._epoch
        answers = await self._restorer.restore(records)
        for record, written in zip(records, answers, strict=True):
            held = self._held.get(record.id)
            if written is None:
                if held is not None and held.record is record:
                    del self._held[record.id]
                continue
            if held is not None and held.record is record:
                held.epoch = epoch
            if written:
                self.restored_total += 1
                if not record.done:
                    await self._restored(record)
        return answers

    async def _restored(self, record: JobRecord) -> None:
        for call in self.on_restored:
            try:
                await call(record)
            except Exception as exc:
                # Reads still move the job (its status is not marked fresh).
                _log.warning("job_restore_hook_failed", job_id=record.id, error=repr(exc))
