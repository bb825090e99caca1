"""Wood Wide result rows as the gateway's normalized outputs, one per input.

Rows are keyed by the provider's row ``id`` and mapped back to input names with the
job's ``row id → input name`` map. By model type (PROVIDERS.md §3):

``prediction``  classification (``prediction`` + ``prediction_prob``/``prediction_probs``)
                or regression (``prediction`` alone, a number)
``clustering``  ``cluster_label`` + ``cluster_description``
``anomaly``     ``per_row``: ``is_anomaly`` + ``anomaly_score``; ``ids_only``: every row
                not in ``anomalous_ids`` is a non-anomaly (its score unknown)
``embedding``   ``dim_0 … dim_N``, ordered by N
``search``      several rows per query ``id`` (``match_id``, ``rank``, ``score``)
``factors``     one row per factor, not per input: a job-level ``FactorsOutput``; each
                input succeeds with no output of its own
other           the row, minus ``id``, as ``JsonOutput`` (nothing is dropped)

A row the provider did not return (or listed in ``summary.failed_row_ids``) is a
failed item: Wood Wide documents no per-row errors, only omissions [inferred].
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from adapters.base import Counts, ErrorInfo, ItemResult, ItemStatus, JobStatus, StatusReport
from adapters.errors import ProviderBadResponse
from adapters.outputs import (
    AnomalyOutput,
    ClassificationOutput,
    ClusteringOutput,
    EmbeddingOutput,
    Factor,
    FactorsOutput,
    JobOutput,
    JsonOutput,
    LabelScore,
    Match,
    MatchOutput,
    Output,
    RegressionOutput,
)
from adapters.woodwide.tables import Table, row_id
from adapters.woodwide.wire import PROVIDER

NO_RESULT = "no result for this row"
MODEL_TYPES = frozenset({"prediction", "clustering", "anomaly", "embedding", "search", "factors"})

Produced = tuple[Output | None, Any]


def detect_model_type(columns: Iterable[str]) -> str | None:
    """The model type a table's columns reveal (a csv file does not say it)."""
    cols = set(columns)
    if cols & {"anomalous_ids", "is_anomaly"}:
        return "anomaly"
    for column, kind in (
        ("factor_id", "factors"),
        ("match_id", "search"),
        ("cluster_label", "clustering"),
    ):
        if column in cols:
            return kind
    if any(_dim_index(c) is not None for c in cols):
        return "embedding"
    return "prediction" if "prediction" in cols else None


