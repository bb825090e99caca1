"""The simulated Modzy model routes: what the official library reads before it submits.

Routes (under ``/api``), each as modzy-sdk 0.11.6 calls it (``models.py``, ``client.py``):

``GET /api/models``                                   a bare array of ``{modelId,
                                                      latestVersion, versions}``; ``name``
                                                      and ``modelId`` filter, ``page``/
                                                      ``per-page`` page (``get_models``);
                                                      the client's construction probes it
``GET /api/models/requirements/account``              hardware options (``Models()`` reads
                                                      ``status``, ``requirementId``,
                                                      ``cpuAmount``, ``memoryAmount``)
``GET /api/models/{id}``                              model details (``get``)
``GET /api/models/{id}/related-models``               models like it (``get_related``)
``GET /api/models/{id}/versions``                     ``[{version}]`` (``get_versions``)
``GET /api/models/{id}/versions/{version}``           version details, with ``inputs``
                                                      (``name``, ``acceptedMediaTypes``,
                                                      ``maximumSize``, ``description``),
                                                      ``outputs`` and ``timeout`` (``get_version``)
``GET /api/models/{id}/versions/{version}/sample-input``   a job body (``get_version_input_sample``)
``GET /api/models/{id}/versions/{version}/sample-output``  a results body

The field names of the answers are the library's (and sdk-go ``model/model.go``'s);
values such as authors, dates and hardware amounts are [inferred].
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.modzy.sim_http import caller, error
from adapters.modzy.sim_models import MODELS, SimIO, SimModel, find_model

#: [inferred] When the simulated models were published.
PUBLISHED = "2021-07-20T01:40:11.187+0000"
#: [inferred] The account's hardware options (the shapes ``Models()`` parses).
REQUIREMENTS = (
    {"requirementId": 1, "status": "ACTIVE", "cpuAmount": "1000m", "memoryAmount": "2Gi"},
    {"requirementId": 2, "status": "ACTIVE", "cpuAmount": "4000m", "memoryAmount": "8Gi"},
)


def _versions(identifier: str) -> list[str]:
    return [m.version for m in MODELS if m.identifier == identifier]


def summary(model: SimModel) -> dict[str, Any]:
    """An entry of the model list (sdk-go ``ModelVersionSummary``)."""
    versions = _versions(model.identifier)
    return {"modelId": model.identifier, "latestVersion": versions[-1], "versions": versions}


def details(model: SimModel) -> dict[str, Any]:
    """``GET /api/models/{id}`` (sdk-go ``ModelDetails``)."""
    return {
        **summary(model),
        "latestActiveVersion": _versions(model.identifier)[-1],
        "author": "Modzy (simulated)",
        "name": model.name,
        "description": model.description,
        "permalink": model.name.lower().replace(" ", "-"),
        "features": [],
        "isActive": True,
        "isRecommended": False,
        "isCommercial": False,
        "tags": [],
        "images": [],
        "snapshotImages": [],
        "lastActiveDateTime": PUBLISHED,
        "visibility": {"scope": "ALL", "teams": []},
    }


def _io(entry: SimIO, *, output: bool) -> dict[str, Any]:
    kind = "mediaType" if output else "acceptedMediaTypes"
    return {
        "name": entry.name,
        kind: entry.media_type,
        "maximumSize": entry.maximum_size,
        "description": entry.description,
    }


def version_details(model: SimModel) -> dict[str, Any]:
    """``GET /api/models/{id}/versions/{version}`` (sdk-go ``ModelVersionDetails``)."""
    return {
        "version": model.version,
        "createdAt": PUBLISHED,
        "updatedAt": PUBLISHED,
        "inputValidationSchema": "",
        "timeout": {"status": 60000, "run": 60000},
        "requirement": {"requirementId": REQUIREMENTS[0]["requirementId"]},
        "inputs": [_io(i, output=False) for i in model.inputs],
        "outputs": [_io(o, output=True) for o in model.outputs],
        "statistics": [],
        "isActive": True,
        "longDescription": model.description,
        "technicalDetails": "",
        "isAvailable": True,
        "sourceType": "",
        "versionHistory": "",
        "status": "active",
        "performanceSummary": "",
        "model": {
            "modelId": model.identifier,
            "latestVersion": _versions(model.identifier)[-1],
            "versions": _versions(model.identifier),
            "name": model.name,
            "author": "Modzy (simulated)",
        },
        "processing": {"minimumParallelCapacity": 0, "maximumParallelCapacity": 1},
    }


def _sample_value(model: SimModel, name: str) -> Any:
    if name == "config.json":
        return '{"labels": ["sports", "politics", "science"]}'
    if model.input_type == "text":
        return "Modzy is great!"
    return "data:image/png;base64,iVBORw0KGgo="


def sample_input(model: SimModel) -> dict[str, Any]:
    """A job body for the model: its input names under one source (as the library reads it)."""
    return {
        "model": {"identifier": model.identifier, "version": model.version},
        "explain": False,
        "input": {
            "type": model.input_type,
            "sources": {"0001": {i.name: _sample_value(model, i.name) for i in model.inputs}},
        },
    }


def sample_output(model: SimModel) -> dict[str, Any]:
    return {
        "jobIdentifier": "<uuid>",
        "total": 1,
        "completed": 1,
        "failed": 0,
        "finished": True,
        "results": {"0001": {"status": "SUCCESSFUL", **{o.name: {} for o in model.outputs}}},
    }


# -- routes ------------------------------------------------------------------------------


def _latest(identifier: str) -> SimModel | None:
    versions = [m for m in MODELS if m.identifier == identifier]
    return versions[-1] if versions else None


def _page(request: web.Request, items: list[Any]) -> list[Any] | web.Response:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per-page", "1000"))
    except ValueError:
        return error(400, "page and per-page must be whole numbers.")
    if page < 1 or per_page < 1:
        return error(400, "page and per-page must be 1 or more.")
    return items[(page - 1) * per_page : page * per_page]


async def list_models(request: web.Request) -> web.Response:
    who = caller(request)
    if isinstance(who, web.Response):
        return who
    wanted_id = request.query.get("modelId")
    wanted_name = request.query.get("name", "").lower()
    found = [
        _latest(identifier)
        for identifier in dict.fromkeys(m.identifier for m in MODELS)
        if wanted_id in (None, identifier)
    ]
    models = [m for m in found if m is not None and wanted_name in m.name.lower()]
    paged = _page(request, [summary(m) for m in models])
    return paged if isinstance(paged, web.Response) else web.json_response(paged)


async def requirements(request: web.Request) -> web.Response:
    who = caller(request)
    if isinstance(who, web.Response):
        return who
    return web.json_response(list(REQUIREMENTS))


def _model(request: web.Request) -> SimModel | web.Response:
    who = caller(request)
    if isinstance(who, web.Response):
        return who
    identifier = request.match_info["model_id"]
    version = request.match_info.get("version")
    model = _latest(identifier) if version is None else find_model(identifier, version)
    if model is None:
        what = f"Model {identifier}" + (f" version {version}" if version else "")
        return error(404, f"{what} not found.")
    return model


async def model_details(request: web.Request) -> web.Response:
    model = _model(request)
    return model if isinstance(model, web.Response) else web.json_response(details(model))


async def related_models(request: web.Request) -> web.Response:
    model = _model(request)
    if isinstance(model, web.Response):
        return model
    others = [_latest(i) for i in dict.fromkeys(m.identifier for m in MODELS)]
    related = [
        {**details(m), "identifier": m.identifier}
        for m in others
        if m is not None and m.identifier != model.identifier
    ]
    return web.json_response(related)


async def versions(request: web.Request) -> web.Response:
    model = _model(request)
    if isinstance(model, web.Response):
        return model
    return web.json_response([{"version": v} for v in _versions(model.identifier)])


async def version(request: web.Request) -> web.Response:
    model = _model(request)
    return model if isinstance(model, web.Response) else web.json_response(version_details(model))


async def input_sample(request: web.Request) -> web.Response:
    model = _model(request)
    return model if isinstance(model, web.Response) else web.json_response(sample_input(model))


async def output_sample(request: web.Request) -> web.Response:
    model = _model(request)
    return model if isinstance(model, web.Response) else web.json_response(sample_output(model))


def add_routes(app: web.Application) -> None:
    """The model routes; the fixed ones first, since ``{model_id}`` would match them."""
    app.router.add_get("/api/models", list_models, name="models")
    app.router.add_get("/api/models/requirements/account", requirements, name="requirements")
    app.router.add_get("/api/models/{model_id}", model_details, name="model")
    app.router.add_get("/api/models/{model_id}/related-models", related_models, name="related")
    app.router.add_get("/api/models/{model_id}/versions", versions, name="versions")
    app.router.add_get("/api/models/{model_id}/versions/{version}", version, name="version")
    app.router.add_get(
        "/api/models/{model_id}/versions/{version}/sample-input", input_sample, name="sample_in"
    )
    app.router.add_get(
        "/api/models/{model_id}/versions/{version}/sample-output",
        output_sample,
        name="sample_out",
    )
