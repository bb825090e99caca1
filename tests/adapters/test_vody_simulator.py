"""The Vody simulator speaks Vody's documented wire API (and the [inferred] parts as set)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from adapters.simulation import SimulatorControl
from adapters.vody import PROVIDER_TYPE
from adapters.vody.simulator import SIMULATOR_KEY, SimSettings, create_simulator, predict

KEY = {"x-vody-api-key": SIMULATOR_KEY, "accept": "application/json"}
ITEMS = [
    {"image_path": "https://x/0.png", "product_type": "Shoes", "hex_color_label": "#FE2934"},
    {"image_path": "https://x/fail.png", "product_type": "Shoes", "category": "Fashion"},
]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(aiohttp_client, clock):
    async def make(**settings: Any):
        app = create_simulator(SimulatorControl(clock=clock), SimSettings(**settings))
        return await aiohttp_client(app)

    return make


async def submit(client, items: Any = ITEMS, model: str = "color-classification") -> str:
    resp = await client.post(f"/inference/{model}", json=items, headers=KEY)
    assert resp.status == 200
    inference_id: str = (await resp.json())["id"]
    return inference_id


class TestAuth:
    @pytest.mark.parametrize(
        ("headers", "status", "body"),
        [
            ({}, 401, {"message": "Unauthorized"}),
            ({"x-vody-api-key": "nope"}, 403, {"message": "Forbidden"}),
        ],
        ids=["missing", "wrong"],
    )
    @pytest.mark.parametrize(
        ("method", "path"),
        [("POST", "/inference/color-classification"), ("GET", "/inference/abc/status")],
        ids=["submit", "status"],
    )
    async def test_refuses_without_the_key(self, make_client, headers, status, body, method, path):
        client = await make_client()
        resp = await client.request(method, path, json=ITEMS, headers=headers)
        assert resp.status == status
        assert await resp.json() == body


class TestSubmit:
    async def test_answer_carries_id_status_and_string_count(self, make_client):
        client = await make_client()
        resp = await client.post("/inference/color-classification", json=ITEMS, headers=KEY)
        body = await resp.json()
        assert resp.status == 200
        assert re.fullmatch(r"[0-9a-f-]{36}", body["id"])
        assert body["status"] == "in_progress"
        assert body["model"] == "color-classification"
        assert body["request_item_count"] == "2"

    async def test_id_key_and_status_are_switches(self, make_client):
        client = await make_client(
            id_key="inference-id", submit_status=202, numbers_as_strings=False
        )
        resp = await client.post("/inference/color-classification", json=ITEMS, headers=KEY)
        body = await resp.json()
        assert resp.status == 202
        assert "inference-id" in body
        assert "id" not in body
        assert body["request_item_count"] == 2

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            ({"image_path": "x", "product_type": "y"}, "non-empty JSON array"),
            ([], "non-empty JSON array"),
            (["x"], "must be an object"),
            ([{"image_path": "x"}], "'product_type' is required"),
            ([{"product_type": "x", "image_path": ""}], "'image_path' is required"),
        ],
        ids=["object", "empty", "not-objects", "no-product-type", "empty-path"],
    )
    @pytest.mark.parametrize("status", [400, 422])
    async def test_invalid_bodies_are_refused(self, make_client, body, words, status):
        client = await make_client(invalid_body_status=status)
        resp = await client.post("/inference/color-classification", json=body, headers=KEY)
        assert resp.status == status
        assert words in (await resp.json())["message"]

    async def test_not_json_is_refused(self, make_client):
        client = await make_client()
        resp = await client.post("/inference/color-classification", data=b"[{", headers=KEY)
        assert resp.status == 400

    async def test_too_many_items_are_refused(self, make_client):
        client = await make_client(max_items=1)
        resp = await client.post("/inference/color-classification", json=ITEMS, headers=KEY)
        assert resp.status == 400
        assert "at most 1" in (await resp.json())["message"]

    async def test_unknown_model_is_not_found(self, make_client):
        client = await make_client()
        resp = await client.post("/inference/size-classification", json=ITEMS, headers=KEY)
        assert resp.status == 404
        assert await resp.json() == {"message": "Not Found"}


class TestStatusAndResults:
    async def test_in_progress_then_completed_with_strings_and_timestamps(self, make_client, clock):
        client = await make_client(job_seconds=2.0)
        inference_id = await submit(client)
        running = await (await client.get(f"/inference/{inference_id}/status", headers=KEY)).json()
        assert running["status"] == "in_progress"
        assert running["request_item_count"] == "2"
        early = await client.get(f"/inference/{inference_id}/results", headers=KEY)
        assert early.status == 404

        clock.now += 2.5
        done = await (await client.get(f"/inference/{inference_id}/status", headers=KEY)).json()
        assert done["id"] == inference_id
        assert done["status"] == "completed"
        assert done["model"] == "color-classification"
        assert (done["response_code"], done["request_item_count"]) == ("200", "2")
        assert done["response_item_count"] == "2"
        assert done["response_time"] == "2.0"
        assert TIMESTAMP.match(done["created_at"])
        assert TIMESTAMP.match(done["updated_at"])
        assert done["updated_at"] > done["created_at"]

        results = await (await client.get(f"/inference/{inference_id}/results", headers=KEY)).json()
        assert [r["image_path"] for r in results] == ["https://x/0.png", "https://x/fail.png"]
        assert results[0]["hex_color_label"] == "#FE2934"
        assert results[0]["predicted_hex_color"].startswith("#")
        assert isinstance(results[0]["confidence"], str)
        assert results[1] == {**ITEMS[1], "error": "could not fetch image"}

    async def test_results_while_running_may_be_empty(self, make_client):
        client = await make_client(results_while_running="empty")
        inference_id = await submit(client)
        resp = await client.get(f"/inference/{inference_id}/results", headers=KEY)
        assert resp.status == 200
        assert await resp.json() == []

    async def test_all_failed_is_a_failed_job(self, make_client, clock):
        client = await make_client(job_seconds=1.0)
        inference_id = await submit(client, [{"image_path": "a-FAIL", "product_type": "x"}])
        clock.now += 1
        body = await (await client.get(f"/inference/{inference_id}/status", headers=KEY)).json()
        assert body["status"] == "failed"
        assert body["error"] == "All items in the request failed."

    @pytest.mark.parametrize("route", ["status", "results"])
    async def test_unknown_id_is_not_found(self, make_client, route):
        client = await make_client()
        resp = await client.get(f"/inference/0924dcfe/{route}", headers=KEY)
        assert resp.status == 404
        assert await resp.json() == {"message": "Not Found"}

    async def test_items_named_fail_fail(self, make_client, clock):
        client = await make_client(job_seconds=0)
        items = [{"image_path": "https://x/ok.png", "product_type": "x", "name": "bad-fail-1"}]
        inference_id = await submit(client, items, model="pattern-classification")
        results = await (await client.get(f"/inference/{inference_id}/results", headers=KEY)).json()
        assert results == [
            {
                "image_path": "https://x/ok.png",
                "product_type": "x",
                "error": "could not fetch image",
            }
        ]


class TestPredictions:
    @pytest.mark.parametrize("model", ["color-classification", "pattern-classification"])
    def test_deterministic_and_path_dependent(self, model):
        a = predict(model, {"image_path": "https://x/a.png"}, as_strings=True)
        assert a == predict(model, {"image_path": "https://x/a.png"}, as_strings=True)
        labels = {
            str(predict(model, {"image_path": f"https://x/{i}.png"}, as_strings=False))
            for i in range(10)
        }
        assert len(labels) > 1

    def test_scores_are_ranked_and_sum_to_one(self):
        out = predict("pattern-classification", {"image_path": "p"}, as_strings=False)
        scores = [p["confidence"] for p in out["patterns"]]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=1e-3)
        assert out["pattern"] == out["patterns"][0]["pattern"]
        assert len({p["pattern"] for p in out["patterns"]}) == 3


class TestMountingAndTiming:
    async def test_works_mounted_under_a_prefix(self, aiohttp_client):
        root = web.Application()
        root.add_subapp("/vody/", PROVIDER_TYPE.create_simulator(None))
        client = await aiohttp_client(root)
        resp = await client.post("/vody/inference/color-classification", json=ITEMS, headers=KEY)
        inference_id = (await resp.json())["id"]
        status = await client.get(f"/vody/inference/{inference_id}/status", headers=KEY)
        assert (await status.json())["status"] == "in_progress"  # demo jobs take seconds

    async def test_faults_use_vodys_error_body(self, aiohttp_client):
        control = SimulatorControl()
        app = PROVIDER_TYPE.fast_simulator(control)
        client = await aiohttp_client(app)
        resp = await client.put(
            "/_sim/faults", json={"faults": [{"kind": "status", "status": 429, "retry_after": "3"}]}
        )
        assert resp.status == 200
        resp = await client.get("/inference/x/status", headers=KEY)
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "3"
        assert await resp.json() == {"message": "Rate limit exceeded"}
