"""Job records and what the adapters say of them: pure translations, no I/O.

``JobService`` (``gateway.jobs.service``) decides when to ask a provider and where to
keep the answer; this module turns an API submit into the adapter's ``JobRequest``
inputs, a stored record into the ``JobHandle`` an adapter addresses, a provider's
``StatusReport`` into the next record (with the lifecycle metrics that change marks),
and a result set into one item per input.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import structlog

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemResult,
    ItemStatus,
    JobHandle,
    JobInput,
    JobStatus,
    ModelRef,
    ResultSet,
    StatusReport,
)
from gateway.api.models import InputItem, JobCreate
from gateway.state.store import JobRecord

_log = structlog.get_logger("gateway.jobs")


class JobObserver(Protocol):
    """Hooks for job lifecycle metrics (``observability.metrics.Metrics`` implements them)."""

    def submitted(self, provider: str) -> None: ...

    def finished(self, provider: str, status: str, seconds: float) -> None: ...

    def first_result(self, provider: str, seconds: float) -> None: ...

    def items_finished(self, provider: str, status: str, counts: Counts) -> None: ...

    def unreadable_submit(self, provider: str) -> None: ...


class NoObserver:
    def submitted(self, provider: str) -> None:
        return None

    def finished(self, provider: str, status: str, seconds: float) -> None:
        return None

    def first_result(self, provider: str, seconds: float) -> None:
        return None

    def items_finished(self, provider: str, status: str, counts: Counts) -> None:
        return None

    def unreadable_submit(self, provider: str) -> None:
        return None


def new_job_id() -> str:
    """An opaque, unguessable job id: 128 random bits."""
    return "job_" + secrets.token_urlsafe(16)


def fingerprint(body: JobCreate) -> str:
    """What an Idempotency-Key's later uses must match: the submit's canonical JSON."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_key(tenant: str, idempotency_key: str) -> str:
    """The same for every resend of one idempotent submit, on any replica: a provider
    that takes idempotency keys then hands back the job the first attempt made."""
    return hashlib.sha256(f"{tenant}\0{idempotency_key}".encode()).hexdigest()[:32]


def to_input(item: InputItem) -> JobInput:
    """One submitted input as the adapter takes it (``data`` decoded from base64)."""
    return JobInput(
        name=item.name,
        kind=InputKind(item.kind),
        text=item.text,
        data=base64.b64decode(item.data) if item.data is not None else None,
        content_type=item.content_type,
        url=item.url,
        ref=item.ref,
        record=item.record,
        fields=item.fields or {},
    )


def handle_of(record: JobRecord) -> JobHandle:
    """What the record's adapter needs to address the provider's job again."""
    provider, _, rest = record.model.partition("/")
    model_id, _, version = rest.partition("@")
    return JobHandle(
        upstream_id=record.upstream_id or "",
        model=ModelRef(provider=provider, model_id=model_id, version=version or None),
        input_names=record.provider_inputs,
        state=record.upstream_state,
    )


def apply_report(
    record: JobRecord,
    report: StatusReport,
    now: datetime,
    observer: JobObserver,
    unknown_grace: float = 3600.0,
    copied: Mapping[str, ItemStatus] | None = None,
) -> JobRecord:
    """The record after the provider's report: the same object when nothing changed.

    ``copied``: how each input that others of the job repeat (``record.copies``) ended,
    where the report's counts cannot tell (``copies_need_outcomes``).

    The adapter's state (``report.state``) replaces the record's in the same record, so
    a step of a provider workflow is stored with the status it led to. The first
    finished item and the job's finish are reported to ``observer`` once each. A status
    word the adapter does not know is logged when it first appears and fails the job
    once it has stood for ``unknown_grace`` seconds.
    """
    if not report.known and not report.status.done:
        report = _judge_unknown(record, report, now, unknown_grace)
    # The provider speaks of the inputs it was sent; those answered from the item cache
    # at submit are succeeded items of the job all the same.
    total = len(record.provider_inputs)
    counts = report.counts or derived_counts(report.status, total)
    status = report.status
    if record.copies:
        counts = _with_copies(record, report.status, counts, copied)
    if record.cached_items:
        cached = len(record.cached_items)
        counts = replace(counts, total=counts.total + cached, succeeded=counts.succeeded + cached)
        if status is JobStatus.FAILED:
            status = JobStatus.PARTIALLY_SUCCEEDED
    report = replace(report, status=status)
    state = record.upstream_state if report.state is None else dict(report.state)
    changed = (
        report.status != record.status
        or report.upstream_status != record.upstream_status
        or counts != record.counts
        or report.error != record.error
        or state != record.upstream_state
    )
    if not changed:
        return record
    finished_at = record.finished_at
    if items_done(counts) and not items_done(record.counts):
        observer.first_result(record.provider, (now - record.created_at).total_seconds())
    if report.status.done and finished_at is None:
        finished_at = now
        observer.finished(
            record.provider, report.status.value, (now - record.created_at).total_seconds()
        )
        observer.items_finished(record.provider, report.status.value, counts)
    return record.evolve(
        status=report.status,
        upstream_status=report.upstream_status,
        counts=counts,
        error=report.error,
        upstream_state=state,
        updated_at=now,
        finished_at=finished_at,
    )


