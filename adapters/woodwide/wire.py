"""Wood Wide AI's inference API, translated: paths, options, requests and statuses.

The wire API (PROVIDERS.md §3): a job's ``record`` inputs go up as one CSV file
(``POST /models/{id}/infer-async``, multipart field ``file``), one row per input in
input order, so the provider's row ``id`` *i* is the job's *i*-th input. A stored
dataset runs with ``POST /models/{id}/infer-batch`` instead; the job's ``ref``
inputs then name the dataset rows (by row id) to report. A job is ``queued`` (or
``initializing``/``pending``), ``running``, then ``succeeded``, ``failed``,
``rejected`` or ``canceled``; only a succeeded job has results, read from a signed
file URL or from ``/results/rows`` pages (tables.py reads them, normalize.py turns
rows into outputs). Pure functions only: no I/O here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
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
from adapters.errors import ProviderBadResponse, ProviderRejected
from problems import FieldError, UnsupportedInput, ValidationFailed

PROVIDER = "woodwide"
JOBS_PATH = "/jobs"
UPLOAD_FILENAME = "inputs.csv"

OutputType = Literal["json", "csv", "parquet"]
AnomalyFormat = Literal["ids_only", "per_row"]


def auth_headers(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _q(value: str) -> str:
    return quote(value, safe="")


def infer_async_path(model_id: str) -> str:
    return f"/models/{_q(model_id)}/infer-async"


def infer_batch_path(model_id: str) -> str:
    return f"/models/{_q(model_id)}/infer-batch"


def job_path(job_id: str) -> str:
    return f"{JOBS_PATH}/{_q(job_id)}"


def results_path(job_id: str) -> str:
    return f"{job_path(job_id)}/results"


def rows_path(job_id: str) -> str:
    return f"{job_path(job_id)}/results/rows"


def cancel_path(job_id: str) -> str:
    return f"{job_path(job_id)}/cancel"


# -- options and request checks ---------------------------------------------------------


class WoodWideOptions(BaseModel):
    """``options.provider`` for Wood Wide: output options and the dataset to run on."""

    model_config = ConfigDict(extra="forbid")

    output_type: OutputType = "json"
    anomaly_format: AnomalyFormat = "ids_only"
    k: int | None = Field(default=None, ge=1)
    exclude_self_matches: bool | None = None
    model_version_id: str | None = Field(default=None, min_length=1)
    #: Run on a stored dataset (``infer-batch``); the inputs are then ``ref`` row ids.
    dataset_id: str | None = Field(default=None, min_length=1)
    dataset_version_id: str | None = Field(default=None, min_length=1)
    #: infer-batch only: start a new job even if an identical one exists.
    force_rerun: bool | None = None

    @property
    def on_dataset(self) -> bool:
        return self.dataset_id is not None or self.dataset_version_id is not None


def submit_not_found(said: str, options: WoodWideOptions) -> ProviderRejected:
    """A 404 on a submit route names what the provider lacks; point at that field.

    The body says which ([inferred] FastAPI ``detail``: "Dataset not found", "Model
    version not found", "Model not found"); a dataset is only looked up on infer-batch.
    """
    text = said.lower()
    if options.on_dataset and "dataset" in text:
        field = "dataset_id" if options.dataset_id is not None else "dataset_version_id"
        pointer, what = f"/options/provider/{field}", "this dataset"
    elif "version" in text and options.model_version_id is not None:
        pointer, what = "/options/provider/model_version_id", "this model version"
    elif "version" in text:
        pointer, what = "/model", "this model version"
    else:
        pointer, what = "/model", "this model"
    return ProviderRejected(
        PROVIDER,
        f"The provider rejected the request: {said}",
        errors=[FieldError(pointer, f"the provider has no {what}: {said}")],
    )


def _refuse(errors: list[FieldError], cls: type[ValidationFailed] = ValidationFailed) -> None:
    if errors:
        raise cls(errors[0].message, errors=errors)


def check_request(request: JobRequest, options: WoodWideOptions) -> None:
    """Refuse what Wood Wide cannot run, naming the field (input kinds are checked first)."""
    if options.dataset_id is not None and options.dataset_version_id is not None:
        _refuse(
            [
                FieldError(
                    "/options/provider/dataset_id",
                    "give dataset_id or dataset_version_id, not both",
                )
            ]
        )
    version = request.model.version
    if version and options.model_version_id and version != options.model_version_id:
        _refuse(
            [
                FieldError(
                    "/options/provider/model_version_id",
                    f"the model reference names version {version!r}; "
                    "model_version_id must match it or be left out",
                )
            ]
        )
    wrong_kind = InputKind.RECORD if options.on_dataset else InputKind.REF
    _refuse(
        [
            FieldError(
                f"/inputs/{i}",
                f"input {item.name!r}: "
                + (
                    "with options.provider.dataset_id the inputs are 'ref' row ids of the "
                    "dataset, not 'record' rows"
                    if options.on_dataset
                    else "a 'ref' input names a row of a stored dataset; set "
                    "options.provider.dataset_id (or dataset_version_id) to use one"
                ),
            )
            for i, item in enumerate(request.inputs)
            if item.kind is wrong_kind
        ],
        UnsupportedInput,
    )
    errors = [
        FieldError(f"/inputs/{i}/fields", "Wood Wide takes no per-input fields")
        for i, item in enumerate(request.inputs)
        if item.fields
    ]
    if options.on_dataset:
        seen: set[str] = set()
        for i, item in enumerate(request.inputs):
            ref = (item.ref or "").strip()
            if not ref.isdigit():
                errors.append(
                    FieldError(
                        f"/inputs/{i}/ref", f"{item.ref!r} is not a dataset row id (0, 1, ...)"
                    )
                )
            elif str(int(ref)) in seen:
                errors.append(FieldError(f"/inputs/{i}/ref", f"row {ref} is named twice"))
            else:
                seen.add(str(int(ref)))
    elif not columns_of(item.record or {} for item in request.inputs):
        errors.append(FieldError("/inputs", "the records have no fields"))
    _refuse(errors)


# -- submit -----------------------------------------------------------------------------


def effective_output_type(requested: OutputType, parquet_ok: bool) -> OutputType:
    """The format to ask for: parquet needs the optional ``pyarrow``, else json."""
    return "json" if requested == "parquet" and not parquet_ok else requested


def columns_of(records: Any) -> list[str]:
    """The union of the records' keys, in first-seen order."""
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            columns.setdefault(str(key), None)
    return list(columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """One CSV row per record (row *i* is input *i*); a key a record lacks is empty."""
    columns = columns_of(records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return out.getvalue()


def _common(
    options: WoodWideOptions, output_type: OutputType, version: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"output_type": output_type, "anomaly_format": options.anomaly_format}
    if options.k is not None:
        out["k"] = options.k
    if options.exclude_self_matches is not None:
        out["exclude_self_matches"] = options.exclude_self_matches
    if version:
        out["model_version_id"] = version
    return out


def infer_fields(
    options: WoodWideOptions, output_type: OutputType, version: str | None
) -> dict[str, str]:
    """The form fields sent beside the CSV file (all strings, booleans lowercase)."""
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key, value in _common(options, output_type, version).items()
    }


def upload_form(csv_text: str, fields: Mapping[str, str]) -> aiohttp.FormData:
    """The ``infer-async`` multipart body: the CSV as ``file`` plus the option fields."""
    form = aiohttp.FormData()
    form.add_field("file", csv_text.encode(), filename=UPLOAD_FILENAME, content_type="text/csv")
    for key, value in fields.items():
        form.add_field(key, value)
    return form


def batch_body(
    options: WoodWideOptions, output_type: OutputType, version: str | None
) -> dict[str, Any]:
    """The ``infer-batch`` JSON body (``output_type`` is always sent: its default is parquet)."""
    body = _common(options, output_type, version)
    if options.dataset_id is not None:
        body["dataset_id"] = options.dataset_id
    else:
        body["dataset_version_id"] = options.dataset_version_id
    if options.force_rerun is not None:
        body["force_rerun"] = options.force_rerun
    return body


def submit_state(
    request: JobRequest, options: WoodWideOptions, output_type: OutputType
) -> dict[str, Any]:
    """What later calls need: the rows to report, the format asked, the input columns."""
    state: dict[str, Any] = {
        "mode": "dataset" if options.on_dataset else "file",
        "output_type": output_type,
        "rows": row_names(request, options),
    }
    if not options.on_dataset:
        # Rows read back from the combined table carry these: they are no output.
        state["columns"] = columns_of(item.record or {} for item in request.inputs)
    return state


def row_names(request: JobRequest, options: WoodWideOptions) -> dict[str, str]:
    """Provider row id → gateway input name (row order for uploads, refs for datasets)."""
    if options.on_dataset:
        return {str(int((item.ref or "").strip())): item.name for item in request.inputs}
    return {str(i): item.name for i, item in enumerate(request.inputs)}


# -- statuses ---------------------------------------------------------------------------

STATUS_MAP: Mapping[str, JobStatus] = {
    "initializing": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "waiting_for_upload": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "rejected": JobStatus.FAILED,
    "canceled": JobStatus.CANCELLED,
    "cancelled": JobStatus.CANCELLED,
}


def as_object(payload: Any, what: str, provider: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ProviderBadResponse(provider, f"The provider's {what} is not a JSON object.")
    return payload


def job_id_from_wire(payload: Any, provider: str = PROVIDER) -> str:
    """The job id of a submit answer or job detail: ``job_id`` (docs) or ``id`` (SDK)."""
    body = as_object(payload, "job", provider)
    for key in ("job_id", "id"):
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    raise ProviderBadResponse(provider, "The provider's answer names no job id.")


def map_status(word: Any, provider: str = PROVIDER) -> JobStatus | None:
    """A status word as the gateway's; None for a word this adapter does not know."""
    if not isinstance(word, str) or not word.strip():
        raise ProviderBadResponse(provider, "The provider's job has no status.")
    return STATUS_MAP.get(word.strip().lower())


def error_message(payload: Mapping[str, Any]) -> str:
    said = payload.get("error_message") or payload.get("error")
    if isinstance(said, str) and said.strip():
        return said.strip()[:500]
    return "The job failed at the provider."


def report_from_wire(payload: Any, provider: str = PROVIDER) -> StatusReport:
    """A job detail (or submit/cancel answer) as a report; a success has no counts yet."""
    body = as_object(payload, "job", provider)
    word = body.get("status")
    status = map_status(word, provider)
    if status is None:
        # A word the docs and the library do not name: running, until the gateway's
        # grace for unknown statuses runs out (never a 502 on every check).
        return StatusReport(status=JobStatus.RUNNING, upstream_status=str(word), known=False)
    error = (
        ErrorInfo("upstream_failed", error_message(body)) if status is JobStatus.FAILED else None
    )
    return StatusReport(status=status, upstream_status=str(word), error=error)


def submit_report(payload: Any, provider: str = PROVIDER) -> StatusReport | None:
    """The submit answer's status while the job is unfinished; None once it is done.

    ``infer-batch`` may hand back an existing finished job: its counts need the
    results, so the gateway is left to ask ``status()``.
    """
    body = as_object(payload, "submit answer", provider)
    if "status" not in body:
        return None
    report = report_from_wire(body, provider)
    return None if report.status.done else report


def model_type_of(payload: Mapping[str, Any]) -> str | None:
    """The job's model type (``prediction``, ``clustering`` ...), if the detail says."""
    value = payload.get("model_type")
    if isinstance(value, str) and value:
        return value.lower()
    resources = payload.get("resources")
    model = resources.get("model") if isinstance(resources, Mapping) else None
    value = model.get("type") if isinstance(model, Mapping) else None
    return value.lower() if isinstance(value, str) and value else None


def finished_report(report: StatusReport, counts: Counts) -> StatusReport:
    """A succeeded job's report with its counts; some failed rows make it partial."""
    status = status_from_counts(counts)
    error = (
        ErrorInfo("all_items_failed", "Every input of the job failed.")
        if status is JobStatus.FAILED
        else None
    )
    return StatusReport(
        status=status, upstream_status=report.upstream_status, counts=counts, error=error
    )
