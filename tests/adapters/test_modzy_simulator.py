"""The Modzy simulator on its own: routes, auth, validation, timing, history paging."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import web

from adapters.modzy.sim_models import (
    IMAGE_CLASSES,
    IMAGE_ID,
    SENTIMENT_CLASSES,
    SENTIMENT_ID,
    TOPICS_ID,
    classify_image,
    mask_rle,
    sentiment,
)
from adapters.modzy.simulator import (
    JOBS,
    SIM_ACCESS_KEY,
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
                {**job_body("x"), "input": {"type": "text", "sources": {"a": {"input.txt": 7}}}},
                "must be a string",
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
            "not-a-string",
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


class TestItemFailures:
    """A wrong input name fails its item, not the job: "If you send a wrong input key, the
    model fails to process the input" (modzy/sdk-python samples/job_with_text_input_sample.py).
    """

    async def test_a_wrong_input_name_fails_only_its_item(self, client, clock):
        sources = {
            "source-key": {"input.txt": "Modzy is great!"},
            "wrong-key": {"a.wrong.key": "This input is wrong!"},
        }
        body = {**job_body("x"), "input": {"type": "text", "sources": sources}}
        resp = await client.post("/api/jobs", json=body, headers=AUTH)
        assert resp.status == 200
        job_id = (await resp.json())["jobIdentifier"]
        clock.now += 10
        job = await (await client.get(f"/api/jobs/{job_id}", headers=AUTH)).json()
        results = await (await client.get(f"/api/results/{job_id}", headers=AUTH)).json()
        assert (job["status"], job["completed"], job["failed"]) == ("COMPLETED", 1, 1)
        assert results["results"]["source-key"]["status"] == "SUCCESSFUL"
        failed = results["failures"]["wrong-key"]
        assert failed["status"] == "FAILED"
        assert "no input 'a.wrong.key'" in failed["error"]
        assert "input 'input.txt' missing" in failed["error"]

    async def test_completed_with_error_when_switched_on(self, aiohttp_client, clock):
        settings = SimSettings(queue_seconds=1, item_seconds=1, completed_with_error=True)
        client = await aiohttp_client(create_simulator(SimulatorControl(clock=clock), settings))
        ok = (await (await client.post("/api/jobs", json=job_body("a"), headers=AUTH)).json())[
            "jobIdentifier"
        ]
        mixed = await client.post("/api/jobs", json=job_body("a", "fail"), headers=AUTH)
        mixed_id = (await mixed.json())["jobIdentifier"]
        clock.now += 10
        words = [
            (await (await client.get(f"/api/jobs/{i}", headers=AUTH)).json())["status"]
            for i in (ok, mixed_id)
        ]
        results = await (await client.get(f"/api/results/{mixed_id}", headers=AUTH)).json()
        cancel = await client.delete(f"/api/jobs/{mixed_id}", headers=AUTH)
        assert words == ["COMPLETED", "COMPLETED_WITH_ERROR"]
        assert results["finished"] is True
        assert cancel.status == 400

    async def test_platform_fields_in_the_librarys_layout(self, aiohttp_client, clock):
        settings = SimSettings(queue_seconds=1, item_seconds=1, platform_fields=True)
        client = await aiohttp_client(create_simulator(SimulatorControl(clock=clock), settings))
        resp = await client.post("/api/jobs", json=job_body("good", "fail"), headers=AUTH)
        job_id = (await resp.json())["jobIdentifier"]
        clock.now += 10
        body = await (await client.get(f"/api/results/{job_id}", headers=AUTH)).json()
        ok, failed = body["results"]["t0"], body["failures"]["t1"]
        # modzy-sdk 0.11.6 _util.py run_model: formatted_sample_output's item, key for key.
        assert list(ok) == [
            "model", "userIdentifier", "status", "engine", "error", "startTime", "endTime",
            "updateTime", "inputSize", "accessKey", "teamIdentifier", "accountIdentifier",
            "timeMeters", "datasourceCompletedTime", "elapsedTime", "results.json",
        ]  # fmt: skip
        assert ok["error"] is None and ok["accessKey"] == SIM_ACCESS_KEY
        assert failed["error"].startswith("Model failed") and "results.json" not in failed

    async def test_the_submit_body_is_kept_as_received(self, client):
        body = job_body("x")
        job_id = (await (await client.post("/api/jobs", json=body, headers=AUTH)).json())[
            "jobIdentifier"
        ]
        assert client.server.app[JOBS][job_id].body == body


class TestModelRoutes:
    async def test_list_filter_and_details(self, client):
        listed = await (await client.get("/api/models", headers=AUTH)).json()
        assert {m["modelId"] for m in listed} == {SENTIMENT_ID, IMAGE_ID, TOPICS_ID}
        named = await (await client.get("/api/models?name=sentiment", headers=AUTH)).json()
        assert named == [{"modelId": SENTIMENT_ID, "latestVersion": "1.0.1", "versions": ["1.0.1"]}]
        details = await (await client.get(f"/api/models/{SENTIMENT_ID}", headers=AUTH)).json()
        assert (details["name"], details["latestVersion"]) == ("Sentiment Analysis", "1.0.1")

    async def test_a_version_names_its_inputs_and_outputs(self, client):
        resp = await client.get(f"/api/models/{TOPICS_ID}/versions/2.0.0", headers=AUTH)
        version = await resp.json()
        assert [i["name"] for i in version["inputs"]] == ["input.txt", "config.json"]
        assert {"acceptedMediaTypes", "maximumSize", "description"} <= set(version["inputs"][0])
        assert [(o["name"], o["mediaType"]) for o in version["outputs"]] == [
            ("results.json", "application/json")
        ]
        assert set(version["timeout"]) == {"status", "run"}
        sample = await client.get(
            f"/api/models/{TOPICS_ID}/versions/2.0.0/sample-input", headers=AUTH
        )
        assert set((await sample.json())["input"]["sources"]["0001"]) == {
            "input.txt",
            "config.json",
        }

    @pytest.mark.parametrize(
        "route",
        ["/api/models/zz", "/api/models/zz/versions", f"/api/models/{SENTIMENT_ID}/versions/9.9"],
    )
    async def test_unknown_models_and_versions_are_404(self, client, route):
        resp = await client.get(route, headers=AUTH)
        assert resp.status == 404
        assert (await resp.json())["statusCode"] == 404

    async def test_the_model_routes_need_the_key(self, client):
        assert (await client.get("/api/models")).status == 401
        assert (await client.get("/api/models/requirements/account")).status == 401


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
