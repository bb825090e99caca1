"""AnnoLab's official library, annolab 0.7.2, as the oracle for our simulator and adapter.

The library is ``requests``-based and synchronous: it runs unmodified in a worker
thread (``asyncio.to_thread``) while the simulator serves on loopback in the test's
loop. Its documented workflow: the key's groups, ``find_project``, ``find_source``,
``Project.export`` (start, poll the status URL, download the zip from the signed link).
The library polls every 5 s; the simulator's exports here are ready at once, so its
first look finds them finished and it never sleeps. Download links point at another
host name (``localhost`` beside ``127.0.0.1``): the library fetches them without its
key, and the simulator refuses a request that carries one.

The library does not wrap ``/v1/infer/batch``: inferences run as the docs' example
client runs them (POST, then poll ``GET /v1/infer/batch/{id}``). Then the adapter and
the library read the same job's annotations, and the requests each sent are compared:
method, path, auth header and body.
"""

from __future__ import annotations

import asyncio
import json
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from annolab import AnnoLab

from adapters.annolab import PROVIDER_TYPE
from adapters.annolab.simulator import SIMULATOR_KEY, SimSettings, create_simulator, source_doc
from adapters.base import InputKind, JobHandle, JobInput, JobRequest, ModelRef, ProviderAdapter
from tests.support import wired_adapter

#: Inferences and exports end at once; download links point at another host name.
QUICK = SimSettings(
    job_seconds=0.0, queued_seconds=0.0, export_seconds=0.0, download_host="localhost"
)
SOURCES = [3240, 4414]
LAYER = "Model Predictions"
NER = "NER Contracts"


@dataclass
class Sent:
    """One request as the simulator received it, body included."""

    method: str
    path: str
    authorization: str | None
    accept: str | None
    #: The body's media type (None without a body: nothing to label).
    media: str | None
    body: Any


