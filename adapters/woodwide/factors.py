"""Wood Wide ``factors`` results (factor analysis), in both shapes.

* [doc: woodwide 0.9.0 ``resources/models/models.py``] One row per input row: ``id``,
  ``factor_{k}_score`` (the row's score on latent factor k), ``factor_{k}_description``
  and ``factor_{k}_captured_variance`` (the factor's, repeated on every row), plus a
  top-level ``factor_descriptions`` ``{k: {description, summary, captured_variance}}``
  (json and parquet; ``descriptions`` of ``GET /jobs/{id}/results``, JSON-encoded).
  Each item's output is then its scores as an ``EmbeddingOutput`` (the row placed in
  factor space, ordered by k), and the factors are one job-level ``FactorsOutput``
  with the same order.
* The seed docs' one row per factor (``factor_id``, ``factor_description``,
  ``captured_variance``): the job-level ``FactorsOutput`` only; items have no output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.outputs import EmbeddingOutput, Factor, FactorsOutput
from adapters.woodwide import values
from adapters.woodwide.tables import row_id

_SCORE = re.compile(r"factor_(\d+)_score")

Produced = tuple[EmbeddingOutput, Any]


def is_per_row(columns: Sequence[str]) -> bool:
    return any(_SCORE.fullmatch(c) for c in columns)


def seed_factors(rows: Sequence[Mapping[str, Any]]) -> FactorsOutput:
    factors = [
        Factor(
            id=values.int_or_str(r["factor_id"]),
            description=None
            if values.blank(r.get("factor_description"))
            else str(r["factor_description"]),
            captured_variance=values.opt_number(r.get("captured_variance")),
        )
        for r in rows
    ]
    if all(isinstance(f.id, int) for f in factors):
        factors.sort(key=lambda f: f.id)
    return FactorsOutput(factors=factors)


def _described(descriptions: Mapping[str, Any], k: int) -> Mapping[str, Any]:
    found = descriptions.get("factor_descriptions")
    entry = found.get(str(k)) if isinstance(found, Mapping) else None
    return entry if isinstance(entry, Mapping) else {}


def _first(rows: Sequence[Mapping[str, Any]], column: str) -> Any:
    return next((r[column] for r in rows if not values.blank(r.get(column))), None)


def factors_of(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], descriptions: Mapping[str, Any]
) -> tuple[list[int], FactorsOutput]:
    """The factor indexes (sorted) and the factors, from the rows or the descriptions."""
    ks = {int(m[1]) for c in columns if (m := _SCORE.fullmatch(c))}
    found = descriptions.get("factor_descriptions")
    if not ks and isinstance(found, Mapping):
        ks = {int(k) for k in found if str(k).isdigit()}
    order = sorted(ks)
    factors = []
    for k in order:
        described = _described(descriptions, k)
        text = _first(rows, f"factor_{k}_description") or described.get("description")
        variance = _first(rows, f"factor_{k}_captured_variance")
        if variance is None:
            variance = described.get("captured_variance")
        factors.append(
            Factor(
                id=k,
                description=None if values.blank(text) else str(text),
                captured_variance=values.opt_number(variance),
            )
        )
    return order, FactorsOutput(factors=factors)


def per_row(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], descriptions: Mapping[str, Any]
) -> tuple[dict[str, Produced], FactorsOutput]:
    """Row id → (its factor scores, its row), and the job's factors."""
    order, factors = factors_of(rows, columns, descriptions)
    out: dict[str, Produced] = {}
    for row in rows:
        if values.blank(row.get("id")):
            raise ValueError("a result row without an id")
        vector = [values.number(row[f"factor_{k}_score"]) for k in order]
        out[row_id(row["id"])] = (EmbeddingOutput(vector=vector), dict(row))
    return out, factors
