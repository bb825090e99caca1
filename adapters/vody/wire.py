"""Vody's wire format, translated both ways: pure functions, no I/O.

Vody (PROVIDERS.md §2) takes a JSON *array* of product images per model
(``POST /inference/color-classification`` or ``/inference/pattern-classification``),
answers with an inference id, reports ``in_progress | completed | failed`` at
``GET /inference/{id}/status`` (numbers as strings) and serves one result object
per request item, in request order, at ``GET /inference/{id}/results``.

The submit answer, the results shape and the error bodies are not in the public
docs; what is read here follows the [inferred] shapes and is lenient where they may
differ (the id key, numbers as strings or numbers, a missing color name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

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
from adapters.outputs import ClassificationOutput, JsonOutput, LabelScore, Output
from problems import FieldError, ValidationFailed

COLOR_MODEL = "color-classification"
PATTERN_MODEL = "pattern-classification"
#: Per model, the item fields Vody takes besides ``image_path``.
MODEL_FIELDS: Mapping[str, frozenset[str]] = {
    COLOR_MODEL: frozenset({"product_type", "category", "hex_color_label"}),
    PATTERN_MODEL: frozenset({"product_type", "category"}),
}
REQUIRED_FIELD = "product_type"
#: Where the submit answer may carry the inference id [inferred].
ID_KEYS = ("id", "inference_id", "inference-id")

IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
STATUS_MAP: Mapping[str, JobStatus] = {
    IN_PROGRESS: JobStatus.RUNNING,
    COMPLETED: JobStatus.SUCCEEDED,
    FAILED: JobStatus.FAILED,
}


class VodyOptions(BaseModel):
    """``options.provider`` for Vody: defaults for every item of the job."""

    model_config = ConfigDict(extra="forbid")

    product_type: str | None = Field(default=None, min_length=1)
    category: str | None = Field(default=None, min_length=1)


def auth_headers(credential: str) -> dict[str, str]:
    return {"x-vody-api-key": credential, "Accept": "application/json"}


def submit_path(model_id: str) -> str:
    return f"/inference/{quote(model_id, safe='')}"


def status_path(inference_id: str) -> str:
    return f"/inference/{quote(inference_id, safe='')}/status"


def results_path(inference_id: str) -> str:
    return f"/inference/{quote(inference_id, safe='')}/results"


def check_model(model: ModelRef) -> None:
    """Refuse a model Vody does not have (it has two, without versions)."""
    if model.model_id not in MODEL_FIELDS:
        known = ", ".join(sorted(MODEL_FIELDS))
        msg = f"Vody has no model {model.model_id!r} (it has {known})."
    elif model.version is not None:
        msg = f"Vody models have no versions; use {model.model_id!r} without '@'."
    else:
        return
    raise ValidationFailed(msg, errors=[FieldError("/model", msg)])


def to_wire(
    model_id: str, inputs: Sequence[JobInput], options: VodyOptions
) -> list[dict[str, Any]]:
    """The submit body: one ``{"image_path", "product_type", ...}`` object per input.

    ``options`` supplies ``product_type``/``category`` for inputs whose ``fields``
    lack them. Raises ValidationFailed naming every field that is missing or wrong.
    """
    allowed = MODEL_FIELDS[model_id]
    defaults = options.model_dump(exclude_none=True)
    body: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for i, item in enumerate(inputs):
        wire_item: dict[str, Any] = {"image_path": item.url}
        merged = {**{k: v for k, v in defaults.items() if k in allowed}, **item.fields}
        for key, value in merged.items():
            pointer = f"/inputs/{i}/fields/{key}"
            if key not in allowed:
                errors.append(
                    FieldError(
                        pointer,
                        f"{model_id} takes no field {key!r} (it takes "
                        f"{', '.join(sorted(allowed))})",
                    )
                )
            elif not isinstance(value, str) or not value:
                errors.append(FieldError(pointer, f"{key} must be a non-empty string"))
            else:
                wire_item[key] = value
        if REQUIRED_FIELD not in merged:
            errors.append(
                FieldError(
                    f"/inputs/{i}/fields/{REQUIRED_FIELD}",
                    f"input {item.name!r}: Vody needs a product_type (set it in fields or "
                    "options.provider.product_type)",
                )
            )
        body.append(wire_item)
    if errors:
        raise ValidationFailed(errors[0].message, errors=errors)
    return body


def _to_int(value: Any) -> int | None:
    """A count that Vody may send as ``"2"``, ``2`` or ``"2.0"``; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() and number >= 0 else None
    return None


