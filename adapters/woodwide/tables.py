"""Wood Wide's results: where they are, and their files and row pages read into rows.

``GET /jobs/{id}/results`` says where the rows are (``ResultsMeta``); ``read_plan``
picks the signed file or the ``/results/rows`` pages.

Every format carries the same table (PROVIDERS.md §3 "Output columns by model
type"): json as a column-oriented ``data`` dict of lists, csv as text, parquet as a
file whose metadata names the model type. A ``Table`` is the rows as dicts plus
the column names (a table may have columns and no rows: no anomalies found). csv
cells stay strings here; normalize.py reads the values it needs from either.

Parquet needs ``pyarrow``, the ``parquet`` extra (``dev`` includes it, so the tests
read real parquet files): without it the adapter asks for json.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.errors import ProviderBadResponse
from adapters.upstream import signed_url_allowed
from adapters.woodwide.wire import PROVIDER, OutputType, as_object

CONTENT_TYPES: Mapping[str, OutputType] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/octet-stream": "parquet",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    #: The model type the file itself names (json body, parquet metadata), if any.
    model_type: str | None = None
    #: Top-level extras of a json body (descriptions ...), kept for reference.
    extras: Mapping[str, Any] = field(default_factory=dict)


def table_from_rows(rows: Sequence[Mapping[str, Any]], model_type: str | None = None) -> Table:
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(str(key), None)
    return Table(columns=tuple(columns), rows=[dict(r) for r in rows], model_type=model_type)


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def output_type_of(content_type: str, requested: OutputType) -> OutputType:
    """The format of a results file: its Content-Type when telling, else what we asked."""
    return CONTENT_TYPES.get(content_type, requested)


def table_from_file(
    body: bytes, fmt: OutputType, *, search_mapping: bool = True, provider: str = PROVIDER
) -> Table:
    if fmt == "csv":
        return table_from_csv(body, provider=provider)
    if fmt == "parquet":
        return table_from_parquet(body, provider=provider)
    return table_from_json(_json(body, provider), search_mapping=search_mapping, provider=provider)


def _json(body: bytes, provider: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProviderBadResponse(provider, "The provider's results file is not JSON.") from None


def table_from_json(
    payload: Any, *, search_mapping: bool = True, provider: str = PROVIDER
) -> Table:
    """A json results body: ``{"model_type", "data": {column: [values]}, ...}``.

    Also takes ``data`` as a list of row objects, ``anomalous_ids`` at the top level,
    and search results as a mapping ``{"<row id>": "<match id>" | [match ids]}``
    (the seed doc's wording) when ``search_mapping`` allows it.
    """
    if not isinstance(payload, Mapping):
        raise ProviderBadResponse(provider, "The provider's results file is not a JSON object.")
    model_type = payload.get("model_type")
    model_type = model_type.lower() if isinstance(model_type, str) and model_type else None
    extras = {k: v for k, v in payload.items() if k != "data"}
    data = payload.get("data")
    if data is None and isinstance(payload.get("anomalous_ids"), list):
        data = {"anomalous_ids": payload["anomalous_ids"]}
    if isinstance(data, list):
        if not all(isinstance(r, Mapping) for r in data):
            raise ProviderBadResponse(provider, "The provider's result rows are not objects.")
        table = table_from_rows(data, model_type)
        return Table(table.columns, table.rows, model_type, extras)
    if not isinstance(data, Mapping):
        raise ProviderBadResponse(provider, "The provider's results have no 'data'.")
    if search_mapping and model_type == "search" and data and "id" not in data:
        return Table(("id", "match_id", "rank"), _mapping_rows(data), model_type, extras)
    columns = [str(c) for c in data]
    values = list(data.values())
    if not all(isinstance(v, list) for v in values):
        raise ProviderBadResponse(provider, "The provider's result columns are not lists.")
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise ProviderBadResponse(provider, "The provider's result columns differ in length.")
    n = lengths.pop() if lengths else 0
    rows = [{c: v[i] for c, v in zip(columns, values, strict=True)} for i in range(n)]
    return Table(tuple(columns), rows, model_type, extras)


def _mapping_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        matches = value if isinstance(value, list) else [value]
        rows.extend(
            {"id": key, "match_id": match, "rank": rank}
            for rank, match in enumerate(matches, start=1)
        )
    return rows


def table_from_csv(body: bytes, *, provider: str = PROVIDER) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProviderBadResponse(provider, "The provider's results file is not UTF-8.") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            return Table(columns=(), rows=[])
        rows = []
        for line in reader:
            if not line:
                continue
            if len(line) != len(header):
                raise ProviderBadResponse(
                    provider, "The provider's results file has a row of the wrong width."
                )
            rows.append(dict(zip(header, line, strict=True)))
    except csv.Error:
        raise ProviderBadResponse(provider, "The provider's results file is not CSV.") from None
    return Table(columns=tuple(header), rows=rows)


def table_from_parquet(body: bytes, *, provider: str = PROVIDER) -> Table:
    if not parquet_available():
        raise ProviderBadResponse(
            provider, "The provider sent parquet, which needs the optional 'pyarrow' package."
        )
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")
    try:
        table = pq.read_table(pa.BufferReader(body))
    except Exception:  # pyarrow raises its own ArrowInvalid/OSError family
        raise ProviderBadResponse(provider, "The provider's results file is not parquet.") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return Table(
        columns=tuple(table.column_names),
        rows=table.to_pylist(),
        model_type=meta.get("model_type") or None,
        # The descriptions the json body has at its top level, JSON-encoded [doc].
        extras={k: _decoded(v) for k, v in meta.items() if k.endswith("_descriptions")},
    )


# -- results metadata -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultsMeta:
    """``GET /jobs/{id}/results``: where the rows are and how many."""

    #: ``inference_results_uri``: a signed link, often on another host (cloud storage).
    uri: str | None
    #: ``row_paginatable``: True, False or None (unknown: the rows route may not exist).
    row_paginatable: bool | None
    total_rows: int | None
    #: Row ids the provider could not score ([inferred] ``summary.failed_row_ids``).
    failed_row_ids: frozenset[str] | None
    raw: Mapping[str, Any]
    #: ``descriptions``, each JSON-decoded (``prediction_descriptions`` ...).
    descriptions: Mapping[str, Any] = field(default_factory=dict)


def row_id(value: Any) -> str:
    """A row id as a string key: ``3``, ``3.0`` and ``"3"`` are all ``"3"``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else text


def _decoded(value: Any) -> Any:
    """A description as given, or JSON-decoded where it is JSON text (as the API sends it)."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def results_meta_from_wire(payload: Any, provider: str = PROVIDER) -> ResultsMeta:
    body = as_object(payload, "results answer", provider)
    uri = body.get("inference_results_uri")
    summary = body.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    total = summary.get("total_row_count")
    failed = summary.get("failed_row_ids")
    paged = body.get("row_paginatable")
    described = body.get("descriptions")
    return ResultsMeta(
        uri=uri if isinstance(uri, str) and uri else None,
        row_paginatable=paged if isinstance(paged, bool) else None,
        total_rows=total if isinstance(total, int) and not isinstance(total, bool) else None,
        failed_row_ids=frozenset(row_id(r) for r in failed) if isinstance(failed, list) else None,
        raw=body,
        descriptions=(
            {str(k): _decoded(v) for k, v in described.items()}
            if isinstance(described, Mapping)
            else {}
        ),
    )


ReadPlan = Literal["file", "rows"]


def read_plan(meta: ResultsMeta, base_url: str, file_row_limit: int) -> ReadPlan:
    """Read the results file, or walk the row pages?

    The file is one request through its signed link (which Upstream fetches without
    the API key: https on any host, or the provider's own origin); large results are
    cheaper in pages, where the provider says it has them. ``row_paginatable`` null or
    false means no pages to rely on [doc: woodwide 0.9.0], so then the file it is.
    """
    paged = meta.row_paginatable is True
    fetchable = meta.uri is not None and signed_url_allowed(meta.uri, base_url)
    small = meta.total_rows is None or meta.total_rows <= file_row_limit
    if fetchable and (small or not paged):
        return "file"
    if paged:
        return "rows"
    if meta.uri is not None:
        return "file"  # Upstream refuses the link with a clear error
    raise ProviderBadResponse(PROVIDER, "The provider offered no way to read the results.")


def rows_page_from_wire(
    payload: Any, provider: str = PROVIDER
) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """A ``/results/rows`` page: its rows, the total, and the limit the server applied."""
    body = as_object(payload, "rows page", provider)
    rows = body.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise ProviderBadResponse(provider, "The provider's rows page has no list of rows.")
    total = body.get("total_filtered", body.get("total"))
    limit = body.get("limit")
    return (
        [dict(r) for r in rows],
        total if isinstance(total, int) and not isinstance(total, bool) else None,
        limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
    )
