"""The LlamaCloud simulator's own wire behaviour (beta files, v2 classify), over HTTP."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

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
Client = TestClient[web.Request, web.Application]


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, clock) -> Client:
    client: Client = await aiohttp_client(fast_simulator(SimulatorControl(clock=clock)))
    return client


async def upload(client: Client, name: str, text: str, purpose: str = "classify") -> str:
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename=name, content_type="text/plain")
    form.add_field("purpose", purpose)
    resp = await client.post("/api/v1/beta/files", data=form, headers=AUTH)
    assert resp.status == 200, await resp.text()
    file_id: str = (await resp.json())["id"]
    return file_id


async def create(client: Client, file_input: str, **extra: Any) -> ClientResponse:
    body = {"file_input": file_input, "configuration": {"rules": RULES}, **extra}
    return await client.post("/api/v2/classify", json=body, headers=AUTH)


async def get(client: Client, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v2/classify/{job_id}", headers=AUTH)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


class TestAuth:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"ApiKey {SIMULATOR_KEY}"}],
        ids=["missing", "wrong-key", "wrong-scheme"],
    )
    async def test_refused(self, client, headers):
        resp = await client.get("/api/v2/classify", headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"detail": "Invalid API key."}


class TestFiles:
    async def test_upload_answers_a_beta_file(self, client):
        form = aiohttp.FormData()
        form.add_field("file", b"hello", filename="a.pdf", content_type="application/pdf")
        form.add_field("purpose", "classify")
        resp = await client.post(
            "/api/v1/beta/files", data=form, headers=AUTH, params={"project_id": "p9"}
        )
        body = await resp.json()
        assert body["id"].startswith("dfl-")
        assert (body["name"], body["file_type"], body["purpose"], body["project_id"]) == (
            "a.pdf",
            "pdf",
            "classify",
            "p9",
        )
        got = await client.get(f"/api/v1/beta/files/{body['id']}", headers=AUTH)
        assert (await got.json())["id"] == body["id"]
        deleted = await client.delete(f"/api/v1/beta/files/{body['id']}", headers=AUTH)
        assert deleted.status == 204
        assert (await client.get(f"/api/v1/beta/files/{body['id']}", headers=AUTH)).status == 404

    async def test_upload_needs_file_and_purpose(self, client):
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="a.txt")
        resp = await client.post("/api/v1/beta/files", data=form, headers=AUTH)
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["body", "purpose"]

    async def test_unknown_purpose_is_400(self, client):
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="a.txt")
        form.add_field("purpose", "lunch")
        resp = await client.post("/api/v1/beta/files", data=form, headers=AUTH)
        assert resp.status == 400

    async def test_uploads_are_rate_limited_per_project(self, aiohttp_client, clock):
        settings = replace(FAST_SETTINGS, upload_rate_limit=2, upload_rate_window=5.0)
        client = await aiohttp_client(fast_simulator(SimulatorControl(clock=clock), settings))
        for n in range(2):
            await upload(client, f"f{n}", "x")
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="f3")
        form.add_field("purpose", "classify")
        resp = await client.post("/api/v1/beta/files", data=form, headers=AUTH)
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "5"
        clock.now += 5.0
        await upload(client, "f4", "x")


class TestClassifyJobs:
    async def test_lifecycle_with_the_result_inline(self, client, clock):
        file_id = await upload(client, "inv.txt", "invoice number 4, amount due $3")
        resp = await create(client, file_id, transaction_id="t-1")
        job = await resp.json()
        assert resp.status == 200
        assert (job["status"], job["file_input"], job["document_input_type"]) == (
            "PENDING",
            file_id,
            "file_id",
        )
        assert job["configuration"]["rules"] == RULES
        assert job["configuration"]["mode"] == "FAST"
        assert (job["transaction_id"], job["result"]) == ("t-1", None)
        clock.now += 0.06
        assert (await get(client, job["id"]))["status"] == "RUNNING"
        clock.now += 0.2
        done = await get(client, job["id"])
        assert done["status"] == "COMPLETED"
        assert done["result"]["type"] == "invoice"
        assert 0.5 < done["result"]["confidence"] <= 1.0

    async def test_a_failing_file_ends_failed_with_a_message(self, client, clock):
        file_id = await upload(client, "scan-fail.txt", "unreadable")
        job = await (await create(client, file_id)).json()
        clock.now += 1.0
        done = await get(client, job["id"])
        assert (done["status"], done["result"]) == ("FAILED", None)
        assert done["error_message"]

    async def test_a_slow_file_runs_longer(self, client, clock):
        slow = await (await create(client, await upload(client, "slow-1.txt", "invoice"))).json()
        quick = await (await create(client, await upload(client, "q.txt", "invoice"))).json()
        clock.now += 0.5
        assert (await get(client, quick["id"]))["status"] == "COMPLETED"
        assert (await get(client, slow["id"]))["status"] == "RUNNING"

    async def test_a_parse_job_is_an_input(self, client):
        job = await (await create(client, "pjb-sample-receipt")).json()
        assert (job["document_input_type"], job["parse_job_id"]) == (
            "parse_job_id",
            "pjb-sample-receipt",
        )

    async def test_a_reused_transaction_id_returns_the_first_job(self, client):
        file_id = await upload(client, "a.txt", "invoice")
        first = await (await create(client, file_id, transaction_id="same")).json()
        again = await (await create(client, "dfl-sample-contract", transaction_id="same")).json()
        assert again["id"] == first["id"]
        assert again["file_input"] == file_id  # the new body is ignored
        other_project = await client.post(
            "/api/v2/classify",
            json={
                "file_input": file_id,
                "configuration": {"rules": RULES},
                "transaction_id": "same",
            },
            headers=AUTH,
            params={"project_id": "elsewhere"},
        )
        assert (await other_project.json())["id"] != first["id"]

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"configuration": {"rules": RULES}}, 400),
            ({"file_input": "dfl-sample-invoice"}, 400),
            ({"file_input": "dfl-sample-invoice", "configuration_id": "cfg-1"}, 404),
            ({"file_input": "dfl-nope", "configuration": {"rules": RULES}}, 404),
            ({"file_input": "dfl-sample-invoice", "configuration": {"rules": []}}, 422),
            (
                {
                    "file_input": "dfl-sample-invoice",
                    "configuration": {"rules": RULES, "mode": "MULTIMODAL"},
                },
                422,
            ),
        ],
        ids=["no-input", "no-config", "unknown-config", "unknown-file", "no-rules", "v1-mode"],
    )
    async def test_bad_creates(self, client, body, status):
        resp = await client.post("/api/v2/classify", json=body, headers=AUTH)
        assert resp.status == status
        assert "detail" in await resp.json()

    async def test_invalid_json_is_422(self, client):
        resp = await client.post(
            "/api/v2/classify", data=b"{", headers={**AUTH, "Content-Type": "application/json"}
        )
        assert resp.status == 422

    async def test_list_filters_by_repeated_job_ids_and_pages(self, client):
        ids = [(await (await create(client, "dfl-sample-invoice")).json())["id"] for _ in range(4)]
        query = [("job_ids", i) for i in ids[:3]]
        first = await (await client.get("/api/v2/classify", headers=AUTH, params=query)).json()
        assert len(first["items"]) == 2 and first["next_page_token"]
        rest = await (
            await client.get(
                "/api/v2/classify",
                headers=AUTH,
                params=[*query, ("page_token", first["next_page_token"])],
            )
        ).json()
        assert rest["next_page_token"] is None
        assert {j["id"] for j in first["items"] + rest["items"]} == set(ids[:3])
        by_status = await (
            await client.get("/api/v2/classify", headers=AUTH, params={"status": "COMPLETED"})
        ).json()
        assert by_status["items"] == []

    async def test_bad_page_params(self, client):
        assert (
            await client.get("/api/v2/classify", headers=AUTH, params={"page_size": "0"})
        ).status == 422
        assert (
            await client.get("/api/v2/classify", headers=AUTH, params={"page_token": "!!"})
        ).status == 400

    async def test_cancel_then_delete(self, client, clock):
        job = await (await create(client, "dfl-sample-invoice")).json()
        path = f"/api/v2/classify/{job['id']}"
        assert (await client.delete(path, headers=AUTH)).status == 400  # still running
        cancelled = await client.post(f"{path}/cancel", headers=AUTH)
        assert (await cancelled.json())["status"] == "CANCELLED"
        clock.now += 5.0
        assert (await get(client, job["id"]))["status"] == "CANCELLED"
        again = await client.post(f"{path}/cancel", headers=AUTH)
        assert again.status == 400
        assert (await client.delete(path, headers=AUTH)).status == 200
        assert (await client.get(path, headers=AUTH)).status == 404

    async def test_a_finished_job_cannot_be_cancelled(self, client, clock):
        job = await (await create(client, "dfl-sample-invoice")).json()
        clock.now += 1.0
        resp = await client.post(f"/api/v2/classify/{job['id']}/cancel", headers=AUTH)
        assert resp.status == 400
        assert "COMPLETED" in (await resp.json())["detail"]

    async def test_unknown_job_is_404(self, client):
        for method, path in (
            ("GET", "/api/v2/classify/nope"),
            ("POST", "/api/v2/classify/nope/cancel"),
            ("DELETE", "/api/v2/classify/nope"),
        ):
            resp = await client.request(method, path, headers=AUTH)
            assert resp.status == 404
            assert await resp.json() == {"detail": "Classify job not found."}

    async def test_faults_answer_with_detail_body(self, client):
        await client.put(
            "/_sim/faults", json={"faults": [{"kind": "status", "status": 503, "times": 1}]}
        )
        resp = await client.get("/api/v2/classify", headers=AUTH)
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
    settings = create_simulator()[SIM_STATE].settings
    assert 1.0 <= settings.pending_seconds + settings.running_seconds <= 10.0
