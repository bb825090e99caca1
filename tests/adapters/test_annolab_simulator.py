"""The AnnoLab simulator on its own: auth, error bodies, routes, the export zip."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from yarl import URL

from adapters.annolab.simulator import (
    GROUP,
    MODELS,
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    predict,
    source_doc,
)
from adapters.simulation import SimulatorControl

KEY = {"Authorization": f"Api-Key {SIMULATOR_KEY}"}
SUBMIT = {
    "projectIdentifier": "Sample Project",
    "modelIdentifier": "NER Contracts",
    "sourceIds": [3240, 4414],
    "outputLayerIdentifier": "Gold Set",
    "groupName": "Company Name",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, clock):
    settings = SimSettings(job_seconds=2.0, queued_seconds=1.0, export_seconds=1.0)
    return await aiohttp_client(create_simulator(SimulatorControl(clock=clock), settings))


class TestAuth:
    @pytest.mark.parametrize(
        "scheme",
        ["Api-Key", "Api-key", "api-key", "API-KEY"],
        ids=["doc", "lower-k", "lower", "upper"],
    )
    async def test_scheme_is_case_insensitive(self, client, scheme):
        resp = await client.get(
            "/v1/api-key/info", headers={"Authorization": f"{scheme} {SIMULATOR_KEY}"}
        )
        assert resp.status == 200
        body = await resp.json()
        assert body["groups"][0]["groupName"] == "Company Name"

    @pytest.mark.parametrize(
        ("headers", "message"),
        [
            ({}, "Authentication credentials were not provided."),
            ({"Authorization": "Api-Key wrong"}, "Invalid API key."),
            ({"Authorization": f"Bearer {SIMULATOR_KEY}"}, "Invalid API key."),
        ],
        ids=["missing", "wrong-key", "wrong-scheme"],
    )
    async def test_refused_key_is_401_with_a_message(self, client, headers, message):
        resp = await client.post("/v1/infer/batch", json=SUBMIT, headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"message": message}

    async def test_missing_permission_is_403(self, aiohttp_client):
        client = await aiohttp_client(
            create_simulator(None, SimSettings(permissions=frozenset({"Model Run"})))
        )
        body = {"projectIdentifier": "Sample Project", "groupName": "Company Name"}
        resp = await client.post("/v1/export/project", json=body, headers=KEY)
        assert resp.status == 403
        assert "Read" in (await resp.json())["message"]


class TestInference:
    async def test_submit_answers_the_documented_shape(self, client):
        resp = await client.post("/v1/infer/batch", json=SUBMIT, headers=KEY)
        assert resp.status == 200
        assert await resp.json() == {
            "inferenceJobId": 12,
            "status": "Queued",
            "projectName": "Sample Project",
            "projectId": 1,
            "outputLayerName": "Gold Set",
            "outputLayerId": 12,
            "sourceIds": [3240, 4414],
        }

    async def test_status_walks_queued_running_finished(self, client, clock):
        job = await (await client.post("/v1/infer/batch", json=SUBMIT, headers=KEY)).json()
        words = []
        for at in (0.0, 1.5, 2.0):
            clock.now = at
            resp = await client.get(f"/v1/infer/batch/{job['inferenceJobId']}", headers=KEY)
            body = await resp.json()
            words.append(body["status"])
        assert words == ["Queued", "Running", "Finished"]
        assert body == {
            "inferenceJobId": 12,
            "status": "Finished",
            "projectId": 1,
            "sourceIds": [3240, 4414],
        }

    async def test_failing_sources_are_listed_on_the_finished_job(self, client, clock):
        body = {**SUBMIT, "sourceIds": [3240, 4413]}
        job = await (await client.post("/v1/infer/batch", json=body, headers=KEY)).json()
        clock.now = 5
        status = await (
            await client.get(f"/v1/infer/batch/{job['inferenceJobId']}", headers=KEY)
        ).json()
        assert status["status"] == "Finished"
        assert [e["sourceId"] for e in status["errors"]] == [4413]

    @pytest.mark.parametrize("job_id", ["abc", "12.5", "999"], ids=["word", "decimal", "unknown"])
    async def test_unknown_or_non_integer_job_is_404_json(self, client, job_id):
        resp = await client.get(f"/v1/infer/batch/{job_id}", headers=KEY)
        assert resp.status == 404
        assert await resp.json() == {"message": "Inference job not found."}

    @pytest.mark.parametrize(
        ("change", "status"),
        [
            ({"sourceIds": "3240"}, 400),
            ({"sourceIds": []}, 400),
            ({"groupName": None}, 400),
            ({"sourceIds": [5]}, 400),
            ({"projectIdentifier": "Nope"}, 404),
            ({"modelIdentifier": "Nope"}, 404),
            ({"outputLayerIdentifier": 99}, 404),
        ],
        ids=["ids-string", "ids-empty", "no-group", "unknown-source", "project", "model", "layer"],
    )
    async def test_bad_submit_answers_with_a_message(self, client, change, status):
        resp = await client.post("/v1/infer/batch", json={**SUBMIT, **change}, headers=KEY)
        assert resp.status == status
        assert isinstance((await resp.json())["message"], str)


class TestExport:
    async def test_export_round_trip_serves_the_layer_as_a_zip(self, client, clock):
        job = await (await client.post("/v1/infer/batch", json=SUBMIT, headers=KEY)).json()
        clock.now = 2.0
        await client.get(f"/v1/infer/batch/{job['inferenceJobId']}", headers=KEY)
        resp = await client.post(
            "/v1/export/project",
            json={
                "projectIdentifier": "Sample Project",
                "groupName": "Company Name",
                "includeAnnotationTypes": True,
                "sourceIds": [3240],
                "annotationLayerNames": ["Gold Set"],
            },
            headers=KEY,
        )
        assert resp.status == 201
        started = await resp.json()
        assert started["exportJob"]["status"] == "initialized"
        status_url = started["exportStatusUrl"]
        assert status_url == str(client.make_url(f"/v1/export/status/{started['exportJob']['id']}"))

        words = []
        for at in (2.0, 2.6, 3.0):
            clock.now = at
            words.append(await (await client.session.get(status_url, headers=KEY)).json())
        assert [w["status"] for w in words] == ["initialized", "started", "finished"]

        download_url = words[-1]["downloadUrl"]
        async with client.session.get(download_url.split("?")[0]) as unsigned:
            assert unsigned.status == 404
        resp = await client.session.get(download_url)  # signed: no Authorization needed
        assert resp.status == 200
        assert resp.content_type == "application/zip"
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as archive:
            names = archive.namelist()
            (ann_file,) = [n for n in names if n.endswith(".annotations.jsonl")]
            rows = [json.loads(line) for line in archive.read(ann_file).splitlines()]
        assert any(n.endswith(".atntypes.jsonl") for n in names)
        assert {r["sourceId"] for r in rows} == {3240}
        assert [r["typeName"] for r in rows] == ["Party", "Party", "Date", "Amount"]
        assert all(r["layerName"] == "Gold Set" for r in rows)

    async def test_unknown_export_layer_is_404(self, client):
        body = {
            "projectIdentifier": "Sample Project",
            "groupName": "Company Name",
            "annotationLayerNames": ["Nope"],
        }
        resp = await client.post("/v1/export/project", json=body, headers=KEY)
        assert resp.status == 404


class TestSources:
    async def test_source_has_deterministic_text(self, client):
        resp = await client.get("/v1/source/4024", headers=KEY)
        body = await resp.json()
        assert body["id"] == 4024
        assert body["text"] == source_doc(4024).text
        missing = await client.get("/v1/source/12", headers=KEY)
        assert missing.status == 404
        assert await missing.json() == {"message": "Source not found."}

    def test_predictions_point_into_the_source_text(self):
        ner = next(m for m in MODELS if m.name == "NER Contracts")
        text = source_doc(5853).text
        for ann in predict(ner, 5853):
            start, end = ann["offsets"]
            assert text[start:end] == ann["value"]
        assert predict(ner, 5853) == predict(ner, 5853)
        assert source_doc(5853) != source_doc(5854)


class TestCatalog:
    """What the official library (annolab 0.7.2) asks before it exports anything."""

    async def test_the_key_has_a_single_user_group(self, client):
        body = await (await client.get("/v1/api-key/info", headers=KEY)).json()
        own = [g for g in body["groups"] if g["isSingleUser"]]
        assert [g["groupName"] for g in own] == ["Simulator User"]

    async def test_projects_by_path_and_by_id(self, client):
        resp = await client.get("/v1/project/Company Name/Sample Project", headers=KEY)
        body = await resp.json()
        assert (body["name"], body["id"], body["groupName"]) == ("Sample Project", 1, GROUP)
        assert body["defaultDirectory"] == "Uploads" and isinstance(body["groupId"], int)
        assert (await (await client.get("/v1/project/2", headers=KEY)).json())["name"] == (
            "My Project"
        )
        for path in ("/v1/project/Simulator User/Sample Project", "/v1/project/99"):
            assert (await client.get(path, headers=KEY)).status == 404

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/v1/source/Simulator User/Sample Project/Uploads/contract-4024.txt", 200),
            ("/v1/source/Company Name/My Project/Uploads/contract-4024", 200),
            ("/v1/source/Company Name/Sample Project/Other/contract-4024.txt", 404),
            ("/v1/source/Company Name/Sample Project/Uploads/contract-12.txt", 404),
            ("/v1/source/Nobody/Sample Project/Uploads/contract-4024.txt", 404),
        ],
        ids=["user-group", "org-group-no-suffix", "directory", "no-such-source", "group"],
    )
    async def test_sources_by_path(self, client, path, status):
        resp = await client.get(path, headers=KEY)
        assert resp.status == status
        if status == 200:
            body = await resp.json()
            assert (body["id"], body["text"]) == (4024, source_doc(4024).text)

    async def test_a_download_link_refuses_a_request_that_carries_the_key(self, client, clock):
        body = {"projectIdentifier": "Sample Project", "groupName": "Company Name"}
        started = await (await client.post("/v1/export/project", json=body, headers=KEY)).json()
        clock.now += 5
        status_path = URL(started["exportStatusUrl"]).path
        status = await (await client.get(status_path, headers=KEY)).json()
        link = URL(status["downloadUrl"])
        assert (await client.get(link.path_qs)).status == 200
        keyed = await client.get(link.path_qs, headers=KEY)
        assert keyed.status == 400 and "one auth mechanism" in (await keyed.json())["message"]
