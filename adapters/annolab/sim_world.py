"""The simulated AnnoLab's world: settings, projects, models, synthetic sources, auth.

Shared by the route modules (simulator.py: inferences; sim_export.py: project exports;
sim_catalog.py: the API key, projects and sources). simulator.py's docstring describes
the world. ``settle`` writes finished inferences' annotations into their layers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.simulation import SIM_CONTROL

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
    #: The group that owns the project (its path is ``{group}/{name}``).
    group: str = GROUP
    group_id: int = 1
    default_directory: str = "Uploads"

    def public(self) -> dict[str, Any]:
        """What project lookups answer; the library reads ``name``, ``id``, ``groupName``,
        ``groupId`` and ``defaultDirectory`` (annolab 0.7.2 ``project.py``)."""
        return {
            "id": self.id,
            "name": self.name,
            "groupName": self.group,
            "groupId": self.group_id,
            "defaultDirectory": self.default_directory,
            "isPublic": False,
            "layers": [{"id": lid, "name": n} for n, lid in self.layers.items()],
        }


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
    #: [inferred] Or only another host name for it, on this server's scheme and port
    #: (``localhost`` beside ``127.0.0.1``): another host that tests can serve.
    download_host: str | None = None
    #: The API key's permissions on every project.
    permissions: frozenset[str] = frozenset({PERM_MODEL_RUN, PERM_READ, PERM_WRITE})
    groups: tuple[str, ...] = (GROUP,)
    #: [doc] The key's user has a single-user group of their own (the library's
    #: ``default_owner``: annolab 0.7.2 ``api_helper.py``); it owns no project here.
    user_group: str = "Simulator User"
    projects: tuple[SimProject, ...] = PROJECTS
    models: tuple[SimModel, ...] = MODELS


@dataclass
class SimJob:
    id: int
    project: SimProject
    model: SimModel
    layer: str
    sources: list[int]
    started: float
    written: bool = False


@dataclass
class SimExport:
    id: int
    project: SimProject
    started: float
    files: dict[str, bytes]


@dataclass
class SimWorld:
    jobs: dict[int, SimJob] = field(default_factory=dict)
    exports: dict[int, SimExport] = field(default_factory=dict)
    #: (project id, layer name) → source id → model id → annotation records
    layers: dict[tuple[int, str], dict[int, dict[int, list[dict[str, Any]]]]] = field(
        default_factory=dict
    )
    next_job: int = 12
    next_export: int = 341
    next_annotation: int = 44


SETTINGS = web.AppKey("annolab_sim_settings", SimSettings)
WORLD = web.AppKey("annolab_sim_world", SimWorld)


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


def visible_groups(settings: SimSettings) -> tuple[str, ...]:
    return (*settings.groups, settings.user_group)


def find_project(settings: SimSettings, ident: Any) -> SimProject | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for project in settings.projects:
        if text == project.name or (text.isdigit() and int(text) == project.id):
            return project
    return None


def find_model(settings: SimSettings, ident: Any) -> SimModel | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for model in settings.models:
        if text == model.name or (text.isdigit() and int(text) == model.id):
            return model
    return None


def find_layer(project: SimProject, ident: Any) -> tuple[str, int] | None:
    text = str(ident).strip() if isinstance(ident, str | int) else ""
    for name, lid in project.layers.items():
        if text == name or (text.isdigit() and int(text) == lid):
            return name, lid
    return None


# -- HTTP ------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^\s*api-key\s+(?P<key>\S+)\s*$", re.IGNORECASE)


def fail(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status)


def refuse(request: web.Request, permission: str | None = None) -> web.Response | None:
    header = request.headers.get("Authorization")
    if not header:
        return fail(401, "Authentication credentials were not provided.")
    match = _SCHEME.match(header)
    settings = request.app[SETTINGS]
    if match is None or not hmac.compare_digest(match["key"], settings.api_key):
        return fail(401, "Invalid API key.")
    if permission is not None and permission not in settings.permissions:
        return fail(403, f"This API key does not have the '{permission}' permission.")
    return None


async def json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def int_param(request: web.Request, name: str) -> int | None:
    value = request.match_info[name]
    return int(value) if value.isascii() and value.isdigit() else None


def settle(app: web.Application) -> None:
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
