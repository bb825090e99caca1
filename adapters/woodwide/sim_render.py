"""The simulated Wood Wide result tables rendered as Wood Wide renders them.

json: a column-oriented ``data`` dict beside the job's head and the model's
descriptions; csv: text, ``True``/``False`` booleans, lists and objects as JSON text,
plus ``prediction_explanation`` for prediction models; parquet (needs ``pyarrow``):
the model and its descriptions in the file metadata. The *combined* table is the
input rows' columns followed by the output columns, one row per input row
(``combined_results_uri`` and ``/results/rows``, woodwide 0.9.0
``types/job_retrieve_results_response.py``).
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.woodwide.sim_models import SimTable


def plain_columns(table: SimTable) -> tuple[str, ...]:
    return tuple(c for c in table.columns if c not in table.csv_only)


def plain_rows(table: SimTable) -> list[dict[str, Any]]:
    cols = plain_columns(table)
    return [{c: r[c] for c in cols if c in r} for r in table.rows]


def combined(table: SimTable, inputs: Sequence[Mapping[str, str]]) -> SimTable:
    """``id``, the input row's columns, then the outputs (a row-aligned table only)."""
    input_cols = list(dict.fromkeys(c for row in inputs for c in row if c != "id"))
    rows = []
    for r in table.rows:
        cells = inputs[r["id"]] if 0 <= r["id"] < len(inputs) else {}
        rows.append({"id": r["id"]} | {c: cells.get(c) for c in input_cols} | r)
    outputs = [c for c in table.columns if c != "id"]
    return SimTable(("id", *input_cols, *outputs), rows, table.csv_only, table.extras)


def render_json(
    table: SimTable, head: Mapping[str, Any], *, search_mapping: bool = False
) -> dict[str, Any]:
    cols = plain_columns(table)
    if search_mapping and "match_id" in cols:
        data: dict[str, Any] = {}
        for r in table.rows:
            data.setdefault(str(r["id"]), []).append(str(r["match_id"]))
    else:
        data = {c: [r.get(c) for r in table.rows] for c in cols}
    return {**head, "data": data, **table.extras}


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_csv(table: SimTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for r in table.rows:
        writer.writerow([csv_cell(r.get(c)) for c in table.columns])
    return out.getvalue()


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def render_parquet(table: SimTable, metadata: Mapping[str, str]) -> bytes:
    """Needs ``pyarrow`` (an optional extra; the simulator refuses parquet without it).

    The file metadata holds the model (``model_type`` ...) and, JSON-encoded, the
    descriptions the json rendering carries at its top level.
    """
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")
    cols = plain_columns(table)
    arrow = pa.table({c: [r.get(c) for r in table.rows] for c in cols})
    meta = dict(metadata) | {k: json.dumps(v) for k, v in table.extras.items()}
    arrow = arrow.replace_schema_metadata(meta)
    sink = io.BytesIO()
    pq.write_table(arrow, sink)
    return sink.getvalue()
