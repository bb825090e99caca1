"""A simulated Modzy API: the documented job routes, auth, statuses, results and errors.

Routes (under ``/api``, where Modzy's base URL ends; the demo mounts the app at ``/modzy/``),
besides the model routes of ``sim_catalog`` (model list and details, versions with their
input names, samples), which the official library reads before it submits:

``POST   /api/jobs``             submit ``{"model", "explain", "timeout", "input"}``
``GET    /api/jobs/history``     a bare JSON array, ``page``/``per-page``, ``Link: rel="next"``
``GET    /api/jobs/features``    the job limits
``GET    /api/jobs/{id}``        job details: status and counts
``DELETE /api/jobs/{id}``        cancel; the answer is the job, ``CANCELED``
``GET    /api/results/{id}``     per-item ``results`` and ``failures``

Auth is ``Authorization: ApiKey <key>``; without it, or with another key, 401 with
Modzy's error body ``{"statusCode", "status", "message", "reportErrorUrl"}`` (``sim_http``).

A job waits ``queue_seconds`` (``SUBMITTED``), then its items run ``item_seconds``
each, ``concurrency`` at a time, through ``FETCHING_DATA`` → ``PROCESSING`` →
``SUCCESSFUL`` | ``FAILED`` (``IN_PROGRESS``); it is ``COMPLETED`` when all are done
(``COMPLETED_WITH_ERROR`` with a failed item, when ``SimSettings.completed_with_error``).
Results answer 404 until the first item has started (the documented early 404). An
item fails when its name or content contains ``fail`` (any case), when its name is in
``SimSettings.fail_inputs``, when it names model inputs the model does not have or lacks
one it has ("If you send a wrong input key, the model fails to process the input":
modzy/sdk-python ``samples/job_with_text_input_sample.py``), or when the model cannot
use a value (a ``config.json`` that is not JSON); the job still completes, counting
it as failed. All job timing reads ``SimulatorControl.clock``. The chunked-upload
(``OPEN``) flow is not simulated: a job without ``input`` is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.modzy import sim_catalog
from adapters.modzy.sim_http import JOBS, SETTINGS, error_body
from adapters.modzy.sim_http import caller as _caller
from adapters.modzy.sim_http import error as _error
from adapters.modzy.sim_jobs import (
    ACCOUNT_ID,
    COMPLETED_WITH_ERROR,
    SIM_ACCESS_KEY,
    SIMULATOR_KEY,
    TERMINAL,
    SimItem,
    SimJob,
    SimSettings,
    details,
    job_state,
    results_body,
    timestamp,
)
from adapters.modzy.sim_models import (
    MODELS,
    ModelInputError,
    SimModel,
    check_inputs,
    find_model,
)
from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)

INPUT_TYPES = ("text", "embedded", "jdbc", "aws-s3", "aws-s3-folder", "azureblob", "storage-grid")
_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*?);base64,(.*)$", re.DOTALL)


class _Refused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _decode_data_uri(name: str, value: str) -> bytes:
    match = _DATA_URI.match(value)
    if match is None:
        raise _Refused(f"Input item {name!r}: an embedded input must be a base64 data URI.")
    try:
        return base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise _Refused(f"Input item {name!r}: the data URI is not valid base64.") from None


def _parse_items(body: dict[str, Any], model: SimModel, s: SimSettings) -> list[SimItem]:
    spec = body.get("input")
    if not isinstance(spec, dict):
        raise _Refused("The job needs an 'input'; open jobs are not supported here.")
    kind = spec.get("type")
    if kind not in INPUT_TYPES:
        raise _Refused(f"Unknown input type {kind!r}.")
    if kind != model.input_type:
        raise _Refused(
            f"Model {model.identifier} {model.version} takes {model.input_type!r} inputs, "
            f"not {kind!r}."
        )
    sources = spec.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise _Refused("input.sources must name at least one input item.")
    if len(sources) > s.max_inputs_per_job:
        raise _Refused(
            f"The job has {len(sources)} inputs; the limit is {s.max_inputs_per_job}.",
            s.quota_status,
        )
    items: list[SimItem] = []
    for name, source in sources.items():
        if not name or not isinstance(source, dict):
            raise _Refused(f"Input item {name!r} must map model input names to values.")
        items.append(_parse_item(name, source, kind, model, s))
    return items


def _wrong_names(name: str, source: dict[str, Any], model: SimModel) -> str | None:
    """Why the model fails an item whose input names are not the model's, or None."""
    unknown = [k for k in source if k not in model.input_names]
    missing = [k for k in model.input_names if k not in source]
    if not unknown and not missing:
        return None
    said = [f"no input {k!r}" for k in unknown] + [f"input {k!r} missing" for k in missing]
    takes = ", ".join(repr(k) for k in model.input_names)
    return (
        f"Model failed to process input: input item {name!r}: {'; '.join(said)} "
        f"(model {model.identifier} {model.version} takes {takes})."
    )