def copies_need_outcomes(record: JobRecord, report: StatusReport) -> bool:
    """Whether counting the job's repeated inputs takes the results: it is over and
    the inputs sent did not all end alike (a repeat ends as the input it repeats)."""
    if not record.copies or not report.status.done or report.status is JobStatus.CANCELLED:
        # A cancelled job's repeats stay uncounted (pending), as its unfinished items do.
        return False
    counts = report.counts or derived_counts(report.status, len(record.provider_inputs))
    return counts.succeeded != counts.total and counts.failed != counts.total


def _with_copies(
    record: JobRecord,
    status: JobStatus,
    counts: Counts,
    copied: Mapping[str, ItemStatus] | None,
) -> Counts:
    """The counts of the inputs sent, with their repeats: pending while the job runs
    (which repeat ends how is known per item only), then as the inputs they repeat."""
    n = len(record.copies)
    total = counts.total + n
    if not status.done:
        return replace(counts, total=total, pending=counts.pending + n)
    if counts.succeeded == counts.total:
        return replace(counts, total=total, succeeded=counts.succeeded + n)
    if counts.failed == counts.total:
        return replace(counts, total=total, failed=counts.failed + n)
    ended = [(copied or {}).get(original) for original in record.copies.values()]
    succeeded = sum(1 for e in ended if e is ItemStatus.SUCCEEDED)
    failed = sum(1 for e in ended if e is ItemStatus.FAILED)
    return Counts(
        total=total,
        succeeded=counts.succeeded + succeeded,
        failed=counts.failed + failed,
        pending=counts.pending + n - succeeded - failed,
    )


def _judge_unknown(
    record: JobRecord, report: StatusReport, now: datetime, grace: float
) -> StatusReport:
    word = report.upstream_status
    if record.upstream_status != word:
        # Logged once per job and word: the first report of it changes the record.
        _log.warning(
            "provider_status_unknown",
            provider=record.provider,
            job_id=record.id,
            upstream_status=word[:100],
            fails_after_seconds=grace,
        )
        return report
    # The record last changed when this word appeared (an unchanged report changes
    # nothing), so its age is how long the provider has said it.
    if (now - record.updated_at).total_seconds() < grace:
        return report
    total = len(record.provider_inputs)
    done = report.counts.succeeded if report.counts is not None else 0
    return replace(
        report,
        status=JobStatus.FAILED,
        counts=Counts(total=total, succeeded=done, failed=total - done),
        error=ErrorInfo(
            "upstream_status_unknown",
            f"The provider has reported the status {word[:100]!r}, which the gateway does "
            f"not know, for over {grace:g} s; the job is failed rather than left running.",
        ),
        known=True,
    )


def item_of(record: JobRecord, results: ResultSet, name: str) -> ItemResult:
    """Input ``name``'s result as the job's state explains it: an item the provider said
    nothing of is pending while the job runs, cancelled with it, or failed once it ended.
    An input answered from the item cache at submit is that answer, marked ``cached``;
    one repeating an earlier input of the job is that input's answer (``cached`` once
    it succeeded: the provider was not asked for it)."""
    cached = record.cached_items.get(name)
    if cached is not None:
        return replace(cached, input=name, cached=True)
    original = record.copies.get(name)
    if original is not None:
        item = item_of(record, results, original)
        return replace(item, input=name, cached=item.status is ItemStatus.SUCCEEDED)
    found = results.items.get(name)
    if found is not None:
        if record.status is JobStatus.CANCELLED and found.status in (
            ItemStatus.PENDING,
            ItemStatus.RUNNING,
        ):
            return ItemResult(input=name, status=ItemStatus.CANCELLED, raw=found.raw)
        return found
    if record.status is JobStatus.CANCELLED:
        return ItemResult(input=name, status=ItemStatus.CANCELLED)
    if record.done:
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("missing_result", "The provider reported no result for this input."),
        )
    return ItemResult(input=name, status=ItemStatus.PENDING)


def items_done(counts: Counts | None) -> bool:
    return counts is not None and counts.succeeded + counts.failed > 0


def derived_counts(status: JobStatus, total: int) -> Counts:
    """Counts of a provider that does not count: all or nothing, by the job's status."""
    if status is JobStatus.SUCCEEDED:
        return Counts(total=total, succeeded=total)
    if status is JobStatus.FAILED:
        return Counts(total=total, failed=total)
    return Counts.all_pending(total)
