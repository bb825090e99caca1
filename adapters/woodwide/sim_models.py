"""The simulated Wood Wide models and datasets, and the result tables they produce.

Every output is derived from a SHA-256 of the model id and the row's cells, so
the same row gives the same answer in every format and every run. A table is
rendered as Wood Wide renders it: json (column-oriented ``data``), csv (text,
``True``/``False`` booleans, plus ``prediction_explanation`` for prediction
models), parquet (with the model in its file metadata; needs ``pyarrow``), or as
``/results/rows`` pages.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ModelType = Literal["prediction", "anomaly", "embedding", "clustering", "factors", "search"]

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


@dataclass(frozen=True, slots=True)
class SimModel:
    id: str
    name: str
    type: ModelType
    version_id: str
    version_number: int = 1
    #: Classification labels; a prediction model without labels is a regressor.
    labels: tuple[int | str, ...] = ()
    dims: int = 8
    factors: int = 3
    default_k: int = 3
    #: Rows of the training set a search model matches against.
    index_size: int = 100

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "version_id": self.version_id,
            "version_number": self.version_number,
        }


MODELS = (
    SimModel("mdl_churn", "churn_classifier", "prediction", "mdlv_churn_1", labels=(0, 1)),
    SimModel(
        "mdl_tier",
        "plan_tier_classifier",
        "prediction",
        "mdlv_tier_1",
        labels=("basic", "plus", "pro"),
    ),
    SimModel("mdl_price", "price_regressor", "prediction", "mdlv_price_1"),
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


DATASETS = (SimDataset("ds_demo", "dsv_demo_1", "demo_customers", demo_rows(20)),)


@dataclass(frozen=True, slots=True)
class SimTable:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    #: Columns only the csv rendering carries.
    csv_only: frozenset[str] = frozenset()
    #: Top-level members of the json rendering (descriptions).
    extras: dict[str, Any] = field(default_factory=dict)


def _digest(model_id: str, row: Mapping[str, str]) -> bytes:
    text = json.dumps([model_id, sorted(row.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def _unit(d: bytes, at: int) -> float:
    """A number in [0, 1) from two bytes of a digest."""
    return int.from_bytes(d[at : at + 2], "big") / 65536


def _prediction(model: SimModel, rid: int, row: Mapping[str, str], probs: bool) -> dict[str, Any]:
    d = _digest(model.id, row)
    if not model.labels:
        return {"id": rid, "prediction": round(20 + _unit(d, 0) * 480, 3)}
    if len(model.labels) == 2:
        top = round(0.5 + _unit(d, 2) * 0.5, 4)
        label = model.labels[d[0] % 2]
        out: dict[str, Any] = {"id": rid, "prediction": label, "prediction_prob": top}
        return out
    weights = [1 + _unit(d, 2 * i) * 3 for i in range(len(model.labels))]
    total = sum(weights)
    shares = [round(w / total, 4) for w in weights]
    best = max(range(len(shares)), key=lambda i: shares[i])
    out = {"id": rid, "prediction": model.labels[best], "prediction_prob": shares[best]}
    if probs:
        out["prediction_probs"] = {str(lb): s for lb, s in zip(model.labels, shares, strict=True)}
    return out


def _search(
    model: SimModel, rid: int, row: Mapping[str, str], k: int, no_self: bool
) -> list[dict[str, Any]]:
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
    return [
        {"id": rid, "match_id": m, "rank": r, "score": round(base - 0.06 * (r - 1), 4)}
        for r, m in enumerate(picks, start=1)
    ]


def build_table(
    model: SimModel,
    rows: Sequence[tuple[int, Mapping[str, str]]],
    *,
    anomaly_format: str = "ids_only",
    k: int | None = None,
    exclude_self_matches: bool = False,
    multiclass_probs: bool = True,
) -> SimTable:
    """The result table of ``model`` over the rows that did not fail (``(row id, cells)``)."""
    if model.type == "prediction":
        out = [_prediction(model, rid, row, multiclass_probs) for rid, row in rows]
        for (_, row), r in zip(rows, out, strict=True):
            top = max(row, key=lambda c: _unit(_digest(c, row), 0)) if row else "?"
            r["prediction_explanation"] = f"Driven mostly by '{top}'."
        descriptions = {
            str(lb): {"summary": f"Predicted {lb}", "description": f"Rows the model labels {lb}."}
            for lb in model.labels
        }
        return SimTable(
            columns=tuple(dict.fromkeys(c for r in out for c in r)),
            rows=out,
            csv_only=frozenset({"prediction_explanation"}),
            extras={"prediction_descriptions": descriptions} if descriptions else {},
        )
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
            ("anomalous_ids",), [{"anomalous_ids": rid} for rid, s in scored if s >= 0.7]
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
        out = [
            m
            for rid, row in rows
            for m in _search(model, rid, row, k or model.default_k, exclude_self_matches)
        ]
        return SimTable(("id", "match_id", "rank", "score"), out)
    # factors: one row per factor, from every row's digest together
    whole = hashlib.sha256(b"".join(_digest(model.id, row) for _, row in rows)).digest()
    weights = sorted((1 + _unit(whole, 2 * i) * 4 for i in range(model.factors)), reverse=True)
    total = sum(weights)
    out = [
        {
            "factor_id": i,
            "factor_description": FACTORS[i % len(FACTORS)],
            "captured_variance": round(w / total * 0.85, 4),
        }
        for i, w in enumerate(weights)
    ]
    return SimTable(("factor_id", "factor_description", "captured_variance"), out)


# -- renderings -------------------------------------------------------------------------


def plain_columns(table: SimTable) -> tuple[str, ...]:
    return tuple(c for c in table.columns if c not in table.csv_only)


def plain_rows(table: SimTable) -> list[dict[str, Any]]:
    cols = plain_columns(table)
    return [{c: r[c] for c in cols if c in r} for r in table.rows]


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
    """Needs ``pyarrow`` (an optional extra; the simulator refuses parquet without it)."""
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")
    cols = plain_columns(table)
    arrow = pa.table({c: [r.get(c) for r in table.rows] for c in cols})
    arrow = arrow.replace_schema_metadata(dict(metadata))
    sink = io.BytesIO()
    pq.write_table(arrow, sink)
    return sink.getvalue()
