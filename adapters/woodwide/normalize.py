"""Wood Wide result rows as the gateway's normalized outputs, one per input.

Rows are keyed by the provider's row ``id`` and mapped back to input names with the
job's ``row id → input name`` map. By model type (woodwide 0.9.0, "Output Columns by
Model Type"; docs/providers/woodwide.md says where each shape comes from):

``prediction``  classification or regression (predictions.py: every shape of
                ``prediction_prob``/``prediction_probs``; numeric labels stay labels)
``clustering``  ``cluster_label`` + ``cluster_description``
``anomaly``     ``per_row``: ``is_anomaly`` + ``anomaly_score``; ``ids_only``: every row
                not in ``anomalous_ids`` is a non-anomaly (its score unknown)
``embedding``   ``dim_0 … dim_N``, ordered by N
``search``      each query row's matches (search.py, every shape)
``factors``     per row: the row's factor scores (an embedding) and the factors as a
                job-level ``FactorsOutput``; the seed's one row per factor: that
                ``FactorsOutput`` only, and each input succeeds with no output
other           the row, minus ``id``, as ``JsonOutput`` (nothing is dropped)

Rows of the combined table (``/results/rows``) are cut down to their output columns
first (columns.py). A row the provider did not return (or listed in
``summary.failed_row_ids``) is a failed item: Wood Wide documents no per-row errors,
only omissions [inferred].
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from adapters.base import Counts, ErrorInfo, ItemResult, ItemStatus, JobStatus, StatusReport
from adapters.outputs import (
    AnomalyOutput,
    ClusteringOutput,
    EmbeddingOutput,
    JobOutput,
    JsonOutput,
    Output,
)
from adapters.woodwide import columns, factors, predictions, search, values
from adapters.woodwide.columns import detect_model_type
from adapters.woodwide.tables import Table, row_id

__all__ = ["NO_RESULT", "counts_from_items", "detect_model_type", "items_from_table"]

NO_RESULT = "no result for this row"
MODEL_TYPES = frozenset({"prediction", "clustering", "anomaly", "embedding", "search", "factors"})

Produced = tuple[Output | None, Any]


def clustering_output(row: Mapping[str, Any]) -> Output:
    description = row.get("cluster_description")
    return ClusteringOutput(
        cluster=values.int_or_str(row["cluster_label"]),
        description=None if values.blank(description) else str(description),
    )


def anomaly_output(row: Mapping[str, Any]) -> Output:
    return AnomalyOutput(
        is_anomaly=values.boolean(row["is_anomaly"]),
        score=values.opt_number(row.get("anomaly_score")),
    )


def embedding_output(row: Mapping[str, Any]) -> Output:
    dims = sorted((i, c) for c in row if (i := columns.dim_index(c)) is not None)
    if not dims:
        raise ValueError("an embedding row without dim_ columns")
    return EmbeddingOutput(vector=[values.number(row[c]) for _, c in dims])


#: What a reader raises on a row it cannot read.
_UNREADABLE = (KeyError, TypeError, ValueError, ValidationError)


def json_output(row: Mapping[str, Any]) -> Output:
    return JsonOutput(data={k: v for k, v in row.items() if k != "id"})


PER_ROW = {
    "clustering": clustering_output,
    "anomaly": anomaly_output,
    "embedding": embedding_output,
}


def _per_row(
    rows: Sequence[Mapping[str, Any]], kind: str | None, cols: Sequence[str], described: Any
) -> dict[str, Produced]:
    if kind == "prediction":
        task = predictions.task_of(cols, described)
        labels = predictions.class_labels(described)

        def convert(row: Mapping[str, Any]) -> Output:
            return predictions.prediction_output(row, task, labels)
    else:
        convert = PER_ROW.get(kind or "", json_output)
    out: dict[str, Produced] = {}
    for row in rows:
        if values.blank(row.get("id")):
            raise ValueError("a result row without an id")
        try:
            output = convert(row)
        except _UNREADABLE:
            # A row of a known type in a shape this adapter cannot read: kept as it came,
            # a json output, rather than a 502 on every read of a finished job.
            output = json_output(row)
        out[row_id(row["id"])] = (output, dict(row))
    return out


def _as_json(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, Produced], tuple[JobOutput, ...]]:
    """Rows in a shape none of the readers above can read, kept as they came: each row
    with an id as its input's json output, else all of them as one job-level output."""
    try:
        return _per_row(rows, None, [], None), ()
    except _UNREADABLE:
        return {}, (JsonOutput(data=[dict(r) for r in rows]),)


