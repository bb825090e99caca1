"""Turning job records and adapter results into the public API models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from adapters.base import Counts, ErrorInfo, ItemResult, JobStatus
from gateway.api import models
from gateway.state.store import JobRecord


def error_view(error: ErrorInfo | None) -> models.ErrorBody | None:
    return models.ErrorBody(code=error.code, message=error.message) if error else None


def job_view(record: JobRecord) -> models.Job:
    counts = record.counts or Counts.all_pending(len(record.input_names))
    # A cancelled job has nothing pending: what had not finished was cancelled with it
    # (as each such item's own status says in its results).
    pending, cancelled = counts.pending, 0
    if record.status is JobStatus.CANCELLED:
        pending, cancelled = 0, counts.pending
    return models.Job(
        id=record.id,
        model=record.model,
        provider=record.provider,
        alias=record.alias,
        status=record.status,
        done=record.done,
        counts=models.Counts(
            total=counts.total,
            succeeded=counts.succeeded,
            failed=counts.failed,
            pending=pending,
            cancelled=cancelled,
        ),
        created_at=record.created_at,
        updated_at=record.updated_at,
        finished_at=record.finished_at,
        error=error_view(record.error),
        upstream=models.UpstreamRef(id=record.upstream_id, status=record.upstream_status),
        metadata=dict(record.metadata),
        notification=notification_view(record),
    )


def job_data(record: JobRecord) -> dict[str, Any]:
    """``dump(job_view(record))``, built directly: the view of a job is rendered on every
    read of an unfinished one, and validating a response model only to dump it again
    costs as much as the rest of the read (``tests/unit/api/test_job_data.py`` holds
    the two equal)."""
    counts = record.counts or Counts.all_pending(len(record.input_names))
    pending, cancelled = counts.pending, 0
    if record.status is JobStatus.CANCELLED:
        pending, cancelled = 0, counts.pending
    error = record.error
    data: dict[str, Any] = {
        "id": record.id,
        "model": record.model,
        "provider": record.provider,
    }
    if record.alias is not None:
        data["alias"] = record.alias
    data.update(
        status=record.status.value,
        done=record.done,
        counts={
            "total": counts.total,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "pending": pending,
            "cancelled": cancelled,
        },
        created_at=models.rfc3339(record.created_at),
        updated_at=models.rfc3339(record.updated_at),
        finished_at=models.rfc3339(record.finished_at) if record.finished_at else None,
        error={"code": error.code, "message": error.message} if error else None,
        upstream={"id": record.upstream_id, "status": record.upstream_status},
        metadata=dict(record.metadata),
    )
    n = record.notification
    if n is not None:
        data["notification"] = {
            "status": n.status,
            "attempts": n.attempts,
            "last_error": n.last_error,
            "delivered_at": models.rfc3339(n.delivered_at) if n.delivered_at else None,
        }
    return data


def notification_view(record: JobRecord) -> models.Notification | None:
    n = record.notification
    if n is None:
        return None
    return models.Notification(
        status=n.status,
        attempts=n.attempts,
        last_error=n.last_error,
        delivered_at=n.delivered_at,
    )


def item_view(item: ItemResult, *, include_raw: bool) -> models.Item:
    return models.Item(
        input=item.input,
        status=item.status,
        output=item.output,
        explanation=item.explanation,
        error=error_view(item.error),
        started_at=item.started_at,
        finished_at=item.finished_at,
        elapsed_ms=item.elapsed_ms,
        raw=item.raw if include_raw else None,
        cached=item.cached,
    )


def dump(model: BaseModel, *, exclude: Any = None) -> dict[str, Any]:
    """A response model as JSON-ready data."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude=exclude)
    return data