def _to_float(value: Any) -> float | None:
    """A confidence sent as a number, ``"0.87"`` or ``"87%"``; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        scale = 1.0
        if text.endswith("%"):
            text, scale = text[:-1], 0.01
        try:
            return float(text) * scale
        except ValueError:
            return None
    return None


def submit_from_wire(payload: Any, provider: str, total: int) -> tuple[str, StatusReport]:
    """The inference id of a submit answer, and the status it implies."""
    if isinstance(payload, dict):
        for key in ID_KEYS:
            value = payload.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                # Whatever the answer says, the next status poll tells how it ended.
                word = payload.get("status")
                counted = _to_int(payload.get("request_item_count"))
                report = StatusReport(
                    status=JobStatus.RUNNING,
                    upstream_status=word if isinstance(word, str) and word else IN_PROGRESS,
                    counts=Counts.all_pending(counted if counted is not None else total),
                )
                return str(value), report
    raise ProviderBadResponse(provider, "The provider's submit answer carries no inference id.")


def status_word(payload: Any, provider: str) -> str:
    """The ``status`` of a status answer; a missing one is the provider's fault."""
    word = payload.get("status") if isinstance(payload, dict) else None
    if not isinstance(word, str) or not word:
        raise ProviderBadResponse(provider, "The provider's status answer carries no status.")
    return word


def error_message(payload: Any) -> str:
    """The provider's words for a failed inference, where it gave any."""
    if isinstance(payload, dict):
        for key in ("error", "error_message", "message"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value[:500]
        code = payload.get("response_code")
        if code is not None:
            return f"The inference failed (response code {code})."
    return "The inference failed."


def counts_from_results(results: ResultSet, total: int) -> Counts:
    succeeded = sum(1 for r in results.items.values() if r.status is ItemStatus.SUCCEEDED)
    failed = sum(1 for r in results.items.values() if r.status is ItemStatus.FAILED)
    return Counts(
        total=total,
        succeeded=succeeded,
        failed=failed,
        pending=max(0, total - succeeded - failed),
    )


def report_from_wire(
    payload: Any, provider: str, *, total: int, results: ResultSet | None = None
) -> StatusReport:
    """A status answer as a StatusReport.

    ``completed`` becomes succeeded or partially_succeeded/failed: from the per-item
    ``results`` when the caller fetched them, else from the item counts (items the
    provider did not answer for count as failed). ``total`` is the number of inputs
    submitted, used when the answer does not count them.
    """
    word = status_word(payload, provider)
    requested = _to_int(payload.get("request_item_count"))
    n = requested if requested is not None else total
    status = STATUS_MAP.get(word.lower(), JobStatus.RUNNING)
    if status is JobStatus.FAILED:
        return StatusReport(
            status=status,
            upstream_status=word,
            counts=Counts(total=n, failed=n),
            error=ErrorInfo("upstream_failed", error_message(payload)),
        )
    if status is not JobStatus.SUCCEEDED:
        return StatusReport(
            status=status,
            upstream_status=word,
            counts=Counts.all_pending(n),
            known=word.lower() in STATUS_MAP,
        )
    if results is not None:
        counts = counts_from_results(results, n)
    else:
        answered = _to_int(payload.get("response_item_count"))
        ok = min(n, answered) if answered is not None else n
        counts = Counts(total=n, succeeded=ok, failed=n - ok)
    final = status_from_counts(counts)
    error = None
    if final is JobStatus.FAILED:
        error = ErrorInfo("all_items_failed", "Every input of the job failed.")
    return StatusReport(status=final, upstream_status=word, counts=counts, error=error)


def _scores(entries: Any, label_keys: Sequence[str]) -> list[LabelScore]:
    scores: list[LabelScore] = []
    if not isinstance(entries, list):
        return scores
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        label = next((entry[k] for k in label_keys if isinstance(entry.get(k), str)), None)
        score = _to_float(entry.get("confidence", entry.get("score")))
        if label is not None and score is not None:
            scores.append(LabelScore(label=label, score=score))
    return scores


def output_from_wire(item: Mapping[str, Any]) -> Output:
    """A succeeded item's prediction; a shape neither model answers with stays JSON."""
    if "pattern" in item or "patterns" in item:
        label = item.get("pattern")
        scores = _scores(item.get("patterns"), ("pattern", "name"))
    elif any(k in item for k in ("color_name", "predicted_hex_color", "colors")):
        label = item.get("color_name") or item.get("predicted_hex_color")
        scores = _scores(item.get("colors"), ("name", "hex"))
    else:
        return JsonOutput(data=dict(item))
    label = label if isinstance(label, str) else (scores[0].label if scores else None)
    score = _to_float(item.get("confidence"))
    if score is None and scores and scores[0].label == label:
        score = scores[0].score
    return ClassificationOutput(label=label, score=score, scores=scores)


def item_from_wire(name: str, item: Any) -> ItemResult:
    if not isinstance(item, dict):
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("item_failed", "The provider answered with no object for this input."),
            raw=item,
        )
    error = item.get("error")
    if error:
        message = error if isinstance(error, str) else str(error)
        return ItemResult(
            input=name,
            status=ItemStatus.FAILED,
            error=ErrorInfo("item_failed", message[:500]),
            raw=item,
        )
    return ItemResult(
        input=name, status=ItemStatus.SUCCEEDED, output=output_from_wire(item), raw=item
    )


