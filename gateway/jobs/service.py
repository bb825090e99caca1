"""JobService: submit, read, wait for, list, cancel jobs and read their results.

No aiohttp.web here: the handlers parse HTTP and render; this module decides.
Rules it keeps:

* a job is read through its tenant only, so another tenant's id is a 404;
* a submit the provider or the gateway rejects leaves no record behind;
* a finished job is answered from what the gateway holds (the record, the cached
  results) and the provider is not asked again;
* an unfinished job's status is reused for ``status_cache_seconds`` and concurrent
  reads share one provider call (``Coalescer``), on one replica, and across replicas
  while the status cache is on (with it off, no replica's answer may be reused);
* finished records and results are also kept in this process, so they stay readable
  while the shared store is down, and records Redis lost are written back from what
  this process knows (``recall``, ``gateway.state.recall``);
* a submit takes its credential's unfinished-job slot and its tenant's daily job
  before the provider is asked, and gives them back if it fails; the slot comes back
  when the job is seen finished (``gateway.limits.job_limits``);
* with the job engine on (``gateway.jobs.engine``), a submitted job is handed to it
  (``Tracker``), the engine keeps its status fresh, and a read asks the provider only
  when the engine fell behind; every change is published (``JobEvents``), so a
  ``Prefer: wait`` wakes when the job changes rather than polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from adapters.base import (
    Counts,
    ItemResult,
    JobRequest,
    JobStatus,
    ProviderAdapter,
    ResultSet,
    StatusReport,
    SupportsCancel,
)
from adapters.errors import ProviderRejected, UnreadableSubmit
from gateway.api.models import JobCreate
from gateway.auth.principals import Principal
from gateway.clock import Clock
from gateway.errors import (
    CancelNotSupported,
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    JobDone,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
)
from gateway.jobs.catalog import ModelCatalog, Resolved
from gateway.jobs.coalesce import Coalescer
from gateway.jobs.fallback import Fallback
from gateway.jobs.leases import SubmitLease
from gateway.jobs.records import (
    JobObserver,
    NoObserver,
    apply_report,
    copies_need_outcomes,
    fingerprint,
    handle_of,
    item_of,
    new_job_id,
    submit_key,
    to_input,
)
from gateway.jobs.reuse import ItemPlan, ItemReuse
from gateway.limits.job_limits import Admission, JobLimits
from gateway.observability.context import note_cache, note_provider, upstream_call, waiting
from gateway.state.cache import Freshness, MemoryFreshness, ResultCache
from gateway.state.events import JobEvents, LocalWatchers, MemoryEvents
from gateway.state.idempotency import IdempotencyStore, MemoryIdempotencyStore
from gateway.state.store import JobPage, JobRecord, JobStore, Notification

_log = structlog.get_logger("gateway.jobs")


class Tracker(Protocol):
    """Takes over a submitted job until it finishes (``gateway.jobs.engine.JobEngine``)."""

    async def track(self, record: JobRecord) -> None: ...


class Recall(Protocol):
    """Writes back records Redis lost (``gateway.state.recall.RecallingJobStore``)."""

    def hold(self, record: JobRecord) -> None: ...

    async def confirm(self, record: JobRecord) -> None: ...


class WebhookCheck(Protocol):
    """Accepts or refuses a submit's ``webhook_url`` (``gateway.jobs.webhooks.Webhooks``)."""

    async def check(self, tenant: str, url: str) -> None: ...


@dataclass(frozen=True, slots=True)
class JobResults:
    record: JobRecord
    items: list[ItemResult]
    results: ResultSet


