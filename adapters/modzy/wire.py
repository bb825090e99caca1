"""Pure translation between the gateway's job model and Modzy's wire API (PROVIDERS.md §1).

No I/O here: request bodies, route paths, status words, result items and timestamps,
each turned from one side's shape into the other's. ``normalize.py`` holds the
translation of a model's output and explanation, which is the bulk of the results.

Modzy's facts this module leans on:

* a job is ``{"model": {"identifier", "version"}, "explain", "input": {"type",
  "sources": {<input item>: {<model input name>: value}}}}``; one job has one input
  ``type``, so text and binary inputs cannot share a job;
* job statuses ``SUBMITTED``/``OPEN`` → ``IN_PROGRESS`` → ``COMPLETED`` | ``CANCELED``
  | ``TIMEDOUT`` (the docs' prose adds ``ERROR``); counts ``total``/``completed``
  (successful items)/``failed``/``pending``;
* results keep running and successful items in ``results`` and failed ones in
  ``failures``, keyed by input item name; an item runs ``FETCHING_DATA`` →
  ``PROCESSING`` → ``SUCCESSFUL`` | ``FAILED``, and legacy answers nest an item's
  content once more under its own name;
* timestamps come as ``2021-07-20T01:40:11.187+0000`` or ``...+00:00``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemResult,
    ItemStatus,
    JobInput,
    JobRequest,
    JobStatus,
    ResultSet,
    StatusReport,
    status_from_counts,
)
from adapters.errors import ProviderBadResponse
from adapters.modzy.normalize import normalize_output
from problems import FieldError, UnsupportedInput, ValidationFailed

#: The model input name (the inner key of ``sources[item]``) when options name none.
DEFAULT_INPUT_NAMES: Mapping[str, str] = {"text": "input.txt", "embedded": "image"}

#: Modzy's job status words and what they mean for the gateway.
SUBMITTED = "SUBMITTED"
OPEN = "OPEN"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"
TIMEDOUT = "TIMEDOUT"
ERROR = "ERROR"

JOB_STATUS_MAP: Mapping[str, JobStatus] = {
    SUBMITTED: JobStatus.QUEUED,
    OPEN: JobStatus.QUEUED,
    IN_PROGRESS: JobStatus.RUNNING,
    COMPLETED: JobStatus.SUCCEEDED,  # refined by status_from_counts
    CANCELED: JobStatus.CANCELLED,
    TIMEDOUT: JobStatus.FAILED,
    ERROR: JobStatus.FAILED,
}

#: Per-item status words of the results route.
ITEM_STATUS_MAP: Mapping[str, ItemStatus] = {
    "FETCHING_DATA": ItemStatus.RUNNING,
    "PROCESSING": ItemStatus.RUNNING,
    "SUCCESSFUL": ItemStatus.SUCCEEDED,
    "FAILED": ItemStatus.FAILED,
}

#: Keys of a result item that describe the processing, not the model's output.
ITEM_META_KEYS = frozenset(
    {
        "status",
        "engine",
        "error",
        "inputFetching",
        "outputUploading",
        "modelLatency",
        "queueTime",
        "startTime",
        "updateTime",
        "endTime",
        "elapsedTime",
        "voting",
    }
)
PRIMARY_OUTPUT = "results.json"

ITEM_FAILED_DEFAULT = "The provider failed to process this input."


class ModzyOptions(BaseModel):
    """``options.provider`` for Modzy."""

    model_config = ConfigDict(extra="forbid")

    #: The model's input name (e.g. ``input.txt``, ``image``); defaults by input kind.
    input_name: str | None = Field(default=None, min_length=1, max_length=256)
    #: Modzy's job ``timeout`` in milliseconds (0: the provider's default).
    timeout: Annotated[int, Field(strict=True, ge=0)] | None = None


def auth_headers(credential: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {credential}"}


def _seg(value: str) -> str:
    return quote(value, safe="")


JOBS_PATH = "/jobs"


def job_path(job_id: str) -> str:
    return f"/jobs/{_seg(job_id)}"


def results_path(job_id: str) -> str:
    return f"/results/{_seg(job_id)}"


# -- submit ------------------------------------------------------------------------------


def _wire_type(kind: InputKind) -> str:
    return "text" if kind is InputKind.TEXT else "embedded"


def check_request(request: JobRequest) -> None:
    """Refuse what no Modzy job can carry: no version, no inputs, text mixed with data.

    Input kinds other than text and data are refused earlier by ``require_input_kinds``.
    """
    if not request.model.version:
        msg = (
            f"Modzy models are addressed with a version: use "
            f"'{request.model.provider}/{request.model.model_id}@<version>'."
        )
        raise ValidationFailed(msg, errors=[FieldError("/model", msg)])
    if not request.inputs:
        msg = "A Modzy job needs at least one input."
        raise ValidationFailed(msg, errors=[FieldError("/inputs", msg)])
    first = request.inputs[0].kind
    for i, item in enumerate(request.inputs):
        if item.kind is not first:
            msg = (
                f"input {item.name!r}: one Modzy job takes either text or data inputs, "
                f"not both (the first input is {first})"
            )
            raise UnsupportedInput(msg, errors=[FieldError(f"/inputs/{i}", msg)])


def data_uri(data: bytes, content_type: str | None) -> str:
    """An ``embedded`` source value: ``data:<mime>;base64,<bytes>``."""
    mime = (content_type or "application/octet-stream").replace(" ", "")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _source_value(item: JobInput) -> str:
    if item.kind is InputKind.TEXT:
        return item.text or ""
    return data_uri(item.data or b"", item.content_type)


def submit_body(request: JobRequest, options: ModzyOptions) -> dict[str, Any]:
    """The ``POST /jobs`` body for a request that passed ``check_request``."""
    check_request(request)
    wire_type = _wire_type(request.inputs[0].kind)
    input_name = options.input_name or DEFAULT_INPUT_NAMES[wire_type]
    body: dict[str, Any] = {
        "model": {"identifier": request.model.model_id, "version": request.model.version},
        "explain": request.explain,
        "input": {
            "type": wire_type,
            "sources": {item.name: {input_name: _source_value(item)} for item in request.inputs},
        },
    }
    if options.timeout is not None:
        body["timeout"] = options.timeout
    return body


def submit_from_wire(payload: Any, provider: str, total: int) -> tuple[str, StatusReport]:
    """The job id of a submit answer, and the status it implies.

    A SubmitJobResponse carries no ``status``; the Python SDK then assumes SUBMITTED.
    """
    job_id = payload.get("jobIdentifier") if isinstance(payload, dict) else None
    if not isinstance(job_id, str) or not job_id:
        raise ProviderBadResponse(provider, "The provider's submit answer carries no job id.")
    counted = _int(payload.get("totalInputs"))
    n = counted if counted is not None else total
    word = payload.get("status")
    if not isinstance(word, str) or not word:
        return job_id, StatusReport(JobStatus.QUEUED, SUBMITTED, Counts.all_pending(n))
    return job_id, report_from_wire(payload, provider, total=n)


# -- status ------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def counts_from_wire(payload: Mapping[str, Any], total: int | None = None) -> Counts | None:
    """``total``/``completed``/``failed``/``pending`` as Counts; None when uncounted."""
    n = _int(payload.get("total"))
    if n is None:
        n = total
    if n is None:
        return None
    ok = max(0, _int(payload.get("completed")) or 0)
    failed = max(0, _int(payload.get("failed")) or 0)
    pending = _int(payload.get("pending"))
    if pending is None or pending < 0:
        pending = max(0, n - ok - failed)
    return Counts(total=n, succeeded=ok, failed=failed, pending=pending)


def report_from_wire(payload: Any, provider: str, *, total: int | None = None) -> StatusReport:
    """A job details answer (``GET /jobs/{id}``, ``DELETE /jobs/{id}``) as a StatusReport.

    An unknown status word is taken for a job still running: the next poll tells
    more, and a word Modzy adds later should not break every job that shows it.
    """
    if not isinstance(payload, dict):
        raise ProviderBadResponse(provider, "The provider's job answer is not an object.")
    word = payload.get("status")
    if not isinstance(word, str) or not word:
        raise ProviderBadResponse(provider, "The provider's job answer carries no status.")
    counts = counts_from_wire(payload, total)
    status = JOB_STATUS_MAP.get(word.upper(), JobStatus.RUNNING)
    error: ErrorInfo | None = None
    if word.upper() == COMPLETED and counts is not None:
        status = status_from_counts(counts)
        if status is JobStatus.FAILED:
            error = ErrorInfo("all_items_failed", "Every input of the job failed.")
    elif word.upper() == TIMEDOUT:
        error = ErrorInfo("upstream_timeout", "The job timed out at the provider.")
    elif word.upper() == ERROR:
        said = payload.get("message") or payload.get("error")
        error = ErrorInfo(
            "upstream_failed",
            said[:500] if isinstance(said, str) and said else "The job failed at the provider.",
        )
    return StatusReport(status=status, upstream_status=word, counts=counts, error=error)


# -- results -----------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A Modzy timestamp (``...187+0000``, ``...560+00:00``, ``...Z``) as an aware datetime.

    A missing or unreadable value is None: one odd timestamp must not cost the caller
    the item's output. A value without an offset is taken as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def unnest(name: str, content: Any) -> Any:
    """Undo the legacy double nesting of an item's content under its own name.

    The outer object's own keys (status, times) are kept where the inner one lacks them.
    An input item named like an output (``results.json``) is not mistaken for the
    quirk: the inner object must look like an item, or the outer one must not.
    """
    if not isinstance(content, dict) or not isinstance(content.get(name), dict):
        return content
    inner: dict[str, Any] = content[name]
    looks_like_item = any(k in inner for k in ("status", "error", PRIMARY_OUTPUT))
    if "status" in content and not looks_like_item:
        return content
    outer = {k: v for k, v in content.items() if k != name}
    return {**outer, **inner}


def _error_message(item: Mapping[str, Any]) -> str:
    err = item.get("error")
    if isinstance(err, dict):
        err = err.get("message")
    if isinstance(err, str) and err.strip():
        return err.strip()[:500]
    return ITEM_FAILED_DEFAULT


def _output_value(item: Mapping[str, Any]) -> tuple[bool, Any]:
    """The model's output in an item: ``results.json``, its only output, or all of them."""
    outputs = {k: v for k, v in item.items() if k not in ITEM_META_KEYS}
    if PRIMARY_OUTPUT in outputs:
        return True, outputs[PRIMARY_OUTPUT]
    if len(outputs) == 1:
        return True, next(iter(outputs.values()))
    if outputs:
        return True, outputs
    return False, None


