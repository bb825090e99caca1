"""LlamaCloud v1 classifier, translated: pure functions to and from its JSON, no I/O.

The wire API (PROVIDERS.md §5): files are uploaded first (``POST /api/v1/files``,
multipart field ``upload_file``) and a job classifies them by id
(``POST /api/v1/classifier/jobs``). A ClassifyJob's status is ``PENDING`` until it
ends as ``SUCCESS``, ``PARTIAL_SUCCESS``, ``ERROR`` or ``CANCELLED``; results come
in AIP-132 pages (``items`` + ``next_page_token``), one item per file, with
``result: null`` for a file that failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Counts,
    ErrorInfo,
    ItemResult,
    ItemStatus,
    JobInput,
    JobStatus,
    StatusReport,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import ClassificationOutput, LabelScore

PROVIDER = "llamacloud"
#: The one model this adapter serves: the v1 classifier (any version).
MODEL_ID = "classifier"

FILES_PATH = "/api/v1/files"
JOBS_PATH = "/api/v1/classifier/jobs"


def job_path(job_id: str) -> str:
    return f"{JOBS_PATH}/{job_id}"


def results_path(job_id: str) -> str:
    return f"{JOBS_PATH}/{job_id}/results"


def file_path(file_id: str) -> str:
    return f"{FILES_PATH}/{file_id}"


def auth_headers(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


# -- options ---------------------------------------------------------------------------


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1)
    description: str = Field(min_length=1)


class ParsingConfiguration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: str = "en"
    max_pages: int | None = Field(default=None, ge=1)
    #: 0-based page numbers.
    target_pages: list[int] | None = None


class LlamaCloudOptions(BaseModel):
    """``options.provider`` for a LlamaCloud provider."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(min_length=1)
    mode: Literal["FAST", "MULTIMODAL"] = "FAST"
    parsing_configuration: ParsingConfiguration | None = None
    project_id: str | None = None
    organization_id: str | None = None


def query_params(options: LlamaCloudOptions) -> dict[str, str]:
    """The ``project_id``/``organization_id`` query params every call carries when set."""
    params: dict[str, str] = {}
    if options.project_id:
        params["project_id"] = options.project_id
    if options.organization_id:
        params["organization_id"] = options.organization_id
    return params


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DFL = re.compile(r"^dfl-[A-Za-z0-9_-]+$")


def is_file_id(ref: str) -> bool:
    """A LlamaCloud file id: a UUID (classic files) or ``dfl-...`` (beta files)."""
    return bool(_UUID.match(ref) or _DFL.match(ref))


# -- requests --------------------------------------------------------------------------


def upload_form(item: JobInput) -> aiohttp.FormData:
    """The multipart body uploading one ``data`` input, named after the input."""
    form = aiohttp.FormData()
    form.add_field(
        "upload_file",
        item.data or b"",
        filename=item.name,
        content_type=item.content_type or "application/octet-stream",
    )
    return form


def create_job_body(file_ids: Iterable[str], options: LlamaCloudOptions) -> dict[str, Any]:
    """``POST /api/v1/classifier/jobs``: each file once, in first-seen order."""
    body: dict[str, Any] = {
        "file_ids": list(dict.fromkeys(file_ids)),
        "rules": [rule.model_dump() for rule in options.rules],
        "mode": options.mode,
    }
    if options.parsing_configuration is not None:
        body["parsing_configuration"] = options.parsing_configuration.model_dump(exclude_none=True)
    return body


