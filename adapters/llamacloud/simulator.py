"""LlamaCloud's v1 file upload and classifier API, simulated as a real aiohttp app.

Routes (PROVIDERS.md §5), all behind ``Authorization: Bearer <key>`` and all taking
optional ``project_id``/``organization_id`` query params:

* ``POST /api/v1/files`` (multipart ``upload_file``) → File; ``GET``/``DELETE
  /api/v1/files/{id}``. Uploads are rate limited per project like the real API
  (50 per 5 s, 429 + ``Retry-After``), and can be made to fail after N successes.
* ``POST /api/v1/classifier/jobs`` → ClassifyJob (``PENDING``); ``GET`` lists jobs
  (``page_size``/``page_token``); ``GET .../{id}`` is the job; ``GET .../{id}/results``
  is an AIP-132 page of items. The job ends ``pending_seconds`` after creation as
  ``SUCCESS``, ``PARTIAL_SUCCESS`` (some files have ``result: null``) or ``ERROR``
  (every file failed).

Classification and the stored files and jobs are in ``sim_state.py``.

Errors are FastAPI's: ``{"detail": "..."}``, and ``{"detail": [{"loc", "msg",
"type"}]}`` for a 422. Timing reads ``SimulatorControl.clock`` so tests can move time.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.llamacloud.sim_state import (
    DEFAULT_PROJECT_ID,
    FAST_SETTINGS,
    SEED_FILES,
    SIMULATOR_KEY,
    SimFile,
    SimJob,
    SimSettings,
    SimState,
    classify,
    fails,
    iso,
    job_status,
    job_wire,
    result_item,
    wall_now,
)
from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)

__all__ = [
    "FAST_SETTINGS",
    "SEED_FILES",
    "SIMULATOR_KEY",
    "SIM_STATE",
    "SimSettings",
    "SimState",
    "classify",
    "create_simulator",
    "error_body",
    "fast_simulator",
]

SIM_STATE = web.AppKey("llamacloud_sim_state", SimState)


def error_body(status: int, message: str) -> Any:
    return {"detail": message}


def _detail(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": message}, status=status, headers=headers)


def _invalid(errors: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": errors}, status=422)


# -- paging ---------------------------------------------------------------------------


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, num = raw.partition(":")
    return int(num) if kind == "offset" and num.isdigit() else None


def _page(request: web.Request, items: list[Any], default_size: int, max_size: int) -> web.Response:
    raw_size = request.query.get("page_size")
    size = default_size
    if raw_size is not None:
        if not raw_size.isdigit() or int(raw_size) < 1:
            return _invalid(
                [
                    {
                        "loc": ["query", "page_size"],
                        "msg": "Input should be a valid integer greater than 0",
                        "type": "int_parsing",
                    }
                ]
            )
        size = int(raw_size)
    size = min(size, max_size)
    offset = 0
    raw_token = request.query.get("page_token")
    if raw_token:
        parsed = _offset(raw_token)
        if parsed is None:
            return _detail(400, "Invalid page_token.")
        offset = parsed
    chunk = items[offset : offset + size]
    more = offset + size < len(items)
    return web.json_response(
        {
            "items": chunk,
            "next_page_token": _token(offset + size) if more else None,
            "total_size": len(items),
        }
    )


# -- request models -------------------------------------------------------------------


class _RuleIn(BaseModel):
    type: str
    description: str


class _ParsingIn(BaseModel):
    lang: str = "en"
    max_pages: int | None = 5
    target_pages: list[int] | None = None


class _CreateJobIn(BaseModel):
    # FastAPI ignores unknown body fields (webhook_configurations here).
    model_config = ConfigDict(extra="ignore")

    file_ids: list[str] = Field(min_length=1)
    rules: list[_RuleIn] = Field(min_length=1)
    mode: Literal["FAST", "MULTIMODAL"] = "FAST"
    parsing_configuration: _ParsingIn | None = None


def _pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]


# -- handlers -------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _authorized(handler: Handler) -> Handler:
    """Check the Bearer key, then note the request's query for tests."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[SIM_STATE]
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != state.settings.api_key:
            return _detail(401, "Invalid API key.")
        if len(state.queries) < 100_000:
            state.queries.append((f"{request.method} {request.path}", dict(request.query)))
        return await handler(request)

    return wrapped


def _project(request: web.Request) -> str:
    return request.query.get("project_id") or DEFAULT_PROJECT_ID


def _clock(request: web.Request) -> float:
    return request.app[SIM_CONTROL].clock()


