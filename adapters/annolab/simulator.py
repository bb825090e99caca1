"""A simulated AnnoLab API: model inferences, project exports and sources.

Routes (under the app root; the demo mounts it at ``/annolab/``):

``POST /v1/infer/batch``              submit ``{projectIdentifier, modelIdentifier, sourceIds,
                                      outputLayerIdentifier, groupName}`` → ``inferenceJobId`` (int)
``GET  /v1/infer/batch/{id}``         ``Queued`` → ``Running`` → ``Finished`` | ``Errored``
``POST /v1/export/project``           201 ``{message, exportStatusUrl, exportJob}``
``GET  /v1/export/status/{id}``       ``initialized`` → ``started`` → ``finished`` (``downloadUrl``)
``GET  /v1/export/download/{id}/{f}`` the zip (``*.annotations.jsonl``, ``*.layers.jsonl``, ...),
                                      by a signed URL like S3's (no Authorization needed)
``GET  /v1/source/{id}``              a source and its synthetic text
``GET  /v1/api-key/info``             the key's groups and permissions

Auth is ``Authorization: Api-Key <key>`` (the scheme in any case); errors are
``{"message": ...}``: 400 validation, 401 missing or wrong key, 403 missing
permission, 404 unknown job, project, layer, model, group or source.

The world: group "Company Name"; projects "Sample Project" (id 1) and "My Project"
(id 2), each with layers "Gold Set" and "Model Predictions"; models "Staple +
Classify Documents" (id 7: one page-level document-type annotation per source,
with ``imageBounds``) and "NER Contracts" (id 8: Party, Date and Amount entities with
offsets into the source text). Every source id in 1000..9999 exists in every project
(3240, 4414, 5853 and 4024 are the docs' examples), with synthetic text derived from
a hash of the id. When an inference finishes its annotations are written into the
output layer, replacing what the same model wrote there for that source before.

[inferred] Failing sources: ids ending in 13 (4413, 1013, ...) and
``SimSettings.fail_sources`` cannot be processed. A job with some of them ends
``Finished`` with no annotations for them and lists them in ``errors:
[{"sourceId", "message"}]`` on the status answer; a job where all fail ends
``Errored``. AnnoLab never sees the gateway's input names, so the usual ``fail``
marker in a name cannot reach it: use such a source id as the input's ``ref``.
Everything [inferred] in PROVIDERS.md is a ``SimSettings`` switch.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)

SIMULATOR_KEY = "annolab-simulator-key"
GROUP = "Company Name"
SOURCE_IDS = range(1000, 10000)
SOURCE_ERROR = "Model run failed on source {sid}: the document has no extractable text."
ALL_FAILED = "Inference failed: no source could be processed."

PERM_MODEL_RUN = "Model Run"
PERM_READ = "Read"
PERM_WRITE = "Write"


@dataclass(frozen=True, slots=True)
class SimProject:
    id: int
    name: str
    #: layer name → layer id
    layers: dict[str, int]


@dataclass(frozen=True, slots=True)
class SimModel:
    id: int
    name: str
    kind: str  # "classify" | "ner"


PROJECTS = (
    SimProject(1, "Sample Project", {"Gold Set": 12, "Model Predictions": 13}),
    SimProject(2, "My Project", {"Gold Set": 21, "Model Predictions": 22}),
)
MODELS = (
    SimModel(7, "Staple + Classify Documents", "classify"),
    SimModel(8, "NER Contracts", "ner"),
)

PARTIES = (
    "Acme Holdings LLC",
    "Globex Corporation",
    "Initech Inc.",
    "Umbrella Logistics Ltd.",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli Partners LP",
    "Vandelay Imports",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DOC_TYPES = ("Services Agreement", "Invoice", "Non-Disclosure Agreement", "Amendment")
PAGE = [[[0.0, 0.0], [612.0, 0.0], [612.0, 792.0], [0.0, 792.0], [0.0, 0.0]]]


def error_body(status: int, message: str) -> dict[str, str]:
    return {"message": message}


@dataclass(frozen=True, slots=True)
class SimSettings:
    api_key: str = SIMULATOR_KEY
    #: Seconds from submit until an inference ends, and of those, how long it is queued.
    job_seconds: float = 4.0
    queued_seconds: float = 1.0
    #: Seconds from the export request until its download is ready.
    export_seconds: float = 1.0
    #: [inferred] The word for a running inference: ``Running`` or ``In Progress``.
    running_word: str = "Running"
    #: [inferred] 200 or 201 for an accepted inference.
    submit_status: int = 200
    #: [doc] The SDK's enum spells it ``initalized``; the API's own spelling is unknown.
    initialized_word: str = "initialized"
    #: Source ids that fail, besides those ending in 13.
    fail_sources: frozenset[int] = frozenset()
    #: [inferred] A finished job lists its failed sources in ``errors``; False hides
    #: them (they then look like sources the model found nothing in).
    report_source_errors: bool = True
    #: [inferred] A job whose every source failed ends ``Errored`` (else ``Finished``).
    errored_when_all_fail: bool = True
    #: Exports end ``errored`` instead of ``finished``.
    export_errors: bool = False
    #: [inferred] Where a finished export's signed ``downloadUrl`` points, e.g. a
    #: storage host (real exports are files in cloud storage); None: this simulator.
    download_origin: str | None = None
    #: The API key's permissions on every project.
    permissions: frozenset[str] = frozenset({PERM_MODEL_RUN, PERM_READ, PERM_WRITE})
    groups: tuple[str, ...] = (GROUP,)
    projects: tuple[SimProject, ...] = PROJECTS
    models: tuple[SimModel, ...] = MODELS


@dataclass
class _Job:
    id: int
    project: SimProject
    model: SimModel
    layer: str
    sources: list[int]
    started: float
    written: bool = False


@dataclass
class _Export:
    id: int
    project: SimProject
    started: float
    files: dict[str, bytes]


@dataclass
class _World:
    jobs: dict[int, _Job] = field(default_factory=dict)
    exports: dict[int, _Export] = field(default_factory=dict)
    #: (project id, layer name) → source id → model id → annotation records
    layers: dict[tuple[int, str], dict[int, dict[int, list[dict[str, Any]]]]] = field(
        default_factory=dict
    )
    next_job: int = 12
    next_export: int = 341
    next_annotation: int = 44


SETTINGS = web.AppKey("annolab_sim_settings", SimSettings)
WORLD = web.AppKey("annolab_sim_world", _World)


# -- the synthetic world ------------------------------------------------------------------


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True, slots=True)
class SourceDoc:
    text: str
    doc_type: str
    parties: tuple[str, str]
    date: str
    amount: str


def source_doc(sid: int) -> SourceDoc:
    """The deterministic synthetic contract of a source id."""
    d = _digest(f"annolab-source-{sid}")
    p1 = PARTIES[d[0] % len(PARTIES)]
    p2 = PARTIES[(d[0] + 1 + d[1] % (len(PARTIES) - 1)) % len(PARTIES)]
    date = f"{MONTHS[d[2] % 12]} {1 + d[3] % 28}, {2015 + d[4] % 10}"
    amount = f"${1000 + int.from_bytes(d[5:8], 'big') % 990000:,}.00"
    text = (
        f"MASTER SERVICES AGREEMENT No. {sid}\n\n"
        f'This Agreement is entered into on {date} by and between {p1} (the "Client") '
        f'and {p2} (the "Provider").\n'
        f"The Client shall pay the Provider a total fee of {amount} within thirty (30) days "
        "of each invoice.\n"
    )
    return SourceDoc(text, DOC_TYPES[d[8] % len(DOC_TYPES)], (p1, p2), date, amount)


def source_fails(sid: int, settings: SimSettings) -> bool:
    return sid % 100 == 13 or sid in settings.fail_sources


def predict(model: SimModel, sid: int) -> list[dict[str, Any]]:
    """The annotations ``model`` writes for source ``sid`` (without ids or layer)."""
    doc = source_doc(sid)
    if model.kind == "classify":
        return [
            {
                "typeName": doc.doc_type,
                "value": None,
                "offsets": None,
                "textBounds": None,
                "imageBounds": {"type": "Polygon", "coordinates": PAGE},
                "pageNumber": 1,
                "endPageNumber": 1,
            }
        ]
    found: list[dict[str, Any]] = []
    for label, value in (
        ("Party", doc.parties[0]),
        ("Party", doc.parties[1]),
        ("Date", doc.date),
        ("Amount", doc.amount),
    ):
        start = doc.text.index(value)
        found.append(
            {
                "typeName": label,
                "value": value,
                "offsets": [start, start + len(value)],
                "textBounds": None,
                "imageBounds": None,
                "pageNumber": 1,
                "endPageNumber": 1,
            }
        )
    return found


def _find_project(settings: SimSettings, ident: Any) -> SimProject | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for project in settings.projects:
        if text == project.name or (text.isdigit() and int(text) == project.id):
            return project
    return None


def _find_model(settings: SimSettings, ident: Any) -> SimModel | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for model in settings.models:
        if text == model.name or (text.isdigit() and int(text) == model.id):
            return model
    return None


def _find_layer(project: SimProject, ident: Any) -> tuple[str, int] | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for name, lid in project.layers.items():
        if text == name or (text.isdigit() and int(text) == lid):
            return name, lid
    return None


# -- HTTP ------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^\s*api-key\s+(?P<key>\S+)\s*$", re.IGNORECASE)


def _fail(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status)


def _refuse(request: web.Request, permission: str | None = None) -> web.Response | None:
    header = request.headers.get("Authorization")
    if not header:
        return _fail(401, "Authentication credentials were not provided.")
    match = _SCHEME.match(header)
    settings = request.app[SETTINGS]
    if match is None or not hmac.compare_digest(match["key"], settings.api_key):
        return _fail(401, "Invalid API key.")
    if permission is not None and permission not in settings.permissions:
        return _fail(403, f"This API key does not have the '{permission}' permission.")
    return None


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _settle(app: web.Application) -> None:
    """Write the annotations of every inference that has finished by now."""
    settings, world = app[SETTINGS], app[WORLD]
    now = app[SIM_CONTROL].clock()
    for job in world.jobs.values():
        if job.written or now - job.started < settings.job_seconds:
            continue
        job.written = True
        layer = world.layers.setdefault((job.project.id, job.layer), {})
        for sid in dict.fromkeys(job.sources):
            if source_fails(sid, settings):
                continue
            records = []
            for pred in predict(job.model, sid):
                records.append(
                    {
                        "id": world.next_annotation,
                        "sourceId": sid,
                        "layerName": job.layer,
                        "layerId": job.project.layers[job.layer],
                        **pred,
                    }
                )
                world.next_annotation += 1
            layer.setdefault(sid, {})[job.model.id] = records


def _job_state(job: _Job, app: web.Application) -> tuple[str, dict[int, str]]:
    settings = app[SETTINGS]
    elapsed = app[SIM_CONTROL].clock() - job.started
    if elapsed < settings.queued_seconds:
        return "Queued", {}
    if elapsed < settings.job_seconds:
        return settings.running_word, {}
    errors = {
        sid: SOURCE_ERROR.format(sid=sid)
        for sid in dict.fromkeys(job.sources)
        if source_fails(sid, settings)
    }
    if len(errors) == len(set(job.sources)) and settings.errored_when_all_fail:
        return "Errored", errors
    return "Finished", errors


async def submit(request: web.Request) -> web.Response:
    if (refused := _refuse(request, PERM_MODEL_RUN)) is not None:
        return refused
    settings, world = request.app[SETTINGS], request.app[WORLD]
    body = await _json_body(request)
    if body is None:
        return _fail(400, "Request body must be a JSON object.")
    for key in (
        "projectIdentifier",
        "modelIdentifier",
        "sourceIds",
        "outputLayerIdentifier",
        "groupName",
    ):
        if body.get(key) in (None, "", []):
            return _fail(400, f"'{key}' is required.")
    sources = body["sourceIds"]
    if not isinstance(sources, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in sources
    ):
        return _fail(400, "'sourceIds' must be an array of integers.")
    if body["groupName"] not in settings.groups:
        return _fail(404, f"Group '{body['groupName']}' not found.")
    project = _find_project(settings, body["projectIdentifier"])
    if project is None:
        return _fail(404, f"Project '{body['projectIdentifier']}' not found.")
    model = _find_model(settings, body["modelIdentifier"])
    if model is None:
        return _fail(404, f"Model '{body['modelIdentifier']}' not found.")
    layer = _find_layer(project, body["outputLayerIdentifier"])
    if layer is None:
        return _fail(
            404,
            f"Annotation layer '{body['outputLayerIdentifier']}' not found in project "
            f"'{project.name}'.",
        )
    unknown = [s for s in sources if s not in SOURCE_IDS]
    if unknown:
        return _fail(400, f"Sources not found in project '{project.name}': {unknown}.")
    job = _Job(
        id=world.next_job,
        project=project,
        model=model,
        layer=layer[0],
        sources=list(sources),
        started=request.app[SIM_CONTROL].clock(),
    )
    world.next_job += 1
    world.jobs[job.id] = job
    return web.json_response(
        {
            "inferenceJobId": job.id,
            "status": "Queued",
            "projectName": project.name,
            "projectId": project.id,
            "outputLayerName": layer[0],
            "outputLayerId": layer[1],
            "sourceIds": job.sources,
        },
        status=settings.submit_status,
    )


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.match_info[name]
    return int(value) if value.isascii() and value.isdigit() else None


async def job_status(request: web.Request) -> web.Response:
    if (refused := _refuse(request, PERM_MODEL_RUN)) is not None:
        return refused
    job_id = _int_param(request, "job_id")
    job = request.app[WORLD].jobs.get(job_id) if job_id is not None else None
    if job is None:
        return _fail(404, "Inference job not found.")
    _settle(request.app)
    word, errors = _job_state(job, request.app)
    body: dict[str, Any] = {
        "inferenceJobId": job.id,
        "status": word,
        "projectId": job.project.id,
        "sourceIds": job.sources,
    }
    if errors and request.app[SETTINGS].report_source_errors:
        body["errors"] = [{"sourceId": s, "message": m} for s, m in errors.items()]
    if word == "Errored":
        body["error"] = ALL_FAILED
    return web.json_response(body)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


async def start_export(request: web.Request) -> web.Response:
    if (refused := _refuse(request, PERM_READ)) is not None:
        return refused
    settings, world = request.app[SETTINGS], request.app[WORLD]
    body = await _json_body(request)
    if body is None:
        return _fail(400, "Request body must be a JSON object.")
    for key in ("projectIdentifier", "groupName"):
        if body.get(key) in (None, ""):
            return _fail(400, f"'{key}' is required.")
    if body["groupName"] not in settings.groups:
        return _fail(404, f"Group '{body['groupName']}' not found.")
    project = _find_project(settings, body["projectIdentifier"])
    if project is None:
        return _fail(404, f"Project '{body['projectIdentifier']}' not found.")
    layer_names = body.get("annotationLayerNames")
    if layer_names is None:
        layer_names = list(project.layers)
    if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
        return _fail(400, "'annotationLayerNames' must be an array of strings.")
    for name in layer_names:
        if name not in project.layers:
            return _fail(404, f"Annotation layer '{name}' not found in project '{project.name}'.")
    source_ids = body.get("sourceIds")
    if source_ids is not None and (
        not isinstance(source_ids, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in source_ids)
    ):
        return _fail(400, "'sourceIds' must be an array of integers.")

    _settle(request.app)
    annotations: list[dict[str, Any]] = []
    for name in layer_names:
        stored = world.layers.get((project.id, name), {})
        sids = list(dict.fromkeys(source_ids)) if source_ids is not None else sorted(stored)
        for sid in sids:
            for records in stored.get(sid, {}).values():
                annotations.extend(records)
    slug = f"{_slug(project.name)}-{world.next_export}"
    files = {
        f"{slug}.annotations.jsonl": _jsonl(annotations),
        f"{slug}.layers.jsonl": _jsonl(
            [
                {"id": project.layers[n], "name": n, "isGoldSet": n == "Gold Set"}
                for n in layer_names
            ]
        ),
        f"{slug}.relations.jsonl": b"",
    }
    if body.get("includeAnnotationTypes") or body.get("includeSchemas"):
        types = sorted({a["typeName"] for a in annotations})
        files[f"{slug}.atntypes.jsonl"] = _jsonl(
            [{"name": t, "isDocumentClassification": t in DOC_TYPES} for t in types]
        )
    if body.get("includeSources"):
        sids = sorted({a["sourceId"] for a in annotations})
        files[f"{slug}.sources.jsonl"] = _jsonl(
            [_source_record(project, s) for s in sids if s in SOURCE_IDS]
        )
    if body.get("includeTextBounds"):
        files[f"{slug}.text-bounds.jsonl"] = b""
    export = _Export(
        id=world.next_export,
        project=project,
        started=request.app[SIM_CONTROL].clock(),
        files=files,
    )
    world.next_export += 1
    world.exports[export.id] = export
    url = request.url.origin().join(
        request.app.router["export_status"].url_for(export_id=str(export.id))
    )
    return web.json_response(
        {
            "message": "Export Request Successful. Check the status url for progress.",
            "exportStatusUrl": str(url),
            "exportJob": {
                "id": export.id,
                "status": settings.initialized_word,
                "projectId": project.id,
                "isInstrumentsExport": False,
            },
        },
        status=201,
    )


def _signature(app: web.Application, export_id: int) -> str:
    key = app[SETTINGS].api_key.encode()
    return hmac.new(key, f"export-{export_id}".encode(), hashlib.sha256).hexdigest()[:32]


async def export_status(request: web.Request) -> web.Response:
    if (refused := _refuse(request, PERM_READ)) is not None:
        return refused
    settings = request.app[SETTINGS]
    export_id = _int_param(request, "export_id")
    export = request.app[WORLD].exports.get(export_id) if export_id is not None else None
    if export is None:
        return _fail(404, "Export not found.")
    elapsed = request.app[SIM_CONTROL].clock() - export.started
    body: dict[str, Any] = {"id": export.id, "projectId": export.project.id}
    if elapsed < settings.export_seconds / 2:
        body["status"] = settings.initialized_word
    elif elapsed < settings.export_seconds:
        body["status"] = "started"
    elif settings.export_errors:
        body["status"] = "errored"
        body["error"] = "Export failed while writing annotations."
    else:
        filename = f"{_slug(export.project.name)}-{export.id}.zip"
        path = request.app.router["export_download"].url_for(
            export_id=str(export.id), filename=filename
        )
        origin = URL(settings.download_origin) if settings.download_origin else request.url.origin()
        url = origin.join(path).with_query(signature=_signature(request.app, export.id))
        body["status"] = "finished"
        body["downloadUrl"] = str(url)
    return web.json_response(body)


async def download(request: web.Request) -> web.StreamResponse:
    """A signed download: the signature, not an Authorization header, grants it."""
    export_id = _int_param(request, "export_id")
    export = request.app[WORLD].exports.get(export_id) if export_id is not None else None
    given = request.query.get("signature", "")
    if export is None or not hmac.compare_digest(given, _signature(request.app, export.id)):
        return _fail(404, "Export file not found.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in export.files.items():
            archive.writestr(name, data)
    return web.Response(
        body=buf.getvalue(),
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{request.match_info["filename"]}"'},
    )


def _source_record(project: SimProject, sid: int) -> dict[str, Any]:
    doc = source_doc(sid)
    return {
        "sourceId": sid,
        "sourceName": f"contract-{sid}.txt",
        "directoryName": "Uploads",
        "type": "text",
        "text": doc.text,
        "projectId": project.id,
    }


async def get_source(request: web.Request) -> web.Response:
    if (refused := _refuse(request, PERM_READ)) is not None:
        return refused
    sid = _int_param(request, "source_id")
    if sid is None or sid not in SOURCE_IDS:
        return _fail(404, "Source not found.")
    project = request.app[SETTINGS].projects[0]
    doc = source_doc(sid)
    return web.json_response(
        {
            "id": sid,
            "projectName": project.name,
            "projectId": project.id,
            "directoryName": "Uploads",
            "directoryId": 1,
            "name": f"contract-{sid}.txt",
            "sourceName": f"contract-{sid}.txt",
            "type": "text",
            "text": doc.text,
            "url": None,
            "createdAt": datetime(2022, 1, 1, tzinfo=UTC).isoformat(),
            "tags": [],
        }
    )


async def api_key_info(request: web.Request) -> web.Response:
    if (refused := _refuse(request)) is not None:
        return refused
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "name": "simulator",
            "permissions": sorted(settings.permissions),
            "groups": [
                {"groupName": g, "groupId": i + 1, "isSingleUser": False}
                for i, g in enumerate(settings.groups)
            ],
        }
    )


def create_simulator(
    control: SimulatorControl | None = None, settings: SimSettings | None = None
) -> web.Application:
    """The AnnoLab simulator app; ``control`` may be shared with a test (its clock, faults)."""
    if control is None:
        control = SimulatorControl(error_body=error_body)
    elif control.error_body is default_error_body:
        control.error_body = error_body
    app = make_simulator_app(control)
    app[SETTINGS] = settings or SimSettings()
    app[WORLD] = _World()
    app.router.add_post("/v1/infer/batch", submit, name="infer_submit")
    app.router.add_get("/v1/infer/batch/{job_id}", job_status, name="infer_status")
    app.router.add_post("/v1/export/project", start_export, name="export_project")
    app.router.add_get("/v1/export/status/{export_id}", export_status, name="export_status")
    app.router.add_get(
        "/v1/export/download/{export_id}/{filename}", download, name="export_download"
    )
    app.router.add_get("/v1/source/{source_id}", get_source, name="source")
    app.router.add_get("/v1/api-key/info", api_key_info, name="api_key_info")
    return app


def fast_simulator(control: SimulatorControl | None = None) -> web.Application:
    """Inferences end after 0.2 s and exports are ready 0.1 s later."""
    return create_simulator(
        control, SimSettings(job_seconds=0.2, queued_seconds=0.05, export_seconds=0.1)
    )
