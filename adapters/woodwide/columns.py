"""Which columns of a Wood Wide result table are the model's outputs, and its model type.

Rows come either from the inference results file (the outputs only) or from the
*combined* table: ``/results/rows`` pages and ``combined_results_uri`` hold the input
row's columns as well as the outputs [doc: woodwide 0.9.0
``types/job_retrieve_results_response.py``, ``types/job_retrieve_result_rows_params.py``].
An item's output is built from its output columns only, so a caller's input column
never turns up in (or changes the reading of) an output. Output columns by model type
are the library's (``resources/models/models.py``, "Output Columns by Model Type");
search's are [inferred] (the library names none). In a compound frame, output
columns may carry the model type as a namespace (``clustering_cluster_label``) [doc:
``types/compound_filter_param.py``]; such a column is read under its bare name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Output columns named outright, by model type (``id`` is every table's key).
NAMED: Mapping[str, frozenset[str]] = {
    "prediction": frozenset(
        {"prediction", "prediction_prob", "prediction_probs", "prediction_explanation"}
    ),
    "clustering": frozenset({"cluster_label", "cluster_description"}),
    "anomaly": frozenset({"is_anomaly", "anomaly_score", "anomalous_ids"}),
    "embedding": frozenset(),
    # The seed docs' one row per factor.
    "factors": frozenset({"factor_id", "factor_description", "captured_variance"}),
    # [inferred] One row per match (id, match_id, rank, score), or lists per query row.
    "search": frozenset(
        {
            "match_id",
            "rank",
            "score",
            "distance",
            "matches",
            "neighbors",
            "neighbours",
        }
    ),
}
#: Output columns by pattern: ``dim_N``; ``factor_{k}_*``; numbered or listed neighbours.
PATTERNS: Mapping[str, re.Pattern[str]] = {
    "embedding": re.compile(r"dim_\d+"),
    "factors": re.compile(r"factor_\d+_(score|description|captured_variance)"),
    "search": re.compile(
        r"(match|neighbou?r)(_\d+)?_(id|ids|score|scores|distance|distances|similarity|similarities)"
    ),
}


def is_output(column: str, kind: str) -> bool:
    if column in NAMED.get(kind, ()):
        return True
    pattern = PATTERNS.get(kind)
    return pattern is not None and pattern.fullmatch(column) is not None


def dim_index(column: str) -> int | None:
    head, _, tail = column.partition("_")
    return int(tail) if head == "dim" and tail.isdigit() else None


def detect_model_type(columns: Iterable[str]) -> str | None:
    """The model type a table's columns reveal (a csv file does not say it)."""
    cols = set(columns)
    if cols & {"anomalous_ids", "is_anomaly"}:
        return "anomaly"
    if "factor_id" in cols or any(PATTERNS["factors"].fullmatch(c) for c in cols):
        return "factors"
    if "match_id" in cols or any(PATTERNS["search"].fullmatch(c) for c in cols):
        return "search"
    if "cluster_label" in cols:
        return "clustering"
    if any(dim_index(c) is not None for c in cols):
        return "embedding"
    return "prediction" if "prediction" in cols else None


def _bare(column: str, kind: str) -> str:
    """``clustering_cluster_label`` → ``cluster_label``; any other column as it is."""
    prefix = f"{kind}_"
    if column.startswith(prefix) and is_output(column[len(prefix) :], kind):
        return column[len(prefix) :]
    return column


def outputs_only(
    rows: Sequence[Mapping[str, Any]], kind: str | None, input_columns: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Rows of a combined table cut down to ``id`` and the output columns.

    With a known model type the output columns are known; otherwise every column but
    the job's own input columns (known for uploads, not for stored datasets) is kept.
    """
    inputs = set(input_columns) - {"id"}
    out: list[dict[str, Any]] = []
    for row in rows:
        if kind is not None and kind in NAMED:
            # Namespaced outputs, where there are any, are the outputs: a bare column
            # of the same name beside them is then an input's.
            spaced = any(_bare(c, kind) != c for c in row)
            kept = {}
            for column, value in row.items():
                bare = _bare(column, kind)
                if bare == "id" or (is_output(bare, kind) and (bare != column) == spaced):
                    kept[bare] = value
        else:
            kept = {c: v for c, v in row.items() if c not in inputs}
        out.append(kept)
    return out
