"""The simulated AnnoLab's catalog routes: the API key, projects and sources.

The official library (annolab 0.7.2) looks a project up before anything else
(``AnnoLab.find_project``: ``GET v1/project/{groupName}/{projectName}``, with the key's
single-user group from ``GET v1/api-key/info`` when no group is given) and finds sources
by path (``Project.find_source``: ``GET v1/source/{owner}/{project}/{directory}/{name}``,
the owner being that single-user group, whoever owns the project). The answers hold
what the library reads (``name``, ``id``, ``groupName``, ``groupId``,
``defaultDirectory``) and what the docs show (docs.annolab.ai source files).

[inferred] A source path's owner may be any group of the key (the library always sends
the user's own group); a project path's owner must be the project's group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.annolab.sim_world import (
    PERM_READ,
    SETTINGS,
    SOURCE_IDS,
    SimProject,
    fail,
    int_param,
    refuse,
    source_doc,
    visible_groups,
)

CREATED = datetime(2022, 1, 1, tzinfo=UTC).isoformat()


def source_record(project: SimProject, sid: int) -> dict[str, Any]:
    """A source as an export's ``*.sources.jsonl`` line holds it."""
    doc = source_doc(sid)
    return {
        "sourceId": sid,
        "sourceName": f"contract-{sid}.txt",
        "directoryName": project.default_directory,
        "type": "text",
        "text": doc.text,
        "projectId": project.id,
    }


def _source(project: SimProject, sid: int) -> dict[str, Any]:
    """``GET v1/source/...``: docs.annolab.ai "source files" (``url`` is null for text)."""
    return {
        "id": sid,
        "projectName": project.name,
        "projectId": project.id,
        "directoryName": project.default_directory,
        "directoryId": 1,
        "name": f"contract-{sid}.txt",
        "sourceName": f"contract-{sid}.txt",
        "type": "text",
        "text": source_doc(sid).text,
        "url": None,
        "createdAt": CREATED,
        "tags": [],
    }


def _source_id(name: str) -> int | None:
    """``contract-4024.txt`` (or without ``.txt``) → 4024, if such a source exists."""
    stem = name.removesuffix(".txt").removeprefix("contract-")
    sid = int(stem) if stem.isascii() and stem.isdigit() else None
    return sid if sid in SOURCE_IDS else None


async def get_source(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    sid = int_param(request, "source_id")
    if sid is None or sid not in SOURCE_IDS:
        return fail(404, "Source not found.")
    return web.json_response(_source(request.app[SETTINGS].projects[0], sid))


async def find_source(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    settings, info = request.app[SETTINGS], request.match_info
    if info["owner"] not in visible_groups(settings):
        return fail(404, f"Group '{info['owner']}' not found.")
    project = next((p for p in settings.projects if p.name == info["project"]), None)
    if project is None:
        return fail(404, f"Project '{info['project']}' not found.")
    sid = _source_id(info["name"])
    if info["directory"] != project.default_directory or sid is None:
        return fail(404, "Source not found.")
    return web.json_response(_source(project, sid))


async def find_project(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    group, name = request.match_info["group"], request.match_info["name"]
    for project in request.app[SETTINGS].projects:
        if project.group == group and project.name == name:
            return web.json_response(project.public())
    return fail(404, f"Project '{group}/{name}' not found.")


async def get_project(request: web.Request) -> web.Response:
    if (refused := refuse(request, PERM_READ)) is not None:
        return refused
    project_id = int_param(request, "project_id")
    for project in request.app[SETTINGS].projects:
        if project.id == project_id:
            return web.json_response(project.public())
    return fail(404, "Project not found.")


async def api_key_info(request: web.Request) -> web.Response:
    """The key's groups: its organisations', and its user's own (``isSingleUser``)."""
    if (refused := refuse(request)) is not None:
        return refused
    settings = request.app[SETTINGS]
    groups = [
        {"groupName": g, "groupId": i + 1, "isSingleUser": False}
        for i, g in enumerate(settings.groups)
    ]
    groups.append(
        {"groupName": settings.user_group, "groupId": len(groups) + 1, "isSingleUser": True}
    )
    return web.json_response(
        {"name": "simulator", "permissions": sorted(settings.permissions), "groups": groups}
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/api-key/info", api_key_info, name="api_key_info")
    r.add_get("/v1/project/{project_id}", get_project, name="project")
    r.add_get("/v1/project/{group}/{name}", find_project, name="project_by_path")
    r.add_get("/v1/source/{source_id}", get_source, name="source")
    r.add_get("/v1/source/{owner}/{project}/{directory}/{name}", find_source, name="source_by_path")
