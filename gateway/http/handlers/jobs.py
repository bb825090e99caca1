"""``/v1/jobs``: submit, list, get, cancel."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from adapters.base import JobStatus
from gateway.api.models import JobCreate, JobList
from gateway.api.views import dump, job_data, job_view
from gateway.errors import FieldError, ValidationFailed
from gateway.http.keys import JOBS, PRINCIPAL, RENDERED, SETTINGS
from gateway.http.parsing import prefer_wait, query_choice, query_int, read_model
from gateway.observability.context import note_job
from gateway.state.store import JobRecord, decode_cursor


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return json_bytes_response(json.dumps(data).encode(), status=status, headers=headers)


def json_bytes_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON already rendered (``json.dumps``'s bytes, as ``json_response`` makes them)."""
    return web.Response(
        status=status, body=body, content_type="application/json", charset="utf-8", headers=headers
    )


def job_body(request: web.Request, record: JobRecord) -> bytes:
    """The job's view as JSON bytes: rendered once for a settled job (``RENDERED``)."""
    return request.app[RENDERED].answer(
        record, "job", lambda: json.dumps(job_data(record)).encode()
    )


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header: 1-255 visible ASCII characters, or a 422."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 visible ASCII characters.",
            errors=[FieldError("/headers/Idempotency-Key", "1-255 visible ASCII characters")],
        )
    return key


async def submit_job(request: web.Request) -> web.Response:
    key = idempotency_key(request)
    body = await read_model(request, JobCreate)
    jobs = request.app[JOBS]
    record, replayed = await jobs.submit(request[PRINCIPAL], body, idempotency_key=key)
    # The canonical log line names the new job: the one line that ties a submit to it.
    note_job(record.id)
    headers = {"Location": f"/v1/jobs/{record.id}"}
    wait = prefer_wait(request, request.app[SETTINGS].max_wait_seconds)
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
        record = await jobs.wait_record(record, wait)
    # A replay answers 200 with the job it created the first time (the contract).
    status = 200 if replayed or (record.done and wait is not None) else 202
    return json_response(job_data(record), status=status, headers=headers)


async def get_job(request: web.Request) -> web.Response:
    jobs = request.app[JOBS]
    job_id = request.match_info["job_id"]
    wait = prefer_wait(request, request.app[SETTINGS].max_wait_seconds)
    if wait is None:
        record = await jobs.get(request[PRINCIPAL], job_id)
        return json_bytes_response(job_body(request, record))
    record = await jobs.wait(request[PRINCIPAL], job_id, wait)
    return json_bytes_response(
        job_body(request, record),
        status=200 if record.done else 202,
        headers={"Preference-Applied": f"wait={wait:g}"},
    )


async def list_jobs(request: web.Request) -> web.Response:
    status = query_choice(request, "status", tuple(s.value for s in JobStatus))
    # Like status: a provider this gateway does not have is a mistake to say, not an
    # empty page that looks like "no jobs".
    configured = tuple(p.name for p in request.app[SETTINGS].providers)
    provider = query_choice(request, "provider", configured)
    page_size = query_int(request, "page_size", 50, 1, 100)
    token = request.query.get("page_token") or None
    if token is not None and decode_cursor(token) is None:
        raise ValidationFailed(
            "page_token is not one this gateway issued.",
            errors=[FieldError("/page_token", "unknown page token")],
        )
    page = await request.app[JOBS].list(
        request[PRINCIPAL],
        status=JobStatus(status) if status else None,
        provider=provider,
        page_size=page_size,
        cursor=token,
    )
    body = JobList(jobs=[job_view(r) for r in page.records], next_page_token=page.next_cursor)
    return json_response(dump(body))


async def cancel_job(request: web.Request) -> web.Response:
    record = await request.app[JOBS].cancel(request[PRINCIPAL], request.match_info["job_id"])
    return json_response(job_data(record))
