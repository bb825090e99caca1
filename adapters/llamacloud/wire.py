"""LlamaCloud's classify API (v2), translated: pure functions to and from its JSON, no I/O.

Every fact here comes from the official library, llama-cloud 2.19.0
(``resources/classify.py``, ``resources/files.py``, ``types/classify_*.py``,
``types/file_create_response.py``), unless marked otherwise:

* Files are uploaded first: ``POST /api/v1/beta/files``, multipart ``file`` and
  ``purpose`` (``classify`` here); the answer's ``id`` looks like ``dfl-...``.
* One classify job classifies one file: ``POST /api/v2/classify`` with ``file_input``,
  ``configuration: {rules, mode, parsing_configuration}`` and ``transaction_id``, an
  idempotency key scoped to the project ("reusing a key returns the original job; the
  new request body is ignored"), which is what makes a resent create safe.
* A job is ``PENDING``, ``RUNNING``, then ``COMPLETED`` (with ``result: {type,
  confidence, reasoning}`` inline), ``FAILED`` (``error_message``) or ``CANCELLED``.
  ``GET /api/v2/classify/{id}`` reads one; ``GET /api/v2/classify?job_ids=..`` (the
  ids repeated, ``page_size``/``page_token``) lists many in one call, each with the
  same fields; ``POST /api/v2/classify/{id}/cancel`` stops one.
* Every route takes the optional ``project_id``/``organization_id`` query params.

The v1 classifier (``/api/v1/classifier/jobs``) is deprecated and gone from the library
since 2.16.0, so the gateway no longer speaks it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
    status_from_counts,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import ClassificationOutput, LabelScore

PROVIDER = "llamacloud"
#: The one model this adapter serves: the classifier (any version).
MODEL_ID = "classifier"

FILES_PATH = "/api/v1/beta/files"
CLASSIFY_PATH = "/api/v2/classify"
#: The ``purpose`` an upload declares; it sets the file's storage and retention policy.
FILE_PURPOSE = "classify"


def job_path(job_id: str) -> str:
    return f"{CLASSIFY_PATH}/{job_id}"


#: A POST without a body (a cancel), as the official library sends it: labelled JSON.
EMPTY_JSON: Mapping[str, str] = {"Content-Type": "application/json"}


def cancel_path(job_id: str) -> str:
    return f"{CLASSIFY_PATH}/{job_id}/cancel"


def file_path(file_id: str) -> str:
    return f"{FILES_PATH}/{file_id}"


def auth_headers(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


# -- options ---------------------------------------------------------------------------


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1)
    description: str = Field(min_length=1)


#: "Comma-separated page numbers or ranges to process (1-based)", e.g. ``1,3-5``.
_PAGES = r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$"


class ParsingConfiguration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: str | None = Field(default=None, min_length=2, max_length=8)
    max_pages: int | None = Field(default=None, ge=1)
    target_pages: str | None = Field(default=None, pattern=_PAGES)


class LlamaCloudOptions(BaseModel):
    """``options.provider`` for a LlamaCloud provider."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(min_length=1)
    #: v2 has one mode; v1's MULTIMODAL is gone.
    mode: Literal["FAST"] = "FAST"
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


_DFL = re.compile(r"^dfl-[A-Za-z0-9_-]+$")
_PJB = re.compile(r"^pjb-[A-Za-z0-9_-]+$")


def is_file_input(ref: str) -> bool:
    """What ``file_input`` takes: a file id (``dfl-...``) or a parse job id (``pjb-...``,
    a document LlamaCloud has already parsed). v1's UUID file ids are not documented
    for v2, so they are refused here rather than by the provider."""
    return bool(_DFL.match(ref) or _PJB.match(ref))


# -- requests --------------------------------------------------------------------------


def upload_form(item: JobInput) -> aiohttp.FormData:
    """The multipart body uploading one ``data`` input, named after the input."""
    form = aiohttp.FormData()
    form.add_field(
        "file",
        item.data or b"",
        filename=item.name,
        content_type=item.content_type or "application/octet-stream",
    )
    form.add_field("purpose", FILE_PURPOSE)
    return form


def transaction_id(submit_key: str, index: int) -> str:
    """The idempotency key of input ``index``'s classify job: the same on every resend."""
    return f"{submit_key}-{index}"


def create_body(file_input: str, options: LlamaCloudOptions, transaction: str) -> dict[str, Any]:
    """``POST /api/v2/classify`` for one file."""
    configuration: dict[str, Any] = {
        "rules": [rule.model_dump() for rule in options.rules],
        "mode": options.mode,
    }
    if options.parsing_configuration is not None:
        configuration["parsing_configuration"] = options.parsing_configuration.model_dump(
            exclude_none=True
        )
    return {"file_input": file_input, "configuration": configuration, "transaction_id": transaction}


def list_params(
    job_ids: Sequence[str], params: Mapping[str, str], token: str | None, page_size: int
) -> list[tuple[str, str]]:
    """``GET /api/v2/classify`` for some jobs: ``job_ids`` repeated, as the library sends
    arrays (its query string's ``array_format`` is ``repeat``)."""
    query = [("job_ids", job_id) for job_id in job_ids]
    query += [("page_size", str(page_size)), *params.items()]
    if token is not None:
        query.append(("page_token", token))
    return query


