"""A simulated Vody inference API: the documented routes, auth and status shape.

Routes (under the app root; the demo mounts it at ``/vody/``):

``POST /inference/color-classification`` and ``/inference/pattern-classification``
    a JSON array of ``{"image_path", "product_type", ...}`` items
``GET /inference/{id}/status``     ``in_progress | completed | failed``, numbers as strings
``GET /inference/{id}/results``    one object per request item, in request order

Auth is ``x-vody-api-key`` (401 ``{"message":"Unauthorized"}`` without it, 403
``{"message":"Forbidden"}`` with a wrong one). Predictions are derived from a hash
of ``image_path``, never random. An item whose ``image_path`` or ``name`` contains
``fail`` (any case), or whose path is in ``SimSettings.fail_paths``, fails with
"could not fetch image". Everything [inferred] in PROVIDERS.md is a ``SimSettings``
switch.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)

SIMULATOR_KEY = "vody-simulator-key-0000"
ITEM_ERROR = "could not fetch image"

#: The API Gateway's own words for the statuses it answers itself.
_GATEWAY_MESSAGES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Endpoint request timed out",
}

COLORS = (
    ("#000000", "Black"),
    ("#FFFFFF", "White"),
    ("#FE2934", "Red"),
    ("#1E90FF", "Blue"),
    ("#2E8B57", "Green"),
    ("#FFD700", "Yellow"),
    ("#8B4513", "Brown"),
    ("#808080", "Gray"),
    ("#FF69B4", "Pink"),
    ("#800080", "Purple"),
    ("#FFA500", "Orange"),
    ("#F5F5DC", "Beige"),
    ("#000080", "Navy"),
)
PATTERNS = (
    "solid",
    "striped",
    "plaid",
    "floral",
    "polka dot",
    "geometric",
    "animal print",
    "paisley",
    "checkered",
    "camouflage",
)
MODELS = ("color-classification", "pattern-classification")


def error_body(status: int, message: str) -> dict[str, str]:
    """API Gateway style: ``{"message": ...}``."""
    return {"message": _GATEWAY_MESSAGES.get(status, message)}


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: Seconds from submit until an inference ends.
    job_seconds: float = 3.0
    #: [inferred] The key of the inference id in the submit answer.
    id_key: str = "id"
    #: [inferred] 200 or 202 for an accepted submit.
    submit_status: int = 200
    #: [doc] Counts, codes and times are strings; False sends numbers.
    numbers_as_strings: bool = True
    #: [inferred] An inference whose every item failed ends ``failed``, not ``completed``.
    fail_job_when_all_items_fail: bool = True
    #: [inferred] Results of an unfinished inference: 404, or 200 with ``[]``.
    results_while_running: Literal["404", "empty"] = "404"
    #: [inferred] Status for a body Vody cannot take (400 or 422).
    invalid_body_status: int = 400
    #: [inferred] Most items one request may carry.
    max_items: int = 1000
    #: Image paths that fail, besides those containing ``fail``.
    fail_paths: frozenset[str] = frozenset()
    models: tuple[str, ...] = MODELS


@dataclass
class _Job:
    id: str
    model: str
    items: list[dict[str, Any]]
    started: float
    created_at: datetime
    results: list[dict[str, Any]] = field(default_factory=list)


SETTINGS = web.AppKey("vody_sim_settings", SimSettings)
JOBS = web.AppKey("vody_sim_jobs", dict[str, _Job])


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _ranked(text: str, n_choices: int) -> tuple[list[int], list[float]]:
    """Three distinct choices and their confidences, derived from ``text``."""
    d = _digest(text)
    picks: list[int] = []
    for b in d:
        if b % n_choices not in picks:
            picks.append(b % n_choices)
        if len(picks) == 3:
            break
    while len(picks) < 3:  # a digest with fewer distinct residues: take the next ones
        picks.append(next(c for c in range(n_choices) if c not in picks))
    top = round(0.55 + d[-1] / 255 * 0.4, 4)
    second = round((1 - top) * 0.7, 4)
    return picks, [top, second, round(max(0.0, 1 - top - second), 4)]


def predict(model: str, item: dict[str, Any], *, as_strings: bool) -> dict[str, Any]:
    """The deterministic answer for one item, echoing what it was sent."""
    out = {k: v for k, v in item.items() if k != "name"}
    path = str(item.get("image_path", ""))
    name = str(item.get("name", ""))
    if "fail" in path.lower() or "fail" in name.lower():
        return {**out, "error": ITEM_ERROR}
    if model == "pattern-classification":
        picks, conf = _ranked(path, len(PATTERNS))
        out["pattern"] = PATTERNS[picks[0]]
        out["patterns"] = [
            {"pattern": PATTERNS[p], "confidence": c} for p, c in zip(picks, conf, strict=True)
        ]
    else:
        picks, conf = _ranked(path, len(COLORS))
        out["predicted_hex_color"], out["color_name"] = COLORS[picks[0]]
        out["colors"] = [
            {"hex": COLORS[p][0], "name": COLORS[p][1], "confidence": c}
            for p, c in zip(picks, conf, strict=True)
        ]
    out["confidence"] = str(conf[0]) if as_strings else conf[0]
    return out


def _num(value: float | int, settings: SimSettings) -> Any:
    return str(value) if settings.numbers_as_strings else value


def _refuse(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-vody-api-key")
    if not key:
        return web.json_response(error_body(401, "Unauthorized"), status=401)
    if key != request.app[SETTINGS].api_key:
        return web.json_response(error_body(403, "Forbidden"), status=403)
    return None


def _invalid_body(body: Any, settings: SimSettings) -> str | None:
    if not isinstance(body, list) or not body:
        return "Request body must be a non-empty JSON array of items."
    if len(body) > settings.max_items:
        return f"A request may carry at most {settings.max_items} items."
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            return f"Item {i} must be an object."
        for key in ("image_path", "product_type"):
            if not isinstance(item.get(key), str) or not item[key]:
                return f"Item {i}: '{key}' is required and must be a non-empty string."
    return None


async def submit(request: web.Request) -> web.Response:
    if (refused := _refuse(request)) is not None:
        return refused
    settings = request.app[SETTINGS]
    model = request.match_info["model"]
    if model not in settings.models:
        return web.json_response(error_body(404, "Not Found"), status=404)
    try:
        body = json.loads(await request.read())
    except ValueError:
        body = None
    problem = _invalid_body(body, settings)
    if problem is not None:
        return web.json_response({"message": problem}, status=settings.invalid_body_status)
    job = _Job(
        id=str(uuid.uuid4()),
        model=model,
        items=body,
        started=request.app[SIM_CONTROL].clock(),
        created_at=datetime.now(UTC),
    )
    for item in body:
        answer = predict(model, item, as_strings=settings.numbers_as_strings)
        if item["image_path"] in settings.fail_paths:
            answer = {k: v for k, v in item.items() if k != "name"} | {"error": ITEM_ERROR}
        job.results.append(answer)
    request.app[JOBS][job.id] = job
    return web.json_response(
        {
            settings.id_key: job.id,
            "status": "in_progress",
            "model": model,
            "request_item_count": _num(len(body), settings),
        },
        status=settings.submit_status,
    )


def _state(job: _Job, request: web.Request) -> tuple[str, float]:
    settings = request.app[SETTINGS]
    elapsed = request.app[SIM_CONTROL].clock() - job.started
    if elapsed < settings.job_seconds:
        return "in_progress", elapsed
    all_failed = all("error" in r for r in job.results)
    if all_failed and settings.fail_job_when_all_items_fail:
        return "failed", settings.job_seconds
    return "completed", settings.job_seconds


def _job(request: web.Request) -> _Job | web.Response:
    if (refused := _refuse(request)) is not None:
        return refused
    job = request.app[JOBS].get(request.match_info["inference_id"])
    if job is None:
        return web.json_response(error_body(404, "Not Found"), status=404)
    return job


async def status(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    settings = request.app[SETTINGS]
    word, elapsed = _state(job, request)
    done = word != "in_progress"
    updated = job.created_at + timedelta(seconds=elapsed)
    body: dict[str, Any] = {
        "id": job.id,
        "created_at": job.created_at.isoformat(timespec="microseconds"),
        "updated_at": updated.isoformat(timespec="microseconds"),
        "status": word,
        "model": job.model,
        "response_code": _num(200 if word == "completed" else 500, settings) if done else None,
        "request_item_count": _num(len(job.items), settings),
        "response_item_count": _num(len(job.results) if done else 0, settings),
        "response_time": _num(round(elapsed, 6), settings) if done else None,
    }
    if word == "failed":
        body["error"] = "All items in the request failed."
    return web.json_response(body)


async def results(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    word, _ = _state(job, request)
    if word == "in_progress":
        if request.app[SETTINGS].results_while_running == "empty":
            return web.json_response([])
        return web.json_response(error_body(404, "Not Found"), status=404)
    return web.json_response(job.results)


def create_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """The Vody simulator app; ``control`` may be shared with a test (its clock, faults)."""
    if control is None:
        control = SimulatorControl(error_body=error_body)
    elif control.error_body is default_error_body:
        control.error_body = error_body
    app = make_simulator_app(control)
    app[SETTINGS] = settings or SimSettings()
    app[JOBS] = {}
    app.router.add_post("/inference/{model}", submit, name="submit")
    app.router.add_get("/inference/{inference_id}/status", status, name="status")
    app.router.add_get("/inference/{inference_id}/results", results, name="results")
    return app


def fast_simulator(control: SimulatorControl | None = None) -> web.Application:
    """Inferences end after 0.2 s (Vody has no result pages to make small)."""
    return create_simulator(control, SimSettings(job_seconds=0.2))
