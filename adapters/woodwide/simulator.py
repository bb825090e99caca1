"""A simulated Wood Wide AI inference API: the documented routes, statuses and shapes.

Routes (under the app root; the demo mounts it at ``/woodwide/``):

``POST /models/{id}/infer``         multipart CSV ``file`` → the results at once (default csv)
``POST /models/{id}/infer-async``   the same upload → ``{"job_id", "status": "queued", ...}``
``POST /models/{id}/infer-batch``   JSON ``{dataset_id | dataset_version_id, ...}``; an identical
                                    request returns the existing job unless ``force_rerun``
``GET  /jobs``                      ``cursor``/``limit``/``status``/``type``/``model_id`` filters
``GET  /jobs/{id}``                 detail with both ``job_id`` and ``id``, ``progress`` 0-100
``GET  /jobs/{id}/results``         409 ``{"detail": "job not finished"}`` until ``succeeded``;
                                    then signed ``inference_results_uri`` and
                                    ``combined_results_uri`` links, ``row_paginatable``, a summary
``GET  /jobs/{id}/results/rows``    the combined table (inputs + outputs) in pages: ``limit``
                                    (capped), ``offset``, ``columns``, ``search``,
                                    ``filter_column``/``filter_value``, ``sort_by``/``sort_dir``;
                                    409 when ``row_paginatable`` is not true
``POST /jobs/{id}/cancel``          best effort → ``{"id", "status"}``
``POST /jobs/{id}/retry``           a failed or canceled job runs again
``GET  /files/{id}/{name}``         a signed link (json, csv, parquet with pyarrow): no key
                                    needed, and one that carries a key is refused; it may point
                                    at another host (``results_origin``/``results_host``)
``GET  /models[/{id}]``, ``GET /datasets[/{id}]``   the catalog in the library's shapes

Auth is ``Authorization: Bearer <key>``; errors are FastAPI-style ``{"detail": ...}``.
Jobs are ``queued`` then ``running`` then ``succeeded`` on ``control.clock()``. A row
with ``fail`` in any cell (any case), or whose id is in ``SimSettings.fail_row_ids``,
gets no result; the job still succeeds and lists it in ``summary.failed_row_ids``
[inferred], unless every row failed: then the job ends ``failed`` with an
``error_message``. Things PROVIDERS.md marks [inferred] are ``SimSettings`` switches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from yarl import URL

from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)
from adapters.woodwide import sim_catalog
from adapters.woodwide import sim_render as sr
from adapters.woodwide.sim_state import (
    OUTPUT_TYPES,
    SIM_STATE,
    SIMULATOR_KEY,
    TERMINAL,
    SimJob,
    SimSettings,
    SimState,
    error_body,
    file_response,
    job_detail,
    job_state,
    job_table,
    parquet_ok,
    refuse,
    respond,
    validation_error,
)
from adapters.woodwide.sim_submit import infer, infer_async, infer_batch

__all__ = [
    "SIMULATOR_KEY",
    "SIM_STATE",
    "SimSettings",
    "create_simulator",
    "error_body",
    "fast_simulator",
]

_SIGNING_KEY = b"woodwide-simulator-signing-key"


# -- reading jobs -----------------------------------------------------------------------


def _job(request: web.Request) -> SimJob | web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    job = request.app[SIM_STATE].jobs.get(request.match_info["job_id"])
    if job is None:
        return respond(404, error_body(404, "Job not found"))
    return job


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    return web.json_response(job_detail(job, request))


async def list_jobs(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    q = request.query
    try:
        limit = min(max(int(q.get("limit", "20")), 1), 100)
        offset = int(q["cursor"].removeprefix("cur_")) if q.get("cursor") else 0
    except ValueError:
        return respond(
            422, validation_error(["query", "cursor"], "Invalid cursor or limit", "value_error")
        )
    details = [job_detail(j, request) for j in reversed(request.app[SIM_STATE].jobs.values())]
    for key in ("status", "type", "model_id"):
        if q.get(key):
            details = [d for d in details if d.get(key) == q[key]]
    if q.get("model_version_id"):
        details = [
            d for d in details if d["resources"]["model"]["version_id"] == q["model_version_id"]
        ]
    if q.get("dataset_version_id"):
        details = [
            d
            for d in details
            if (d["resources"]["dataset"] or {}).get("version_id") == q["dataset_version_id"]
        ]
    page = details[offset : offset + limit]
    more = offset + limit < len(details)
    return web.json_response(
        {"items": page, "next_cursor": f"cur_{offset + limit}" if more else None}
    )


def _finished(job: SimJob, request: web.Request) -> web.Response | None:
    word, _ = job_state(job, request)
    if word == "succeeded":
        return None
    status = request.app[SIM_STATE].settings.not_finished_status
    message = (
        "job not finished" if word in ("queued", "running") else f"job {word}: it has no results"
    )
    return respond(status, error_body(status, message))


def _sign(job_id: str, name: str, expires: int) -> str:
    return hmac.new(
        _SIGNING_KEY, f"{job_id}/{name}/{expires}".encode(), hashlib.sha256
    ).hexdigest()[:32]


def _signed_link(request: web.Request, job: SimJob, name: str) -> str:
    """A signed link to one of the job's files, like a storage host's: no key needed."""
    settings = request.app[SIM_STATE].settings
    expires = int(request.app[SIM_CONTROL].clock() + settings.url_ttl_seconds)
    path = request.app.router["result_file"].url_for(job_id=job.id, name=name)
    signed = path.with_query(expires=str(expires), signature=_sign(job.id, name, expires))
    origin = request.url.origin()
    if settings.results_origin:
        origin = URL(settings.results_origin)
    elif settings.results_host:
        origin = origin.with_host(settings.results_host)
    return str(origin.join(signed))


async def results(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    if (early := _finished(job, request)) is not None:
        return early
    settings = request.app[SIM_STATE].settings
    table = job_table(job, settings)
    uri = combined = None
    if settings.results_uri_max_rows is None or len(table.rows) <= settings.results_uri_max_rows:
        uri = _signed_link(request, job, f"inference_results.{job.output_type}")
        if settings.combined_file and table.row_aligned:
            combined = _signed_link(request, job, f"combined_results.{job.output_type}")
    summary: dict[str, Any] = {"total_row_count": len(table.rows), "input_row_count": len(job.rows)}
    if settings.report_failed_rows:
        summary |= {"failed_row_count": len(job.failed_rows), "failed_row_ids": job.failed_rows}
    descriptions = {k: json.dumps(v) for k, v in table.extras.items()}
    return web.json_response(
        {
            "job_type": job.type,
            "inference_results_uri": uri,
            "combined_results_uri": combined,
            "row_paginatable": settings.row_paginatable,
            "summary": summary,
            "descriptions": descriptions or None,
            "training_results": None,
            "dataset_ingest_results": None,
        }
    )


async def result_rows(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    if (early := _finished(job, request)) is not None:
        return early
    settings = request.app[SIM_STATE].settings
    if settings.row_paginatable is not True:
        # [inferred] The status a result without a row table answers is not documented.
        return respond(409, error_body(409, "The results of this job cannot be paged by row."))
    q = request.query
    try:
        asked = int(q.get("limit", str(settings.rows_default_limit)))
        offset = int(q.get("offset", "0"))
    except ValueError:
        return respond(
            422,
            validation_error(["query", "limit"], "Input should be a valid integer", "int_parsing"),
        )
    if asked < 1 or offset < 0:
        return respond(
            422,
            validation_error(
                ["query", "limit" if asked < 1 else "offset"],
                "Input should be greater than or equal to 0",
                "greater_than_equal",
            ),
        )
    limit = min(asked, settings.rows_page_cap)
    table = job_table(job, settings)
    total = len(table.rows)
    if table.row_aligned:  # the combined table: the input columns, then the outputs
        table = sr.combined(table, job.rows)
    rows = sr.plain_rows(table)
    if q.get("search"):
        needle = q["search"].lower()
        rows = [r for r in rows if any(needle in str(v).lower() for v in r.values())]
    if q.get("filter_column"):
        col, value = q["filter_column"], q.get("filter_value", "")
        rows = [r for r in rows if sr.csv_cell(r.get(col)) == value]
    if q.get("sort_by"):
        col = q["sort_by"]
        rows = sorted(
            rows,
            key=lambda r: (r.get(col) is None, r.get(col)),
            reverse=q.get("sort_dir") == "desc",
        )
    columns = q.getall("columns", [])
    page = rows[offset : offset + limit]
    if columns:
        page = [{c: r.get(c) for c in columns} for r in page]
    notice = f"limit capped at {settings.rows_page_cap}" if asked > limit else None
    return web.json_response(
        {
            "limit": limit,
            "offset": offset,
            "rows": page,
            "total": total,
            "total_filtered": len(rows),
            "notice": notice,
        }
    )


async def result_file(request: web.Request) -> web.Response:
    """The signed link: the signature is the credential, and the only one allowed.

    Like a storage host's signed URL (S3 answers 400 "Only one auth mechanism
    allowed"), a request that also carries an ``Authorization`` header is refused:
    the API key must never travel to the host a link points at.
    """
    if "Authorization" in request.headers:
        return respond(400, error_body(400, "Only one auth mechanism allowed: the link is signed."))
    job = request.app[SIM_STATE].jobs.get(request.match_info["job_id"])
    name = request.match_info["name"]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        expires = -1
    good = hmac.compare_digest(
        request.query.get("signature", ""), _sign(request.match_info["job_id"], name, expires)
    )
    if not good or job is None:
        return respond(403, error_body(403, "Invalid or missing signature"))
    if request.app[SIM_CONTROL].clock() > expires:
        return respond(403, error_body(403, "Signed URL expired"))
    if (early := _finished(job, request)) is not None:
        return early
    stem, _, fmt = name.rpartition(".")
    settings = request.app[SIM_STATE].settings
    if fmt not in OUTPUT_TYPES or (fmt == "parquet" and not parquet_ok(settings)):
        return respond(400, error_body(400, f"format {fmt!r} is not available"))
    return file_response(job, fmt, settings, combined=stem == "combined_results")


# -- changing jobs ----------------------------------------------------------------------


async def cancel(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    word, _ = job_state(job, request)
    if word not in TERMINAL:
        job.canceled = True
        word = "canceled"
    return web.json_response({"id": job.id, "status": word})


async def retry(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    word, _ = job_state(job, request)
    if word not in ("failed", "canceled", "rejected"):
        return respond(
            409, error_body(409, f"Only failed or canceled jobs can be retried (job is {word}).")
        )
    job.canceled = False
    job.table = None
    job.started = request.app[SIM_CONTROL].clock()
    return web.json_response(job_detail(job, request))


def create_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """The Wood Wide simulator app; ``control`` may be shared with a test (its clock, faults)."""
    if control is None:
        control = SimulatorControl(error_body=error_body)
    elif control.error_body is default_error_body:
        control.error_body = error_body
    app = make_simulator_app(control)
    app[SIM_STATE] = SimState(settings or SimSettings())
    r = app.router
    sim_catalog.add_routes(app)
    r.add_post("/models/{model_id}/infer", infer, name="infer")
    r.add_post("/models/{model_id}/infer-async", infer_async, name="infer_async")
    r.add_post("/models/{model_id}/infer-batch", infer_batch, name="infer_batch")
    r.add_get("/jobs", list_jobs, name="jobs")
    r.add_get("/jobs/{job_id}", get_job, name="job")
    r.add_get("/jobs/{job_id}/results", results, name="results")
    r.add_get("/jobs/{job_id}/results/rows", result_rows, name="result_rows")
    r.add_post("/jobs/{job_id}/cancel", cancel, name="cancel")
    r.add_post("/jobs/{job_id}/retry", retry, name="retry")
    r.add_get("/files/{job_id}/{name}", result_file, name="result_file")
    return app


def fast_simulator(control: SimulatorControl | None = None) -> web.Application:
    """Jobs end after 0.3 s; result pages of 2 rows, and no file past 2 rows, so paging runs."""
    return create_simulator(
        control,
        SimSettings(queued_seconds=0.05, job_seconds=0.3, rows_page_cap=2, results_uri_max_rows=2),
    )
