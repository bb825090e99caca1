"""A simulated AnnoLab API: model inferences, project exports and sources.

Routes (under the app root; the demo mounts it at ``/annolab/``):

``POST /v1/infer/batch``              submit ``{projectIdentifier, modelIdentifier, sourceIds,
                                      outputLayerIdentifier, groupName}`` → ``inferenceJobId`` (int)
``GET  /v1/infer/batch/{id}``         ``Queued`` → ``Running`` → ``Finished`` | ``Errored``
``POST /v1/export/project``           201 ``{message, exportStatusUrl, exportJob}`` (sim_export.py
                                      has the three export routes)
``GET  /v1/export/status/{id}``       ``initialized`` → ``started`` → ``finished`` (``downloadUrl``)
``GET  /v1/export/download/{id}/{f}`` the zip (``*.annotations.jsonl``, ``*.layers.jsonl``, ...),
                                      by a signed URL like S3's: no Authorization needed, and
                                      a request that carries one is refused
``GET  /v1/api-key/info``             the key's groups (one of them its user's own) and permissions
``GET  /v1/project/{group}/{name}``   a project by path, or ``/v1/project/{id}`` by id
``GET  /v1/source/{id}``              a source and its synthetic text, or by path:
``GET  /v1/source/{owner}/{project}/{directory}/{name}``  (sim_catalog.py has these four)

Auth is ``Authorization: Api-Key <key>`` (the scheme in any case); errors are
``{"message": ...}``: 400 validation, 401 missing or wrong key, 403 missing
permission, 404 unknown job, project, layer, model, group or source.

The world (sim_world.py): group "Company Name" and the key's user's own group
"Simulator User"; "Company Name"'s projects "Sample Project" (id 1) and "My Project"
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
Everything [inferred] in PROVIDERS.md is a ``SimSettings`` switch; docs/providers/
annolab.md says what comes from the official library, the docs, or inference.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.annolab import sim_catalog
from adapters.annolab.sim_export import download, export_status, start_export
from adapters.annolab.sim_world import (
    ALL_FAILED,
    DOC_TYPES,
    GROUP,
    MODELS,
    PERM_MODEL_RUN,
    PROJECTS,
    SETTINGS,
    SIMULATOR_KEY,
    SOURCE_ERROR,
    SOURCE_IDS,
    WORLD,
    SimJob,
    SimModel,
    SimProject,
    SimSettings,
    SimWorld,
    error_body,
    fail,
    find_layer,
    find_model,
    find_project,
    int_param,
    json_body,
    predict,
    refuse,
    settle,
    source_doc,
    source_fails,
)
from adapters.simulation import (
    SIM_CONTROL,
    SimulatorControl,
    default_error_body,
    make_simulator_app,
)

__all__ = [
    "DOC_TYPES",
    "GROUP",
    "MODELS",
    "PROJECTS",
    "SIMULATOR_KEY",
    "SimModel",
    "SimProject",
    "SimSettings",
    "create_simulator",
    "error_body",
    "fast_simulator",
    "predict",
    "source_doc",
]


def _job_state(job: SimJob, app: web.Application) -> tuple[str, dict[int, str]]:
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
    if (refused := refuse(request, PERM_MODEL_RUN)) is not None:
        return refused
    settings, world = request.app[SETTINGS], request.app[WORLD]
    body = await json_body(request)
    if body is None:
        return fail(400, "Request body must be a JSON object.")
    for key in (
        "projectIdentifier",
        "modelIdentifier",
        "sourceIds",
        "outputLayerIdentifier",
        "groupName",
    ):
        if body.get(key) in (None, "", []):
            return fail(400, f"'{key}' is required.")
    sources = body["sourceIds"]
    if not isinstance(sources, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in sources
    ):
        return fail(400, "'sourceIds' must be an array of integers.")
    if body["groupName"] not in settings.groups:
        return fail(404, f"Group '{body['groupName']}' not found.")
    project = find_project(settings, body["projectIdentifier"])
    if project is None:
        return fail(404, f"Project '{body['projectIdentifier']}' not found.")
    model = find_model(settings, body["modelIdentifier"])
    if model is None:
        return fail(404, f"Model '{body['modelIdentifier']}' not found.")
    layer = find_layer(project, body["outputLayerIdentifier"])
    if layer is None:
        return fail(
            404,
            f"Annotation layer '{body['outputLayerIdentifier']}' not found in project "
            f"'{project.name}'.",
        )
    unknown = [s for s in sources if s not in SOURCE_IDS]
    if unknown:
        return fail(400, f"Sources not found in project '{project.name}': {unknown}.")
    job = SimJob(
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


async def job_status(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_MODEL_RUN)) is not None:
        return refused
    job_id = int_param(request, "job_id")
    job = request.app[WORLD].jobs.get(job_id) if job_id is not None else None
    if job is None:
        return fail(404, "Inference job not found.")
    settle(request.app)
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
    app[WORLD] = SimWorld()
    app.router.add_post("/v1/infer/batch", submit, name="infer_submit")
    app.router.add_get("/v1/infer/batch/{job_id}", job_status, name="infer_status")
    app.router.add_post("/v1/export/project", start_export, name="export_project")
    app.router.add_get("/v1/export/status/{export_id}", export_status, name="export_status")
    app.router.add_get(
        "/v1/export/download/{export_id}/{filename}", download, name="export_download"
    )
    sim_catalog.add_routes(app)
    return app


def fast_simulator(control: SimulatorControl | None = None) -> web.Application:
    """Inferences end after 0.2 s and exports are ready 0.1 s later."""
    return create_simulator(
        control, SimSettings(job_seconds=0.2, queued_seconds=0.05, export_seconds=0.1)
    )
