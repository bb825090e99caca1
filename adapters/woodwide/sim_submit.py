"""The Wood Wide simulator's submit routes: sync and async file infer, dataset infer."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.simulation import SIM_CONTROL
from adapters.woodwide import sim_models as sm
from adapters.woodwide.sim_state import (
    ANOMALY_FORMATS,
    OUTPUT_TYPES,
    SIM_STATE,
    SimJob,
    SimSettings,
    error_body,
    failure_message,
    file_response,
    job_state,
    parquet_ok,
    refuse,
    respond,
    validation_error,
)

# -- submitting -------------------------------------------------------------------------


def _model(request: web.Request) -> sm.SimModel | web.Response:
    model_id = request.match_info["model_id"]
    for model in request.app[SIM_STATE].settings.models:
        if model.id == model_id:
            return model
    return respond(404, error_body(404, "Model not found"))


@dataclass(frozen=True, slots=True)
class _Params:
    output_type: str
    anomaly_format: str
    k: int | None
    exclude_self_matches: bool
    model_version_id: str | None


def _params(
    values: Mapping[str, Any], default_output: str, settings: SimSettings
) -> _Params | web.Response:
    loc = "body"
    output_type = values.get("output_type") or default_output
    if output_type not in OUTPUT_TYPES:
        return respond(
            422,
            validation_error(
                [loc, "output_type"], "Input should be 'json', 'csv' or 'parquet'", "enum"
            ),
        )
    if output_type == "parquet" and not parquet_ok(settings):
        return respond(
            400, error_body(400, "output_type 'parquet' is not available on this server")
        )
    anomaly_format = values.get("anomaly_format") or "ids_only"
    if anomaly_format not in ANOMALY_FORMATS:
        return respond(
            422,
            validation_error(
                [loc, "anomaly_format"], "Input should be 'ids_only' or 'per_row'", "enum"
            ),
        )
    k_raw = values.get("k")
    k: int | None = None
    if k_raw not in (None, ""):
        try:
            k = int(str(k_raw))
        except ValueError:
            k = 0
        if k < 1 or isinstance(k_raw, bool):
            return respond(
                422,
                validation_error(
                    [loc, "k"], "Input should be an integer greater than 0", "int_parsing"
                ),
            )
    excl = values.get("exclude_self_matches")
    if isinstance(excl, str):
        excl = {"true": True, "false": False, "": None}.get(excl.lower(), "bad")
    if excl not in (None, True, False):
        return respond(
            422,
            validation_error(
                [loc, "exclude_self_matches"], "Input should be a valid boolean", "bool_parsing"
            ),
        )
    version = values.get("model_version_id") or None
    return _Params(output_type, anomaly_format, k, bool(excl), str(version) if version else None)


def _check_version(model: sm.SimModel, version: str | None) -> web.Response | None:
    if version is not None and version != model.version_id:
        return respond(404, error_body(404, "Model version not found"))
    return None


async def _upload(
    request: web.Request, default_output: str
) -> tuple[sm.SimModel, _Params, list[dict[str, str]], str] | web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    model = _model(request)
    if isinstance(model, web.Response):
        return model
    settings = request.app[SIM_STATE].settings
    if request.content_length is not None and request.content_length > settings.max_upload_bytes:
        return respond(413, error_body(413, "File too large (limit 30 MB)"))
    if not request.content_type.startswith("multipart/"):
        return respond(422, validation_error(["body", "file"], "Field required", "missing"))
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return respond(422, validation_error(["body", "file"], "Field required", "missing"))
    params = _params(form, default_output, settings)
    if isinstance(params, web.Response):
        return params
    if (wrong := _check_version(model, params.model_version_id)) is not None:
        return wrong
    try:
        text = upload.file.read().decode("utf-8-sig")
        rows = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    except (UnicodeDecodeError, csv.Error):
        return respond(400, error_body(400, "The uploaded file is not a UTF-8 CSV file."))
    if not rows:
        return respond(400, error_body(400, "The uploaded file has no data rows."))
    return model, params, rows, upload.filename or "upload.csv"


def _new_job(
    request: web.Request,
    kind: str,
    model: sm.SimModel,
    params: _Params,
    rows: Sequence[Mapping[str, str]],
    **kw: Any,
) -> SimJob:
    state = request.app[SIM_STATE]
    job = SimJob(
        id=state.new_id("job"),
        type=kind,
        model=model,
        rows=list(rows),
        output_type=params.output_type,
        anomaly_format=params.anomaly_format,
        k=params.k,
        exclude_self_matches=params.exclude_self_matches,
        model_version_id=params.model_version_id or model.version_id,
        created_at=datetime.now(UTC),
        started=request.app[SIM_CONTROL].clock(),
        **kw,
    )
    state.jobs[job.id] = job
    return job


def _accepted(job: SimJob, word: str, status: int = 202) -> web.Response:
    return respond(
        status,
        {
            "job_id": job.id,
            "model_version_id": job.model_version_id,
            "status": word,
            "model": {
                "id": job.model.id,
                "version_id": job.model_version_id,
                "version_number": job.model.version_number,
            },
        },
    )


async def infer(request: web.Request) -> web.Response:
    got = await _upload(request, "csv")
    if isinstance(got, web.Response):
        return got
    model, params, rows, filename = got
    job = _new_job(request, "infer_sync", model, params, rows, input_filename=filename)
    job.started -= request.app[SIM_STATE].settings.job_seconds  # done at once
    settings = request.app[SIM_STATE].settings
    if job_state(job, request)[0] == "failed":
        return respond(422, error_body(422, failure_message(job)))
    return file_response(job, params.output_type, settings, latency_ms=12)


async def infer_async(request: web.Request) -> web.Response:
    got = await _upload(request, "csv")
    if isinstance(got, web.Response):
        return got
    model, params, rows, filename = got
    job = _new_job(request, "infer_batch", model, params, rows, input_filename=filename)
    return _accepted(job, "queued")


async def infer_batch(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    model = _model(request)
    if isinstance(model, web.Response):
        return model
    settings = request.app[SIM_STATE].settings
    try:
        body = json.loads(await request.read())
    except ValueError:
        return respond(422, validation_error(["body"], "JSON decode error", "json_invalid"))
    if not isinstance(body, dict):
        return respond(
            422, validation_error(["body"], "Input should be a valid dictionary", "dict_type")
        )
    ds_id, dsv_id = body.get("dataset_id"), body.get("dataset_version_id")
    if (ds_id is None) == (dsv_id is None):
        return respond(
            422,
            validation_error(
                ["body"], "Provide exactly one of dataset_id or dataset_version_id", "value_error"
            ),
        )
    dataset = next((d for d in settings.datasets if d.id == ds_id or d.version_id == dsv_id), None)
    if dataset is None:
        return respond(404, error_body(404, "Dataset not found"))
    params = _params(body, "parquet", settings)
    if isinstance(params, web.Response):
        return params
    if (wrong := _check_version(model, params.model_version_id)) is not None:
        return wrong
    dedupe = json.dumps([model.id, dataset.version_id, repr(params), body.get("filters")])
    if body.get("force_rerun") is not True:
        for job in reversed(request.app[SIM_STATE].jobs.values()):
            word = job_state(job, request)[0]
            if job.dedupe == dedupe and word in ("queued", "running", "succeeded"):
                return _accepted(job, word, 200)
    job = _new_job(
        request, "infer_batch", model, params, list(dataset.rows), dataset=dataset, dedupe=dedupe
    )
    return _accepted(job, "queued")
