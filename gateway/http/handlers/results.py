"""``/v1/jobs/{job_id}/results``: paged JSON, CSV, NDJSON, and one item."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from adapters.base import ItemResult, ItemStatus
from adapters.outputs import JobOutput
from gateway.api.formats import ndjson_job_outputs, ndjson_line, to_csv
from gateway.api.models import Results
from gateway.api.views import dump, item_view, job_view
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.http.handlers.jobs import json_bytes_response
from gateway.http.keys import JOBS, PRINCIPAL, RENDERED
from gateway.http.middleware.context import apply_headers
from gateway.http.parsing import query_choice, query_int
from gateway.observability.context import FACTS

# `pending` covers every unfinished item: queued or already running at the provider.
_FILTERS = ("succeeded", "failed", "pending")
_UNFINISHED = (ItemStatus.PENDING, ItemStatus.RUNNING)
_JOB_OUTPUTS: TypeAdapter[list[JobOutput]] = TypeAdapter(list[JobOutput])


def _keep(item: ItemResult, wanted: str | None) -> bool:
    if wanted is None:
        return True
    if wanted == "pending":
        return item.status in _UNFINISHED
    return item.status.value == wanted


def _encode_token(offset: int, status: str | None) -> str:
    raw = json.dumps({"o": offset, "s": status or ""}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, status: str | None) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, filt = data["o"], data["s"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        offset, filt = -1, ""
    # Exact types only: int(1e400) overflows, int(True) is 1, str([...]) is anything.
    if type(offset) is not int or not isinstance(filt, str):
        offset, filt = -1, ""
    if offset < 0 or filt != (status or ""):
        raise ValidationFailed(
            "page_token is not one this gateway issued for this query.",
            errors=[FieldError("/page_token", "unknown page token")],
        )
    return offset


def _wanted_format(request: web.Request) -> str:
    fmt = query_choice(request, "format", ("json", "csv", "ndjson"))
    if fmt is not None:
        return fmt
    accept = request.headers.get("Accept", "")
    if "text/csv" in accept:
        return "csv"
    if "application/x-ndjson" in accept:
        return "ndjson"
    return "json"


def _include_raw(request: web.Request) -> bool:
    include = request.query.get("include", "")
    return "raw" in {p.strip() for p in include.split(",")}


async def get_results(request: web.Request) -> web.StreamResponse:
    """The JSON page, or an export when ``?format=`` or ``Accept`` asks for one (the
    contract's spelling; the spec documents exports as their own operations below)."""
    status = query_choice(request, "status", _FILTERS)
    page_size = query_int(request, "page_size", 100, 1, 1000)
    token = request.query.get("page_token") or None
    offset = _decode_token(token, status) if token else 0
    fmt = _wanted_format(request)
    if fmt != "json":
        return await _export(request, fmt, status)
    include_raw = _include_raw(request)
    found = await request.app[JOBS].results(request[PRINCIPAL], request.match_info["job_id"])

    def render() -> bytes:
        matching = [i for i in found.items if _keep(i, status)]
        page = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        body = Results(
            job=job_view(found.record),
            items=[item_view(i, include_raw=include_raw) for i in page],
            job_outputs=list(found.results.job_outputs),
            next_page_token=_encode_token(offset + page_size, status) if more else None,
            total_size=len(matching),
        )
        exclude: Any = None if include_raw else {"items": {"__all__": {"raw"}}}
        return json.dumps(dump(body, exclude=exclude)).encode()

    variant = ("results", status, offset, page_size, include_raw)
    return json_bytes_response(request.app[RENDERED].answer(found.record, variant, render))


async def export_csv(request: web.Request) -> web.StreamResponse:
    """``results.csv``: one operation per media type, so generated clients parse it."""
    return await _export(request, "csv", query_choice(request, "status", _FILTERS))


async def export_ndjson(request: web.Request) -> web.StreamResponse:
    return await _export(request, "ndjson", query_choice(request, "status", _FILTERS))


async def _export(request: web.Request, fmt: str, status: str | None) -> web.StreamResponse:
    # Exports carry every matching item, then the job-level outputs (as the JSON view
    # does on every page); paging is for the JSON view.
    include_raw = _include_raw(request)
    found = await request.app[JOBS].results(request[PRINCIPAL], request.match_info["job_id"])

    def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        matching = [i for i in found.items if _keep(i, status)]
        raw_exclude = None if include_raw else {"raw"}
        items = [dump(item_view(i, include_raw=include_raw), exclude=raw_exclude) for i in matching]
        job_outputs = _JOB_OUTPUTS.dump_python(list(found.results.job_outputs), mode="json")
        return items, job_outputs

    def render() -> bytes:
        items, job_outputs = rows()
        if fmt == "csv":
            return to_csv(items, job_outputs).encode()
        return b"".join(ndjson_line(i) for i in items) + ndjson_job_outputs(job_outputs)

    body = request.app[RENDERED].answer(found.record, (fmt, status, include_raw), render)
    if fmt == "csv":
        return web.Response(
            body=body,
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{found.record.id}.csv"'},
        )
    # Streamed, as an export of a large job is written: its headers go before the body.
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    facts = FACTS.get()
    if facts is not None:
        apply_headers(response, facts)
    await response.prepare(request)
    await response.write(body)
    await response.write_eof()
    return response


async def get_result_item(request: web.Request) -> web.Response:
    name = request.match_info["input"]
    found = await request.app[JOBS].results(request[PRINCIPAL], request.match_info["job_id"])
    item = next((i for i in found.items if i.input == name), None)
    if item is None:
        raise NotFound(f"Job {found.record.id} has no input {name!r}.")
    include_raw = _include_raw(request)

    def render() -> bytes:
        view = item_view(item, include_raw=include_raw)
        return json.dumps(dump(view, exclude=None if include_raw else {"raw"})).encode()

    variant = ("item", name, include_raw)
    return json_bytes_response(request.app[RENDERED].answer(found.record, variant, render))
