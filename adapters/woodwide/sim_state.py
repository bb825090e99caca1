"""The Wood Wide simulator's state: settings, jobs, auth, timing and result rendering.

Shared by the route modules (sim_submit.py, simulator.py). A job's status follows
``control.clock()``: ``queued`` for ``queued_seconds``, ``running`` until
``job_seconds``, then ``succeeded`` (or ``failed`` when every row failed).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from adapters.simulation import SIM_CONTROL
from adapters.woodwide import sim_models as sm
from adapters.woodwide import sim_render as sr

SIMULATOR_KEY = "sk_woodwide_simulator_key"
OUTPUT_TYPES = ("json", "csv", "parquet")
ANOMALY_FORMATS = ("ids_only", "per_row")
TERMINAL = frozenset({"succeeded", "failed", "canceled", "rejected"})


def error_body(status: int, message: str) -> dict[str, Any]:
    """FastAPI style: ``{"detail": "..."}``."""
    return {"detail": message}


def validation_error(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: Seconds a job stays ``queued``, and from submit until it ends.
    queued_seconds: float = 1.0
    job_seconds: float = 4.0
    #: Most rows one ``/results/rows`` page returns, and the default page.
    rows_page_cap: int = 500
    rows_default_limit: int = 50
    #: [inferred] Results with more rows than this get no ``inference_results_uri``
    #: (read them from ``/results/rows``); None: always a URI.
    results_uri_max_rows: int | None = None
    #: [inferred] How results of an unfinished job are refused: 409 or 400.
    not_finished_status: int = 409
    #: [inferred] ``summary.failed_row_ids`` lists rows that got no result.
    report_failed_rows: bool = True
    #: [doc]/[inferred] The keys naming the job in its detail (docs: job_id, SDK: id).
    detail_id_keys: tuple[str, ...] = ("job_id", "id")
    #: Search rows: ``per_query`` (one row per input row, ``neighbor_{j}_id``/``_score``
    #: [inferred]), ``per_match`` (``id``, ``match_id``, ``rank``, ``score`` [inferred]),
    #: or ``mapping``: per_match, with json as the seed doc's ``{"<row id>": [ids]}``.
    search_shape: Literal["per_query", "per_match", "mapping"] = "per_query"
    #: [doc] Multiclass ``prediction_probs``: a list per row (label order), a float (the
    #: predicted label's), an object, or ``none`` (the seed docs' ``prediction_prob``).
    multiclass_probs: sm.ProbsShape = "list"
    #: [doc] Factors per row (woodwide 0.9.0) or one row per factor (the seed docs).
    factors_shape: sm.FactorsShape = "per_row"
    #: [doc] ``row_paginatable``: True, False or null (then ``/results/rows`` refuses).
    row_paginatable: bool | None = True
    #: [doc] A ``combined_results_uri`` (inputs + outputs) for row-aligned results.
    combined_file: bool = True
    #: [inferred] Where signed result links point: another origin (e.g. a storage host)
    #: or, on this server's scheme and port, another host name (``localhost``); None: here.
    results_origin: str | None = None
    results_host: str | None = None
    #: Row ids that fail, besides rows with ``fail`` in a cell.
    fail_row_ids: frozenset[int] = frozenset()
    #: Serve parquet (None: when pyarrow is importable).
    parquet: bool | None = None
    max_upload_bytes: int = 30 * 2**20
    url_ttl_seconds: float = 3600.0
    models: tuple[sm.SimModel, ...] = sm.MODELS
    datasets: tuple[sm.SimDataset, ...] = sm.DATASETS


@dataclass
class SimJob:
    id: str
    type: str
    model: sm.SimModel
    rows: list[Mapping[str, str]]
    output_type: str
    anomaly_format: str
    k: int | None
    exclude_self_matches: bool
    model_version_id: str
    created_at: datetime
    started: float
    input_filename: str | None = None
    dataset: sm.SimDataset | None = None
    dedupe: str | None = None
    canceled: bool = False
    table: sm.SimTable | None = None
    failed_rows: list[int] = field(default_factory=list)


@dataclass
class SimState:
    settings: SimSettings
    jobs: dict[str, SimJob] = field(default_factory=dict)

    @staticmethod
    def new_id(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12].upper()}"


SIM_STATE = web.AppKey("woodwide_sim_state", SimState)


def respond(status: int, body: Any, **kw: Any) -> web.Response:
    return web.json_response(body, status=status, **kw)


def refuse(request: web.Request) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        return respond(
            401, error_body(401, "Not authenticated"), headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(key.strip(), request.app[SIM_STATE].settings.api_key):
        return respond(401, error_body(401, "Invalid API key"))
    return None


def parquet_ok(settings: SimSettings) -> bool:
    return sr.parquet_available() if settings.parquet is None else settings.parquet


# -- job timing and results -------------------------------------------------------------


def row_fails(rid: int, row: Mapping[str, str], settings: SimSettings) -> bool:
    return rid in settings.fail_row_ids or any("fail" in str(v).lower() for v in row.values())


def job_state(job: SimJob, request: web.Request) -> tuple[str, float]:
    """The job's status word and seconds since it (re)started."""
    settings = request.app[SIM_STATE].settings
    elapsed = request.app[SIM_CONTROL].clock() - job.started
    if job.canceled:
        return "canceled", elapsed
    if elapsed < settings.queued_seconds:
        return "queued", elapsed
    if elapsed < settings.job_seconds:
        return "running", elapsed
    failed = [i for i, row in enumerate(job.rows) if row_fails(i, row, settings)]
    return ("failed" if len(failed) == len(job.rows) else "succeeded"), elapsed


