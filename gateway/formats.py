"""Result items as CSV (one row per item, flattened output columns) and NDJSON lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

_LEAD = ("input", "status")
_TAIL = ("error_code", "error_message", "started_at", "finished_at", "elapsed_ms")


def flatten_item(item: dict[str, Any]) -> dict[str, Any]:
    """One item as a flat row: scalars as they are, lists and objects as JSON text."""
    row: dict[str, Any] = {"input": item["input"], "status": item["status"]}
    output = item.get("output") or {}
    for key, value in output.items():
        col = "output_type" if key == "type" else f"output_{key}"
        row[col] = json.dumps(value) if isinstance(value, list | dict) else value
    error = item.get("error") or {}
    row["error_code"] = error.get("code")
    row["error_message"] = error.get("message")
    for key in ("started_at", "finished_at", "elapsed_ms"):
        row[key] = item.get(key)
    if "raw" in item:
        row["raw"] = json.dumps(item["raw"])
    return row


def to_csv(items: Iterable[dict[str, Any]]) -> str:
    rows = [flatten_item(i) for i in items]
    middle: list[str] = []
    for row in rows:
        for col in row:
            if col not in _LEAD and col not in _TAIL and col not in middle and col != "raw":
                middle.append(col)
    columns = [*_LEAD, *middle, *_TAIL]
    if any("raw" in r for r in rows):
        columns.append("raw")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def ndjson_line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"