def files_by_id(file_ids: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``{input name: file id}``: one file may serve several inputs."""
    out: dict[str, list[str]] = {}
    for name, file_id in file_ids.items():
        out.setdefault(file_id, []).append(name)
    return out


# -- answers ---------------------------------------------------------------------------


def _bad(provider: str, what: str) -> ProviderBadResponse:
    return ProviderBadResponse(provider, f"The provider's answer is malformed: {what}.")


def id_from_wire(payload: Any, what: str, *, provider: str = PROVIDER) -> str:
    """The ``id`` of a File or ClassifyJob answer."""
    ident = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(ident, str) or not ident:
        raise _bad(provider, f"the {what} has no id")
    return ident


#: StatusEnum → gateway status. v1 has no RUNNING: PENDING covers queued and working
#: alike until the job ends, and we cannot tell them apart, so PENDING is ``running``
#: (the gateway then asks for partial results, which are empty until the end).
STATUS_MAP: dict[str, JobStatus] = {
    "PENDING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCESS": JobStatus.SUCCEEDED,
    "PARTIAL_SUCCESS": JobStatus.PARTIALLY_SUCCEEDED,
    "ERROR": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELLED,
}


def report_from_wire(payload: Any, *, provider: str = PROVIDER) -> StatusReport:
    """A ClassifyJob as a StatusReport; an unknown status word reads as still running."""
    if not isinstance(payload, dict):
        raise _bad(provider, "the job is not an object")
    word = payload.get("status")
    if not isinstance(word, str) or not word:
        raise _bad(provider, "the job has no status")
    status = STATUS_MAP.get(word.upper(), JobStatus.RUNNING)
    error = None
    if status is JobStatus.FAILED:
        message = payload.get("error_message")
        error = ErrorInfo(
            "upstream_failed",
            message
            if isinstance(message, str) and message
            else "The provider reported the job as failed.",
        )
    return StatusReport(status=status, upstream_status=word, error=error)


def results_page_from_wire(
    payload: Any, *, provider: str = PROVIDER
) -> tuple[list[dict[str, Any]], str | None]:
    """One AIP-132 page: its items and the next page token (None when it is the last)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items", []), list):
        raise _bad(provider, "the results page has no item list")
    items = [item for item in payload.get("items", []) if isinstance(item, dict)]
    token = payload.get("next_page_token")
    return items, token if isinstance(token, str) and token else None


NO_RESULT = "the provider returned no classification for this file"


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def item_from_wire(name: str, raw: Mapping[str, Any]) -> ItemResult:
    """One results item as the named input's result."""
    finished = _when(raw.get("updated_at")) or _when(raw.get("created_at"))
    result = raw.get("result")
    if not isinstance(result, dict):
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("item_failed", NO_RESULT),
            finished_at=finished,
            raw=raw,
        )
    label = result.get("type")
    label = label if isinstance(label, str) and label else None
    confidence = result.get("confidence")
    score = (
        float(confidence)
        if isinstance(confidence, int | float) and not isinstance(confidence, bool)
        else None
    )
    reasoning = result.get("reasoning")
    output = ClassificationOutput(
        label=label,
        score=score,
        scores=[LabelScore(label=label, score=score)] if label and score is not None else [],
        reasoning=reasoning if isinstance(reasoning, str) else None,
    )
    return ItemResult(
        input=name, status=ItemStatus.SUCCEEDED, output=output, finished_at=finished, raw=raw
    )


def items_from_wire(
    items: Iterable[Mapping[str, Any]], file_ids: Mapping[str, str]
) -> dict[str, ItemResult]:
    """Results items keyed by input name; items for files we did not send are skipped."""
    names_of = files_by_id(file_ids)
    out: dict[str, ItemResult] = {}
    for raw in items:
        file_id = raw.get("file_id")
        for name in names_of.get(file_id, []) if isinstance(file_id, str) else []:
            out.setdefault(name, item_from_wire(name, raw))
    return out


def finish_missing(
    items: Mapping[str, ItemResult], input_names: Sequence[str], report: StatusReport
) -> dict[str, ItemResult]:
    """Give inputs the provider said nothing about the job's own ending.

    Only for a failed or cancelled job: the job's error (or cancellation) is then the
    best account of each silent input. After a success the gateway marks them itself.
    """
    out = dict(items)
    for name in input_names:
        if name in out:
            continue
        if report.status is JobStatus.CANCELLED:
            out[name] = ItemResult(input=name, status=ItemStatus.CANCELLED)
        elif report.status is JobStatus.FAILED:
            message = report.error.message if report.error else NO_RESULT
            out[name] = ItemResult(
                input=name, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", message)
            )
    return out


def counts_from_items(items: Mapping[str, ItemResult], total: int) -> Counts:
    """Counts of a finished job: an input without a result counts as failed."""
    succeeded = sum(1 for item in items.values() if item.status is ItemStatus.SUCCEEDED)
    return Counts(total=total, succeeded=succeeded, failed=total - succeeded)
