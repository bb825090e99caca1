"""The Modzy simulator on its own: routes, auth, validation, timing, history paging."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import web

from adapters.modzy.sim_models import (
    IMAGE_CLASSES,
    SENTIMENT_CLASSES,
    classify_image,
    mask_rle,
    sentiment,
)
from adapters.modzy.simulator import (
    SIMULATOR_KEY,
    SimSettings,
    create_simulator,
    fast_simulator,
)
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl

AUTH = {"Authorization": f"ApiKey {SIMULATOR_KEY}"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def job_body(*texts: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": {"identifier": "ed542963de", "version": "1.0.1"},
        "explain": False,
        "input": {
            "type": "text",
            "sources": {f"t{i}": {"input.txt": t} for i, t in enumerate(texts)},
        },
        **extra,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, clock):
    app = create_simulator(
        SimulatorControl(clock=clock),
        SimSettings(queue_seconds=1, item_seconds=1, history_page_size=2),
    )
    return await aiohttp_client(app)


class TestAuth:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "ApiKey nope.nope"}, {"Authorization": f"Bearer {SIMULATOR_KEY}"}],
        ids=["missing", "wrong-key", "wrong-scheme"],
    )
    async def test_refused_key_is_401_in_modzys_shape(self, client, headers):
        resp = await client.post("/api/jobs", json=job_body("x"), headers=headers)
        body = await resp.json()
        assert resp.status == 401
        assert body["statusCode"] == 401
        assert body["status"] == "UNAUTHORIZED"
        assert body["message"]
        assert "reportErrorUrl" in body
        assert "nope" not in body["message"]

    async def test_faults_use_modzys_error_body(self, client):
        control = client.server.app[SIM_CONTROL]
        control.set_faults([Fault(kind="status", status=503, retry_after="2")])
        resp = await client.get("/api/jobs/features", headers=AUTH)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["status"] == "SERVICE_UNAVAILABLE"


class TestSubmitValidation:
    @pytest.mark.parametrize(
        ("body", "said"),
        [
            ({"input": {}}, "model.identifier"),
            ({**job_body("x"), "model": {"identifier": "ed542963de"}}, "model.version"),
            ({**job_body("x"), "model": {"identifier": "zz", "version": "1"}}, "does not exist"),
            ({k: v for k, v in job_body("x").items() if k != "input"}, "open jobs"),
            ({**job_body("x"), "input": {"type": "text", "sources": {}}}, "at least one"),
            ({**job_body("x"), "input": {"type": "ftp", "sources": {}}}, "Unknown input type"),
            ({**job_body("x"), "input": {"type": "embedded", "sources": {}}}, "takes 'text'"),
            (
                {**job_body("x"), "input": {"type": "text", "sources": {"a": {"txt": "x"}}}},
                "unknown: txt",
            ),
            ({**job_body("x"), "explain": "maybe"}, "explain"),
            ({**job_body("x"), "timeout": -5}, "timeout"),
            ([1, 2], "JSON object"),
        ],
        ids=[
            "no-model",
            "no-version",
            "unknown-model",
            "no-input",
            "empty-sources",
            "unknown-type",
            "wrong-type",
            "wrong-input-name",
            "bad-explain",
            "bad-timeout",
            "not-an-object",
        ],
    )
    async def test_bad_bodies_are_400_with_a_message(self, client, body, said):
        resp = await client.post("/api/jobs", json=body, headers=AUTH)
        assert resp.status == 400
        assert said in (await resp.json())["message"]

    async def test_a_bad_data_uri_is_refused(self, client):
        body = {
            "model": {"identifier": "c60c8dbd79", "version": "0.0.1"},
            "input": {"type": "embedded", "sources": {"p": {"image": "data:image/png,xyz"}}},
        }
        resp = await client.post("/api/jobs", json=body, headers=AUTH)
        assert resp.status == 400
        assert "data URI" in (await resp.json())["message"]

    async def test_not_json_is_400(self, client):
        resp = await client.post("/api/jobs", data=b"{nope", headers=AUTH)
        assert resp.status == 400

    async def test_too_many_inputs_is_a_quota_refusal(self, aiohttp_client):
        app = create_simulator(None, SimSettings(max_inputs_per_job=1, quota_status=403))
        client = await aiohttp_client(app)
        resp = await client.post("/api/jobs", json=job_body("a", "b"), headers=AUTH)
        assert resp.status == 403
        features = await (await client.get("/api/jobs/features", headers=AUTH)).json()
        assert features["maximumInputsPerJob"] == 1

    async def test_explain_as_a_string_is_accepted(self, client):
        resp = await client.post("/api/jobs", json=job_body("x", explain="true"), headers=AUTH)
        body = await resp.json()
        assert resp.status == 200
        assert body["explain"] is True
        assert body["totalInputs"] == 1
        assert body["jobInputs"] == {"identifier": ["t0"]}
        assert "status" not in body
        assert body["submittedAt"].endswith("+0000")


class TestJobTiming:
    async def test_statuses_counts_and_early_404(self, client, clock):
        job_id = (
            await (
                await client.post("/api/jobs", json=job_body("good", "fail"), headers=AUTH)
            ).json()
        )["jobIdentifier"]

        async def details() -> dict[str, Any]:
            found: dict[str, Any] = await (
                await client.get(f"/api/jobs/{job_id}", headers=AUTH)
            ).json()
            return found

        async def results() -> tuple[int, Any]:
            resp = await client.get(f"/api/results/{job_id}", headers=AUTH)
            return resp.status, await resp.json()

        assert (await details())["status"] == "SUBMITTED"
        status, body = await results()
        assert status == 404
        assert body["status"] == "NOT_FOUND"

        clock.now += 1.1  # t0 fetching data
        status, body = await results()
        assert status == 200
        assert body["finished"] is False
        assert body["results"]["t0"]["status"] == "FETCHING_DATA"
        clock.now += 0.5  # t0 processing
        assert (await results())[1]["results"]["t0"]["status"] == "PROCESSING"
        assert (await details())["status"] == "IN_PROGRESS"

        clock.now += 1.0  # t0 done, t1 started
        job = await details()
        assert (job["completed"], job["failed"], job["pending"]) == (1, 0, 1)

        clock.now += 1.0
        job = await details()
        status, body = await results()
        assert job["status"] == "COMPLETED"
        assert (job["total"], job["completed"], job["failed"], job["pending"]) == (2, 1, 1, 0)
        assert body["finished"] is True
        assert body["results"]["t0"]["status"] == "SUCCESSFUL"
        assert "results.json" in body["results"]["t0"]
        assert body["failures"]["t1"]["status"] == "FAILED"
        assert body["failures"]["t1"]["error"].startswith("Model failed to process input")

    async def test_items_run_side_by_side_with_concurrency(self, aiohttp_client, clock):
        settings = SimSettings(queue_seconds=1, item_seconds=1, concurrency=2)
        client = await aiohttp_client(create_simulator(SimulatorControl(clock=clock), settings))
        resp = await client.post("/api/jobs", json=job_body("a", "b", "c"), headers=AUTH)
        job_id = (await resp.json())["jobIdentifier"]
        clock.now += 1.5
        body = await (await client.get(f"/api/results/{job_id}", headers=AUTH)).json()
        assert {n: i["status"] for n, i in body["results"].items()} == {
            "t0": "PROCESSING",
            "t1": "PROCESSING",
        }
        clock.now += 1.0
        job = await (await client.get(f"/api/jobs/{job_id}", headers=AUTH)).json()
        assert (job["status"], job["completed"], job["pending"]) == ("IN_PROGRESS", 2, 1)
        clock.now += 1.0
        job = await (await client.get(f"/api/jobs/{job_id}", headers=AUTH)).json()
        assert (job["status"], job["completed"]) == ("COMPLETED", 3)

    async def test_cancel_then_cancel_again(self, client, clock):
        job_id = (await (await client.post("/api/jobs", json=job_body("a"), headers=AUTH)).json())[
            "jobIdentifier"
        ]
        first = await client.delete(f"/api/jobs/{job_id}", headers=AUTH)
        assert first.status == 200
        assert (await first.json())["status"] == "CANCELED"
        second = await client.delete(f"/api/jobs/{job_id}", headers=AUTH)
        assert second.status == 400
        assert "already CANCELED" in (await second.json())["message"]
        status = await client.get(f"/api/results/{job_id}", headers=AUTH)
        assert status.status == 200
        assert (await status.json())["finished"] is True

    @pytest.mark.parametrize("route", ["/api/jobs/nope", "/api/results/nope"])
    async def test_unknown_ids_are_404(self, client, route):
        resp = await client.get(route, headers=AUTH)
        assert resp.status == 404
        assert (await resp.json())["statusCode"] == 404


class TestHistory:
    async def test_history_pages_with_a_link_to_the_next(self, client, clock):
        ids = []
        for i in range(3):
            clock.now += 1
            body = await (
                await client.post("/api/jobs", json=job_body(f"x{i}"), headers=AUTH)
            ).json()
            ids.append(body["jobIdentifier"])
        resp = await client.get("/api/jobs/history", headers=AUTH)
        first = await resp.json()
        assert [j["jobIdentifier"] for j in first] == ids[::-1][:2]
        link = resp.headers["Link"]
        assert link.endswith('rel="next"')
        target = link[1 : link.index(">")]
        assert target.startswith(str(client.make_url("/api/jobs/history")))
        nxt = await client.session.get(target, headers=AUTH)
        assert [j["jobIdentifier"] for j in await nxt.json()] == ids[:1]
        assert "Link" not in nxt.headers

    async def test_history_filters_and_validates(self, client):
        await client.post("/api/jobs", json=job_body("x"), headers=AUTH)
        pending = await client.get("/api/jobs/history?status=pending", headers=AUTH)
        done = await client.get("/api/jobs/history?status=terminated", headers=AUTH)
        bad = await client.get("/api/jobs/history?page=0", headers=AUTH)
        assert len(await pending.json()) == 1
        assert await done.json() == []
        assert bad.status == 400

    async def test_the_demo_mount_keeps_links_under_its_prefix(self, aiohttp_client):
        root = web.Application()
        root.add_subapp("/modzy/", fast_simulator(None))
        client = await aiohttp_client(root)
        for _ in range(3):
            await client.post("/modzy/api/jobs", json=job_body("x"), headers=AUTH)
        resp = await client.get("/modzy/api/jobs/history", headers=AUTH)
        assert "/modzy/api/jobs/history?" in resp.headers["Link"]


class TestModels:
    def test_sentiment_is_deterministic_and_sums_to_one(self):
        out = sentiment("What a great day", explain=False)
        assert out == sentiment("What a great day", explain=False)
        preds = out["data"]["result"]["classPredictions"]
        assert preds[0]["class"] == "positive"
        assert {p["class"] for p in preds} == set(SENTIMENT_CLASSES)
        assert sum(p["score"] for p in preds) == pytest.approx(1, abs=1e-3)
        assert preds == sorted(preds, key=lambda p: -p["score"])
        assert out["data"]["explanation"] is None

    def test_image_scores_sum_to_one(self):
        preds = classify_image(b"abc", explain=False)["data"]["result"]["classPredictions"]
        assert {p["class"] for p in preds} == set(IMAGE_CLASSES)
        assert sum(p["score"] for p in preds) == pytest.approx(1, abs=1e-3)
        assert preds == sorted(preds, key=lambda p: -p["score"])

    @pytest.mark.parametrize("data", [b"", b"a", b"\x00" * 100, base64.b64decode("iVBORw0KGgo=")])
    def test_mask_runs_cover_every_pixel(self, data):
        height, width, counts = mask_rle(data)
        assert sum(counts) == height * width
        assert all(c > 0 for c in counts[1:])
