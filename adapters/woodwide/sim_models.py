"""The simulated Wood Wide models and datasets, and the result tables they produce.

Every output is derived from a SHA-256 of the model id and the row's cells, so
the same row gives the same answer in every format and every run. The columns
follow the official library's docstrings (woodwide 0.9.0,
``woodwide/resources/models/models.py``, "Output Columns by Model Type"); where
the library is silent (search columns) or where older docs differ, the shape is a
switch. sim_render.py renders a table as json, csv, parquet or row pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ModelType = Literal["prediction", "anomaly", "embedding", "clustering", "factors", "search"]
#: ``prediction_probs`` of a multiclass row: a list in label order, the predicted
#: label's probability alone (the two shapes seen from the real API), a
#: ``{label: p}`` object, or absent with ``prediction_prob`` instead (the seed docs).
ProbsShape = Literal["list", "float", "object", "none"]
#: Factors: the library's per-row ``factor_{k}_*`` columns, or the seed docs' one row
#: per factor (``factor_id``, ``factor_description``, ``captured_variance``).
FactorsShape = Literal["per_row", "seed"]
#: Search: one row per query row with ``neighbor_{j}_id``/``_score`` ([inferred]: the
#: library says "one row per input instance" but names no columns), or one row per
#: match (``id``, ``match_id``, ``rank``, ``score``: the seed-era guess).
SearchShape = Literal["per_query", "per_match"]

CLUSTERS = (
    "Young, price-sensitive customers on monthly plans",
    "Long-tenure customers with steady, high spend",
    "New customers trialling premium features",
    "Occasional buyers with irregular spend",
)
FACTORS = (
    "Overall spend level",
    "Tenure and loyalty",
    "Plan upgrades versus downgrades",
    "Regional seasonality",
    "Support contact frequency",
)
CREATED = datetime(2025, 1, 6, 9, 30, tzinfo=UTC).isoformat()


@dataclass(frozen=True, slots=True)
class SimModel:
    id: str
    name: str
    type: ModelType
    version_id: str
    version_number: int = 1
    #: Classification labels; a prediction model without labels is a regressor.
    labels: tuple[int | str, ...] = ()
    #: The training target of a prediction model.
    label_column: str | None = None
    dims: int = 8
    factors: int = 3
    default_k: int = 3
    #: Rows of the training set a search model matches against.
    index_size: int = 100

    def public(self) -> dict[str, Any]:
        """The library's ``Model`` (``woodwide/types/model.py``), plus the model's name."""
        return {
            "id": self.id,
            "name": self.name,
            "model_type": self.type,
            "created_at": CREATED,
            "updated_at": CREATED,
            "status": "ready",
            "current_version": {
                "status": "ready",
                "version": self.version_number,
                "version_id": self.version_id,
                "metrics": {},
            },
            "current_metrics": {},
            "label_column": self.label_column,
            "training_dataset_id": "ds_demo",
            "training_dataset_name": "demo_customers",
        }


MODELS = (
    SimModel(
        "mdl_churn",
        "churn_classifier",
        "prediction",
        "mdlv_churn_1",
        labels=(0, 1),
        label_column="churned",
    ),
    SimModel(
        "mdl_tier",
        "plan_tier_classifier",
        "prediction",
        "mdlv_tier_1",
        labels=("basic", "plus", "pro"),
        label_column="plan",
    ),
    #: Multiclass with numeric labels: still a classifier, whatever its labels look like.
    SimModel(
        "mdl_rating",
        "satisfaction_rating",
        "prediction",
        "mdlv_rating_1",
        labels=(1, 2, 3, 4, 5),
        label_column="rating",
    ),
    SimModel(
        "mdl_price", "price_regressor", "prediction", "mdlv_price_1", label_column="monthly_spend"
    ),
    SimModel("mdl_segments", "customer_segments", "clustering", "mdlv_segments_1"),
    SimModel("mdl_fraud", "fraud_detector", "anomaly", "mdlv_fraud_1"),
    SimModel("mdl_embed", "customer_embedding", "embedding", "mdlv_embed_1", dims=8),
    SimModel("mdl_similar", "similar_customers", "search", "mdlv_similar_1"),
    SimModel("mdl_factors", "spend_factors", "factors", "mdlv_factors_1"),
)


def demo_rows(n: int) -> tuple[dict[str, str], ...]:
    """Synthetic customers, the same every time."""
    plans = ("basic", "plus", "pro")
    regions = ("north", "south", "east", "west")
    return tuple(
        {
            "age": str(21 + (i * 7) % 45),
            "plan": plans[i % 3],
            "monthly_spend": f"{19.5 + (i * 13.25) % 180:.2f}",
            "tenure_months": str((i * 5) % 60 + 1),
            "region": regions[i % 4],
        }
        for i in range(n)
    )


@dataclass(frozen=True, slots=True)
class SimDataset:
    id: str
    version_id: str
    name: str
    rows: tuple[Mapping[str, str], ...]
    version_number: int = 1

    def public(self) -> dict[str, Any]:
        """The library's ``Dataset`` (``woodwide/types/dataset.py``)."""
        columns = list(self.rows[0]) if self.rows else []
        return {
            "id": self.id,
            "name": self.name,
            "created_at": CREATED,
            "updated_at": CREATED,
            "description": None,
            "is_archived": False,
            "current_version": {
                "id": self.version_id,
                "status": "ready",
                "version": self.version_number,
                "row_count": len(self.rows),
                "created_at": CREATED,
                "ready_at": CREATED,
                "schema_json": {"columns": [{"name": c, "dtype": "string"} for c in columns]},
                "source_type": "upload",
            },
        }