def item_from_wire(name: str, content: Any, *, failure: bool = False) -> ItemResult:
    """One entry of ``results`` (or of ``failures`` when ``failure``) as an ItemResult."""
    item = unnest(name, content)
    if not isinstance(item, dict):
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("item_failed", "The provider answered with no object for this input."),
            raw=content,
        )
    word = item.get("status")
    status = ITEM_STATUS_MAP.get(word.upper()) if isinstance(word, str) else None
    has_output, value = _output_value(item)
    if status is None:
        # No (known) status word: the map it came in and its content tell.
        if failure or "error" in item:
            status = ItemStatus.FAILED
        else:
            status = ItemStatus.SUCCEEDED if has_output else ItemStatus.RUNNING
    times: dict[str, Any] = {
        "started_at": parse_time(item.get("startTime")),
        "finished_at": parse_time(item.get("endTime")),
    }
    elapsed = item.get("elapsedTime")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) and elapsed >= 0:
        times["elapsed_ms"] = round(elapsed)
    if status is ItemStatus.FAILED:
        return ItemResult(
            input=name,
            status=status,
            error=ErrorInfo("item_failed", _error_message(item)),
            raw=content,
            **times,
        )
    if status is ItemStatus.SUCCEEDED:
        output, explanation = normalize_output(value)
        return ItemResult(
            input=name,
            status=status,
            output=output,
            explanation=explanation,
            raw=content,
            **times,
        )
    return ItemResult(input=name, status=status, raw=content, **times)


def results_from_wire(payload: Any, provider: str, input_names: Sequence[str]) -> ResultSet:
    """A results answer as the job's ResultSet, keyed by the gateway input names.

    Items Modzy names that the job does not have are dropped (the gateway could not
    address them). An item in both maps is taken from ``failures``.
    """
    if not isinstance(payload, dict):
        raise ProviderBadResponse(provider, "The provider's results are not a JSON object.")
    known = set(input_names)
    items: dict[str, ItemResult] = {}
    for key, failure in (("results", False), ("failures", True)):
        section = payload.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ProviderBadResponse(provider, f"The provider's results carry a bad {key!r}.")
        for name, content in section.items():
            if known and name not in known:
                continue
            items[name] = item_from_wire(name, content, failure=failure)
    ordered = {n: items[n] for n in input_names if n in items}
    ordered.update({n: r for n, r in items.items() if n not in ordered})
    return ResultSet(items=ordered)