def _parse_item(
    name: str, source: dict[str, Any], kind: str, model: SimModel, s: SimSettings
) -> SimItem:
    """One input item; names the model lacks fail the item, not the job (as at Modzy)."""
    values: dict[str, str | bytes] = {}
    size = 0
    for key, raw in source.items():
        if not isinstance(raw, str):
            raise _Refused(f"Input item {name!r}: the value of {key!r} must be a string.")
        size += len(raw.encode())
        if key in model.input_names:
            values[key] = raw if kind == "text" else _decode_data_uri(name, raw)
    error = _wrong_names(name, source, model)
    if error is None:
        try:
            check_inputs(model, values)
        except ModelInputError as exc:
            error = f"Model failed to process input: input item {name!r}: {exc}"
    value = values.get(model.input_name, "")
    content = value.lower() if isinstance(value, str) else value.lower().decode("latin-1")
    fails = (
        error is not None or "fail" in name.lower() or "fail" in content or name in s.fail_inputs
    )
    return SimItem(name=name, values=values, fails=fails, size=size, error=error)


def _parse_job(body: Any, s: SimSettings) -> tuple[SimModel, bool, int, list[SimItem]]:
    if not isinstance(body, dict):
        raise _Refused("The request body must be a JSON object.")
    model_ref = body.get("model")
    if not isinstance(model_ref, dict) or not isinstance(model_ref.get("identifier"), str):
        raise _Refused("The job needs model.identifier.")
    if not isinstance(model_ref.get("version"), str):
        raise _Refused("The job needs model.version.")
    model = find_model(model_ref["identifier"], model_ref["version"])
    if model is None:
        raise _Refused(
            f"Model {model_ref['identifier']} version {model_ref['version']} does not exist."
        )
    explain = body.get("explain", False)
    if isinstance(explain, str) and explain.lower() in ("true", "false"):
        explain = explain.lower() == "true"  # the docs show a string, the SDKs a bool
    if not isinstance(explain, bool):
        raise _Refused("explain must be true or false.")
    timeout = body.get("timeout", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise _Refused("timeout must be a whole number of milliseconds, 0 or more.")
    return model, explain, timeout, _parse_items(body, model, s)


async def submit(request: web.Request) -> web.Response:
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    s = request.app[SETTINGS]
    try:
        body = json.loads(await request.read())
        model, explain, timeout, items = _parse_job(body, s)
    except ValueError:
        return _error(400, "The request body is not valid JSON.")
    except _Refused as refused:
        return _error(refused.status, refused.message)
    job = SimJob(
        id=str(uuid.uuid4()),
        model=model,
        explain=explain,
        timeout_ms=timeout,
        items=items,
        key_prefix=caller,
        submitted=request.app[SIM_CONTROL].clock(),
        submitted_at=datetime.now(UTC),
        body=body,
    )
    request.app[JOBS][job.id] = job
    answer: dict[str, Any] = {
        "jobIdentifier": job.id,
        "model": {"identifier": model.identifier, "version": model.version},
        "explain": explain,
        "timeout": timeout,
        "accountIdentifier": ACCOUNT_ID,
        "totalInputs": len(items),
        "jobType": "batch",
        "accessKey": caller,
        "jobInputs": {"identifier": [item.name for item in items]},
        "inputByteAmount": sum(item.size for item in items),
        "submittedAt": timestamp(job, s, 0),
        "imageClassificationModel": model.model_type == "imageClassification",
    }
    if s.submit_includes_status:
        answer["status"] = "SUBMITTED"
    return web.json_response(answer, status=s.submit_status)


def _find(request: web.Request) -> SimJob | web.Response:
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    job_id = request.match_info["job_id"]
    job = request.app[JOBS].get(job_id)
    if job is None:
        return _error(404, f"Job {job_id} not found.")
    return job


async def job_details(request: web.Request) -> web.Response:
    job = _find(request)
    if isinstance(job, web.Response):
        return job
    now = request.app[SIM_CONTROL].clock()
    return web.json_response(details(job, request.app[SETTINGS], now))


async def cancel(request: web.Request) -> web.Response:
    job = _find(request)
    if isinstance(job, web.Response):
        return job
    s = request.app[SETTINGS]
    now = request.app[SIM_CONTROL].clock()
    word, _ = job_state(job, s, now)
    if word in TERMINAL:
        return _error(
            s.cancel_done_status, f"Job {job.id} is already {word} and cannot be canceled."
        )
    job.canceled_after = now - job.submitted
    return web.json_response(details(job, s, now))


async def results(request: web.Request) -> web.Response:
    job = _find(request)
    if isinstance(job, web.Response):
        return job
    s = request.app[SETTINGS]
    now = request.app[SIM_CONTROL].clock()
    word, _ = job_state(job, s, now)
    if s.early_404 and word == "SUBMITTED":
        return _error(404, f"Results for job {job.id} not found.")
    return web.json_response(results_body(job, s, now))


_HISTORY_STATUSES = {
    "all": None,
    "pending": ("SUBMITTED", "IN_PROGRESS", "OPEN"),
    "terminated": TERMINAL,
    "timedout": ("TIMEDOUT",),
}


def _positive_int(request: web.Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise _Refused(f"{key} must be a positive whole number.")
    return int(raw)


async def history(request: web.Request) -> web.Response:
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    s = request.app[SETTINGS]
    try:
        page = _positive_int(request, "page", 1)
        per_page = _positive_int(request, "per-page", s.history_page_size)
    except _Refused as refused:
        return _error(refused.status, refused.message)
    status = request.query.get("status", "all").lower()
    if status not in _HISTORY_STATUSES:
        return _error(400, f"status must be one of {', '.join(_HISTORY_STATUSES)}.")
    wanted = _HISTORY_STATUSES[status]
    model = request.query.get("model")
    now = request.app[SIM_CONTROL].clock()
    jobs = [
        details(job, s, now)
        for job in sorted(
            request.app[JOBS].values(),
            key=lambda j: j.submitted,
            reverse=request.query.get("direction", "desc").lower() != "asc",
        )
        if model in (None, job.model.identifier)
    ]
    if wanted is not None:
        jobs = [j for j in jobs if j["status"] in wanted]
    start = (page - 1) * per_page
    headers = {}
    if start + per_page < len(jobs):
        following = request.url.update_query({"page": str(page + 1), "per-page": str(per_page)})
        headers["Link"] = f'<{following}>; rel="next"'
    return web.json_response(jobs[start : start + per_page], headers=headers)


async def features(request: web.Request) -> web.Response:
    caller = _caller(request)
    if isinstance(caller, web.Response):
        return caller
    return web.json_response(
        {
            "inputChunkMaximumSize": "1M",
            "maximumInputChunks": 10,
            "maximumInputsPerJob": request.app[SETTINGS].max_inputs_per_job,
        }
    )


def create_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """The Modzy simulator app; ``control`` may be shared with a test (its clock, faults)."""
    if control is None:
        control = SimulatorControl(error_body=error_body)
    elif control.error_body is default_error_body:
        control.error_body = error_body
    app = make_simulator_app(control)
    app[SETTINGS] = settings or SimSettings()
    app[JOBS] = {}
    sim_catalog.add_routes(app)
    # The fixed routes first: ``{job_id}`` would match "history" and "features".
    app.router.add_get("/api/jobs/history", history, name="history")
    app.router.add_get("/api/jobs/features", features, name="features")
    app.router.add_post("/api/jobs", submit, name="jobs")
    app.router.add_get("/api/jobs/{job_id}", job_details, name="job")
    app.router.add_delete("/api/jobs/{job_id}", cancel, name="cancel")
    app.router.add_get("/api/results/{job_id}", results, name="results")
    return app


def fast_simulator(control: SimulatorControl | None = None) -> web.Application:
    """Jobs of a few items end within about 0.3 s; the job history pages by two."""
    return create_simulator(
        control, SimSettings(queue_seconds=0.05, item_seconds=0.05, history_page_size=2)
    )


__all__ = [
    "COMPLETED_WITH_ERROR",
    "JOBS",
    "MODELS",
    "SETTINGS",
    "SIMULATOR_KEY",
    "SIM_ACCESS_KEY",
    "SimSettings",
    "create_simulator",
    "error_body",
    "fast_simulator",
]
