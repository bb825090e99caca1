"""Live events of one job: ``GET /v1/jobs/{id}/events`` (Server-Sent Events).

A stream sends the job as it is now, then the job again each time its status or counts
change, and ends after the terminal state. It wakes on the job's change events
(``gateway.state.events``: Redis pub/sub, so a change that any replica makes reaches a
stream on any other) and re-reads the job itself, as ``Prefer: wait`` does; it also
re-reads every ``recheck_seconds`` on its own, which with the engine off (nobody else
moves the job) is what moves it.

Event ids are computed from the job, not counted: the status's rank, then the items
finished, then the items started, as one number. It grows with every change of status
or counts and is the same on every replica, so ``Last-Event-ID`` resumes on any replica
with no history kept: a stream sends only a state whose id is above the last one the
client has. Memory per stream is one watcher and the latest state: a slow reader is
never queued events (it gets the newest state when it reads again).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import structlog

from adapters.base import JobStatus
from gateway.api.models import Job
from gateway.api.views import job_view
from gateway.auth.principals import Principal
from gateway.clock import Clock
from gateway.errors import GatewayError
from gateway.jobs.service import JobService
from gateway.jobs.settings import EventStreamSettings
from gateway.limits.job_limits import Held, JobLimits
from gateway.observability.context import waiting
from gateway.state.events import JobEvents
from gateway.state.store import JobRecord

_log = structlog.get_logger("gateway.events")

_RANK = {JobStatus.QUEUED: 0, JobStatus.RUNNING: 1}
_TERMINAL_RANK = 2


def event_id(job: Job) -> int:
    """The job's place in its own history: larger after every change of status or counts.

    Items only move forward (pending, then started, then finished), so the tuple
    (status rank, finished, started) only grows; packed in base ``total + 1`` it is one
    integer that sorts the same way.
    """
    c = job.counts
    base = c.total + 1
    rank = _RANK.get(job.status, _TERMINAL_RANK)
    finished = c.succeeded + c.failed
    started = c.total - c.pending
    return (rank * base + finished) * base + started


class LiveJobs:
    """Every open event stream of this replica, and the cap they share with other replicas."""

    def __init__(
        self,
        jobs: JobService,
        events: JobEvents,
        limits: JobLimits,
        settings: EventStreamSettings,
        *,
        recheck_seconds: float,
        clock: Clock,
    ) -> None:
        """recheck_seconds: the longest a stream goes without re-reading its job (an event
        lost between replicas costs at most this)."""
        self.jobs = jobs
        self.events = events
        self._limits = limits
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        # A stream's place is renewed at every wake-up; it lapses after three missed ones.
        self._lease_seconds = 3 * max(recheck_seconds, settings.heartbeat_seconds) + 5
        self._streams: set[JobStream] = set()

    @property
    def open_count(self) -> int:
        return len(self._streams)

    @asynccontextmanager
    async def open(self, principal: Principal, job_id: str) -> AsyncIterator[JobStream]:
        """A stream of ``job_id``: 403 without ``jobs:read``, 404 for another tenant's
        job (checked before a place is taken), 429 when the credential holds too many."""
        record = await self.jobs.get(principal, job_id)
        held = await self._limits.open_stream(
            principal, uuid.uuid4().hex, self.settings.max_per_credential, self._lease_seconds
        )
        stream = JobStream(self, record, held)
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)
            await self._limits.close_stream(held)

    def close_all(self) -> None:
        """Shutdown: every stream ends now (its client reconnects, to another replica)."""
        for stream in list(self._streams):
            stream.stop()

    async def renew(self, held: Held) -> None:
        await self._limits.renew_stream(held, self.settings.max_per_credential, self._lease_seconds)


class JobStream:
    def __init__(self, live: LiveJobs, record: JobRecord, held: Held) -> None:
        self._live = live
        self._record = record
        self._held = held
        self._stopped = False
        self._changed: asyncio.Event | None = None

    def stop(self) -> None:
        """End the stream at its next step (the client went away, or shutdown)."""
        self._stopped = True
        if self._changed is not None:
            self._changed.set()

    async def changes(self, after: int | None) -> AsyncGenerator[tuple[int, Job]]:
        """``(event id, job)`` for the job now and at each change after ``after``."""
        live, clock = self._live, self._live.clock
        ends = clock.monotonic() + live.settings.max_stream_seconds
        record = self._record
        last = after
        async with live.events.watch(record.id) as changed:
            self._changed = changed
            # A change between the first read and the watch would otherwise be missed.
            record = await self._reread(record)
            while not self._stopped:
                job = job_view(record)
                seq = event_id(job)
                if last is None or seq > last:
                    last = seq
                    yield seq, job
                left = ends - clock.monotonic()
                if record.done or left <= 0 or self._stopped:
                    return
                with waiting(), contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(live.recheck_seconds, left))
                changed.clear()
                if self._stopped:
                    return
                await live.renew(self._held)
                record = await self._reread(record)

    async def _reread(self, record: JobRecord) -> JobRecord:
        try:
            return await self._live.jobs.current(record)
        except GatewayError as exc:
            # The stream has started: no problem+json can be sent any more. Keep the last
            # state and read again at the next wake-up (the provider or store may recover).
            _log.warning("event_stream_read_failed", job_id=record.id, error=exc.code)
            return record
