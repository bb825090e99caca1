"""The v1 API over real HTTP: the gateway in front of the Modzy simulator on loopback."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.simulation import Fault
from gateway.http.app import create_app
from tests.conftest import (
    AUTH,
    LIMITED_AUTH,
    OTHER_AUTH,
    READ_AUTH,
    SECRETS,
    Harness,
    make_settings,
    provider_settings,
)

TEXTS = {
    "review-1": "Great product, I love it",
    "review-2": "Terrible support, awful experience",
    "review-3": "It arrived on a Tuesday",
}


def text_inputs(names: dict[str, str] = TEXTS) -> list[dict[str, str]]:
    return [{"name": n, "text": t} for n, t in names.items()]


async def submit(h: Harness, body: dict[str, Any] | None = None, headers=AUTH, **kw):
    body = body or {"model": "sentiment", "inputs": text_inputs()}
    return await h.client.post("/v1/jobs", json=body, headers={**headers, **kw.pop("extra", {})})


async def wait_done(h: Harness, job_id: str, headers=AUTH) -> dict[str, Any]:
    resp = await h.client.get(f"/v1/jobs/{job_id}", headers={**headers, "Prefer": "wait=10"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["done"] is True
    return body


async def problem(resp, status: int, code: str) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert resp.content_type == "application/problem+json"
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["request_id"] == resp.headers["X-Request-ID"]
    text = json.dumps(body)
    assert "Traceback" not in text
    for secret in SECRETS:
        assert secret not in text
    return body


@pytest.fixture
async def h(make_gateway) -> Harness:
    return await make_gateway(["modzy"])


class TestLifecycle:
    async def test_submit_wait_and_read_normalized_results(self, h):
        resp = await submit(
            h, {"model": "sentiment", "inputs": text_inputs(), "metadata": {"team": "search"}}
        )
        job = await resp.json()
        assert resp.status == 202, job
        assert resp.headers["Location"] == f"/v1/jobs/{job['id']}"
        assert job["id"].startswith("job_") and len(job["id"]) >= 26
        assert job["model"] == "modzy/ed542963de@1.0.1"
        assert job["provider"] == "modzy"
        assert job["metadata"] == {"team": "search"}
        assert job["counts"]["total"] == 3
        assert job["upstream"]["id"]

        done = await wait_done(h, job["id"])
        assert done["status"] == "succeeded"
        assert done["counts"] == {
            "total": 3,
            "succeeded": 3,
            "failed": 0,
            "pending": 0,
            "cancelled": 0,
        }
        assert done["upstream"]["status"] == "COMPLETED"
        assert done["finished_at"] is not None

        resp = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        results = await resp.json()
        assert resp.status == 200
        assert [i["input"] for i in results["items"]] == list(TEXTS)
        assert results["total_size"] == 3 and results["next_page_token"] is None
        first = results["items"][0]
        assert first["status"] == "succeeded"
        assert first["output"]["type"] == "classification"
        assert first["output"]["label"] == "positive"
        assert first["output"]["scores"][0]["label"] == first["output"]["label"]
        assert results["items"][1]["output"]["label"] == "negative"
        assert "raw" not in first
        assert results["job"]["id"] == job["id"]

    async def test_prefer_wait_on_submit_returns_200_when_done_in_time(self, h):
        resp = await submit(h, extra={"Prefer": "wait=10"})
        body = await resp.json()
        assert resp.status == 200, body
        assert body["done"] is True
        assert resp.headers["Preference-Applied"] == "wait=10"

    async def test_prefer_wait_returns_202_when_not_done_in_time(self, make_gateway):
        from adapters.modzy.simulator import SimSettings, create_simulator

        slow = create_simulator(None, SimSettings(queue_seconds=5, item_seconds=5))
        h = await make_gateway(["modzy"], sim_apps={"modzy": slow}, status_cache_seconds=0)
        resp = await submit(h, extra={"Prefer": "wait=0.2"})
        assert resp.status == 202
        job = await resp.json()
        polls = h.sim.count("GET")
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=0.3"})
        body = await resp.json()
        assert resp.status == 202, body
        assert body["done"] is False
        assert resp.headers["Preference-Applied"] == "wait=0.3"
        # it kept asking while it waited, at the configured interval
        assert h.sim.count("GET") - polls >= 3

    async def test_server_timing_keeps_a_prefer_wait_out_of_the_gateways_time(self, make_gateway):
        """The asked-for wait gets its own entry; gateway;dur stays the real overhead."""
        from adapters.modzy.simulator import SimSettings, create_simulator

        slow = create_simulator(None, SimSettings(queue_seconds=5, item_seconds=5))
        h = await make_gateway(["modzy"], sim_apps={"modzy": slow}, status_cache_seconds=0)
        job = await (await submit(h)).json()
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=0.6"})
        assert resp.status == 202
        timing = dict(
            (part.split(";dur=")[0].strip(), float(part.split(";dur=")[1]))
            for part in resp.headers["Server-Timing"].split(",")
        )
        assert set(timing) == {"upstream", "wait", "gateway"}, timing
        assert timing["wait"] >= 300, timing
        assert timing["gateway"] < 250, timing  # the ~600 ms asked for are not overhead
        plain = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert "wait;dur=" not in plain.headers["Server-Timing"]

    async def test_finished_job_is_answered_from_the_gateway(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        before = h.sim.count("GET")
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert resp.headers["Cache-Status"] == "gateway; hit"
        await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        resp = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        assert resp.headers["Cache-Status"] == "gateway; hit"
        # one results fetch for the first read, nothing for the job reads or the second read
        assert h.sim.count("GET") - before == 1

    async def test_unfinished_read_asks_the_provider(self, h):
        h.sim.set_faults([Fault(kind="latency", seconds=0.2, match="POST")])
        job = await (await submit(h)).json()
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        if not (await resp.json())["done"]:
            assert resp.headers["Cache-Status"] == "gateway; fwd=miss"
        assert "upstream;dur=" in resp.headers["Server-Timing"]
        assert "gateway;dur=" in resp.headers["Server-Timing"]

    async def test_list_is_newest_first_and_per_tenant(self, h):
        ids = [(await (await submit(h)).json())["id"] for _ in range(3)]
        await submit(h, headers=OTHER_AUTH)
        resp = await h.client.get("/v1/jobs?page_size=2", headers=AUTH)
        page = await resp.json()
        assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
        resp = await h.client.get(
            f"/v1/jobs?page_size=2&page_token={page['next_page_token']}", headers=AUTH
        )
        page2 = await resp.json()
        assert [j["id"] for j in page2["jobs"]] == [ids[0]]
        assert page2["next_page_token"] is None
        resp = await h.client.get("/v1/jobs?provider=modzy", headers=AUTH)
        assert [j["id"] for j in (await resp.json())["jobs"]] == ids[::-1]


class TestResults:
    async def test_failed_items_and_partial_success(self, h):
        inputs = [*text_inputs(), {"name": "bad-fail-1", "text": "anything"}]
        job = await (await submit(h, {"model": "sentiment", "inputs": inputs})).json()
        done = await wait_done(h, job["id"])
        assert done["status"] == "partially_succeeded"
        assert done["counts"]["failed"] == 1 and done["counts"]["succeeded"] == 3
        resp = await h.client.get(f"/v1/jobs/{job['id']}/results?status=failed", headers=AUTH)
        body = await resp.json()
        assert [i["input"] for i in body["items"]] == ["bad-fail-1"]
        failed = body["items"][0]
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "item_failed" and failed["error"]["message"]
        assert failed["output"] is None

    async def test_every_item_failed_is_a_failed_job_with_an_error(self, h):
        inputs = [{"name": "fail-a", "text": "x"}, {"name": "fail-b", "text": "y"}]
        job = await (await submit(h, {"model": "sentiment", "inputs": inputs})).json()
        done = await wait_done(h, job["id"])
        assert done["status"] == "failed"
        assert done["error"]["code"]

    async def test_pages_through_items_in_input_order(self, h):
        names = {f"r{i}": f"text number {i}" for i in range(7)}
        job = await (await submit(h, {"model": "sentiment", "inputs": text_inputs(names)})).json()
        await wait_done(h, job["id"])
        seen, token, pages = [], None, 0
        while True:
            q = "page_size=3" + (f"&page_token={token}" if token else "")
            body = await (
                await h.client.get(f"/v1/jobs/{job['id']}/results?{q}", headers=AUTH)
            ).json()
            assert body["total_size"] == 7
            seen += [i["input"] for i in body["items"]]
            pages += 1
            token = body["next_page_token"]
            if token is None:
                break
        assert seen == list(names) and pages == 3

    async def test_page_token_from_another_filter_is_refused(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        body = await (
            await h.client.get(f"/v1/jobs/{job['id']}/results?page_size=1", headers=AUTH)
        ).json()
        resp = await h.client.get(
            f"/v1/jobs/{job['id']}/results?status=failed&page_token={body['next_page_token']}",
            headers=AUTH,
        )
        await problem(resp, 422, "validation_failed")

    async def test_include_raw_adds_the_provider_output(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        body = await (
            await h.client.get(f"/v1/jobs/{job['id']}/results?include=raw", headers=AUTH)
        ).json()
        assert body["items"][0]["raw"]

    async def test_one_item_and_unknown_item(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        resp = await h.client.get(f"/v1/jobs/{job['id']}/results/review-2", headers=AUTH)
        item = await resp.json()
        assert item["input"] == "review-2" and item["status"] == "succeeded"
        resp = await h.client.get(f"/v1/jobs/{job['id']}/results/nope", headers=AUTH)
        await problem(resp, 404, "not_found")

    async def test_csv_by_query_and_by_accept(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        for path, headers in (
            (f"/v1/jobs/{job['id']}/results?format=csv", AUTH),
            (f"/v1/jobs/{job['id']}/results", {**AUTH, "Accept": "text/csv"}),
        ):
            resp = await h.client.get(path, headers=headers)
            assert resp.status == 200
            assert resp.content_type == "text/csv"
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
            assert [r["input"] for r in rows] == list(TEXTS)
            assert rows[0]["output_type"] == "classification"
            assert rows[0]["output_label"] == "positive"

    async def test_ndjson_streams_one_item_per_line(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        resp = await h.client.get(
            f"/v1/jobs/{job['id']}/results", headers={**AUTH, "Accept": "application/x-ndjson"}
        )
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        assert resp.headers["X-Request-ID"]
        lines = (await resp.text()).strip().split("\n")
        assert [json.loads(line)["input"] for line in lines] == list(TEXTS)

    async def test_partial_results_while_running(self, make_gateway):
        from adapters.modzy.simulator import SimSettings, create_simulator

        slow = create_simulator(None, SimSettings(queue_seconds=0.0, item_seconds=0.4))
        h = await make_gateway(["modzy"], sim_apps={"modzy": slow})
        names = {f"r{i}": f"good text {i}" for i in range(4)}
        job = await (await submit(h, {"model": "sentiment", "inputs": text_inputs(names)})).json()
        partial = None
        for _ in range(100):
            body = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
            statuses = {i["status"] for i in body["items"]}
            if "succeeded" in statuses and statuses - {"succeeded"}:
                partial = body
                break
            await asyncio.sleep(0.05)
        assert partial is not None, "never saw a job with some items done and some not"
        assert partial["job"]["done"] is False
        unfinished = [i for i in partial["items"] if i["status"] != "succeeded"]
        assert all(i["status"] in ("pending", "running") for i in unfinished)
        assert all(i["output"] is None for i in unfinished)
        pending = await (
            await h.client.get(f"/v1/jobs/{job['id']}/results?status=pending", headers=AUTH)
        ).json()
        assert pending["total_size"] >= 1


class TestExplanations:
    async def test_text_explanation_is_token_importance(self, h):
        body = {"model": "sentiment", "inputs": text_inputs(), "options": {"explain": True}}
        job = await (await submit(h, body)).json()
        await wait_done(h, job["id"])
        res = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
        exp = res["items"][0]["explanation"]
        assert exp["type"] == "token_importance"
        words = {w["word"] for ws in exp["by_label"].values() for w in ws}
        assert words & {"Great", "great", "love"}

    async def test_image_explanation_is_a_column_major_mask(self, h):
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()
        body = {
            "model": "modzy/c60c8dbd79@0.0.1",
            "inputs": [{"name": "photo", "data": png, "content_type": "image/png"}],
            "options": {"explain": True},
        }
        job = await (await submit(h, body)).json()
        await wait_done(h, job["id"])
        res = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
        item = res["items"][0]
        assert item["output"]["type"] == "classification"
        exp = item["explanation"]
        assert exp["type"] == "mask" and exp["encoding"] == "rle_column_major"
        assert sum(exp["counts"]) == exp["height"] * exp["width"]


class TestCancel:
    async def test_cancel_then_cancel_again(self, make_gateway):
        from adapters.modzy.simulator import SimSettings, create_simulator

        slow = create_simulator(None, SimSettings(queue_seconds=5, item_seconds=5))
        h = await make_gateway(["modzy"], sim_apps={"modzy": slow})
        job = await (await submit(h)).json()
        resp = await h.client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["status"] == "cancelled" and body["done"] is True
        # Nothing is still pending in a cancelled job: its unfinished items were cancelled.
        n = len(text_inputs())
        assert body["counts"] == {
            "total": n, "succeeded": 0, "failed": 0, "pending": 0, "cancelled": n
        }  # fmt: skip
        again = await (await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
        assert again["counts"] == body["counts"]
        res = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
        assert {i["status"] for i in res["items"]} == {"cancelled"}
        resp = await h.client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
        await problem(resp, 409, "job_done")

    async def test_cancel_needs_write_scope(self, h):
        job = await (await submit(h)).json()
        resp = await h.client.delete(f"/v1/jobs/{job['id']}", headers=READ_AUTH)
        await problem(resp, 403, "forbidden")


class TestRequestErrors:
    async def test_body_not_json(self, h):
        resp = await h.client.post("/v1/jobs", data=b"{nope", headers=AUTH)
        await problem(resp, 400, "invalid_json")

    async def test_body_not_an_object(self, h):
        resp = await h.client.post("/v1/jobs", data=b"[1, 2]", headers=AUTH)
        await problem(resp, 400, "invalid_json")

    async def test_unknown_field_is_named(self, h):
        resp = await submit(h, {"model": "sentiment", "inputs": text_inputs(), "priority": 1})
        body = await problem(resp, 422, "validation_failed")
        assert {"pointer": "/priority", "message": "unknown field"} in body["errors"]

    async def test_duplicate_input_names(self, h):
        inputs = [{"name": "a", "text": "x"}, {"name": "a", "text": "y"}]
        body = await problem(
            await submit(h, {"model": "sentiment", "inputs": inputs}), 422, "validation_failed"
        )
        assert body["errors"][0]["pointer"] == "/inputs"

    async def test_input_kind_the_provider_cannot_take(self, h):
        inputs = [{"name": "a", "text": "x"}, {"name": "b", "url": "https://cdn.example.com/x.png"}]
        body = await problem(
            await submit(h, {"model": "sentiment", "inputs": inputs}), 422, "unsupported_input"
        )
        assert body["errors"][0]["pointer"] == "/inputs/1"

    async def test_body_over_the_limit(self, make_gateway):
        h = await make_gateway(["modzy"], max_body_bytes=2048)
        big = {"model": "sentiment", "inputs": [{"name": "a", "text": "x" * 5000}]}
        await problem(await submit(h, big), 413, "payload_too_large")
        assert h.sim.count("POST") == 0

    async def test_unknown_model_and_provider(self, h):
        await problem(
            await submit(h, {"model": "modzy/nope@1", "inputs": text_inputs()}), 404, "not_found"
        )
        await problem(
            await submit(h, {"model": "ghost/x", "inputs": text_inputs()}), 404, "not_found"
        )
        answer = await problem(
            await submit(h, {"model": "nonsense", "inputs": text_inputs()}), 404, "not_found"
        )
        # Where to find the names that do work.
        assert "GET /v1/models" in answer["detail"]

    async def test_webhooks_are_refused_with_the_engine_off(self, h):
        """Only the engine sees every job finish (tests/api/test_webhooks.py has the rest)."""
        body = {
            "model": "sentiment",
            "inputs": text_inputs(),
            "webhook_url": "https://hooks.example.com/x",
        }
        answer = await problem(await submit(h, body), 422, "validation_failed")
        assert answer["errors"][0]["pointer"] == "/webhook_url"
        assert "job engine" in answer["detail"]

    async def test_unknown_job(self, h):
        await problem(await h.client.get("/v1/jobs/job_nope", headers=AUTH), 404, "not_found")

    async def test_bad_query_parameters(self, h):
        await problem(
            await h.client.get("/v1/jobs?status=weird", headers=AUTH), 422, "validation_failed"
        )
        # A provider this gateway does not have, like a status it does not know.
        bogus = await problem(
            await h.client.get("/v1/jobs?provider=bogus", headers=AUTH), 422, "validation_failed"
        )
        assert bogus["errors"][0]["pointer"] == "/provider"
        assert (await h.client.get("/v1/jobs?provider=modzy", headers=AUTH)).status == 200
        await problem(
            await h.client.get("/v1/jobs?page_size=x", headers=AUTH), 422, "validation_failed"
        )
        await problem(
            await h.client.get("/v1/jobs?page_token=garbage!", headers=AUTH),
            422,
            "validation_failed",
        )

    @pytest.mark.parametrize(
        "raw",
        [
            b"[" * 10_000 + b"]" * 10_000,
            b'{"model": "sentiment", "inputs": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
            b'{"model": "sentiment", "metadata": ' + b'{"a": ' * 100 + b"1" + b"}" * 101,
        ],
        ids=["10k-arrays", "deep-inside-an-object", "100-objects"],
    )
    async def test_deeply_nested_json_is_invalid_json(self, h, raw):
        """Deep nesting once crashed the decoder (RecursionError) into a 500."""
        resp = await h.client.post("/v1/jobs", data=raw, headers=AUTH)
        await problem(resp, 400, "invalid_json")
        assert h.sim.count("POST") == 0

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
    async def test_numbers_json_has_not_are_invalid_json(self, h, number):
        record = '{"name": "a", "record": {"x": ' + number + "}}"
        raw = '{"model": "sentiment", "inputs": [' + record + "]}"
        resp = await h.client.post("/v1/jobs", data=raw.encode(), headers=AUTH)
        await problem(resp, 400, "invalid_json")

    @pytest.mark.parametrize("cell", [{"b": 1}, [1, 2]], ids=["object", "list"])
    async def test_a_nested_record_value_is_named(self, h, cell):
        inputs = [{"name": "a", "text": "x"}, {"name": "row", "record": {"ok": 1, "a": cell}}]
        body = await problem(
            await submit(h, {"model": "sentiment", "inputs": inputs}), 422, "validation_failed"
        )
        assert [e["pointer"] for e in body["errors"]] == ["/inputs/1/record/a"], body

    @pytest.mark.parametrize(
        "token",
        [
            ["0001-01-01T00:00:00", "a"],  # naive, year 1
            ["0001-01-01T00:00:00+00:00", "a"],  # aware, but before any job
            ["9999-12-31T23:59:59.999999-23:59", "a"],  # past the end of time in UTC
            ["2026-01-01T00:00:00+00:00", 7],  # an id that is not a string
            ["2026-01-01T00:00:00+00:00"],
            {"o": 1},
            "x" * 600,
        ],
        ids=["naive-year-1", "year-1", "overflow", "int-id", "short", "object", "long"],
    )
    @pytest.mark.parametrize("backend", ["memory", "redis"])
    async def test_a_forged_list_page_token_is_refused(
        self, make_gateway, redis_url, backend, token
    ):
        """A forged cursor once crashed both stores (naive datetimes, year 1) into a 500."""
        from gateway.state.settings import RedisSettings

        over: dict[str, Any] = {}
        if backend == "redis":
            over["redis"] = RedisSettings(url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}")
        h = await make_gateway(["modzy"], **over)
        assert (await submit(h)).status == 202  # something to page past
        raw = json.dumps(token).encode() if not isinstance(token, str) else token.encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        resp = await h.client.get(f"/v1/jobs?page_token={forged}", headers=AUTH)
        body = await problem(resp, 422, "validation_failed")
        assert [e["pointer"] for e in body["errors"]] == ["/page_token"]

    @pytest.mark.parametrize(
        "token",
        ['{"o": 1e400, "s": ""}', '{"o": true, "s": ""}', '{"o": 1, "s": [1]}', '{"o": NaN}'],
        ids=["overflow", "bool", "list-filter", "nan"],
    )
    async def test_a_forged_results_page_token_is_refused(self, h, token):
        job = await (await submit(h)).json()
        forged = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        resp = await h.client.get(f"/v1/jobs/{job['id']}/results?page_token={forged}", headers=AUTH)
        body = await problem(resp, 422, "validation_failed")
        assert [e["pointer"] for e in body["errors"]] == ["/page_token"]

    async def test_rejected_submits_leave_no_record(self, h):
        await submit(
            h, {"model": "sentiment", "inputs": [{"name": "a", "url": "https://x.example/a"}]}
        )
        h.sim.set_faults([Fault(kind="status", status=500)])
        await submit(h)
        h.sim.clear_faults()
        resp = await h.client.get("/v1/jobs", headers=AUTH)
        assert (await resp.json())["jobs"] == []


class TestAuth:
    async def test_missing_and_bad_credentials(self, h):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            resp = await h.client.get("/v1/jobs", headers=headers)
            await problem(resp, 401, "unauthenticated")
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    async def test_missing_scope(self, h):
        await problem(await submit(h, headers=READ_AUTH), 403, "forbidden")

    async def test_model_not_on_the_keys_allow_list(self, h):
        assert (await submit(h, headers=LIMITED_AUTH)).status == 202
        body = {
            "model": "modzy/c60c8dbd79@0.0.1",
            "inputs": [{"name": "a", "data": "aGk=", "content_type": "image/png"}],
        }
        await problem(await submit(h, body, headers=LIMITED_AUTH), 403, "forbidden")

    async def test_another_tenants_job_is_not_found_everywhere(self, h):
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        jid = job["id"]
        for method, path in (
            ("GET", f"/v1/jobs/{jid}"),
            ("GET", f"/v1/jobs/{jid}/results"),
            ("GET", f"/v1/jobs/{jid}/results/review-1"),
            ("DELETE", f"/v1/jobs/{jid}"),
        ):
            resp = await h.client.request(method, path, headers=OTHER_AUTH)
            body = await problem(resp, 404, "not_found")
            assert "review" not in json.dumps(body)


class TestProviderFailures:
    async def test_provider_down(self):
        """Nothing listens on the provider's port: 503, without the provider's address."""
        settings = make_settings(
            [provider_settings("modzy", "modzy", "http://127.0.0.1:9/api", retries=0)]
        )
        async with TestClient(TestServer(create_app(settings))) as c:
            resp = await c.post(
                "/v1/jobs", json={"model": "sentiment", "inputs": text_inputs()}, headers=AUTH
            )
            body = await problem(resp, 503, "provider_unavailable")
            assert "127.0.0.1" not in body["detail"]

    @pytest.mark.parametrize(
        ("fault", "status", "code"),
        [
            (Fault(kind="status", status=500), 502, "provider_error"),
            (Fault(kind="malformed"), 502, "provider_error"),
            # POST only: the model version read before it (GET) would wait the 7 s out.
            (
                Fault(kind="status", status=429, retry_after="7", match="POST"),
                503,
                "provider_unavailable",
            ),
            (Fault(kind="status", status=400), 422, "provider_rejected"),
        ],
        ids=["5xx", "malformed-json", "429", "rejected"],
    )
    async def test_submit_failures(self, h, fault, status, code):
        h.sim.set_faults([fault])
        await problem(await submit(h), status, code)
        resp = await h.client.get("/v1/jobs", headers=AUTH)
        assert (await resp.json())["jobs"] == []

    async def test_429_carries_retry_after(self, h):
        h.sim.set_faults([Fault(kind="status", status=429, retry_after="7", match="POST")])
        resp = await submit(h)
        await problem(resp, 503, "provider_unavailable")
        assert resp.headers["Retry-After"] == "7"

    async def test_status_read_5xx_after_retries(self, h):
        job = await (await submit(h)).json()
        h.sim.set_faults([Fault(kind="status", status=502, match="GET")])
        before = h.sim.count("GET")
        await problem(
            await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH), 502, "provider_error"
        )
        assert h.sim.count("GET") - before == 3  # the first attempt and two retries

    async def test_provider_timeout(self, make_gateway):
        from gateway.config.settings import TimeoutSettings

        h = await make_gateway(
            ["modzy"],
            provider_over={
                "modzy": {"timeouts": TimeoutSettings(connect=1, read=0.3, total=1), "retries": 0}
            },
        )
        h.sim.set_faults([Fault(kind="hang", match="POST")])
        await problem(await submit(h), 504, "provider_timeout")

    async def test_refused_credential_is_a_502_that_hides_it(self, make_gateway):
        h = await make_gateway(
            ["modzy"], provider_over={"modzy": {"credential": "wrong.key-VERYSECRET"}}
        )
        body = await problem(await submit(h), 502, "provider_error")
        assert "VERYSECRET" not in json.dumps(body)


class TestOperations:
    async def test_request_id_is_echoed_when_sane_and_replaced_when_not(self, h):
        resp = await h.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert resp.headers["X-Request-ID"] == "abc-123"
        resp = await h.client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
        assert resp.headers["X-Request-ID"] != "bad id\twith tabs"
        assert len(resp.headers["X-Request-ID"]) == 32

    async def test_request_id_reaches_the_provider(self, h):
        await submit(h, extra={"X-Request-ID": "trace-me-42"})
        assert any(r.headers.get("X-Request-ID") == "trace-me-42" for r in h.sim.requests)

    async def test_health_and_readiness(self, h):
        assert (await h.client.get("/healthz")).status == 200
        resp = await h.client.get("/readyz")
        assert resp.status == 200
        assert (await resp.json())["components"]["store"] == "ok"

    async def test_providers_and_models(self, h):
        body = await (await h.client.get("/v1/providers", headers=AUTH)).json()
        (p,) = body["providers"]
        assert p["name"] == "modzy" and p["type"] == "modzy" and p["state"] == "available"
        assert p["capabilities"]["cancel"] is True and p["capabilities"]["explain"] is True
        assert sorted(p["capabilities"]["input_kinds"]) == ["data", "text"]
        body = await (await h.client.get("/v1/models", headers=AUTH)).json()
        sentiment = next(m for m in body["models"] if m["id"] == "modzy/ed542963de@1.0.1")
        assert sentiment["aliases"] == ["sentiment"]
        assert sentiment["output_type"] == "classification"
        assert sentiment["description"] is None  # the configuration gives it none

    async def test_models_carry_the_configured_description(self, make_gateway):
        from gateway.config.settings import ModelSettings

        model = ModelSettings(
            id="ed542963de", version="1.0.1", output_type="classification",
            description="Sentiment analysis (text)",
        )  # fmt: skip
        h = await make_gateway(["modzy"], provider_over={"modzy": {"models": [model]}})
        body = await (await h.client.get("/v1/models", headers=AUTH)).json()
        assert body["models"] == [
            {
                "id": "modzy/ed542963de@1.0.1",
                "provider": "modzy",
                "aliases": ["sentiment"],
                "output_type": "classification",
                "description": "Sentiment analysis (text)",
            }
        ]

    async def test_unknown_route_and_method(self, h):
        await problem(await h.client.get("/v2/nothing", headers=AUTH), 404, "not_found")
        resp = await h.client.put("/v1/jobs", headers=AUTH)
        await problem(resp, 405, "method_not_allowed")

    async def test_server_header_has_no_version(self, h):
        resp = await h.client.get("/healthz")
        assert resp.headers["Server"] == "inference-gateway"

    async def test_security_headers_on_authenticated_answers(self, h):
        resp = await h.client.get("/v1/jobs", headers=AUTH)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-store"

    async def test_metrics_count_by_route_template(self, h):
        job = await (await submit(h)).json()
        await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        value = h.registry.get_sample_value(
            "gateway_http_requests_total",
            {"route": "/v1/jobs/{job_id}", "method": "GET", "code": "200"},
        )
        assert value == 1
        text = await (await h.client.get("/metrics")).text()
        assert job["id"] not in text

    async def test_no_credential_in_any_log_line(self, h, captured_logs):
        await submit(h, headers=AUTH)
        await h.client.get("/v1/jobs", headers={"Authorization": "Bearer test-key-acme-0123456789"})
        await h.client.get("/v1/jobs", headers=OTHER_AUTH)
        await h.client.get("/v1/jobs", headers={"X-API-Key": "wrong-but-secret-looking"})
        text = json.dumps(captured_logs, default=str)
        assert captured_logs, "expected log lines"
        for secret in (*SECRETS, "wrong-but-secret-looking", "demo.modzy-simulator-key"):
            assert secret not in text
        lines = [e for e in captured_logs if e.get("event") == "request"]
        assert lines and all("route" in e and "status" in e for e in lines)
