"""Result items as CSV (one row per item, flattened output columns) and NDJSON lines.

Job-level outputs (Wood Wide's factors: ``job_outputs`` in the JSON view) belong to
no input, and an export must not drop them silently:

* NDJSON: after the item lines, one last line ``{"job_outputs": [...]}`` (only when
  there are any), told apart from items by having no ``input``.
* CSV: after the item rows, one row per job output, with an empty ``input``, the
  status ``job_output`` and the output's fields in the same ``output_*`` columns an
  item's output uses (lists and objects as JSON text). Filtering on ``input != ""``
  gives the items alone.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

_LEAD = ("input", "status")
_TAIL = ("error_code", "error_message", "started_at", "finished_at", "elapsed_ms")


#: The ``status`` of a CSV row that carries a job-level output rather than an item.
JOB_OUTPUT_STATUS = "job_output"


def _output_columns(output: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in output.items():
        col = "output_type" if key == "type" else f"output_{key}"
        row[col] = json.dumps(value) if isinstance(value, list | dict) else value
    return row


def flatten_item(item: dict[str, Any]) -> dict[str, Any]:
    """One item as a flat row: scalars as they are, lists and objects as JSON text."""
    row: dict[str, Any] = {"input": item["input"], "status": item["status"]}
    row.update(_output_columns(item.get("output") or {}))
    error = item.get("error") or {}
    row["error_code"] = error.get("code")
    row["error_message"] = error.get("message")
    for key in ("started_at", "finished_at", "elapsed_ms"):
        row[key] = item.get(key)
    if "raw" in item:
        row["raw"] = json.dumps(item["raw"])
    return row


def job_output_row(output: dict[str, Any]) -> dict[str, Any]:
    """A job-level output as a CSV row after the items (see the module docstring)."""
    return {"input": "", "status": JOB_OUTPUT_STATUS, **_output_columns(output)}


def to_csv(items: Iterable[dict[str, Any]], job_outputs: Iterable[dict[str, Any]] = ()) -> str:
    rows = [flatten_item(i) for i in items] + [job_output_row(o) for o in job_outputs]
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


def ndjson_job_outputs(job_outputs: list[dict[str, Any]]) -> bytes:
    """The last NDJSON line, when the job has job-level outputs (else nothing)."""
    return ndjson_line({"job_outputs": job_outputs}) if job_outputs else b""
