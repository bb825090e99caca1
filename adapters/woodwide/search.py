"""Wood Wide ``search`` results: each query row's nearest rows, as a ``MatchOutput``.

[doc: woodwide 0.9.0 ``resources/models/models.py``] Results hold "one row per input
instance"; ``k`` neighbours are retrieved per query row, and ``exclude_self_matches``
drops "any neighbour whose row ID equals the query row's ID". The columns are not
named anywhere public, so every shape seen or guessed is read [inferred]:

* one row per query row, neighbours numbered: ``neighbor_{j}_id`` (or ``match_``,
  ``neighbour_``) with ``_score``/``_similarity`` (or ``_distance``), best first by j;
* one row per query row, neighbours listed: ``neighbor_ids``/``match_ids``/
  ``neighbors``/``matches`` with ``*_scores``/``similarities`` (or ``*_distances``);
* one row per match: ``id``, ``match_id``, ``rank``, ``score`` (the seed-era guess);
  json's ``{"<row id>": [match ids]}`` becomes such rows in tables.py.

A distance is kept in ``raw`` but is no score (lower is better), so ``score`` is then
left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.outputs import Match, MatchOutput
from adapters.woodwide import values
from adapters.woodwide.tables import row_id

_NUMBERED = re.compile(r"(?:match|neighbou?r)_(\d+)_(id|score|similarity|distance)")
_ID_LISTS = ("neighbor_ids", "neighbour_ids", "match_ids", "neighbors", "neighbours", "matches")
_SCORE_LISTS = (
    "neighbor_scores",
    "neighbour_scores",
    "match_scores",
    "neighbor_similarities",
    "match_similarities",
    "similarities",
    "scores",
)

Produced = tuple[MatchOutput, Any]


def _per_match(rows: Sequence[Mapping[str, Any]]) -> dict[str, Produced]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row_id(row["id"]), []).append(row)
    out: dict[str, Produced] = {}
    for rid, group in groups.items():
        ranked = sorted(
            enumerate(group), key=lambda p: (values.opt_number(p[1].get("rank")) or 0.0, p[0])
        )
        matches = [
            Match(id=row_id(r["match_id"]), score=values.opt_number(r.get("score")))
            for _, r in ranked
        ]
        out[rid] = (MatchOutput(matches=matches), [dict(r) for r in group])
    return out


def _numbered(row: Mapping[str, Any]) -> list[Match] | None:
    found: dict[int, dict[str, Any]] = {}
    for column, value in row.items():
        m = _NUMBERED.fullmatch(column)
        if m is not None:
            found.setdefault(int(m[1]), {})[m[2]] = value
    if not found:
        return None
    matches = []
    for _, cells in sorted(found.items()):
        if values.blank(cells.get("id")):
            continue  # fewer than k neighbours
        score = cells.get("score", cells.get("similarity"))
        matches.append(Match(id=row_id(cells["id"]), score=values.opt_number(score)))
    return matches


def _listed(row: Mapping[str, Any]) -> list[Match] | None:
    ids = next((row[c] for c in _ID_LISTS if c in row), None)
    if ids is None:
        return None
    ids = values.structured(ids)
    if not isinstance(ids, list):
        raise ValueError(f"neighbours are not a list: {ids!r}")
    scores = values.structured(next((row[c] for c in _SCORE_LISTS if c in row), None))
    if not isinstance(scores, list) or len(scores) != len(ids):
        scores = [None] * len(ids)
    return [
        Match(id=row_id(i), score=values.opt_number(s))
        for i, s in zip(ids, scores, strict=True)
        if not values.blank(i)
    ]


def matches_by_row(rows: Sequence[Mapping[str, Any]]) -> dict[str, Produced]:
    """Row id → (its matches, the provider's row or rows) for every shape above."""
    if any("match_id" in row for row in rows):
        return _per_match(rows)
    out: dict[str, Produced] = {}
    for row in rows:
        if values.blank(row.get("id")):
            raise ValueError("a result row without an id")
        matches = _numbered(row)
        if matches is None:
            matches = _listed(row)
        if matches is None:
            raise ValueError("a search row without neighbours")
        out[row_id(row["id"])] = (MatchOutput(matches=matches), dict(row))
    return out
