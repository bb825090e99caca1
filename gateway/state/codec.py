"""Job records and result sets to and from JSON, for the shared (Redis) store and cache."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from adapters.base import (
    Counts,
    ErrorInfo,
    ItemResult,
    ItemStatus,
    JobStatus,
    ResultSet,
)
from adapters.outputs import Explanation, JobOutput, Output
from gateway.state.store import JobRecord, Notification

_OUTPUT: TypeAdapter[Output] = TypeAdapter(Output)
_EXPLANATION: TypeAdapter[Explanation] = TypeAdapter(Explanation)
_JOB_OUTPUT: TypeAdapter[JobOutput] = TypeAdapter(JobOutput)


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _error(value: ErrorInfo | None) -> dict[str, str] | None:
    return {"code": value.code, "message": value.message} if value else None


def _parse_error(value: Any) -> ErrorInfo | None:
    return ErrorInfo(value["code"], value["message"]) if value else None


def record_to_json(r: JobRecord) -> str:
    counts = r.counts
    return json.dumps(
        {
            "id": r.id,
            "tenant": r.tenant,
            "key_id": r.key_id,
            "model": r.model,
            "provider": r.provider,
            "input_names": list(r.input_names),
            "created_at": _dt(r.created_at),
            "updated_at": _dt(r.updated_at),
            "status": r.status.value,
            "upstream_id": r.upstream_id,
            "upstream_status": r.upstream_status,
            "upstream_state": r.upstream_state,
            "counts": [counts.total, counts.succeeded, counts.failed, counts.pending]
            if counts
            else None,
            "error": _error(r.error),
            "finished_at": _dt(r.finished_at),
            "metadata": dict(r.metadata),
            "webhook_url": r.webhook_url,
            "notification": _notification(r.notification),
            # Only on jobs of a model with an item cache: most records stay as they were.
            **(
                {"cached_items": [_item_to_dict(i) for i in r.cached_items.values()]}
                if r.cached_items
                else {}
            ),
            **({"cache_keys": dict(r.cache_keys)} if r.cache_keys else {}),
            **({"copies": dict(r.copies)} if r.copies else {}),
            "alias": r.alias,
        },
        separators=(",", ":"),
    )


def record_from_json(raw: str | bytes) -> JobRecord:
    d = json.loads(raw)
    created = datetime.fromisoformat(d["created_at"])
    updated = datetime.fromisoformat(d["updated_at"])
    counts = d.get("counts")
    return JobRecord(
        id=d["id"],
        tenant=d["tenant"],
        key_id=d["key_id"],
        model=d["model"],
        provider=d["provider"],
        input_names=tuple(d["input_names"]),
        created_at=created,
        updated_at=updated,
        status=JobStatus(d["status"]),
        upstream_id=d.get("upstream_id"),
        upstream_status=d.get("upstream_status"),
        upstream_state=d.get("upstream_state") or {},
        counts=Counts(*counts) if counts else None,
        error=_parse_error(d.get("error")),
        finished_at=_parse_dt(d.get("finished_at")),
        metadata=d.get("metadata") or {},
        webhook_url=d.get("webhook_url"),
        notification=_parse_notification(d.get("notification")),
        cached_items={
            i.input: i for i in (_item_from_dict(x) for x in d.get("cached_items") or ())
        },
        cache_keys=d.get("cache_keys") or {},
        copies=d.get("copies") or {},
        alias=d.get("alias"),
    )


def _notification(n: Notification | None) -> dict[str, Any] | None:
    if n is None:
        return None
    return {
        "status": n.status,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "delivered_at": _dt(n.delivered_at),
    }


def _parse_notification(d: Any) -> Notification | None:
    if not d:
        return None
    return Notification(
        status=d["status"],
        attempts=int(d["attempts"]),
        last_error=d.get("last_error"),
        delivered_at=_parse_dt(d.get("delivered_at")),
    )


def _item_to_dict(item: ItemResult) -> dict[str, Any]:
    return {
        "input": item.input,
        "status": item.status.value,
        "output": item.output.model_dump(mode="json") if item.output is not None else None,
        "explanation": item.explanation.model_dump(mode="json") if item.explanation else None,
        "error": _error(item.error),
        "started_at": _dt(item.started_at),
        "finished_at": _dt(item.finished_at),
        "elapsed_ms": item.elapsed_ms,
        "raw": item.raw,
    }


def _item_from_dict(d: dict[str, Any]) -> ItemResult:
    return ItemResult(
        input=d["input"],
        status=ItemStatus(d["status"]),
        output=_OUTPUT.validate_python(d["output"]) if d.get("output") is not None else None,
        explanation=_EXPLANATION.validate_python(d["explanation"])
        if d.get("explanation") is not None
        else None,
        error=_parse_error(d.get("error")),
        started_at=_parse_dt(d.get("started_at")),
        finished_at=_parse_dt(d.get("finished_at")),
        elapsed_ms=d.get("elapsed_ms"),
        raw=d.get("raw"),
    )


def item_to_json(item: ItemResult) -> str:
    return json.dumps(_item_to_dict(item), separators=(",", ":"))


def item_from_json(raw: str | bytes) -> ItemResult:
    return _item_from_dict(json.loads(raw))


def results_to_json(results: ResultSet) -> str:
    return json.dumps(
        {
            "items": [_item_to_dict(i) for i in results.items.values()],
            "job_outputs": [o.model_dump(mode="json") for o in results.job_outputs],
            "final": results.final,
        },
        separators=(",", ":"),
    )


def results_from_json(raw: str | bytes) -> ResultSet:
    d = json.loads(raw)
    items = [_item_from_dict(i) for i in d["items"]]
    return ResultSet(
        items={i.input: i for i in items},
        job_outputs=tuple(_JOB_OUTPUT.validate_python(o) for o in d.get("job_outputs", [])),
        final=bool(d.get("final", False)),
    )