# -- answers ---------------------------------------------------------------------------


def _bad(provider: str, what: str) -> ProviderBadResponse:
    return ProviderBadResponse(provider, f"The provider's answer is malformed: {what}.")


def id_from_wire(payload: Any, what: str, *, provider: str = PROVIDER) -> str:
    """The ``id`` of a file or classify job answer."""
    ident = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(ident, str) or not ident:
        raise _bad(provider, f"the {what} has no id")
    return ident


def word_from_wire(payload: Any, *, provider: str = PROVIDER) -> str:
    """A classify job's status word, upper-cased."""
    word = payload.get("status") if isinstance(payload, dict) else None
    if not isinstance(word, str) or not word:
        raise _bad(provider, "the classify job has no status")
    return word.upper()


def page_from_wire(
    payload: Any, *, provider: str = PROVIDER
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``GET /api/v2/classify``: its jobs and the next page token."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items", []), list):
        raise _bad(provider, "the job list has no item list")
    items = [item for item in payload.get("items", []) if isinstance(item, dict)]
    token = payload.get("next_page_token")
    return items, token if isinstance(token, str) and token else None


#: Status words of a job that will not change any more. ``GONE`` is ours: the provider
#: answered 404 for a job it had accepted (deleted, or expired).
TERMINAL_WORDS = frozenset({"COMPLETED", "FAILED", "CANCELLED", "GONE"})
WAITING_WORDS = frozenset({"PENDING"})
KNOWN_WORDS = TERMINAL_WORDS | WAITING_WORDS | {"RUNNING"}

NO_RESULT = "the provider returned no classification for this file"
GONE_MESSAGE = "the provider no longer knows this file's classify job"


def failure_of(raw: Mapping[str, Any]) -> str | None:
    """Why a finished job has no classification (None: it has one, or is not finished)."""
    word = str(raw.get("status", "")).upper()
    if word == "FAILED":
        message = raw.get("error_message")
        return message if isinstance(message, str) and message else "classification failed"
    if word == "COMPLETED" and not isinstance(raw.get("result"), dict):
        return NO_RESULT
    return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def item_from_wire(name: str, raw: Mapping[str, Any]) -> ItemResult | None:
    """One input's classify job as its result; None while the job runs."""
    word = str(raw.get("status", "")).upper()
    started = _when(raw.get("created_at"))
    finished = _when(raw.get("updated_at"))
    if word == "CANCELLED":
        return ItemResult(input=name, status=ItemStatus.CANCELLED, finished_at=finished, raw=raw)
    failure = failure_of(raw)
    if failure is not None:
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("item_failed", failure),
            started_at=started,
            finished_at=finished,
            raw=raw,
        )
    if word != "COMPLETED":
        return None
    result = raw["result"]
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
        input=name,
        status=ItemStatus.SUCCEEDED,
        output=output,
        started_at=started,
        finished_at=finished,
        raw=raw,
    )


def gone_item(name: str) -> ItemResult:
    return ItemResult(
        input=name, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", GONE_MESSAGE)
    )


def report_from_words(words: Sequence[str], failed: Mapping[int, str]) -> StatusReport:
    """The gateway job from its inputs' classify jobs.

    ``words`` holds each input's job status, ``failed`` why an input failed (a FAILED
    job, a COMPLETED one without a result, a job the provider lost). The job runs while
    any input's job runs; it is ``queued`` while every one is still PENDING; once all
    have ended it is cancelled if any was cancelled (the caller asked for it), else it
    succeeded, partly succeeded or failed as its items did.
    """
    total = len(words)
    n_failed = sum(1 for i in range(total) if i in failed)
    succeeded = sum(1 for i, w in enumerate(words) if w == "COMPLETED" and i not in failed)
    counts = Counts(
        total=total, succeeded=succeeded, failed=n_failed, pending=total - succeeded - n_failed
    )
    if not all(w in TERMINAL_WORDS for w in words):
        status = JobStatus.QUEUED if all(w in WAITING_WORDS for w in words) else JobStatus.RUNNING
        return StatusReport(
            status=status,
            upstream_status=summary(words),
            counts=counts,
            known=all(w in KNOWN_WORDS for w in words),
        )
    if "CANCELLED" in words:
        return StatusReport(
            status=JobStatus.CANCELLED, upstream_status=summary(words), counts=counts
        )
    status = status_from_counts(counts)
    error = None
    if status is JobStatus.FAILED:
        first = next(iter(failed.values()), NO_RESULT)
        error = ErrorInfo("upstream_failed", f"Every file failed; the first: {first}")
    return StatusReport(status=status, upstream_status=summary(words), counts=counts, error=error)


def summary(words: Sequence[str]) -> str:
    """The provider's status words for ``upstream.status``: one word when all agree,
    else each with its count (``COMPLETED:3,RUNNING:2``)."""
    tally: dict[str, int] = {}
    for word in words:
        tally[word] = tally.get(word, 0) + 1
    if len(tally) == 1:
        return next(iter(tally))
    return ",".join(f"{word}:{n}" for word, n in sorted(tally.items()))
