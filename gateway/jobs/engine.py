"""The job engine: every unfinished job is checked with the provider until it finishes.

Nobody has to read a job for it to move. From submit on, each job has a chain of
checks, one task each on the engine's queue (``gateway.state.task_queue``): a check asks
the provider for the job's status, stores what changed (which wakes anyone waiting
on it), and schedules the next check after a per-provider backoff (``poll``: it
starts at ``initial_seconds``, grows by ``factor`` while nothing changes, up to
``max_seconds``, and starts over when progress is seen). A provider that answers
``Retry-After`` is not asked again before it; its pacing is the one every call
already shares. When the job finishes, its results are fetched once into the result
cache, its concurrent-jobs slot is given back, and its chain ends.

Which check may ask the provider is decided by the tracking entry's sequence number
(``gateway.state.tracking``): a check runs only at the number it was scheduled for,
and moves it on with a compare-and-set before scheduling the next. So a check that
runs twice (its replica died after moving the number, and the queue ran it again)
only reschedules the next one, and a job is polled by one replica at a time. A
periodic sweep reschedules the check of any job overdue by more than
``max_staleness_seconds``, in case a chain was lost; a duplicate it makes is one of
those that do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import structlog
from opentelemetry.context import Context
from opentelemetry.trace import Tracer

from adapters.errors import ProviderError
from gateway.errors import GatewayError
from gateway.jobs.service import JobService
from gateway.jobs.settings import EngineSettings, PollSettings
from gateway.observability.tracing import carrier, links_from
from gateway.state.store import JobRecord
from gateway.state.task_queue import TaskQueue, TaskSpec
from gateway.state.tracking import Tracked, Tracking
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.engine")

POLL = "poll"
SWEEP = "sweep"
#: Overdue jobs one sweep reschedules at most (the next sweep takes the rest).
_SWEEP_BATCH = 1000


class EngineObserver(Protocol):
    """Where the engine is measured (``observability.metrics.Metrics`` implements it)."""

    def engine_poll(self, provider: str, outcome: str, lag: float) -> None: ...

    def engine_job_done(self, provider: str, polls: int) -> None: ...

    def engine_tracked(self, count: int) -> None: ...


class Notifier(Protocol):
    """Told when a job finishes (``gateway.jobs.webhooks.Webhooks``)."""

    async def job_finished(self, record: JobRecord) -> None: ...


class _NoObserver:
    def engine_poll(self, provider: str, outcome: str, lag: float) -> None:
        return None

    def engine_job_done(self, provider: str, polls: int) -> None:
        return None

    def engine_tracked(self, count: int) -> None:
        return None


def _poll_id(job_id: str, seq: int) -> str:
    return f"poll:{job_id}:{seq}"


class JobEngine:
    def __init__(
        self,
        *,
        service: JobService,
        queue: TaskQueue,
        tracking: Tracking,
        settings: EngineSettings,
        polls: Mapping[str, PollSettings],
        observer: EngineObserver | None = None,
        notifier: Notifier | None = None,
        now: Callable[[], float] = time.time,
        tracer: Tracer | None = None,
    ) -> None:
        self._service = service
        self._tracer = tracer
        self._queue = queue
        self._tracking = tracking
        self._settings = settings
        self._polls = polls
        self._observer: EngineObserver = observer or _NoObserver()
        self._notifier = notifier
        self._now = now
        self._sweeper: asyncio.Task[None] | None = None
        queue.register(TaskSpec(POLL, self._poll_task, timeout_seconds=600.0, max_tries=None))
        queue.register(TaskSpec(SWEEP, self._sweep_task, timeout_seconds=600.0, max_tries=1))

    def _poll_settings(self, provider: str) -> PollSettings:
        return self._polls.get(provider) or PollSettings()

    # -- the Tracker port JobService calls --------------------------------------------------

    async def track(self, record: JobRecord) -> None:
        """Start the chain of checks of a job just submitted (or notify one that is done)."""
        if record.done:
            if self._notifier is not None:
                await self._notifier.job_finished(record)
            return
        delay = self._poll_settings(record.provider).initial_seconds
        await self._service.mark_fresh(record.id, self._settings.max_staleness_seconds)
        await self._tracking.start(record.tenant, record.id, due=self._now() + delay, delay=delay)
        # Tracing on: every check of the job carries the submit's trace context, to link to.
        trace = carrier() if self._tracer is not None else None
        await self._schedule(record.tenant, record.id, 0, delay, trace)

    async def _schedule(
        self, tenant: str, job_id: str, seq: int, delay: float, trace: Any = None
    ) -> None:
        args: dict[str, Any] = {"tenant": tenant, "job": job_id, "seq": seq}
        if trace:
            args["trace"] = trace
        await self._queue.enqueue(POLL, args, delay=max(0.0, delay), task_id=_poll_id(job_id, seq))

    # -- one check ----------------------------------------------------------------------------

    async def _poll_task(self, args: dict[str, Any]) -> None:
        if self._tracer is None:
            await self._poll(args)
            return
        with self._tracer.start_as_current_span(
            "engine check",
            # A root of its own: the submit's request ended long ago. It links back to it.
            context=Context(),
            links=links_from(args.get("trace")),
            attributes={"job.id": str(args["job"]), "gateway.engine.seq": int(args["seq"])},
        ):
            await self._poll(args)

    async def _poll(self, args: dict[str, Any]) -> None:
        tenant, job_id, seq = str(args["tenant"]), str(args["job"]), int(args["seq"])
        trace = args.get("trace")
        entry = await self._tracking.get(job_id)
        if entry is None:
            return  # finished, or past its retention
        if entry.seq == seq + 1:
            # This check ran before and moved the chain on; its replica may have died
            # before scheduling the next one. Scheduling it again is idempotent.
            await self._schedule(tenant, job_id, seq + 1, entry.due - self._now(), trace)
            return
        if entry.seq != seq:
            return  # a stale duplicate
        await self._check(entry, trace)

    async def _check(self, entry: Tracked, trace: Any = None) -> None:
        lag = max(0.0, self._now() - entry.due)
        record = await self._service.load(entry.tenant, entry.job_id)
        if record is None:
            await self._tracking.finish(entry.job_id)
            return
        poll = self._poll_settings(record.provider)
        polled = False
        wait: float | None = None
        outcome = "unchanged"
        updated = record
        try:
            if not record.done:
                polled = True
                updated = await self._service.poll(record)
                outcome = "changed" if _progressed(record, updated) else "unchanged"
            if updated.done:
                await self._service.finalize(updated)
                if self._notifier is not None:
                    await self._notifier.job_finished(updated)
        except (ProviderError, GatewayError) as exc:
            outcome = "error"
            wait = _retry_after(exc)
            _log.warning(
                "engine_check_failed",
                job_id=entry.job_id,
                provider=record.provider,
                error=exc.code,
                status=exc.status,
            )
        if polled:
            self._observer.engine_poll(record.provider, outcome, lag)
        if updated.done and outcome != "error":
            await self._tracking.finish(entry.job_id)
            polls = entry.polls + int(polled)
            self._observer.engine_job_done(record.provider, polls)
            _log.info(
                "engine_job_finished",
                job_id=entry.job_id,
                provider=record.provider,
                status=updated.status.value,
                polls=polls,
            )
            return
        delay = poll.next_delay(entry.delay, outcome == "changed")
        if wait is not None:
            delay = max(delay, wait)
        await self._service.mark_fresh(entry.job_id, self._settings.max_staleness_seconds)
        moved = await self._tracking.advance(
            entry.job_id, entry.seq, due=self._now() + delay, delay=delay, polled=polled
        )
        if moved:
            await self._schedule(entry.tenant, entry.job_id, entry.seq + 1, delay, trace)

    # -- the safety net -----------------------------------------------------------------------

    async def _sweep_task(self, args: dict[str, Any]) -> None:
        before = self._now() - self._settings.max_staleness_seconds
        for entry in await self._tracking.overdue(before, _SWEEP_BATCH):
            await self._schedule(entry.tenant, entry.job_id, entry.seq, 0.0)

    async def _sweep_loop(self) -> None:
        interval = self._settings.sweep_seconds
        while True:
            # Every replica asks for the same sweep of each interval; the task id makes
            # it one sweep, run by whichever replica takes it.
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            try:
                slot = int(self._now() // interval)
                await self._queue.enqueue(SWEEP, {}, task_id=f"sweep:{slot}")
                self._observer.engine_tracked(await self._tracking.count())
            except Exception as exc:
                _log.warning("engine_sweep_failed", error=repr(exc))

    # -- lifetime -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """This replica works for the engine while the context is open."""
        await self._queue.start()
        self._sweeper = spawn(self._sweep_loop(), name="engine-sweep")
        try:
            yield
        finally:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            await self._queue.close(self._settings.shutdown_grace_seconds)


def _progressed(before: JobRecord, after: JobRecord) -> bool:
    return (
        after.status != before.status
        or after.counts != before.counts
        or after.upstream_status != before.upstream_status
        # A step of a provider workflow taken (an export started, ...): the next comes soon.
        or after.upstream_state != before.upstream_state
    )


def _retry_after(exc: GatewayError) -> float | None:
    value = exc.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
