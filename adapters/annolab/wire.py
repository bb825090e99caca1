"""AnnoLab's wire format, translated both ways: pure functions, no I/O.

AnnoLab (PROVIDERS.md §4) runs a model over *source files it already holds*:
``POST /v1/infer/batch`` takes ``{projectIdentifier, modelIdentifier, sourceIds,
outputLayerIdentifier, groupName}`` and answers with an integer ``inferenceJobId``;
``GET /v1/infer/batch/{id}`` reports ``Queued`` → ``Running`` → ``Finished`` |
``Errored``. There is no results route: a finished inference has written its
predictions as annotations into the output layer, and they are read back with a
project export (``POST /v1/export/project`` → poll ``exportStatusUrl`` → download a
zip of JSONL files, of which ``*.annotations.jsonl`` holds one annotation a line).

[inferred] Neither the docs nor an SDK say how a ``Finished`` inference reports
sources it could not process. This module reads an ``errors`` list of
``{"sourceId", "message"}`` (or ``failedSourceIds``) on the status answer; a
provider that sends neither makes every source of a finished job a success, with
whatever annotations the export holds for it (possibly none).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urljoin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

from adapters.base import (
    Counts,
    ErrorInfo,
    ItemResult,
    ItemStatus,
    JobInput,
    JobStatus,
    ModelRef,
    ResultSet,
    StatusReport,
    status_from_counts,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import Annotation, AnnotationsOutput
from problems import FieldError, ValidationFailed

SUBMIT_PATH = "/v1/infer/batch"
EXPORT_PATH = "/v1/export/project"

QUEUED = "Queued"
RUNNING = "Running"
FINISHED = "Finished"
ERRORED = "Errored"

#: AnnoLab's inference status words (lower case) and what they mean for the gateway.
#: ``Running``/``In Progress`` are [inferred]: the docs name only the other three.
STATUS_MAP: Mapping[str, JobStatus] = {
    "queued": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "in progress": JobStatus.RUNNING,
    "in_progress": JobStatus.RUNNING,
    "started": JobStatus.RUNNING,
    "processing": JobStatus.RUNNING,
    "finished": JobStatus.SUCCEEDED,  # refined by the per-source errors
    "errored": JobStatus.FAILED,
}

#: Export status words; the SDK's enum spells ``initialized`` as ``initalized``.
EXPORT_INITIALIZED = "initialized"
EXPORT_STARTED = "started"
EXPORT_FINISHED = "finished"
EXPORT_ERRORED = "errored"
_EXPORT_WORDS: Mapping[str, str] = {
    "initialized": EXPORT_INITIALIZED,
    "initalized": EXPORT_INITIALIZED,
    "started": EXPORT_STARTED,
    "finished": EXPORT_FINISHED,
    "errored": EXPORT_ERRORED,
}

ANNOTATIONS_SUFFIX = ".annotations.jsonl"
SOURCE_FAILED = "The provider could not run the model on this source."


def _identifier(value: Any) -> str | int:
    """AnnoLab takes a project or layer by name or by id. [library] An integer id goes
    out as the JSON integer the official library sends (annolab 0.7.2), never its string."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError("an id is a positive integer")
        return value
    if isinstance(value, str) and 1 <= len(value.strip()) <= 255:
        return value.strip()
    raise ValueError("a name (1-255 characters) or a positive integer id")


Identifier = Annotated[
    str | int,
    PlainValidator(_identifier),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}),
]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
]


class AnnoLabOptions(BaseModel):
    """``options.provider`` for AnnoLab; each may come from the provider's defaults."""

    model_config = ConfigDict(extra="forbid")

    #: ``projectIdentifier``: the project holding the sources (name or id).
    project: Identifier
    #: ``outputLayerIdentifier``: the annotation layer the predictions go into.
    output_layer: Identifier
    #: ``groupName``: the group the API key's user belongs to.
    group: Name


def auth_headers(credential: str) -> dict[str, str]:
    return {"Authorization": f"Api-Key {credential}"}


def status_path(job_id: str) -> str:
    return f"{SUBMIT_PATH}/{quote(job_id, safe='')}"


def check_model(model: ModelRef) -> None:
    """AnnoLab models have a name or an id, never a version."""
    if model.version is not None:
        msg = (
            f"AnnoLab models have no versions; use {model.model_id!r} (a model name or id) "
            "without '@'."
        )
        raise ValidationFailed(msg, errors=[FieldError("/model", msg)])


