"""The LlamaCloud simulator's own wire behaviour, over HTTP without the adapter."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from adapters.llamacloud.simulator import (
    FAST_SETTINGS,
    SIM_STATE,
    SIMULATOR_KEY,
    classify,
    create_simulator,
    fast_simulator,
)
from adapters.simulation import SimulatorControl

AUTH = {"Authorization": f"Bearer {SIMULATOR_KEY}"}
RULES = [
    {"type": "invoice", "description": "invoice number and amount due"},
    {"type": "receipt", "description": "store receipt with change given"},
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, clock):
    return await aiohttp_client(fast_simulator(SimulatorControl(clock=clock)))


async def upload(client, name: str, text: str, **params) -> str:
    form = aiohttp.FormData()
    form.add_field("upload_file", text.encode(), filename=name, content_type="text/plain")
    resp = await client.post("/api/v1/files", data=form, headers=AUTH, params=params)
    assert resp.status == 200, await resp.text()
    file_id: str = (await resp.json())["id"]
    return file_id


async def create(
    client: TestClient[web.Request, web.Application],
    file_ids: list[str],
    rules: list[dict[str, str]] = RULES,
) -> ClientResponse:
    return await client.post(
        "/api/v1/classifier/jobs", json={"file_ids": file_ids, "rules": rules}, headers=AUTH
    )


class TestAuth:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"ApiKey {SIMULATOR_KEY}"}],
        ids=["missing", "wrong-key", "wrong-scheme"],
    )
    async def test_refused(self, client, headers):
        resp = await client.get("/api/v1/classifier/jobs", headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"detail": "Invalid API key."}

    async def test_control_routes_need_no_key(self, client):
        resp = await client.get("/_sim/faults")
        assert resp.status == 200


class TestFiles:
    async def test_upload_get_delete(self, client):
        file_id = await upload(client, "doc.txt", "hello")
        resp = await client.get(f"/api/v1/files/{file_id}", headers=AUTH)
        body = await resp.json()
        assert (body["name"], body["file_size"], body["file_type"]) == ("doc.txt", 5, "txt")
        assert (await client.delete(f"/api/v1/files/{file_id}", headers=AUTH)).status == 204
        assert (await client.delete(f"/api/v1/files/{file_id}", headers=AUTH)).status == 404

    async def test_upload_without_field_is_fastapi_422(self, client):
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="x")
        resp = await client.post("/api/v1/files", data=form, headers=AUTH)
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["body", "upload_file"]

    async def test_rate_limit_is_per_project_and_window(self, aiohttp_client, clock):
        app = fast_simulator(
            SimulatorControl(clock=clock), replace(FAST_SETTINGS, upload_rate_limit=1)
        )
        client = await aiohttp_client(app)
        await upload(client, "a", "x", project_id="p1")
        await upload(client, "b", "x", project_id="p2")
        form = aiohttp.FormData()
        form.add_field("upload_file", b"x", filename="c")
        resp = await client.post(
            "/api/v1/files", data=form, headers=AUTH, params={"project_id": "p1"}
        )
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "5"
        assert "Rate limit" in (await resp.json())["detail"]
        clock.now += 5.0
        await upload(client, "c", "x", project_id="p1")


class TestJobs:
    async def test_create_requires_rules(self, client):
        file_id = await upload(client, "a", "x")
        resp = await client.post(
            "/api/v1/classifier/jobs", json={"file_ids": [file_id]}, headers=AUTH
        )
        assert resp.status == 422
        detail = (await resp.json())["detail"]
        assert detail[0]["loc"] == ["body", "rules"]
        assert {"msg", "type"} <= set(detail[0])

    async def test_create_with_unknown_file_is_404(self, client):
        resp = await create(client, ["00000000-0000-0000-0000-000000000000"])
        assert resp.status == 404
        assert "File not found" in (await resp.json())["detail"]

    async def test_invalid_json_is_422(self, client):
        resp = await client.post(
            "/api/v1/classifier/jobs",
            data=b"{",
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert resp.status == 422

    async def test_job_lifecycle_and_result_pages(self, client, clock):
        ids = [await upload(client, f"f{n}", "invoice number, amount due") for n in range(3)]
        resp = await create(client, ids)
        job = await resp.json()
        assert job["status"] == "PENDING"
        assert job["parsing_configuration"] == {"lang": "en", "max_pages": 5, "target_pages": None}
        path = f"/api/v1/classifier/jobs/{job['id']}"
        pending = await (await client.get(f"{path}/results", headers=AUTH)).json()
        assert pending["items"] == []
        clock.now += 0.2
        assert (await (await client.get(path, headers=AUTH)).json())["status"] == "SUCCESS"
        first = await (await client.get(f"{path}/results", headers=AUTH)).json()
        assert len(first["items"]) == 2
        assert first["total_size"] == 3
        second = await (
            await client.get(
                f"{path}/results", headers=AUTH, params={"page_token": first["next_page_token"]}
            )
        ).json()
        assert len(second["items"]) == 1
        assert second["next_page_token"] is None
        seen = [i["file_id"] for i in first["items"] + second["items"]]
        assert seen == ids
        assert all(i["result"]["type"] == "invoice" for i in first["items"])

    async def test_bad_page_params(self, client):
        resp = await create(client, ["dfl-sample-invoice"])
        job_id = (await resp.json())["id"]
        path = f"/api/v1/classifier/jobs/{job_id}/results"
        assert (await client.get(path, headers=AUTH, params={"page_size": "0"})).status == 422
        assert (await client.get(path, headers=AUTH, params={"page_token": "!!"})).status == 400

    async def test_list_pages(self, client):
        for _ in range(3):
            assert (await create(client, ["dfl-sample-invoice"])).status == 200
        first = await (await client.get("/api/v1/classifier/jobs", headers=AUTH)).json()
        assert len(first["items"]) == 2
        rest = await (
            await client.get(
                "/api/v1/classifier/jobs",
                headers=AUTH,
                params={"page_token": first["next_page_token"], "page_size": "10"},
            )
        ).json()
        assert len(rest["items"]) == 1
        assert rest["next_page_token"] is None

    async def test_unknown_job_is_404(self, client):
        for path in ("/api/v1/classifier/jobs/nope", "/api/v1/classifier/jobs/nope/results"):
            resp = await client.get(path, headers=AUTH)
            assert resp.status == 404
            assert await resp.json() == {"detail": "Classify job not found."}

    async def test_faults_answer_with_detail_body(self, client):
        await client.put(
            "/_sim/faults", json={"faults": [{"kind": "status", "status": 503, "times": 1}]}
        )
        resp = await client.get("/api/v1/classifier/jobs", headers=AUTH)
        assert resp.status == 503
        assert await resp.json() == {"detail": "Simulated fault"}


class TestClassify:
    def test_is_deterministic(self):
        assert classify(b"invoice number 5", RULES) == classify(b"invoice number 5", RULES)

    def test_picks_the_rule_with_most_words(self):
        result = classify(b"store receipt, change given; invoice", RULES)
        assert result["type"] == "receipt"
        assert "'receipt'" in result["reasoning"]
        assert 0.55 <= result["confidence"] <= 0.99

    def test_no_match(self):
        result = classify(b"\xff\xfe binary nonsense", RULES)
        assert result["type"] is None
        assert result["confidence"] < 0.1


def test_demo_timing_is_a_few_seconds():
    app = create_simulator()
    assert 1.0 <= app[SIM_STATE].settings.pending_seconds <= 10.0
    assert app[SIM_STATE].settings.results_page_size == 100