def recording(app: web.Application) -> list[Sent]:
    """Append a middleware to ``app`` (before it starts) that keeps every request's body."""
    sent: list[Sent] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""  # kept for the handler
        body = json.loads(raw) if raw else None
        media = request.content_type if raw else None
        headers = request.headers
        sent.append(
            Sent(
                request.method,
                request.path,
                headers.get("Authorization"),
                headers.get("Accept"),
                media,
                body,
            )
        )
        return await handler(request)

    app.middlewares.append(record)
    return sent


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, list[Sent]]]:
    app = create_simulator(None, QUICK)
    sent = recording(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/")).rstrip("/"), sent
    await server.close()


def infer(base: str, sources: list[int] = SOURCES) -> int:
    """An inference as the docs' example client runs it (no library route for it)."""
    headers = {"Authorization": f"Api-Key {SIMULATOR_KEY}"}
    body: dict[str, Any] = {
        "projectIdentifier": "Sample Project",
        "modelIdentifier": NER,
        "sourceIds": sources,
        "outputLayerIdentifier": LAYER,
        "groupName": "Company Name",
    }
    job_id = int(
        requests.post(f"{base}/v1/infer/batch", json=body, headers=headers, timeout=5).json()[
            "inferenceJobId"
        ]
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = requests.get(f"{base}/v1/infer/batch/{job_id}", headers=headers, timeout=5)
        if status.json()["status"] in ("Finished", "Errored"):
            return job_id
        time.sleep(0.01)
    raise AssertionError("the inference never finished")


def annotations_in(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".annotations.jsonl")]
        return [json.loads(line) for line in archive.read(name).decode().splitlines() if line]


class TestTheLibraryWorkflowRunsAgainstTheSimulator:
    async def test_find_the_project_and_a_source_then_export(self, served, tmp_path):
        base, sent = served

        def workflow() -> tuple[dict[str, Any], Any, Any]:
            infer(base)
            lab = AnnoLab(api_key=SIMULATOR_KEY, api_url=base)
            project = lab.find_project("Sample Project", owner_name="Company Name")
            source = project.find_source("contract-3240.txt")
            project.export(str(tmp_path / "export.zip"), include_annotation_types=True)
            return lab.default_owner, project, source

        owner, project, source = await asyncio.to_thread(workflow)
        assert owner["groupName"] == "Simulator User" and owner["isSingleUser"] is True
        assert (project.name, project.id, project.owner_name) == (
            "Sample Project",
            1,
            "Company Name",
        )
        assert project.default_dir == "Uploads"
        assert (source["id"], source["text"]) == (3240, source_doc(3240).text)
        found = annotations_in(tmp_path / "export.zip")
        assert {a["sourceId"] for a in found} == set(SOURCES)
        assert {a["layerName"] for a in found} == {LAYER}
        assert {a["typeName"] for a in found} == {"Party", "Date", "Amount"}
        for a in found:
            start, end = a["offsets"]
            assert source_doc(a["sourceId"]).text[start:end] == a["value"]
        (download,) = [s for s in sent if "/v1/export/download/" in s.path]
        assert download.authorization is None
        assert all(s.authorization == f"Api-Key {SIMULATOR_KEY}" for s in sent if s is not download)

    async def test_the_default_owner_is_the_keys_own_group(self, served):
        """``find_project(name)`` looks in the user's own group, which owns no project here."""
        base, _ = served

        def look() -> None:
            AnnoLab(api_key=SIMULATOR_KEY, api_url=base).find_project("Sample Project")

        with pytest.raises(requests.HTTPError, match="404"):
            await asyncio.to_thread(look)

    async def test_a_wrong_key_is_refused(self, served):
        base, _ = served

        def look() -> None:
            AnnoLab(api_key="wrong", api_url=base).find_project("Sample Project", "Company Name")

        with pytest.raises(requests.HTTPError, match="401"):
            await asyncio.to_thread(look)

    async def test_the_export_filters_of_0_7_2_cannot_be_used(self, served, tmp_path):
        """A library bug, and why the comparison below leaves ``sourceIds`` and
        ``annotationLayerNames`` out: ``ProjectExport.start`` reads them as attributes
        of a dict (``self.options.source_ids``), so passing either raises."""
        base, sent = served

        def export() -> None:
            lab = AnnoLab(api_key=SIMULATOR_KEY, api_url=base)
            project = lab.find_project("Sample Project", owner_name="Company Name")
            project.export(str(tmp_path / "x.zip"), source_ids=SOURCES, layers=[LAYER])

        with pytest.raises(AttributeError, match="source_ids"):
            await asyncio.to_thread(export)
        assert not [s for s in sent if s.path == "/v1/export/project"]


# -- the same job's annotations, through the adapter and through the library -------------


def _shape(s: Sent) -> tuple[Any, ...]:
    """Method, path (export ids as ``{id}``), auth, Accept, the body's media type and the
    body: what must match."""
    parts = s.path.split("/")
    if s.path.startswith(("/v1/export/status/", "/v1/export/download/")):
        parts[4] = "{id}"
    return (s.method, "/".join(parts[:5]), s.authorization, s.accept, s.media, s.body)


async def _step_until_done(adapter: ProviderAdapter, job: JobHandle) -> JobHandle:
    for _ in range(20):
        report = await adapter.status(job)
        if report.state is not None:
            job = replace(job, state=report.state)
        if report.status.done:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the job never finished")


class TestTheAdapterSendsWhatTheLibrarySends:
    async def test_reading_a_jobs_annotations(self, tmp_path):
        # Links on the simulator's own origin: the adapter follows plain http nowhere else.
        settings = replace(QUICK, download_host=None)
        # The adapter, told the project by id (1): it still exports by name.
        app = create_simulator(None, settings)
        ours = recording(app)
        request = JobRequest(
            ModelRef("annolab", NER),
            tuple(JobInput(name=f"s{s}", kind=InputKind.REF, ref=str(s)) for s in SOURCES),
            options={"output_layer": LAYER},
        )
        defaults = {"project": 1, "group": "Company Name"}
        async with wired_adapter(PROVIDER_TYPE, app=app, defaults=defaults) as w:
            submission = await w.adapter.submit(request)
            job = JobHandle(
                submission.upstream_id, request.model, ("s3240", "s4414"), submission.state
            )
            job = await _step_until_done(w.adapter, job)
            results = await w.adapter.results(job)
        assert {len(item.raw) for item in results.items.values()} == {4}

        # The library, after the same inference on a simulator of its own.
        app = create_simulator(None, settings)
        theirs = recording(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("/")).rstrip("/")

        def workflow() -> list[dict[str, Any]]:
            infer(base)
            lab = AnnoLab(api_key=SIMULATOR_KEY, api_url=base)
            project = lab.find_project("Sample Project", owner_name="Company Name")
            project.export(str(tmp_path / "e.zip"), include_annotation_types=True)
            return annotations_in(tmp_path / "e.zip")

        try:
            exported = await asyncio.to_thread(workflow)
        finally:
            await server.close()
        raw = [r for item in results.items.values() for r in item.raw]
        assert sorted(raw, key=lambda a: a["id"]) == sorted(exported, key=lambda a: a["id"])

        exporting = ("/v1/export/", "/v1/export/status/", "/v1/export/download/")
        mine = [_shape(s) for s in ours if s.path.startswith(exporting)]
        library = [_shape(s) for s in theirs if s.path.startswith(exporting)]
        (start, _status, download) = mine
        assert start[5].pop("sourceIds") == SOURCES  # the filters the library cannot send
        assert start[5].pop("annotationLayerNames") == [LAYER]
        # Accept: the library (on requests) sends */* everywhere; the adapter names what it
        # reads, JSON and then the zip (a deliberate difference, both accepted by any
        # server that honours */*).
        zip_types = "application/zip, application/octet-stream"
        assert [m[3] for m in mine] == ["application/json", "application/json", zip_types]
        assert [lib[3] for lib in library] == ["*/*"] * 3
        assert [m[:3] + m[4:] for m in mine] == [lib[:3] + lib[4:] for lib in library]
        assert start == (
            "POST",
            "/v1/export/project",
            f"Api-Key {SIMULATOR_KEY}",
            "application/json",  # Accept
            "application/json",  # the body's type
            {
                "projectIdentifier": "Sample Project",
                "groupName": "Company Name",
                "includeAnnotationTypes": True,
                "includeSources": False,
                "includeTextBounds": False,
            },
        )
        assert download[2] is None