def source_ids(inputs: Sequence[JobInput]) -> list[int]:
    """The AnnoLab source id of each input (its ``ref``), in input order.

    Raises ValidationFailed naming every ``ref`` that is not a positive integer and
    every input that carries ``fields`` (AnnoLab takes nothing per source).
    """
    ids: list[int] = []
    errors: list[FieldError] = []
    for i, item in enumerate(inputs):
        ref = (item.ref or "").strip()
        if ref.isascii() and ref.isdigit() and int(ref) > 0:
            ids.append(int(ref))
        else:
            errors.append(
                FieldError(
                    f"/inputs/{i}/ref",
                    f"input {item.name!r}: an AnnoLab ref is a source id, a positive integer "
                    f"(got {item.ref!r})",
                )
            )
        if item.fields:
            errors.append(
                FieldError(
                    f"/inputs/{i}/fields",
                    f"input {item.name!r}: AnnoLab takes no per-source fields",
                )
            )
    if errors:
        raise ValidationFailed(errors[0].message, errors=errors)
    return ids


def submit_body(model_id: str, sources: Sequence[int], options: AnnoLabOptions) -> dict[str, Any]:
    """The ``POST /v1/infer/batch`` body; a source named by two inputs is sent once."""
    return {
        "projectIdentifier": options.project,
        "modelIdentifier": model_id,
        "sourceIds": list(dict.fromkeys(sources)),
        "outputLayerIdentifier": options.output_layer,
        "groupName": options.group,
    }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True, slots=True)
class Submitted:
    upstream_id: str
    state: dict[str, Any]
    report: StatusReport


def submit_from_wire(
    payload: Any, provider: str, sources: Sequence[int], options: AnnoLabOptions
) -> Submitted:
    """The job id of a submit answer, the state later calls need, and its status.

    The state keeps the project, layer and group the export must name: the project by
    its name (``projectName`` of the answer, else as it was sent), since the official
    library always exports by ``project.name``, even where the caller knows the
    project by id (annolab 0.7.2 ``project_export.py``); the layer as AnnoLab resolved
    it (``outputLayerName``), so a layer given by id still matches the ``layerName`` of
    exported annotations.
    """
    if not isinstance(payload, dict):
        raise ProviderBadResponse(provider, "The provider's submit answer is not an object.")
    job_id = _int(payload.get("inferenceJobId"))
    if job_id is None:
        raise ProviderBadResponse(
            provider, "The provider's submit answer carries no inferenceJobId."
        )
    project_name = payload.get("projectName")
    project_id = _int(payload.get("projectId"))
    layer_name = payload.get("outputLayerName")
    layer_id = _int(payload.get("outputLayerId"))
    state: dict[str, Any] = {
        # [library] The export names the project by name, as the library does.
        "project": project_name
        if isinstance(project_name, str) and project_name
        else options.project,
        "project_id": project_id,
        "layer": layer_name if isinstance(layer_name, str) and layer_name else options.output_layer,
        "layer_id": layer_id,
        "group": options.group,
        "sources": list(sources),
    }
    word = payload.get("status")
    word = word if isinstance(word, str) and word else QUEUED
    status = STATUS_MAP.get(word.lower(), JobStatus.QUEUED)
    if status.done:  # a submit answer that claims more than the next poll can confirm
        status = JobStatus.RUNNING
    report = StatusReport(
        status=status, upstream_status=word, counts=Counts.all_pending(len(sources))
    )
    return Submitted(upstream_id=str(job_id), state=state, report=report)


def status_word(payload: Any, provider: str) -> str:
    """The ``status`` of a status answer; a missing one is the provider's fault."""
    word = payload.get("status") if isinstance(payload, dict) else None
    if not isinstance(word, str) or not word:
        raise ProviderBadResponse(provider, "The provider's status answer carries no status.")
    return word


def job_status(word: str) -> JobStatus:
    """An AnnoLab status word as the gateway's; an unknown word is taken for running."""
    return STATUS_MAP.get(word.strip().lower(), JobStatus.RUNNING)


