"""Pure translation between the gateway's job model and Modzy's wire API (PROVIDERS.md §1).

No I/O here: request bodies, route paths and status words, each turned from one
side's shape into the other's; ``inputs.py`` places a job's values under the model's
input names, ``items.py`` and ``normalize.py`` read the results.

Modzy's facts this module leans on:

* a job is ``{"model": {"identifier", "version"}, "explain", "input": {"type",
  "sources": {<input item>: {<model input name>: value}}}}``; one job has one input
  ``type``, so text and binary inputs cannot share a job (``inputs.py`` places the
  values under the model's own input names);
* job statuses ``SUBMITTED``/``OPEN`` → ``IN_PROGRESS`` → ``COMPLETED`` | ``CANCELED``
  | ``TIMEDOUT``, and words the SDKs have no constant for (the docs name ``ERROR``,
  ``COMPLETED_WITH_ERROR``, ``PENDING``); the official libraries take every word but
  ``SUBMITTED``/``IN_PROGRESS`` as finished (modzy-sdk ``jobs.py``
  ``block_until_complete``), and so does this module (``OPEN`` aside: an open job waits
  for its inputs); counts ``total``/``completed`` (successful items)/``failed``/``pending``;
* results: ``items.py`` (each item, less the platform's fields) and ``normalize.py``
  (a model's output and explanation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    JobRequest,
    JobStatus,
    StatusReport,
    status_from_counts,
)
from adapters.errors import ProviderBadResponse
from adapters.modzy import inputs
from problems import FieldError, UnsupportedInput, ValidationFailed

#: Modzy's job status words and what they mean for the gateway.
SUBMITTED = "SUBMITTED"
OPEN = "OPEN"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"
TIMEDOUT = "TIMEDOUT"
ERROR = "ERROR"
COMPLETED_WITH_ERROR = "COMPLETED_WITH_ERROR"

#: The words of a job still on its way; any other word is a finished job.
UNFINISHED: Mapping[str, JobStatus] = {
    SUBMITTED: JobStatus.QUEUED,
    OPEN: JobStatus.QUEUED,
    IN_PROGRESS: JobStatus.RUNNING,
}
#: Finished words whose meaning is known; any other finished word is judged by its items.
JOB_STATUS_MAP: Mapping[str, JobStatus] = {
    **UNFINISHED,
    COMPLETED: JobStatus.SUCCEEDED,  # refined by status_from_counts
    CANCELED: JobStatus.CANCELLED,
    TIMEDOUT: JobStatus.FAILED,
    ERROR: JobStatus.FAILED,
}


class ModzyOptions(BaseModel):
    """``options.provider`` for Modzy."""

    model_config = ConfigDict(extra="forbid")

    #: The model input that takes each input's own value (e.g. ``input.txt``); by
    #: default the one model input (per the model version's metadata) its fields leave.
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


def model_version_path(model_id: str, version: str) -> str:
    """A model version's details, with its input names (modzy-sdk ``models.py``)."""
    return f"/models/{_seg(model_id)}/versions/{_seg(version)}"


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


def submit_body(
    request: JobRequest,
    options: ModzyOptions,
    model_inputs: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The ``POST /jobs`` body for a request that passed ``check_request``.

    ``model_inputs`` are the model version's input names (None: unknown, the defaults
    are guessed); raises ValidationFailed for inputs that do not fit them.
    """
    check_request(request)
    wire_type = _wire_type(request.inputs[0].kind)
    body: dict[str, Any] = {
        "model": {"identifier": request.model.model_id, "version": request.model.version},
        "explain": request.explain,
        "input": {
            "type": wire_type,
            "sources": inputs.sources(request.inputs, wire_type, model_inputs, options.input_name),
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


def _finished_unknown(word: str, counts: Counts | None) -> tuple[JobStatus, ErrorInfo | None]:
    """A finished job under a word with no known meaning: its items tell how it went.

    ``COMPLETED_WITH_ERROR`` is one (a job some of whose items failed); a word Modzy
    adds later is another. Without counts, a word that speaks of an error or a failure
    is a failed job, any other a succeeded one (its results then tell item by item).
    """
    if counts is None:
        if "ERROR" in word or "FAIL" in word:
            return JobStatus.FAILED, ErrorInfo(
                "upstream_failed", f"The job ended at the provider as {word}."
            )
        return JobStatus.SUCCEEDED, None
    if counts.succeeded >= counts.total:
        return JobStatus.SUCCEEDED, None
    if counts.succeeded > 0:
        return JobStatus.PARTIALLY_SUCCEEDED, None
    if counts.total > 0 and counts.failed >= counts.total:
        return JobStatus.FAILED, ErrorInfo("all_items_failed", "Every input of the job failed.")
    return JobStatus.FAILED, ErrorInfo(
        "upstream_failed", f"The job ended at the provider as {word} with no input done."
    )


def report_from_wire(payload: Any, provider: str, *, total: int | None = None) -> StatusReport:
    """A job details answer (``GET /jobs/{id}``, ``DELETE /jobs/{id}``) as a StatusReport.

    Every word but ``SUBMITTED``, ``OPEN`` and ``IN_PROGRESS`` is a finished job, as
    the official libraries take it: a word this module does not know (such as
    ``COMPLETED_WITH_ERROR``) is judged by the job's item counts, never left running.
    """
    if not isinstance(payload, dict):
        raise ProviderBadResponse(provider, "The provider's job answer is not an object.")
    word = payload.get("status")
    if not isinstance(word, str) or not word:
        raise ProviderBadResponse(provider, "The provider's job answer carries no status.")
    counts = counts_from_wire(payload, total)
    upper = word.strip().upper()
    error: ErrorInfo | None = None
    known = JOB_STATUS_MAP.get(upper)
    if known is None:
        status, error = _finished_unknown(upper, counts)
    else:
        status = known
    if upper == COMPLETED and counts is not None:
        status = status_from_counts(counts)
        if status is JobStatus.FAILED:
            error = ErrorInfo("all_items_failed", "Every input of the job failed.")
    elif upper == TIMEDOUT:
        error = ErrorInfo("upstream_timeout", "The job timed out at the provider.")
    elif upper == ERROR:
        said = payload.get("message") or payload.get("error")
        error = ErrorInfo(
            "upstream_failed",
            said[:500] if isinstance(said, str) and said else "The job failed at the provider.",
        )
    return StatusReport(status=status, upstream_status=word, counts=counts, error=error)