def _anomalous_ids(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``anomalous_ids`` rows (one id each, or a list in one cell) → id → its row."""
    found: dict[str, Any] = {}
    for row in rows:
        value = row.get("anomalous_ids")
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        for one in value if isinstance(value, list) else [value]:
            if not values.blank(one):
                found[row_id(one)] = dict(row)
    return found


def descriptions_of(table: Table, described: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model's descriptions: the results answer's, then the file's own."""
    merged = dict(described or {})
    merged |= {k: v for k, v in table.extras.items() if k.endswith("_descriptions")}
    return merged


def items_from_table(
    table: Table,
    model_type: str | None,
    row_names: Mapping[str, str],
    failed_row_ids: Iterable[str] | None = None,
    *,
    descriptions: Mapping[str, Any] | None = None,
    combined: bool = False,
    input_columns: Iterable[str] = (),
) -> tuple[dict[str, ItemResult], tuple[JobOutput, ...]]:
    """Every named row's item (in ``row_names`` order) and the job-level outputs.

    ``combined``: the rows are the combined table (inputs and outputs); only output
    columns reach an output. ``descriptions``: the results answer's, parsed.
    """
    kind = model_type if model_type in MODEL_TYPES else None
    kind = kind or table.model_type or detect_model_type(table.columns)
    rows: Sequence[Mapping[str, Any]] = table.rows
    if combined:
        rows = columns.outputs_only(rows, kind, input_columns)
    cols = list(dict.fromkeys(c for r in rows for c in r)) if combined else list(table.columns)
    described = descriptions_of(table, descriptions)
    job_outputs: tuple[JobOutput, ...] = ()
    produced: dict[str, Produced]
    try:
        if kind == "factors" and factors.is_per_row(cols):
            scored, found = factors.per_row(rows, cols, described)
            produced, job_outputs = dict(scored), (found,)
        elif kind == "factors":  # the seed's one row per factor (or no rows at all)
            if "factor_id" in cols:
                job_outputs = (factors.seed_factors(rows),)
            else:
                job_outputs = (factors.factors_of(rows, cols, described)[1],)
            produced = {rid: (None, None) for rid in row_names}
        elif kind == "anomaly" and "is_anomaly" not in cols:
            listed = _anomalous_ids(rows)
            produced = {
                rid: (AnomalyOutput(is_anomaly=rid in listed), listed.get(rid)) for rid in row_names
            }
        elif kind == "search":
            produced = dict(search.matches_by_row(rows))
        else:
            produced = _per_row(rows, kind if kind in MODEL_TYPES else None, cols, described)
    except _UNREADABLE:
        # Never a 502 on every read of a finished job: what cannot be read as its type
        # is answered as it came (issue 14 point 6).
        produced, job_outputs = _as_json(rows)
    failed = set(failed_row_ids or ())
    items: dict[str, ItemResult] = {}
    for rid, name in row_names.items():
        if rid in failed or rid not in produced:
            items[name] = ItemResult(
                input=name, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", NO_RESULT)
            )
            continue
        output, raw = produced[rid]
        items[name] = ItemResult(input=name, status=ItemStatus.SUCCEEDED, output=output, raw=raw)
    return items, job_outputs


def finish_unfinished(input_names: Sequence[str], report: StatusReport) -> dict[str, ItemResult]:
    """Items of a failed or cancelled job: it has no results, so each input shares its end."""
    if report.status is JobStatus.CANCELLED:
        return {n: ItemResult(input=n, status=ItemStatus.CANCELLED) for n in input_names}
    message = report.error.message if report.error else NO_RESULT
    return {
        n: ItemResult(input=n, status=ItemStatus.FAILED, error=ErrorInfo("item_failed", message))
        for n in input_names
    }


def counts_from_items(items: Mapping[str, ItemResult], total: int) -> Counts:
    """Counts of a finished job: an input without a result counts as failed."""
    succeeded = sum(1 for item in items.values() if item.status is ItemStatus.SUCCEEDED)
    return Counts(total=total, succeeded=succeeded, failed=total - succeeded)