def _positions(payload: list[Any], image_paths: Sequence[str | None]) -> list[int | None]:
    """Which input each answer belongs to: by position, unless the echoed
    ``image_path`` says otherwise (then the first unclaimed input with that path)."""
    claimed: set[int] = set()
    out: list[int | None] = []
    for pos, item in enumerate(payload):
        echoed = item.get("image_path") if isinstance(item, dict) else None
        target: int | None = pos if pos < len(image_paths) else None
        if echoed is not None and (target is None or image_paths[target] != echoed):
            target = next(
                (i for i, p in enumerate(image_paths) if p == echoed and i not in claimed),
                target,
            )
        if target is not None and target in claimed:
            target = None
        if target is not None:
            claimed.add(target)
        out.append(target)
    return out


def results_from_wire(
    payload: Any,
    provider: str,
    input_names: Sequence[str],
    image_paths: Sequence[str | None] = (),
    *,
    finished: bool = True,
) -> ResultSet:
    """The results array, keyed by gateway input name.

    Inputs the provider answered nothing for are failed when the job is ``finished``
    and absent (no result yet) otherwise.
    """
    if payload is None or payload == {}:
        payload = []
    if isinstance(payload, dict):
        payload = _listed(payload)
    if not isinstance(payload, list):
        # The results body is undocumented: a shape we cannot split by input is kept
        # whole, never a 502 on every read of a finished job.
        return _unsplit(payload, input_names, finished=finished)
    paths = list(image_paths) or [None] * len(input_names)
    items: dict[str, ItemResult] = {}
    for item, target in zip(payload, _positions(payload, paths), strict=True):
        if target is not None and target < len(input_names):
            name = input_names[target]
            items[name] = item_from_wire(name, item)
    if finished:
        for name in input_names:
            if name not in items:
                items[name] = ItemResult(
                    input=name,
                    status=ItemStatus.FAILED,
                    error=ErrorInfo("item_failed", "The provider returned no result for it."),
                )
    return ResultSet(items={n: items[n] for n in input_names if n in items})


#: Where a results object may hold its per-item array [inferred: the body is undocumented].
_LIST_KEYS = ("results", "items", "data", "predictions", "outputs")
UNSPLIT = (
    "The provider's results could not be matched to the inputs; its whole answer is the "
    "job's json output (job_outputs)."
)


def _listed(payload: Mapping[str, Any]) -> Any:
    """The per-item array inside a results object, where there is one."""
    for key in _LIST_KEYS:
        if isinstance(payload.get(key), list):
            return payload[key]
    lists = [v for v in payload.values() if isinstance(v, list)]
    return lists[0] if len(lists) == 1 else payload


def _unsplit(payload: Any, input_names: Sequence[str], *, finished: bool) -> ResultSet:
    """A results body in a shape we do not know: a one-input job's output is the body
    as JSON; for several inputs the body is kept as the job's output and each input
    says why it has none of its own."""
    if not finished:
        return ResultSet(items={})
    if len(input_names) == 1 and isinstance(payload, dict):
        name = input_names[0]
        item = ItemResult(
            input=name, status=ItemStatus.SUCCEEDED, output=JsonOutput(data=payload), raw=payload
        )
        return ResultSet(items={name: item})
    data = payload if isinstance(payload, dict) else {"results": payload}
    return ResultSet(
        items={
            n: ItemResult(
                input=n, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", UNSPLIT)
            )
            for n in input_names
        },
        job_outputs=(JsonOutput(data=data),),
    )


def failed_results(input_names: Sequence[str], message: str) -> ResultSet:
    """Every input failed with the job's error (a failed job with no results)."""
    return ResultSet(
        items={
            n: ItemResult(
                input=n, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", message)
            )
            for n in input_names
        }
    )