def job_table(job: SimJob, settings: SimSettings) -> sm.SimTable:
    if job.table is None:
        ok = [(i, r) for i, r in enumerate(job.rows) if not row_fails(i, r, settings)]
        job.failed_rows = [i for i, r in enumerate(job.rows) if row_fails(i, r, settings)]
        job.table = sm.build_table(
            job.model,
            ok,
            anomaly_format=job.anomaly_format,
            k=job.k,
            exclude_self_matches=job.exclude_self_matches,
            probs=settings.multiclass_probs,
            factors=settings.factors_shape,
            search="per_query" if settings.search_shape == "per_query" else "per_match",
        )
    return job.table


def failure_message(job: SimJob) -> str:
    return f"Inference failed: none of the {len(job.rows)} rows could be scored (invalid values)."


def job_detail(job: SimJob, request: web.Request) -> dict[str, Any]:
    settings = request.app[SIM_STATE].settings
    word, elapsed = job_state(job, request)
    started = job.created_at + timedelta(seconds=settings.queued_seconds)
    finished = job.created_at + timedelta(seconds=settings.job_seconds)
    span = max(settings.job_seconds - settings.queued_seconds, 1e-9)
    progress = {"queued": 0, "running": int((elapsed - settings.queued_seconds) / span * 100)}
    body: dict[str, Any] = {key: job.id for key in settings.detail_id_keys}
    body |= {
        "type": job.type,
        "status": word,
        "created_at": job.created_at.isoformat(),
        "started_at": started.isoformat() if word != "queued" else None,
        "finished_at": finished.isoformat() if word in TERMINAL else None,
        "created_by": {"principal_type": "api_key", "user_id": "usr_sim", "api_key_id": "key_sim"},
        "input": {"output_type": job.output_type, "anomaly_format": job.anomaly_format},
        "output": {},
        "resources": {
            "type": job.type,
            "model": {
                "id": job.model.id,
                "version_id": job.model_version_id,
                "version_number": job.model.version_number,
            },
            "dataset": (
                {
                    "id": job.dataset.id,
                    "version_id": job.dataset.version_id,
                    "version_number": job.dataset.version_number,
                }
                if job.dataset
                else None
            ),
        },
        "dataset_id": job.dataset.id if job.dataset else None,
        "dataset_name": job.dataset.name if job.dataset else None,
        "parent_job_id": None,
        "error_message": failure_message(job) if word == "failed" else None,
        "woodwide_runtime_version": "sim-1.0",
        "credits_consumed": len(job.rows) if word == "succeeded" else None,
        "progress": progress.get(word, 100),
        "estimated_seconds_remaining": (
            round(max(settings.job_seconds - elapsed, 0.0), 2)
            if word in ("queued", "running")
            else None
        ),
        "model_id": job.model.id,
        "model_type": job.model.type,
        "input_filename": job.input_filename,
    }
    return body


def result_head(job: SimJob, status: str = "succeeded") -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": status,
        "model_id": job.model.id,
        "model_name": job.model.name,
        "model_version_id": job.model_version_id,
        "model_type": job.model.type,
    }


def file_response(
    job: SimJob, fmt: str, settings: SimSettings, *, combined: bool = False, **head: Any
) -> web.Response:
    table = job_table(job, settings)
    if combined:
        table = sr.combined(table, job.rows)
    if fmt == "csv":
        return web.Response(text=sr.render_csv(table), content_type="text/csv")
    if fmt == "parquet":
        meta = {k: str(v) for k, v in result_head(job).items() if k.startswith("model")}
        return web.Response(
            body=sr.render_parquet(table, meta), content_type="application/octet-stream"
        )
    body = sr.render_json(
        table, result_head(job) | head, search_mapping=settings.search_shape == "mapping"
    )
    return web.json_response(body)