class JobService:
    def __init__(
        self,
        *,
        store: JobStore,
        adapters: Mapping[str, ProviderAdapter],
        catalog: ModelCatalog,
        cache: ResultCache,
        clock: Clock,
        max_inputs: int,
        poll_interval: float,
        observer: JobObserver | None = None,
        freshness: Freshness | None = None,
        coalescer: Coalescer | None = None,
        idempotency: IdempotencyStore | None = None,
        status_cache_seconds: float = 0.0,
        unknown_status_grace_seconds: float = 3600.0,
        local_cache: ResultCache | None = None,
        max_local_records: int = 10_000,
        limits: JobLimits | None = None,
        tracker: Tracker | None = None,
        events: JobEvents | None = None,
        webhooks: WebhookCheck | None = None,
        recall: Recall | None = None,
        reuse: ItemReuse | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        """Args beyond the obvious:
        cache: the shared result cache (Redis, or memory for one process).
        local_cache: this process's own copy of finished results, when ``cache`` is remote.
        freshness: whether a stored status is recent enough to reuse.
        tracker: the job engine, if on: it keeps every submitted job's status fresh.
        events: where changes of a job are published and waited for.
        recall: the store's writer-back: finished records this process holds are written
            back through it when Redis lost them, also when a read is answered from here.
        fallback: tries an alias's targets in turn (with none: in order, no pre-checks).
        """
        self._store = store
        self._adapters = adapters
        self._catalog = catalog
        self._cache = cache
        self._local_cache = local_cache
        self._clock = clock
        self._max_inputs = max_inputs
        self._poll_interval = poll_interval
        self._observer: JobObserver = observer if observer is not None else NoObserver()
        self._freshness: Freshness = (
            freshness if freshness is not None else MemoryFreshness(clock.monotonic)
        )
        self._coalescer = coalescer if coalescer is not None else Coalescer()
        self._idempotency: IdempotencyStore = idempotency or MemoryIdempotencyStore(
            ttl_seconds=24 * 3600, clock=clock.monotonic
        )
        self._status_ttl = status_cache_seconds
        #: Set when the process drains: long polls answer at once.
        self._stop_waiting = False
        self._unknown_grace = unknown_status_grace_seconds
        # Stored statuses are reused while marked fresh: by a read (the status cache) or
        # by the engine, which marks each job fresh until just past its next check.
        self._reuses_status = status_cache_seconds > 0 or tracker is not None
        self._limits = limits
        self._tracker = tracker
        # "is None", not "or": an events object with no watchers yet has len() 0.
        self._events: JobEvents = events if events is not None else MemoryEvents()
        self._webhooks = webhooks
        # Finished records never change: keep them, so reads need neither store nor provider.
        self._finished: OrderedDict[tuple[str, str], JobRecord] = OrderedDict()
        self._max_local = max_local_records
        self._recall = recall
        #: The item cache's part in submits and finishes (None: no model has one).
        self._reuse = reuse
        self._fallback = fallback if fallback is not None else Fallback(adapters)

    # -- submit ---------------------------------------------------------------------------

    async def submit(
        self, principal: Principal, body: JobCreate, *, idempotency_key: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Accept a job; returns it and whether it is a replay of an earlier request."""
        principal.require("jobs:write")
        job_id = new_job_id()
        lease = SubmitLease(self._idempotency.lease_seconds)
        if idempotency_key is None:
            with lease:
                return await self._submit(principal, body, None, job_id, lease), False
        tenant = principal.tenant
        body_hash = fingerprint(body)
        idem = self._idempotency
        claim = await idem.claim(tenant, idempotency_key, body_hash, job_id)
        for _ in range(2):
            if claim.outcome != "replay" or claim.job_id is None:
                break
            replayed = await self._store.get(tenant, claim.job_id)
            if replayed is not None:
                # The job as it is now (as a GET would answer), not as first answered.
                return await self._refresh(replayed), True
            # The key names a job whose record is gone (expired, or lost with Redis):
            # submit again, and only one retry may (the claim replaces that one job).
            claim = await idem.claim(
                tenant, idempotency_key, body_hash, job_id, replacing=claim.job_id
            )
        if claim.outcome == "mismatch":
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request body.",
                errors=[FieldError("/", "body differs from the first use of the key")],
            )
        if claim.outcome != "new":
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        if claim.taken_over is not None:
            # The key's previous owner stopped renewing its lease: its replica died
            # mid-submit. If it got as far as recording its job, that job is the answer.
            orphan = await self._store.get(tenant, claim.taken_over)
            if orphan is not None:
                await idem.complete(tenant, idempotency_key, body_hash, orphan.id, job_id)
                _log.info("idempotency_key_taken_over", job_id=orphan.id, recorded=True)
                return await self._refresh(orphan), True
            _log.info("idempotency_key_taken_over", job_id=claim.taken_over, recorded=False)

        async def renew_key() -> None:
            if not await idem.renew(tenant, idempotency_key, job_id):
                _log.warning("idempotency_lease_lost", job_id=job_id)

        lease.keep("idempotency_key", renew_key)
        try:
            with lease:
                key = submit_key(tenant, idempotency_key)
                record = await self._submit(principal, body, key, job_id, lease)
        except BaseException:
            # If the store is down too, the pending entry's lease lapses on its own.
            with contextlib.suppress(StoreUnavailable):
                await idem.release(tenant, idempotency_key, job_id)
            raise
        if not await idem.complete(tenant, idempotency_key, body_hash, record.id, job_id):
            # This submit stalled past its lease and another request took the key over:
            # the key names that request's job; this one is answered with its own.
            _log.warning("idempotency_key_lost", job_id=record.id)
        return record, False

    async def _submit(
        self,
        principal: Principal,
        body: JobCreate,
        submit_key: str | None,
        job_id: str,
        lease: SubmitLease,
    ) -> JobRecord:
        resolved = self._catalog.resolve(body.model)
        targets = [t for t in resolved.targets if principal.may_use(resolved.names_of(t))]
        if not targets:
            raise Forbidden(f"This credential may not use model {body.model!r}.")
        if len(body.inputs) > self._max_inputs:
            raise ValidationFailed(
                f"A job takes at most {self._max_inputs} inputs.",
                errors=[FieldError("/inputs", f"at most {self._max_inputs} inputs")],
            )
        if body.webhook_url is not None:
            if self._webhooks is None or self._tracker is None:
                # Only the engine sees every job finish: without it a webhook would be
                # sent only if someone happened to read the job. Saying so is better.
                raise ValidationFailed(
                    "webhook_url needs the job engine, which is off (engine.enabled).",
                    errors=[FieldError("/webhook_url", "webhooks need the job engine")],
                )
            await self._webhooks.check(principal.tenant, body.webhook_url)
        note_provider(resolved.ref.provider)
        request = JobRequest(
            model=resolved.ref,
            inputs=tuple(to_input(i) for i in body.inputs),
            explain=body.options.explain,
            options=body.options.provider,
            submit_key=submit_key or job_id,
        )
        # The item cache answers what it can, looked up as the first target's answers
        # (which target takes the job is known only once one has); the answers of the
        # job are kept as those of the target that ran it (``ItemReuse.for_target``).
        plan = None
        if self._reuse is not None:
            plan = await self._reuse.plan(principal.tenant, resolved, request, body.options.cache)
        if plan is not None and plan.everything_cached(request):
            # Nothing for the provider to do (nor any limit on its jobs to charge): the
            # job is answered, and finished, at submit.
            return await self._answered_from_cache(principal, body, resolved, job_id, plan)
        if plan is not None and (plan.cached or plan.copies):
            sent = tuple(i for i in request.inputs if not plan.not_sent(i.name))
            request = replace(request, inputs=sent)
        # What the attempt under way took (each target's provider has its own quota).
        held: list[Admission] = []
        limits = self._limits
        if limits is not None:

            async def keep_slot() -> None:
                if held:
                    await limits.keep_slot(principal, held[-1], lease.seconds)

            lease.keep("job_slot", keep_slot)

        async def attempt(request: JobRequest, adapter: ProviderAdapter) -> JobRecord:
            provider = request.model.provider
            note_provider(provider)
            if limits is not None:
                held.append(
                    await limits.admit(principal, provider, job_id, lease_seconds=lease.seconds)
                )
            try:
                # A job the provider runs but the gateway cannot record is an orphan: make
                # sure the store answers before the provider is asked.
                await self._store.ping()
                # Its answers are kept as this target's (the plan was the first's).
                kept = plan
                if self._reuse is not None and request.model != resolved.ref:
                    kept = self._reuse.for_target(
                        principal.tenant, plan, resolved, request, body.options.cache
                    )
                return await self._create(
                    principal, body, request, adapter, job_id, kept, alias=resolved.alias
                )
            except BaseException:
                if held and limits is not None:
                    await limits.undo(held.pop())
                raise

        # The first target that takes the job (``gateway.jobs.fallback``).
        record = await self._fallback.submit(resolved.alias, targets, request, attempt)
        admission = held[-1] if held else None
        await lease.end()
        if record.done:
            await self._job_done(record)
        elif admission is not None and limits is not None:
            # Recorded: whoever sees the job finish gives the slot back from now on.
            await limits.keep_slot(principal, admission)
        if self._tracker is not None:
            try:
                await self._tracker.track(record)
            except Exception as exc:
                # The job exists and is recorded: answer it. Reads keep it moving (its
                # status is not marked fresh), so a failed hand-over loses nothing.
                _log.error("engine_track_failed", job_id=record.id, error=repr(exc))
        self._observer.submitted(record.provider)
        return record

    async def _create(
        self,
        principal: Principal,
        body: JobCreate,
        request: JobRequest,
        adapter: ProviderAdapter,
        job_id: str,
        plan: ItemPlan | None = None,
        *,
        alias: str | None = None,
    ) -> JobRecord:
        """Submit to the provider and store the record (cancelling the job if that fails)."""
        resolved = request.model
        with upstream_call():
            try:
                submission = await adapter.submit(request)
            except UnreadableSubmit as exc:
                # The provider may run (and bill) a job the gateway has no record of:
                # say so where an operator looks, with the id it seemed to name.
                _log.warning(
                    "submit_answer_unreadable",
                    provider=resolved.provider,
                    job_id=job_id,
                    upstream_id=exc.maybe_job_id,
                )
                self._observer.unreadable_submit(resolved.provider)
                raise
        now = self._clock.now()
        record = JobRecord(
            id=job_id,
            tenant=principal.tenant,
            key_id=principal.key_id,
            model=str(resolved),
            provider=resolved.provider,
            alias=alias,
            input_names=tuple(i.name for i in body.inputs),
            created_at=now,
            updated_at=now,
            upstream_id=submission.upstream_id,
            upstream_state=dict(submission.state),
            metadata=dict(body.metadata),
            webhook_url=body.webhook_url,
            notification=Notification() if body.webhook_url is not None else None,
            cached_items=plan.cached if plan is not None else {},
            cache_keys=plan.keys if plan is not None else {},
            copies=plan.copies if plan is not None else {},
        )
        if submission.report is not None:
            record = await self._applied(record, submission.report)
        else:
            cached = len(record.cached_items)
            counts = Counts.all_pending(len(record.input_names) - cached)
            record = record.evolve(
                counts=replace(counts, total=counts.total + cached, succeeded=cached)
            )
        try:
            await self._store.create(record)
        except Exception:
            # The provider has a job nobody can reach: try to stop it, then fail.
            if isinstance(adapter, SupportsCancel):
                try:
                    with upstream_call():
                        await adapter.cancel(handle_of(record))
                except Exception:
                    pass
            raise
        return record

    async def _answered_from_cache(
        self,
        principal: Principal,
        body: JobCreate,
        resolved: Resolved,
        job_id: str,
        plan: ItemPlan,
    ) -> JobRecord:
        """A job every input of which the item cache answered: recorded finished."""
        now = self._clock.now()
        total = len(body.inputs)
        record = JobRecord(
            id=job_id,
            tenant=principal.tenant,
            key_id=principal.key_id,
            model=str(resolved.ref),
            provider=resolved.ref.provider,
            alias=resolved.alias,
            input_names=tuple(i.name for i in body.inputs),
            created_at=now,
            updated_at=now,
            status=JobStatus.SUCCEEDED,
            counts=Counts(total=total, succeeded=total),
            finished_at=now,
            metadata=dict(body.metadata),
            webhook_url=body.webhook_url,
            notification=Notification() if body.webhook_url is not None else None,
            cached_items=plan.cached,
        )
        await self._store.create(record)
        self._observer.submitted(record.provider)
        self._observer.finished(record.provider, record.status.value, 0.0)
        self._observer.items_finished(record.provider, record.status.value, Counts(total, total))
        self._remember(record)
        if self._tracker is not None:
            try:
                await self._tracker.track(record)  # its webhook, if it has one
            except Exception as exc:
                _log.error("engine_track_failed", job_id=record.id, error=repr(exc))
        return record

    # -- read -----------------------------------------------------------------------------

    async def get(self, principal: Principal, job_id: str) -> JobRecord:
        """The job, refreshed from the provider unless it is already finished."""
        principal.require("jobs:read")
        if self._reuses_status and (principal.tenant, job_id) not in self._finished:
            # Not known finished here: its record and whether its status is fresh are
            # asked together (one pipeline through the batcher), not one after the other.
            record, fresh = await asyncio.gather(
                self._find(principal, job_id), self._freshness.is_fresh(job_id)
            )
            return await self._refresh(record, fresh=fresh)
        record = await self._find(principal, job_id)
        return await self._refresh(record)

    async def wait(self, principal: Principal, job_id: str, seconds: float) -> JobRecord:
        """Like ``get``, but hold on until the job is done or ``seconds`` have passed."""
        record = await self.get(principal, job_id)
        return await self._wait_done(record, seconds)

    async def wait_record(self, record: JobRecord, seconds: float) -> JobRecord:
        return await self._wait_done(record, seconds)

    async def _wait_done(self, record: JobRecord, seconds: float) -> JobRecord:
        if record.done or seconds <= 0:
            return record
        deadline = self._clock.monotonic() + seconds
        async with self._events.watch(record.id) as changed:
            if self._tracker is not None:
                # A change between the first read and the watch would be missed.
                record = await self.current(record)
            while not record.done and not self._stop_waiting:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    break
                with waiting(), contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(self._poll_interval, left))
                changed.clear()
                record = await self.current(record)
        return record

    def stop_waiting(self) -> None:
        """The process is draining: every ``Prefer: wait`` answers now with the job as
        it stands (202 if unfinished), rather than be cut off by the shutdown."""
        self._stop_waiting = True
        if isinstance(self._events, LocalWatchers):
            self._events.notify_all()

    async def current(self, record: JobRecord) -> JobRecord:
        """The job as it is now: as stored (any replica may have moved it), refreshed
        from the provider if that is not recent enough."""
        if not record.done:
            record = await self._store.get(record.tenant, record.id) or record
        return await self._refresh(record)

    async def list(
        self,
        principal: Principal,
        *,
        status: JobStatus | None,
        provider: str | None,
        page_size: int,
        cursor: str | None,
    ) -> JobPage:
        principal.require("jobs:read")
        return await self._store.list(
            principal.tenant,
            status=status,
            provider=provider,
            page_size=page_size,
            cursor=cursor,
        )

    async def results(self, principal: Principal, job_id: str) -> JobResults:
        """The job and one result per input, in input order."""
        principal.require("jobs:read")
        record = await self._refresh(await self._find(principal, job_id))
        results = await self._result_set(record)
        items = [item_of(record, results, name) for name in record.input_names]
        return JobResults(record=record, items=items, results=results)

    async def _result_set(self, record: JobRecord) -> ResultSet:
        """What the provider answered for the job (from what the gateway holds if it can)."""
        if not record.provider_inputs:
            return ResultSet(items={}, final=True)  # every input came from the item cache
        results = await self._cached_results(record)
        if results is not None:
            note_cache("hit")
        elif record.status is JobStatus.QUEUED:
            results = ResultSet(items={})
        else:
            note_cache("miss")
            results = await self._coalescer.run(
                f"results:{record.id}",
                lambda: self._fetch_results(record),
                lambda: self._shared_results(record),
            )
        return results

    async def _cached_results(self, record: JobRecord) -> ResultSet | None:
        if record.done and self._local_cache is not None:
            found = await self._local_cache.get(record.tenant, record.id)
            if found is not None:
                return found
        found = await self._shared_results(record)
        if found is not None and record.done and self._local_cache is not None:
            await self._local_cache.put(record.tenant, record.id, found)
        return found

    async def _shared_results(self, record: JobRecord) -> ResultSet | None:
        found = await self._cache.get(record.tenant, record.id)
        if found is not None and record.done and not found.final:
            return None  # read while the job ran: not a finished job's last word
        return found

    async def _fetch_results(self, record: JobRecord) -> ResultSet:
        with upstream_call():
            results = await self._adapter(record.provider).results(handle_of(record))
        if record.done:
            results = replace(results, final=True)
            await self._cache.put(record.tenant, record.id, results)
            if self._local_cache is not None:
                await self._local_cache.put(record.tenant, record.id, results)
        elif self._status_ttl > 0:
            # Partial results of a running job: shared briefly, like its status.
            await self._cache.put(record.tenant, record.id, results, ttl=self._status_ttl)
        return results

    # -- cancel ---------------------------------------------------------------------------

    async def cancel(self, principal: Principal, job_id: str) -> JobRecord:
        principal.require("jobs:write")
        record = await self._find(principal, job_id)
        if record.done:
            raise JobDone(f"Job {record.id} already finished ({record.status}).")
        adapter = self._adapter(record.provider)
        if not (isinstance(adapter, SupportsCancel) and adapter.capabilities.cancel):
            raise CancelNotSupported(f"Provider {record.provider!r} cannot cancel jobs.")
        note_provider(record.provider)
        try:
            with upstream_call():
                report = await adapter.cancel(handle_of(record))
        except ProviderRejected:
            # Usually: the job finished between our last look and the cancel.
            refreshed = await self._refresh(record, force=True)
            if refreshed.done:
                return refreshed
            raise
        if report is None or not report.status.done:
            if report is not None and report.state is not None:
                # Some of its provider jobs stopped: keep that before asking again.
                record = await self._applied(record, report)
                await self._store.update(record)
            return await self._refresh(record, force=True)
        updated = await self._applied(record, report)
        await self._store.update(updated)
        await self._events.publish(updated.id)
        self._remember(updated)
        await self._job_done(updated)
        if self._tracker is not None:
            # Its webhook goes now, not at the engine's next check of the job.
            await self._tracker.track(updated)
        return updated

    # -- what the job engine calls -----------------------------------------------------------

    @property
    def store(self) -> JobStore:
        return self._store

    def use_tracker(self, tracker: Tracker, webhooks: WebhookCheck | None = None) -> None:
        """Hand every job submitted from now on to ``tracker`` (the job engine), which
        also sends webhooks (``webhooks`` checks a submit's ``webhook_url``)."""
        self._tracker = tracker
        self._webhooks = webhooks
        self._reuses_status = True

    async def load(self, tenant: str, job_id: str) -> JobRecord | None:
        return await self._store.get(tenant, job_id)

    async def poll(self, record: JobRecord) -> JobRecord:
        """Ask the provider about the job now, and store and publish what changed."""
        note_provider(record.provider)
        return await self._ask_provider(record)

    async def finalize(self, record: JobRecord) -> None:
        """A finished job: its slot given back and its results fetched once into the
        result cache. Safe to repeat: the replica that saw the finish may have died
        between storing it and giving the slot back, and the check runs again elsewhere."""
        # The item cache was written where the finish was seen (the poll, or a read).
        await self._job_done(record, remember=False)
        if await self._cached_results(record) is None:
            await self._fetch_results(record)

    async def mark_fresh(self, job_id: str, seconds: float) -> None:
        """Reads may answer the job from state for ``seconds`` (the engine keeps it)."""
        await self._freshness.mark(job_id, seconds)

    # -- internals --------------------------------------------------------------------------

    def _adapter(self, provider: str) -> ProviderAdapter:
        adapter = self._adapters.get(provider)
        if adapter is None:
            raise NotFound(f"Unknown provider {provider!r}.")
        return adapter

    async def _find(self, principal: Principal, job_id: str) -> JobRecord:
        key = (principal.tenant, job_id)
        record = self._finished.get(key)
        if record is not None and self._recall is not None:
            # No Redis round trip unless Redis lost state since it last had the record;
            # then the write-back makes the job readable on every replica again.
            await self._recall.confirm(record)
        if record is None:
            record = await self._store.get(principal.tenant, job_id)
            if record is None:
                raise NotFound(f"No job {job_id!r}.")
            self._remember(record)
        note_provider(record.provider)
        return record

    def _remember(self, record: JobRecord) -> None:
        if not record.settled:
            return  # unfinished, or its webhook is still being delivered: it will change
        key = (record.tenant, record.id)
        self._finished[key] = record
        self._finished.move_to_end(key)
        if self._recall is not None:
            self._recall.hold(record)
        while len(self._finished) > self._max_local:
            self._finished.popitem(last=False)

    async def _refresh(
        self, record: JobRecord, *, force: bool = False, fresh: bool | None = None
    ) -> JobRecord:
        """``fresh``: whether the status is fresh, if the caller has asked already."""
        if not force:
            if record.done:
                note_cache("hit")
                return record
            if fresh is None:
                fresh = self._reuses_status and await self._freshness.is_fresh(record.id)
            if fresh:
                note_cache("hit")
                return record
        note_cache("miss")
        if force:
            return await self._ask_provider(record)
        # With the status cache off no replica marks a status fresh, so what another
        # replica learns can never be reused here: a lease across replicas would only
        # make this read wait for that replica's call, then call anyway (3 more Redis
        # round trips). Concurrent reads in this process still share one call.
        follow = (lambda: self._fresh_record(record)) if self._reuses_status else None
        return await self._coalescer.run(
            f"status:{record.id}", lambda: self._ask_provider(record), follow
        )

    async def _ask_provider(self, record: JobRecord) -> JobRecord:
        with upstream_call():
            report = await self._adapter(record.provider).status(handle_of(record))
        updated = await self._applied(record, report)
        if updated != record:
            await self._store.update(updated)
            await self._events.publish(updated.id)
        if self._status_ttl > 0:
            await self._freshness.mark(record.id, self._status_ttl)
        self._remember(updated)
        if updated.done and not record.done:
            await self._job_done(updated)
        return updated

    async def _applied(self, record: JobRecord, report: StatusReport) -> JobRecord:
        """The record after ``report``; a finished job whose repeated inputs cannot be
        counted from the report's counts alone has its results read first (once: they
        are then the job's cached results, which its finish would fetch anyway)."""
        copied = None
        if copies_need_outcomes(record, report):
            state = record.upstream_state if report.state is None else dict(report.state)
            ended = record.evolve(status=report.status, upstream_state=state)
            results = await self._result_set(ended)
            copied = {
                name: item_of(ended, results, name).status for name in set(record.copies.values())
            }
        return apply_report(
            record, report, self._clock.now(), self._observer, self._unknown_grace, copied
        )

    async def _job_done(self, record: JobRecord, *, remember: bool = True) -> None:
        if self._limits is not None:
            await self._limits.finished(record.tenant, record.key_id, record.id)
        if remember and self._reuse is not None and record.cache_keys:
            await self._reuse.remember(record, lambda: self._result_set(record))

    async def _fresh_record(self, record: JobRecord) -> JobRecord | None:
        """What another replica just learned of the job, once it is there."""
        if not await self._freshness.is_fresh(record.id):
            return None
        return await self._store.get(record.tenant, record.id)