def error_message(payload: Any) -> str:
    """The provider's words for an errored inference, where it gave any."""
    if isinstance(payload, dict):
        for key in ("error", "errorMessage", "message"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value[:500]
    return "The inference failed at the provider."


def source_errors(payload: Any) -> dict[int, str]:
    """[inferred] The sources a finished or errored inference could not process."""
    if not isinstance(payload, dict):
        return {}
    found: dict[int, str] = {}
    entries = payload.get("errors")
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            sid = _int(entry.get("sourceId"))
            said = entry.get("message", entry.get("error"))
            if sid is not None:
                found[sid] = said[:500] if isinstance(said, str) and said else SOURCE_FAILED
    failed = payload.get("failedSourceIds")
    if isinstance(failed, list):
        for value in failed:
            sid = _int(value)
            if sid is not None:
                found.setdefault(sid, SOURCE_FAILED)
    return found


def report_from_wire(payload: Any, provider: str, sources: Sequence[int]) -> StatusReport:
    """A status answer as a StatusReport; ``sources`` are the inputs' source ids.

    ``Finished`` becomes succeeded, partially_succeeded or failed by how many inputs
    name a source the inference reported an error for; ``Errored`` fails the job.
    """
    word = status_word(payload, provider)
    status = job_status(word)
    total = len(sources)
    if status is JobStatus.FAILED:
        return StatusReport(
            status=status,
            upstream_status=word,
            counts=Counts(total=total, failed=total),
            error=ErrorInfo("upstream_failed", error_message(payload)),
        )
    if status is not JobStatus.SUCCEEDED:
        return StatusReport(
            status=status,
            upstream_status=word,
            counts=Counts.all_pending(total),
            known=word.strip().lower() in STATUS_MAP,
        )
    errors = source_errors(payload)
    failed = sum(1 for s in sources if s in errors)
    counts = Counts(total=total, succeeded=total - failed, failed=failed)
    final = status_from_counts(counts)
    error = None
    if final is JobStatus.FAILED:
        error = ErrorInfo("all_items_failed", "Every input of the job failed.")
    return StatusReport(status=final, upstream_status=word, counts=counts, error=error)


# -- results: the project export -----------------------------------------------------------


def export_body(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/export/project`` body for one inference's sources and layer."""
    return {
        "projectIdentifier": state["project"],
        "groupName": state["group"],
        "includeAnnotationTypes": True,
        "includeSources": False,
        "includeTextBounds": False,
        "sourceIds": list(dict.fromkeys(state["sources"])),
        "annotationLayerNames": [state["layer"]],
    }


def export_status_url(payload: Any, provider: str) -> str:
    """The absolute ``exportStatusUrl`` of an export answer."""
    url = payload.get("exportStatusUrl") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not url:
        raise ProviderBadResponse(provider, "The provider's export answer has no status URL.")
    return url


@dataclass(frozen=True, slots=True)
class ExportState:
    #: ``initialized | started | finished | errored`` (the SDK's typo normalized).
    status: str
    download_url: str | None = None
    error: str | None = None
    #: A status word the SDK does not know (the export is taken for still running): the
    #: word as said, so the job can fail once it has stood for the grace period.
    unknown: str | None = None

    @property
    def done(self) -> bool:
        return self.status in (EXPORT_FINISHED, EXPORT_ERRORED)


def export_state_from_wire(payload: Any, provider: str, status_url: str) -> ExportState:
    """An export status answer; a relative ``downloadUrl`` is resolved against ``status_url``."""
    word = payload.get("status") if isinstance(payload, dict) else None
    if not isinstance(word, str) or not word:
        raise ProviderBadResponse(provider, "The provider's export status has no status.")
    status = _EXPORT_WORDS.get(word.strip().lower())
    if status is None:
        return ExportState(EXPORT_STARTED, unknown=word.strip()[:100])
    if status == EXPORT_ERRORED:
        said = payload.get("error")
        return ExportState(status, error=said[:500] if isinstance(said, str) and said else None)
    if status != EXPORT_FINISHED:
        return ExportState(status)
    url = payload.get("downloadUrl")
    if not isinstance(url, str) or not url:
        raise ProviderBadResponse(provider, "The provider's finished export has no download URL.")
    return ExportState(status, download_url=urljoin(status_url, url))


def annotations_from_zip(data: bytes, provider: str) -> list[dict[str, Any]]:
    """Every annotation record of an export zip (all ``*.annotations.jsonl`` members)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ProviderBadResponse(provider, "The provider's export is not a zip file.") from None
    records: list[dict[str, Any]] = []
    with archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(ANNOTATIONS_SUFFIX))
        if not names:
            raise ProviderBadResponse(provider, "The provider's export holds no annotations file.")
        for name in names:
            try:
                text = archive.read(name).decode("utf-8")
            except (zipfile.BadZipFile, UnicodeDecodeError, ValueError):
                raise ProviderBadResponse(
                    provider, "The provider's export could not be read."
                ) from None
            records.extend(_jsonl(text, provider))
    return records


def _jsonl(text: str, provider: str) -> Iterable[dict[str, Any]]:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ProviderBadResponse(
                provider, "The provider's export holds a line that is not JSON."
            ) from None
        if isinstance(record, dict):
            yield record


def _offsets(value: Any) -> tuple[int | None, int | None]:
    """``[start, end]``, ``[[start, end], ...]`` or ``{"start", "end"}`` as a span."""
    if isinstance(value, dict):
        return _int_or_none(value.get("start")), _int_or_none(value.get("end"))
    if isinstance(value, list) and value:
        if all(isinstance(v, list) for v in value):
            first, last = value[0], value[-1]
            if len(first) >= 2 and len(last) >= 2:
                return _int_or_none(first[0]), _int_or_none(last[1])
            return None, None
        if len(value) >= 2:
            return _int_or_none(value[0]), _int_or_none(value[1])
    return None, None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _points(value: Any) -> Iterable[tuple[float, float]]:
    if isinstance(value, list):
        if len(value) >= 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2]
        ):
            yield float(value[0]), float(value[1])
        else:
            for v in value:
                yield from _points(v)


def bbox_from_bounds(value: Any) -> list[float] | None:
    """``[x_min, y_min, x_max, y_max]`` of ``imageBounds``.

    The SDK documents bounds as GeoJSON (``{"type": "Polygon" | "MultiPolygon",
    "coordinates": ...}``); a plain ``[x0, y0, x1, y1]`` box is taken as it is.
    """
    if (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return [float(v) for v in value]
    coords = value.get("coordinates") if isinstance(value, dict) else None
    pts = list(_points(coords))
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [min(xs), min(ys), max(xs), max(ys)]


def annotation_from_wire(record: Mapping[str, Any]) -> Annotation:
    """One exported annotation record as the gateway's annotation."""
    label = record.get("typeName")
    value = record.get("value")
    start, end = _offsets(record.get("offsets"))
    return Annotation(
        label=label if isinstance(label, str) else str(label),
        text=value if isinstance(value, str) else None,
        start=start,
        end=end,
        page=_int_or_none(record.get("pageNumber")),
        bbox=bbox_from_bounds(record.get("imageBounds")),
        score=None,
    )


def _in_layer(record: Mapping[str, Any], layer: str, layer_id: int | None) -> bool:
    if record.get("layerName") == layer:
        return True
    return layer_id is not None and _int(record.get("layerId")) == layer_id


def results_from_wire(
    records: Iterable[Mapping[str, Any]],
    input_names: Sequence[str],
    sources: Sequence[int],
    *,
    layer: str,
    layer_id: int | None = None,
    errors: Mapping[int, str] | None = None,
) -> ResultSet:
    """A finished inference's results: each input's annotations from the output layer.

    An input whose source the inference reported an error for fails; every other
    input succeeds, with an empty list where the export holds nothing for its source.
    ``raw`` is that source's exported records, untouched.
    """
    errors = errors or {}
    wanted = set(sources)
    by_source: dict[int, list[Mapping[str, Any]]] = {s: [] for s in wanted}
    for record in records:
        sid = _int(record.get("sourceId"))
        if sid in wanted and _in_layer(record, layer, layer_id):
            by_source[sid].append(record)
    items: dict[str, ItemResult] = {}
    for name, sid in zip(input_names, sources, strict=True):
        if sid in errors:
            items[name] = ItemResult(
                input=name,
                status=ItemStatus.FAILED,
                error=ErrorInfo("item_failed", errors[sid]),
            )
            continue
        found = by_source[sid]
        items[name] = ItemResult(
            input=name,
            status=ItemStatus.SUCCEEDED,
            output=AnnotationsOutput(annotations=[annotation_from_wire(r) for r in found]),
            raw=[dict(r) for r in found],
        )
    return ResultSet(items=items)


def failed_results(
    input_names: Sequence[str], sources: Sequence[int], message: str, errors: Mapping[int, str]
) -> ResultSet:
    """An errored inference: every input failed, with its source's error where given."""
    return ResultSet(
        items={
            name: ItemResult(
                input=name,
                status=ItemStatus.FAILED,
                error=ErrorInfo("item_failed", errors.get(sid, message)),
            )
            for name, sid in zip(input_names, sources, strict=True)
        }
    )


def sources_from_state(state: Mapping[str, Any], total: int) -> list[int]:
    """The inputs' source ids kept at submit (state that does not fit is our own bug)."""
    sources = state.get("sources")
    if (
        not isinstance(sources, list)
        or len(sources) != total
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in sources)
    ):
        raise RuntimeError("the job's stored AnnoLab state has no source id per input")
    return sources
