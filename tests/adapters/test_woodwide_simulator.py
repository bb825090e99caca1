"""The Wood Wide simulator on its own: routes, auth, errors, paging and switches."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from adapters.woodwide.simulator import SIMULATOR_KEY, SimSettings, create_simulator

AUTH = {"Authorization": f"Bearer {SIMULATOR_KEY}"}
CSV = "age,plan,spend\n31,pro,80.5\n45,basic,12\n22,plus,40\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def form(text: str = CSV, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", text.encode(), filename="rows.csv", content_type="text/csv")
    for key, value in fields.items():
        data.add_field(key, value)
    return data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(aiohttp_client, clock):
    async def make(**settings: Any):
        base = {"queued_seconds": 1.0, "job_seconds": 2.0}
        app = create_simulator(SimulatorControl(clock=clock), SimSettings(**(base | settings)))
        return await aiohttp_client(app)

    return make


async def submit(client, model: str = "mdl_churn", text: str = CSV, **fields: str) -> str:
    resp = await client.post(
        f"/models/{model}/infer-async", data=form(text, **fields), headers=AUTH
    )
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "queued"
    assert body["model"]["id"] == model
    return str(body["job_id"])


async def finished(client, clock, **kw: Any) -> str:
    job_id = await submit(client, **kw)
    clock.advance(5)
    return job_id


class TestAuth:
    @pytest.mark.parametrize(
        ("headers", "detail"),
        [({}, "Not authenticated"), ({"Authorization": "Bearer sk_nope"}, "Invalid API key")],
        ids=["missing", "wrong"],
    )
    async def test_refused(self, make_client, headers, detail):
        client = await make_client()
        resp = await client.get("/jobs", headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"detail": detail}

    async def test_faults_use_the_fastapi_error_body(self, make_client):
        client = await make_client()
        client.server.app[SIM_CONTROL].set_faults([Fault(kind="status", status=503)])
        resp = await client.get("/jobs", headers=AUTH)
        assert resp.status == 503
        assert await resp.json() == {"detail": "Simulated fault"}


class TestJobs:
    async def test_status_progresses_with_both_id_keys(self, make_client, clock):
        client = await make_client()
        job_id = await submit(client)
        seen = []
        for step in (0, 1.5, 1.0):
            clock.advance(step)
            body = await (await client.get(f"/jobs/{job_id}", headers=AUTH)).json()
            seen.append((body["status"], body["progress"], body["finished_at"] is None))
            assert body["job_id"] == body["id"] == job_id
            assert body["model_type"] == "prediction"
            assert body["input_filename"] == "rows.csv"
        assert seen == [("queued", 0, True), ("running", 50, True), ("succeeded", 100, False)]

    async def test_detail_keys_are_a_switch(self, make_client):
        client = await make_client(detail_id_keys=("id",))
        job_id = await submit(client)
        body = await (await client.get(f"/jobs/{job_id}", headers=AUTH)).json()
        assert body["id"] == job_id and "job_id" not in body

    @pytest.mark.parametrize("status", [409, 400])
    async def test_results_before_the_end_are_refused(self, make_client, status):
        client = await make_client(not_finished_status=status)
        job_id = await submit(client)
        for path in ("results", "results/rows"):
            resp = await client.get(f"/jobs/{job_id}/{path}", headers=AUTH)
            assert resp.status == status
            assert await resp.json() == {"detail": "job not finished"}

    async def test_unknown_job_is_404(self, make_client):
        client = await make_client()
        resp = await client.get("/jobs/job_nope", headers=AUTH)
        assert resp.status == 404
        assert await resp.json() == {"detail": "Job not found"}

    async def test_results_point_at_a_signed_file(self, make_client, clock):
        client = await make_client()
        job_id = await finished(client, clock, output_type="csv")
        body = await (await client.get(f"/jobs/{job_id}/results", headers=AUTH)).json()
        assert body["row_paginatable"] is True
        assert body["summary"]["total_row_count"] == 3
        assert body["summary"]["failed_row_ids"] == []
        uri = URL(body["inference_results_uri"])
        resp = await client.get(uri.path_qs)  # a signed URL needs no key
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert [r["id"] for r in rows] == ["0", "1", "2"]
        assert set(rows[0]) == {"id", "prediction", "prediction_prob", "prediction_explanation"}
        tampered = uri.with_query({**uri.query, "signature": "0" * 32})
        assert (await client.get(tampered.path_qs)).status == 403

    async def test_mounted_under_a_prefix_the_file_url_keeps_it(self, aiohttp_client, clock):
        root = web.Application()
        root.add_subapp(
            "/woodwide/",
            create_simulator(
                SimulatorControl(clock=clock), SimSettings(queued_seconds=0, job_seconds=1)
            ),
        )
        client = await aiohttp_client(root)
        resp = await client.post(
            "/woodwide/models/mdl_price/infer-async", data=form(output_type="json"), headers=AUTH
        )
        job_id = (await resp.json())["job_id"]
        clock.advance(2)
        body = await (await client.get(f"/woodwide/jobs/{job_id}/results", headers=AUTH)).json()
        uri = URL(body["inference_results_uri"])
        assert uri.path == f"/woodwide/files/{job_id}/inference_results.json"
        data = await (await client.get(uri.path_qs)).json()
        assert data["model_type"] == "prediction" and len(data["data"]["prediction"]) == 3

    async def test_every_row_failing_fails_the_job(self, make_client, clock):
        client = await make_client()
        job_id = await finished(client, clock, text="a,b\nfail,1\n2,FAILED\n")
        body = await (await client.get(f"/jobs/{job_id}", headers=AUTH)).json()
        assert body["status"] == "failed"
        assert "none of the 2 rows" in body["error_message"]
        resp = await client.get(f"/jobs/{job_id}/results", headers=AUTH)
        assert resp.status == 409

    async def test_cancel_then_retry(self, make_client, clock):
        client = await make_client()
        job_id = await submit(client)
        resp = await client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
        assert await resp.json() == {"id": job_id, "status": "canceled"}
        resp = await client.post(f"/jobs/{job_id}/retry", headers=AUTH)
        assert (await resp.json())["status"] == "queued"
        clock.advance(5)
        resp = await client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
        assert await resp.json() == {"id": job_id, "status": "succeeded"}
        resp = await client.post(f"/jobs/{job_id}/retry", headers=AUTH)
        assert resp.status == 409

    async def test_list_jobs_pages_with_a_cursor(self, make_client, clock):
        client = await make_client()
        ids = [await submit(client) for _ in range(3)]
        clock.advance(5)
        later = await submit(client, model="mdl_price")
        got: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            body = await (await client.get("/jobs", params=params, headers=AUTH)).json()
            got += [j["id"] for j in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert got == [later, *reversed(ids)]
        body = await (await client.get("/jobs", params={"status": "queued"}, headers=AUTH)).json()
        assert [j["id"] for j in body["items"]] == [later]


class TestRows:
    async def test_limit_is_capped_and_columns_filter_and_sort(self, make_client, clock):
        client = await make_client(rows_page_cap=2)
        text = "a\n" + "".join(f"{i}\n" for i in range(5))
        job_id = await finished(client, clock, model="mdl_segments", text=text)
        url = f"/jobs/{job_id}/results/rows"
        body = await (
            await client.get(url, params={"limit": "10", "offset": "3"}, headers=AUTH)
        ).json()
        assert (body["limit"], body["offset"], body["total"]) == (2, 3, 5)
        assert [r["id"] for r in body["rows"]] == [3, 4]
        assert body["notice"] == "limit capped at 2"
        params = [
            ("columns", "id"),
            ("columns", "cluster_label"),
            ("sort_by", "id"),
            ("sort_dir", "desc"),
        ]
        body = await (await client.get(url, params=params, headers=AUTH)).json()
        assert [set(r) for r in body["rows"]] == [{"id", "cluster_label"}] * 2
        assert [r["id"] for r in body["rows"]] == [4, 3]
        label = body["rows"][0]["cluster_label"]
        query = {"filter_column": "cluster_label", "filter_value": str(label)}
        body = await (await client.get(url, params=query, headers=AUTH)).json()
        assert body["total_filtered"] >= 1
        assert all(r["cluster_label"] == label for r in body["rows"])

    @pytest.mark.parametrize("params", [{"limit": "0"}, {"offset": "-1"}, {"limit": "x"}])
    async def test_bad_paging_is_422(self, make_client, clock, params):
        client = await make_client()
        job_id = await finished(client, clock)
        resp = await client.get(f"/jobs/{job_id}/results/rows", params=params, headers=AUTH)
        assert resp.status == 422
        assert isinstance((await resp.json())["detail"], list)


class TestSubmit:
    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"output_type": "xml"}, ["body", "output_type"]),
            ({"anomaly_format": "some"}, ["body", "anomaly_format"]),
            ({"k": "0"}, ["body", "k"]),
            ({"exclude_self_matches": "perhaps"}, ["body", "exclude_self_matches"]),
        ],
        ids=["output-type", "anomaly-format", "k", "bool"],
    )
    async def test_bad_fields_are_422_with_their_loc(self, make_client, fields, loc):
        client = await make_client()
        resp = await client.post("/models/mdl_churn/infer-async", data=form(**fields), headers=AUTH)
        assert resp.status == 422
        (error,) = (await resp.json())["detail"]
        assert error["loc"] == loc

    async def test_missing_file_is_422(self, make_client):
        client = await make_client()
        resp = await client.post("/models/mdl_churn/infer-async", data={"k": "1"}, headers=AUTH)
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["body", "file"]

    async def test_parquet_is_refused_without_pyarrow(self, make_client):
        client = await make_client(parquet=False)
        resp = await client.post(
            "/models/mdl_churn/infer-async", data=form(output_type="parquet"), headers=AUTH
        )
        assert resp.status == 400
        assert "parquet" in (await resp.json())["detail"]

    async def test_sync_infer_answers_at_once(self, make_client):
        client = await make_client()
        resp = await client.post("/models/mdl_churn/infer", data=form(), headers=AUTH)
        assert resp.content_type == "text/csv"
        resp = await client.post(
            "/models/mdl_churn/infer", data=form(output_type="json"), headers=AUTH
        )
        body = await resp.json()
        assert body["status"] == "succeeded"
        assert body["data"]["id"] == [0, 1, 2]
        assert "prediction_descriptions" in body

    async def test_outputs_are_deterministic(self, make_client):
        client = await make_client()
        bodies = [
            await (
                await client.post(
                    "/models/mdl_embed/infer", data=form(output_type="json"), headers=AUTH
                )
            ).json()
            for _ in range(2)
        ]
        assert bodies[0]["data"] == bodies[1]["data"]
        assert len([c for c in bodies[0]["data"] if c.startswith("dim_")]) == 8

    async def test_search_mapping_switch(self, make_client):
        client = await make_client(search_shape="mapping")
        resp = await client.post(
            "/models/mdl_similar/infer", data=form(output_type="json", k="2"), headers=AUTH
        )
        data = (await resp.json())["data"]
        assert list(data) == ["0", "1", "2"]
        assert all(len(v) == 2 for v in data.values())

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"dataset_id": "ds_demo", "dataset_version_id": "dsv_demo_1"}, 422),
            ({}, 422),
            ({"dataset_id": "ds_nope", "output_type": "json"}, 404),
            ({"dataset_id": "ds_demo", "output_type": "json"}, 202),
        ],
        ids=["both", "neither", "unknown", "ok"],
    )
    async def test_infer_batch(self, make_client, body, status):
        client = await make_client()
        resp = await client.post("/models/mdl_churn/infer-batch", json=body, headers=AUTH)
        assert resp.status == status