async def upload_file(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    s = state.settings
    project = _project(request)
    now = _clock(request)
    if s.upload_rate_limit is not None:
        times = state.upload_times.setdefault(project, deque())
        while times and times[0] <= now - s.upload_rate_window:
            times.popleft()
        if len(times) >= s.upload_rate_limit:
            wait = max(1, math.ceil(times[0] + s.upload_rate_window - now))
            return _detail(
                429,
                f"Rate limit exceeded: {s.upload_rate_limit} uploads per "
                f"{s.upload_rate_window:g} s per project.",
                headers={"Retry-After": str(wait)},
            )
        times.append(now)
    form = await request.post()
    upload = form.get("upload_file")
    if not isinstance(upload, web.FileField):
        return _invalid(
            [{"loc": ["body", "upload_file"], "msg": "Field required", "type": "missing"}]
        )
    if s.fail_upload_after is not None and state.uploads_ok >= s.fail_upload_after:
        return _detail(500, "Internal Server Error")
    content = upload.file.read()
    file = SimFile(
        id=str(uuid.uuid4()),
        name=upload.filename or "upload",
        content=content,
        content_type=upload.content_type or "application/octet-stream",
        project_id=project,
        created_at=iso(wall_now()),
        external_file_id=request.query.get("external_file_id"),
    )
    state.files[file.id] = file
    state.uploads_ok += 1
    return web.json_response(file.as_wire())


async def get_file(request: web.Request) -> web.StreamResponse:
    file = request.app[SIM_STATE].files.get(request.match_info["file_id"])
    if file is None:
        return _detail(404, "File not found.")
    return web.json_response(file.as_wire())


async def delete_file(request: web.Request) -> web.StreamResponse:
    if request.app[SIM_STATE].files.pop(request.match_info["file_id"], None) is None:
        return _detail(404, "File not found.")
    return web.Response(status=204)


async def create_job(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    try:
        body = await request.json()
    except ValueError:
        return _invalid([{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}])
    try:
        parsed = _CreateJobIn.model_validate(body)
    except ValidationError as exc:
        return _invalid(_pydantic_errors(exc))
    for file_id in parsed.file_ids:
        if file_id not in state.files:
            return _detail(404, f"File not found: {file_id}")
    rules = [rule.model_dump() for rule in parsed.rules]
    results: dict[str, dict[str, Any] | None] = {}
    for file_id in parsed.file_ids:
        file = state.files[file_id]
        results[file_id] = None if fails(state.settings, file) else classify(file.content, rules)
    job = SimJob(
        id=str(uuid.uuid4()),
        project_id=_project(request),
        file_ids=list(results),
        rules=rules,
        mode=parsed.mode,
        parsing_configuration=(parsed.parsing_configuration or _ParsingIn()).model_dump(),
        created_at=wall_now(),
        started=_clock(request),
        results=results,
    )
    state.jobs[job.id] = job
    return web.json_response(job_wire(state, job, _clock(request)))


async def list_jobs(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    now = _clock(request)
    jobs = [job_wire(state, job, now) for job in reversed(state.jobs.values())]
    size = state.settings.list_page_size
    return _page(request, jobs, size, max(size, 100))


async def get_job(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    job = state.jobs.get(request.match_info["job_id"])
    if job is None:
        return _detail(404, "Classify job not found.")
    return web.json_response(job_wire(state, job, _clock(request)))


async def get_results(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    job = state.jobs.get(request.match_info["job_id"])
    if job is None:
        return _detail(404, "Classify job not found.")
    if job_status(job, _clock(request), state.settings.pending_seconds) == "PENDING":
        items: list[Any] = []
    else:
        items = [result_item(state, job, file_id) for file_id in job.file_ids]
    s = state.settings
    return _page(request, items, s.results_page_size, s.max_page_size)


def create_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """A LlamaCloud simulator with demo timing (jobs end after a few seconds)."""
    control = control or SimulatorControl(error_body=error_body)
    if control.error_body is default_error_body:
        control.error_body = error_body
    settings = settings or SimSettings()
    app = make_simulator_app(control)
    state = SimState(settings=settings)
    created = iso(wall_now())
    for file_id, name, content in settings.seed_files:
        state.files[file_id] = SimFile(
            id=file_id,
            name=name,
            content=content,
            content_type="text/plain",
            project_id=DEFAULT_PROJECT_ID,
            created_at=created,
        )
    app[SIM_STATE] = state
    app.router.add_post("/api/v1/files", _authorized(upload_file))
    app.router.add_get("/api/v1/files/{file_id}", _authorized(get_file))
    app.router.add_delete("/api/v1/files/{file_id}", _authorized(delete_file))
    app.router.add_post("/api/v1/classifier/jobs", _authorized(create_job))
    app.router.add_get("/api/v1/classifier/jobs", _authorized(list_jobs))
    app.router.add_get("/api/v1/classifier/jobs/{job_id}", _authorized(get_job))
    app.router.add_get("/api/v1/classifier/jobs/{job_id}/results", _authorized(get_results))
    return app


def fast_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """Jobs end within 0.2 s and result pages hold two items, for tests."""
    return create_simulator(control, settings or FAST_SETTINGS)
