"""LlamaCloud's beta files and v2 classify API, simulated as a real aiohttp app.

Routes (from the official library, llama-cloud 2.19.0), all behind ``Authorization:
Bearer <key>`` and all taking optional ``project_id``/``organization_id`` query params:

* ``POST /api/v1/beta/files`` (multipart ``file`` + ``purpose``) → a file ``dfl-...``;
  ``GET``/``DELETE /api/v1/beta/files/{id}``. Uploads are rate limited per project
  (429 + ``Retry-After``) and can be made to fail after N successes.
* ``POST /api/v2/classify`` (``file_input``, ``configuration``, ``transaction_id``) →
  the job, ``PENDING``; a ``transaction_id`` already used in the project returns the
  job it made. ``GET /api/v2/classify`` lists jobs (``job_ids`` repeated, ``status``,
  ``page_size``/``page_token``); ``GET .../{id}`` is one; ``POST .../{id}/cancel``
  cancels one still running (400 once it ended [inferred]); ``DELETE .../{id}``
  deletes one that ended. A job is PENDING, RUNNING, then COMPLETED with its
  ``result`` inline, or FAILED.

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
    PURPOSES,
    SEED_FILES,
    SEED_PARSE_JOBS,
    SIMULATOR_KEY,
    TERMINAL,
    SimFile,
    SimJob,
    SimSettings,
    SimState,
    classify,
    fails,
    iso,
    job_status,
    job_wire,
    run_seconds,
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
    lang: str | None = None
    max_pages: int | None = None
    target_pages: str | None = None


class _ConfigurationIn(BaseModel):
    rules: list[_RuleIn] = Field(min_length=1)
    mode: Literal["FAST"] = "FAST"
    parsing_configuration: _ParsingIn | None = None


class _CreateIn(BaseModel):
    # FastAPI ignores unknown body fields.
    model_config = ConfigDict(extra="ignore")

    configuration: _ConfigurationIn | None = None
    configuration_id: str | None = None
    file_input: str | None = None
    #: Deprecated aliases of ``file_input``, still accepted.
    file_id: str | None = None
    parse_job_id: str | None = None
    transaction_id: str | None = None
    webhook_configuration_ids: list[str] | None = None
    webhook_configurations: list[dict[str, Any]] | None = None


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
            state.queries.append((f"{request.method} {request.path}", list(request.query.items())))
        return await handler(request)

    return wrapped


def _project(request: web.Request) -> str:
    return request.query.get("project_id") or DEFAULT_PROJECT_ID


def _clock(request: web.Request) -> float:
    return request.app[SIM_CONTROL].clock()


def _rate_limited(state: SimState, project: str, now: float) -> web.Response | None:
    s = state.settings
    if s.upload_rate_limit is None:
        return None
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
    return None


async def upload_file(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    s = state.settings
    project = _project(request)
    limited = _rate_limited(state, project, _clock(request))
    if limited is not None:
        return limited
    form = await request.post()
    upload = form.get("file")
    purpose = form.get("purpose")
    missing = [
        {"loc": ["body", name], "msg": "Field required", "type": "missing"}
        for name, value in (("file", upload), ("purpose", purpose))
        if value is None
    ]
    if missing:
        return _invalid(missing)
    if not isinstance(upload, web.FileField):
        return _invalid(
            [{"loc": ["body", "file"], "msg": "Expected UploadFile", "type": "value_error"}]
        )
    if purpose not in PURPOSES:
        return _detail(400, f"Invalid purpose {purpose!r}; valid: {', '.join(sorted(PURPOSES))}.")
    if s.fail_upload_after is not None and state.uploads_ok >= s.fail_upload_after:
        return _detail(500, "Internal Server Error")
    state.bodies.append(
        (
            "POST /api/v1/beta/files",
            {
                "fields": sorted(form),
                "purpose": purpose,
                "filename": upload.filename,
                "content_type": upload.content_type,
            },
        )
    )
    external = form.get("external_file_id")
    file = SimFile(
        id=f"dfl-{uuid.uuid4().hex}",
        name=upload.filename or "upload",
        content=upload.file.read(),
        content_type=upload.content_type or "application/octet-stream",
        project_id=project,
        created_at=iso(wall_now()),
        purpose=str(purpose),
        external_file_id=external if isinstance(external, str) else None,
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


def _document(state: SimState, ref: str) -> tuple[str, str, bytes] | None:
    """``(input type, name, content)`` of a file or parse job id."""
    if ref in state.parse_jobs:
        return "parse_job_id", ref, state.parse_jobs[ref]
    file = state.files.get(ref)
    if file is None:
        return None
    return "file_id", file.name, file.content


async def create_job(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    try:
        body = await request.json()
    except ValueError:
        return _invalid([{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}])
    state.bodies.append(("POST /api/v2/classify", body))
    try:
        parsed = _CreateIn.model_validate(body)
    except ValidationError as exc:
        return _invalid(_pydantic_errors(exc))
    project = _project(request)
    if parsed.transaction_id:
        known = state.transactions.get((project, parsed.transaction_id))
        if known is not None:
            # "Reusing a key returns the original job; the new request body is ignored."
            return web.json_response(job_wire(state, state.jobs[known], _clock(request)))
    ref = parsed.file_input or parsed.file_id or parsed.parse_job_id
    if not ref:
        return _detail(400, "One of file_input, file_id or parse_job_id is required.")
    if parsed.configuration is None:
        if parsed.configuration_id:
            return _detail(404, f"Configuration not found: {parsed.configuration_id}")
        return _detail(400, "Either configuration or configuration_id is required.")
    document = _document(state, ref)
    if document is None:
        return _detail(404, f"File not found: {ref}")
    input_type, name, content = document
    configuration = parsed.configuration.model_dump()
    rules = configuration["rules"]
    job = SimJob(
        id=f"cls-{uuid.uuid4().hex}",
        project_id=project,
        file_input=ref,
        input_type=input_type,
        configuration=configuration,
        transaction_id=parsed.transaction_id,
        created_at=wall_now(),
        started=_clock(request),
        run_seconds=run_seconds(state.settings, name),
        result=None if fails(state.settings, name, content) else classify(content, rules),
    )
    state.jobs[job.id] = job
    if parsed.transaction_id:
        state.transactions[(project, parsed.transaction_id)] = job.id
    return web.json_response(job_wire(state, job, _clock(request)))


async def list_jobs(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    now = _clock(request)
    wanted = set(request.query.getall("job_ids", []))
    status = request.query.get("status")
    jobs = [
        job_wire(state, job, now)
        for job in reversed(state.jobs.values())
        if not wanted or job.id in wanted
    ]
    if status:
        jobs = [job for job in jobs if job["status"] == status]
    s = state.settings
    return _page(request, jobs, s.list_page_size, s.max_page_size)


def _job(request: web.Request) -> SimJob | None:
    return request.app[SIM_STATE].jobs.get(request.match_info["job_id"])


async def get_job(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    if job is None:
        return _detail(404, "Classify job not found.")
    return web.json_response(job_wire(request.app[SIM_STATE], job, _clock(request)))


async def cancel_job(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    job = _job(request)
    if job is None:
        return _detail(404, "Classify job not found.")
    now = _clock(request)
    status = job_status(job, now, state.settings.pending_seconds)
    if status in TERMINAL:
        return _detail(400, f"Job is already {status} and cannot be cancelled.")
    job.cancelled_at = now
    return web.json_response(job_wire(state, job, now))


async def delete_job(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    job = _job(request)
    if job is None:
        return _detail(404, "Classify job not found.")
    if job_status(job, _clock(request), state.settings.pending_seconds) not in TERMINAL:
        return _detail(400, "Cancel a running job before deleting it.")
    del state.jobs[job.id]
    return web.json_response({"id": job.id, "project_id": job.project_id})


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
    state.parse_jobs.update(SEED_PARSE_JOBS)
    app[SIM_STATE] = state
    app.router.add_post("/api/v1/beta/files", _authorized(upload_file))
    app.router.add_get("/api/v1/beta/files/{file_id}", _authorized(get_file))
    app.router.add_delete("/api/v1/beta/files/{file_id}", _authorized(delete_file))
    app.router.add_post("/api/v2/classify", _authorized(create_job))
    app.router.add_get("/api/v2/classify", _authorized(list_jobs))
    app.router.add_get("/api/v2/classify/{job_id}", _authorized(get_job))
    app.router.add_delete("/api/v2/classify/{job_id}", _authorized(delete_job))
    app.router.add_post("/api/v2/classify/{job_id}/cancel", _authorized(cancel_job))
    return app


def fast_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """Jobs end within 0.2 s and list pages hold two jobs, for tests."""
    return create_simulator(control, settings or FAST_SETTINGS)