# -- values as csv (strings) or json/parquet (native) -------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _float(value: Any) -> float:
    if isinstance(value, bool) or _blank(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _opt_float(value: Any) -> float | None:
    return None if _blank(value) else _float(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t"):
        return True
    if text in ("false", "0", "no", "f", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _label(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _int_or_str(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _dim_index(column: str) -> int | None:
    head, _, tail = column.partition("_")
    return int(tail) if head == "dim" and tail.isdigit() else None


def _probs(value: Any) -> dict[str, float]:
    """``prediction_probs``: ``{label: p}``, as an object or (csv) its JSON text."""
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        value = json.loads(value)
    if isinstance(value, Mapping):
        return {str(k): _float(v) for k, v in value.items()}
    if isinstance(value, list):
        return {
            str(v["label"]): _float(v.get("prob", v.get("score")))
            for v in value
            if isinstance(v, Mapping) and "label" in v
        }
    return {}


# -- one row, one output ----------------------------------------------------------------


def prediction_output(row: Mapping[str, Any]) -> Output:
    prediction = row.get("prediction")
    prob = _opt_float(row.get("prediction_prob"))
    probs = _probs(row.get("prediction_probs"))
    label = _label(prediction)
    if prob is None and not probs:
        try:
            return RegressionOutput(value=_float(prediction))
        except (TypeError, ValueError):
            return ClassificationOutput(label=label)  # a label with no confidence
    scores = sorted(
        (LabelScore(label=k, score=v) for k, v in probs.items()), key=lambda s: -s.score
    )
    if prob is None and label is not None:
        prob = probs.get(label)
    if not scores and label is not None and prob is not None:
        # Binary models (and multiclass ones without prediction_probs) give only the
        # predicted label's probability: that one score is all that can be said.
        scores = [LabelScore(label=label, score=prob)]
    return ClassificationOutput(label=label, score=prob, scores=scores)


def clustering_output(row: Mapping[str, Any]) -> Output:
    description = row.get("cluster_description")
    return ClusteringOutput(
        cluster=_int_or_str(row["cluster_label"]),
        description=None if _blank(description) else str(description),
    )


def anomaly_output(row: Mapping[str, Any]) -> Output:
    return AnomalyOutput(
        is_anomaly=_bool(row["is_anomaly"]), score=_opt_float(row.get("anomaly_score"))
    )


def embedding_output(row: Mapping[str, Any]) -> Output:
    dims = sorted((i, c) for c in row if (i := _dim_index(c)) is not None)
    if not dims:
        raise ValueError("an embedding row without dim_ columns")
    return EmbeddingOutput(vector=[_float(row[c]) for _, c in dims])


def json_output(row: Mapping[str, Any]) -> Output:
    return JsonOutput(data={k: v for k, v in row.items() if k != "id"})


PER_ROW = {
    "prediction": prediction_output,
    "clustering": clustering_output,
    "anomaly": anomaly_output,
    "embedding": embedding_output,
}


# -- a table, every row -----------------------------------------------------------------


def _per_row(rows: Sequence[Mapping[str, Any]], kind: str | None) -> dict[str, Produced]:
    convert = PER_ROW.get(kind or "", json_output)
    out: dict[str, Produced] = {}
    for row in rows:
        if _blank(row.get("id")):
            raise ValueError("a result row without an id")
        out[row_id(row["id"])] = (convert(row), dict(row))
    return out


def _search(rows: Sequence[Mapping[str, Any]]) -> dict[str, Produced]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row_id(row["id"]), []).append(row)
    out: dict[str, Produced] = {}
    for rid, group in groups.items():
        ranked = sorted(
            enumerate(group),
            key=lambda p: (_opt_float(p[1].get("rank")) or 0.0, p[0]),
        )
        matches = [
            Match(id=row_id(r["match_id"]), score=_opt_float(r.get("score"))) for _, r in ranked
        ]
        out[rid] = (MatchOutput(matches=matches), [dict(r) for r in group])
    return out


def _anomalous_ids(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``anomalous_ids`` rows (one id each, or a list in one cell) → id → its row."""
    found: dict[str, Any] = {}
    for row in rows:
        value = row.get("anomalous_ids")
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        for one in value if isinstance(value, list) else [value]:
            if not _blank(one):
                found[row_id(one)] = dict(row)
    return found


def _factors(rows: Sequence[Mapping[str, Any]]) -> FactorsOutput:
    factors = [
        Factor(
            id=_int_or_str(r["factor_id"]),
            description=None
            if _blank(r.get("factor_description"))
            else str(r["factor_description"]),
            captured_variance=_opt_float(r.get("captured_variance")),
        )
        for r in rows
    ]
    if all(isinstance(f.id, int) for f in factors):
        factors.sort(key=lambda f: f.id)
    return FactorsOutput(factors=factors)


def items_from_table(
    table: Table,
    model_type: str | None,
    row_names: Mapping[str, str],
    failed_row_ids: Iterable[str] | None = None,
    *,
    provider: str = PROVIDER,
) -> tuple[dict[str, ItemResult], tuple[JobOutput, ...]]:
    """Every named row's item (in ``row_names`` order) and the job-level outputs."""
    kind = model_type if model_type in MODEL_TYPES else None
    kind = kind or table.model_type or detect_model_type(table.columns)
    cols = set(table.columns)
    job_outputs: tuple[JobOutput, ...] = ()
    try:
        if kind == "factors" and ("factor_id" in cols or not table.rows):
            job_outputs = (_factors(table.rows),)
            produced: dict[str, Produced] = {rid: (None, None) for rid in row_names}
        elif kind == "anomaly" and "is_anomaly" not in cols:
            listed = _anomalous_ids(table.rows)
            produced = {
                rid: (AnomalyOutput(is_anomaly=rid in listed), listed.get(rid)) for rid in row_names
            }
        elif kind == "search":
            produced = _search(table.rows)
        else:
            produced = _per_row(table.rows, kind if kind in PER_ROW else None)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise ProviderBadResponse(
            provider, f"The provider's {kind or 'result'} rows could not be read ({exc})."[:300]
        ) from None
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
