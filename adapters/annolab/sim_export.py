"""The simulated AnnoLab's project exports: start, status, and the signed download.

``POST /v1/export/project`` answers 201 with an absolute ``exportStatusUrl``; the status
goes ``initialized`` → ``started`` → ``finished`` (with a signed ``downloadUrl``) or
``errored`` on ``control.clock()``; the download is a zip of JSONL files, granted by
its signature alone. What comes from the official library and what is inferred:
docs/providers/annolab.md.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zipfile
from typing import Any

from aiohttp import web
from yarl import URL

from adapters.annolab.sim_catalog import source_record
from adapters.annolab.sim_world import (
    DOC_TYPES,
    PERM_READ,
    SETTINGS,
    SOURCE_IDS,
    WORLD,
    SimExport,
    fail,
    find_project,
    int_param,
    json_body,
    refuse,
    settle,
)
from adapters.simulation import SIM_CONTROL


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


async def start_export(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    settings, world = request.app[SETTINGS], request.app[WORLD]
    body = await json_body(request)
    if body is None:
        return fail(400, "Request body must be a JSON object.")
    for key in ("projectIdentifier", "groupName"):
        if body.get(key) in (None, ""):
            return fail(400, f"'{key}' is required.")
    if body["groupName"] not in settings.groups:
        return fail(404, f"Group '{body['groupName']}' not found.")
    project = find_project(settings, body["projectIdentifier"])
    if project is None:
        return fail(404, f"Project '{body['projectIdentifier']}' not found.")
    layer_names = body.get("annotationLayerNames")
    if layer_names is None:
        layer_names = list(project.layers)
    if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
        return fail(400, "'annotationLayerNames' must be an array of strings.")
    for name in layer_names:
        if name not in project.layers:
            return fail(404, f"Annotation layer '{name}' not found in project '{project.name}'.")
    source_ids = body.get("sourceIds")
    if source_ids is not None and (
        not isinstance(source_ids, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in source_ids)
    ):
        return fail(400, "'sourceIds' must be an array of integers.")

    settle(request.app)
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
            [source_record(project, s) for s in sids if s in SOURCE_IDS]
        )
    if body.get("includeTextBounds"):
        files[f"{slug}.text-bounds.jsonl"] = b""
    export = SimExport(
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
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    settings = request.app[SETTINGS]
    export_id = int_param(request, "export_id")
    export = request.app[WORLD].exports.get(export_id) if export_id is not None else None
    if export is None:
        return fail(404, "Export not found.")
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
        origin = request.url.origin()
        if settings.download_origin:
            origin = URL(settings.download_origin)
        elif settings.download_host:
            origin = origin.with_host(settings.download_host)
        url = origin.join(path).with_query(signature=_signature(request.app, export.id))
        body["status"] = "finished"
        body["downloadUrl"] = str(url)
    return web.json_response(body)


async def download(request: web.Request) -> web.StreamResponse:
    """A signed download: the signature, not an Authorization header, grants it.

    Like a storage host (S3: 400 "Only one auth mechanism allowed"), it refuses a
    request that carries a key as well: the key must never travel to where a link points.
    """
    if "Authorization" in request.headers:
        return fail(400, "Only one auth mechanism allowed: the link is signed.")
    export_id = int_param(request, "export_id")
    export = request.app[WORLD].exports.get(export_id) if export_id is not None else None
    given = request.query.get("signature", "")
    if export is None or not hmac.compare_digest(given, _signature(request.app, export.id)):
        return fail(404, "Export file not found.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in export.files.items():
            archive.writestr(name, data)
    return web.Response(
        body=buf.getvalue(),
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{request.match_info["filename"]}"'},
    )