DATASETS = (SimDataset("ds_demo", "dsv_demo_1", "demo_customers", demo_rows(20)),)


@dataclass(frozen=True, slots=True)
class SimTable:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    #: Columns only the csv rendering carries.
    csv_only: frozenset[str] = frozenset()
    #: Top-level members of the json rendering (descriptions).
    extras: dict[str, Any] = field(default_factory=dict)
    #: One row per input row, ``id`` 0..N-1: a combined (inputs + outputs) table exists.
    row_aligned: bool = True


def _digest(model_id: str, row: Mapping[str, str]) -> bytes:
    text = json.dumps([model_id, sorted(row.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def _unit(d: bytes, at: int) -> float:
    """A number in [0, 1) from two bytes of a digest."""
    return int.from_bytes(d[at : at + 2], "big") / 65536


def _prediction(
    model: SimModel, rid: int, row: Mapping[str, str], probs: ProbsShape
) -> dict[str, Any]:
    d = _digest(model.id, row)
    if not model.labels:
        return {"id": rid, "prediction": round(20 + _unit(d, 0) * 480, 3)}
    if len(model.labels) == 2:
        top = round(0.5 + _unit(d, 2) * 0.5, 4)
        return {"id": rid, "prediction": model.labels[d[0] % 2], "prediction_prob": top}
    weights = [1 + _unit(d, 2 * i) * 3 for i in range(len(model.labels))]
    total = sum(weights)
    shares = [round(w / total, 4) for w in weights]
    best = max(range(len(shares)), key=lambda i: shares[i])
    out: dict[str, Any] = {"id": rid, "prediction": model.labels[best]}
    if probs == "none":
        out["prediction_prob"] = shares[best]
    elif probs == "float":
        out["prediction_probs"] = shares[best]
    elif probs == "object":
        out["prediction_probs"] = {str(lb): s for lb, s in zip(model.labels, shares, strict=True)}
    else:
        out["prediction_probs"] = shares
    return out


def _prediction_table(
    model: SimModel, rows: Sequence[tuple[int, Mapping[str, str]]], probs: ProbsShape
) -> SimTable:
    out = [_prediction(model, rid, row, probs) for rid, row in rows]
    for (_, row), r in zip(rows, out, strict=True):
        top = max(row, key=lambda c: _unit(_digest(c, row), 0)) if row else "?"
        r["prediction_explanation"] = f"Driven mostly by '{top}'."
    if model.labels:
        descriptions = {
            str(lb): {"summary": f"Predicted {lb}", "description": f"Rows the model labels {lb}."}
            for lb in model.labels
        }
    else:  # [doc] "For regression the key is `{target}_regression`"
        target = model.label_column or "target"
        descriptions = {
            f"{target}_regression": {
                "summary": f"Predicted {target}",
                "description": f"What drives the predicted {target}.",
            }
        }
    columns = dict.fromkeys(c for r in out for c in r)
    return SimTable(
        columns=tuple(columns),
        rows=out,
        csv_only=frozenset({"prediction_explanation"}),
        extras={"prediction_descriptions": descriptions},
    )


def _neighbours(
    model: SimModel, rid: int, row: Mapping[str, str], k: int, no_self: bool
) -> list[tuple[int, float]]:
    """``k`` (match row id, score) pairs, best first."""
    d = _digest(model.id, row)
    picks: list[int] = []
    seed = d
    while len(picks) < min(k, model.index_size - 1):
        for b in range(0, len(seed) - 1, 2):
            match = int.from_bytes(seed[b : b + 2], "big") % model.index_size
            if match not in picks and not (no_self and match == rid):
                picks.append(match)
            if len(picks) >= k:
                break
        seed = hashlib.sha256(seed).digest()
    base = 0.99 - _unit(d, 30) * 0.05
    return [(m, round(base - 0.06 * r, 4)) for r, m in enumerate(picks)]


def _search_table(
    model: SimModel,
    rows: Sequence[tuple[int, Mapping[str, str]]],
    k: int,
    no_self: bool,
    shape: SearchShape,
) -> SimTable:
    found = [(rid, _neighbours(model, rid, row, k, no_self)) for rid, row in rows]
    if shape == "per_match":
        out = [
            {"id": rid, "match_id": m, "rank": r, "score": s}
            for rid, matches in found
            for r, (m, s) in enumerate(matches, start=1)
        ]
        return SimTable(("id", "match_id", "rank", "score"), out, row_aligned=False)
    columns = ["id"] + [f"neighbor_{j}_{c}" for j in range(1, k + 1) for c in ("id", "score")]
    out = []
    for rid, matches in found:
        row: dict[str, Any] = {"id": rid}
        for j, (m, s) in enumerate(matches, start=1):
            row |= {f"neighbor_{j}_id": m, f"neighbor_{j}_score": s}
        out.append(row)
    return SimTable(tuple(columns), out)


def _variances(model: SimModel) -> list[float]:
    """Variance captured by each factor: fixed at training time, so by model alone."""
    whole = hashlib.sha256(model.id.encode()).digest()
    weights = sorted((1 + _unit(whole, 2 * i) * 4 for i in range(model.factors)), reverse=True)
    total = sum(weights)
    return [round(w / total * 0.85, 4) for w in weights]


def _factors_table(
    model: SimModel, rows: Sequence[tuple[int, Mapping[str, str]]], shape: FactorsShape
) -> SimTable:
    variances = _variances(model)
    names = [FACTORS[i % len(FACTORS)] for i in range(model.factors)]
    if shape == "seed":
        out = [
            {"factor_id": i, "factor_description": name, "captured_variance": var}
            for i, (name, var) in enumerate(zip(names, variances, strict=True))
        ]
        return SimTable(
            ("factor_id", "factor_description", "captured_variance"), out, row_aligned=False
        )
    # [doc] woodwide 0.9.0: id, factor_{k}_score/_description/_captured_variance per row,
    # and a top-level factor_descriptions {k: {description, summary, captured_variance}}.
    columns = ["id"]
    for i in range(model.factors):
        columns += [f"factor_{i}_score", f"factor_{i}_description", f"factor_{i}_captured_variance"]
    out = []
    for rid, row in rows:
        d = _digest(model.id, row)
        cells: dict[str, Any] = {"id": rid}
        for i, (name, var) in enumerate(zip(names, variances, strict=True)):
            cells |= {
                f"factor_{i}_score": round(_unit(d, 2 * i) * 4 - 2, 4),
                f"factor_{i}_description": name,
                f"factor_{i}_captured_variance": var,
            }
        out.append(cells)
    descriptions = {
        str(i): {"description": name, "summary": name.split()[0], "captured_variance": var}
        for i, (name, var) in enumerate(zip(names, variances, strict=True))
    }
    return SimTable(tuple(columns), out, extras={"factor_descriptions": descriptions})


def build_table(
    model: SimModel,
    rows: Sequence[tuple[int, Mapping[str, str]]],
    *,
    anomaly_format: str = "ids_only",
    k: int | None = None,
    exclude_self_matches: bool = False,
    probs: ProbsShape = "list",
    factors: FactorsShape = "per_row",
    search: SearchShape = "per_query",
) -> SimTable:
    """The result table of ``model`` over the rows that did not fail (``(row id, cells)``)."""
    if model.type == "prediction":
        return _prediction_table(model, rows, probs)
    if model.type == "clustering":
        out = []
        for rid, row in rows:
            label = _digest(model.id, row)[0] % len(CLUSTERS)
            out.append({"id": rid, "cluster_label": label, "cluster_description": CLUSTERS[label]})
        extras = {
            "cluster_descriptions": {
                str(i): {
                    "description": text,
                    "summary": text.split(",")[0],
                    "feature_contributions": [],
                }
                for i, text in enumerate(CLUSTERS)
            }
        }
        return SimTable(("id", "cluster_label", "cluster_description"), out, extras=extras)
    if model.type == "anomaly":
        scored = [(rid, round(_unit(_digest(model.id, row), 0), 4)) for rid, row in rows]
        if anomaly_format == "per_row":
            out = [{"id": rid, "is_anomaly": s >= 0.7, "anomaly_score": s} for rid, s in scored]
            return SimTable(("id", "is_anomaly", "anomaly_score"), out)
        return SimTable(
            ("anomalous_ids",),
            [{"anomalous_ids": rid} for rid, s in scored if s >= 0.7],
            row_aligned=False,
        )
    if model.type == "embedding":
        out = []
        for rid, row in rows:
            d = _digest(model.id, row)
            out.append(
                {"id": rid} | {f"dim_{i}": round(d[i] / 127.5 - 1, 6) for i in range(model.dims)}
            )
        return SimTable(("id", *(f"dim_{i}" for i in range(model.dims))), out)
    if model.type == "search":
        return _search_table(model, rows, k or model.default_k, exclude_self_matches, search)
    return _factors_table(model, rows, factors)
