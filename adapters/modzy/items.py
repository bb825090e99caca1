"""A Modzy results answer, item by item, in the gateway's normalized shapes.

``GET /api/results/{id}`` keeps running and successful items in ``results`` and failed
ones in ``failures``, keyed by input item name (modzy-sdk 0.11.6 ``results.py``
``get_source_outputs``). An item runs ``FETCHING_DATA`` → ``PROCESSING`` →
``SUCCESSFUL`` | ``FAILED``; legacy answers nest an item's content once more under its
own name. Beside the model's outputs (``results.json``, or names the model declares)
an item carries processing times and the platform's fields (``accessKey``,
``userIdentifier``, ``teamIdentifier``, ``accountIdentifier``, ``inputSize``, ``model``,
``timeMeters``, ``datasourceCompletedTime``, ``error``: modzy-sdk ``_util.py``
``run_model``): none of those is ever an output, and the ones that identify the account
and the key (``accessKey`` above all, a credential's public part) are dropped even
from the item's ``raw``. Timestamps come as ``2021-07-20T01:40:11.187+0000`` or
``...+00:00``. ``normalize.py`` turns an output and its explanation into the gateway's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.base import ErrorInfo, ItemResult, ItemStatus, ResultSet
from adapters.errors import ProviderBadResponse
from adapters.modzy.normalize import normalize_output

#: Per-item status words of the results route.
ITEM_STATUS_MAP: Mapping[str, ItemStatus] = {
    "FETCHING_DATA": ItemStatus.RUNNING,
    "PROCESSING": ItemStatus.RUNNING,
    "SUCCESSFUL": ItemStatus.SUCCEEDED,
    "FAILED": ItemStatus.FAILED,
}

#: The platform's fields in a result item (modzy-sdk 0.11.6 ``_util.py`` ``run_model``).
PLATFORM_FIELDS = frozenset(
    {
        "accessKey",
        "userIdentifier",
        "teamIdentifier",
        "accountIdentifier",
        "inputSize",
        "model",
        "timeMeters",
        "datasourceCompletedTime",
        "error",
    }
)
#: Those that identify the account and the key that submitted: never shown to a caller,
#: not even in an item's ``raw`` (``accessKey`` is a credential's public part).
IDENTITY_FIELDS = frozenset({"accessKey", "userIdentifier", "teamIdentifier", "accountIdentifier"})
#: Keys of a result item that describe the processing, not the model's output.
ITEM_META_KEYS = PLATFORM_FIELDS | frozenset(
    {
        "status",
        "engine",
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


def _without_identity(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    return {k: v for k, v in content.items() if k not in IDENTITY_FIELDS}


def shown_raw(name: str, content: Any) -> Any:
    """An item as the provider sent it, less the fields that identify the account and key.

    Those sit at the item's top level, or inside the legacy nesting under its own name.
    """
    raw = _without_identity(content)
    if isinstance(raw, dict) and isinstance(raw.get(name), dict):
        raw = {**raw, name: _without_identity(raw[name])}
    return raw


def item_from_wire(name: str, content: Any, *, failure: bool = False) -> ItemResult:
    """One entry of ``results`` (or of ``failures`` when ``failure``) as an ItemResult."""
    item = unnest(name, content)
    content = shown_raw(name, content)
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
        # No (known) status word: the map it came in and its content tell (the
        # platform's ``error`` field is there, null, on items that did not fail).
        if failure or item.get("error"):
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
