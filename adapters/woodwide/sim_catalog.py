"""The Wood Wide simulator's catalog routes: models and datasets, in the library's shapes.

``GET /models`` and ``GET /datasets`` answer ``{"items": [...], "next_cursor"}``
(woodwide 0.9.0 ``types/list_models_response.py``, ``types/dataset_list_response.py``);
``GET /models/{id}`` a ``Model``, ``GET /datasets/{id}`` a ``Dataset``. One page holds
everything: the simulated catalog is small.
"""

from __future__ import annotations

from aiohttp import web

from adapters.woodwide.sim_state import SIM_STATE, error_body, refuse, respond


async def list_models(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    models = request.app[SIM_STATE].settings.models
    return web.json_response({"items": [m.public() for m in models], "next_cursor": None})


async def get_model(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    for model in request.app[SIM_STATE].settings.models:
        if model.id == request.match_info["model_id"]:
            return web.json_response(model.public())
    return respond(404, error_body(404, "Model not found"))


async def list_datasets(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    datasets = request.app[SIM_STATE].settings.datasets
    return web.json_response({"items": [d.public() for d in datasets], "next_cursor": None})


async def get_dataset(request: web.Request) -> web.Response:
    if (refused := refuse(request)) is not None:
        return refused
    for dataset in request.app[SIM_STATE].settings.datasets:
        if dataset.id == request.match_info["dataset_id"]:
            return web.json_response(dataset.public())
    return respond(404, error_body(404, "Dataset not found"))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/models", list_models, name="models")
    r.add_get("/models/{model_id}", get_model, name="model")
    r.add_get("/datasets", list_datasets, name="datasets")
    r.add_get("/datasets/{dataset_id}", get_dataset, name="dataset")
