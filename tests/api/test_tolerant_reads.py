"""Answers a provider was never documented to give: read tolerantly, never a 502 loop.

A status word the adapter does not know keeps the job running and is logged once,
then fails the job after ``unknown_status_grace_seconds``; a 2xx submit answer that
cannot be read is a 502 saying the provider may have started the job (logged with the
id it seems to name, counted); a results body in an unknown shape is kept as JSON.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from typing import Any

from adapters.annolab import wire as annolab_wire
from adapters.annolab.simulator import SimSettings as AnnoLabSimSettings
from adapters.annolab.simulator import create_simulator as annolab_simulator
from adapters.base import ItemStatus
from adapters.errors import UnreadableSubmit
from adapters.llamacloud import EXAMPLE_RULES
from adapters.llamacloud.simulator import FAST_SETTINGS, fast_simulator
from adapters.outputs import JsonOutput
from adapters.responses import UpstreamResponse, maybe_job_id
from adapters.simulation import Fault, SimulatorControl
from adapters.vody import wire as vody_wire
from adapters.woodwide import wire as woodwide_wire
from tests.api.test_engine_workflows import BODY as ANNOLAB_BODY
from tests.api.test_engine_workflows import FAST_POLL as ANNOLAB_FAST_POLL
from tests.conftest import AUTH
from tests.support import FakeClock


def classify_body() -> dict[str, Any]:
    text = base64.b64encode(b"Invoice number 4, amount due $3").decode()
    return {
        "model": "llamacloud/classifier",
        "inputs": [{"name": "a", "data": text, "content_type": "text/plain"}],
        "options": {"provider": {"rules": EXAMPLE_RULES}},
    }


async def test_an_unknown_status_word_runs_then_fails_after_the_grace(make_gateway, captured_logs):
    clock = FakeClock()
    settings = replace(FAST_SETTINGS, renamed_statuses={"RUNNING": "THROTTLED"})
    sim = fast_simulator(SimulatorControl(clock=clock), settings)
    h = await make_gateway(
        ["llamacloud"], sim_apps={"llamacloud": sim}, unknown_status_grace_seconds=1.0
    )
    job = await (await h.client.post("/v1/jobs", json=classify_body(), headers=AUTH)).json()
    clock.advance(0.1)  # the provider now says THROTTLED, a word nobody documented
    for _ in range(3):
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        read = await resp.json()
        assert resp.status == 200, read
        assert (read["status"], read["upstream"]["status"]) == ("running", "THROTTLED")
    unknown = [e for e in captured_logs if e["event"] == "provider_status_unknown"]
    assert len(unknown) == 1
    assert unknown[0]["upstream_status"] == "THROTTLED"
    await asyncio.sleep(1.1)
    failed = await (await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "upstream_status_unknown"
    assert "THROTTLED" in failed["error"]["message"]
    results = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
    assert [i["status"] for i in results["items"]] == ["failed"]


async def test_a_known_word_after_an_unknown_one_moves_on(make_gateway):
    clock = FakeClock()
    settings = replace(FAST_SETTINGS, renamed_statuses={"PENDING": "WARMING_UP"})
    sim = fast_simulator(SimulatorControl(clock=clock), settings)
    h = await make_gateway(
        ["llamacloud"], sim_apps={"llamacloud": sim}, unknown_status_grace_seconds=60.0
    )
    job = await (await h.client.post("/v1/jobs", json=classify_body(), headers=AUTH)).json()
    read = await (await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
    assert (read["status"], read["upstream"]["status"]) == ("running", "WARMING_UP")
    clock.advance(1.0)
    # The engine's next check (reads answer from its state meanwhile) sees the job done.
    done = await (
        await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=5"})
    ).json()
    assert done["status"] == "succeeded"


async def test_an_unreadable_submit_answer_says_the_job_may_exist(make_gateway, captured_logs):
    h = await make_gateway(["vody"])
    h.sims["vody"].set_faults([Fault(kind="malformed", match="POST /inference/", times=1)])
    body = {
        "model": "vody/color-classification",
        "inputs": [{"name": "shoe", "url": "https://img.example.com/shoe.jpg"}],
        "options": {"provider": {"product_type": "shoes"}},
    }
    resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
    problem = await resp.json()
    assert resp.status == 502, problem
    assert resp.content_type == "application/problem+json"
    assert "may have started the job" in problem["detail"]
    logged = [e for e in captured_logs if e["event"] == "submit_answer_unreadable"]
    assert len(logged) == 1 and logged[0]["provider"] == "vody"
    counted = h.registry.get_sample_value("gateway_submits_unreadable_total", {"provider": "vody"})
    assert counted == 1
    listed = await (await h.client.get("/v1/jobs", headers=AUTH)).json()
    assert listed["jobs"] == []  # no record of a job the gateway could not read


class TestUnreadableSubmitHints:
    def answer(self, body: bytes) -> UpstreamResponse:
        return UpstreamResponse(status=200, headers={}, body=body, provider="p")

    def test_an_id_at_any_of_the_usual_keys(self):
        assert maybe_job_id(self.answer(b'{"jobIdentifier": "abc-1"}')) == "abc-1"
        assert maybe_job_id(self.answer(b'{"data": {"job": {"inference_id": 42}}}')) == "42"

    def test_none_where_there_is_none(self):
        assert maybe_job_id(self.answer(b"not json")) is None
        assert maybe_job_id(self.answer(b'{"ok": true}')) is None

    def test_the_detail_names_it(self):
        error = UnreadableSubmit("vody", "inf-7")
        assert error.status == 502 and "'inf-7'" in str(error.detail)


class TestWoodWideUnknownStatus:
    def test_an_unknown_word_is_running_and_flagged(self):
        report = woodwide_wire.report_from_wire({"status": "scaling_up"})
        assert (report.status.value, report.known) == ("running", False)

    def test_a_known_word_is_known(self):
        assert woodwide_wire.report_from_wire({"status": "running"}).known


class TestAnnoLabAndVodyUnknownStatus:
    def test_annolab_an_unknown_job_word_is_running_and_flagged(self):
        report = annolab_wire.report_from_wire({"status": "Throttled"}, "annolab", [3240])
        assert (report.status.value, report.known) == ("running", False)
        assert annolab_wire.report_from_wire({"status": "Running"}, "annolab", [3240]).known

    def test_annolab_an_unknown_export_word_is_kept_with_the_export_still_running(self):
        state = annolab_wire.export_state_from_wire({"status": "Paused"}, "annolab", "https://x/")
        assert (state.status, state.unknown, state.done) == ("started", "Paused", False)
        known = annolab_wire.export_state_from_wire({"status": "started"}, "annolab", "https://x/")
        assert known.unknown is None

    def test_vody_an_unknown_word_is_running_and_flagged(self):
        report = vody_wire.report_from_wire({"status": "queued"}, "vody", total=1)
        assert (report.status.value, report.known) == ("running", False)
        assert vody_wire.report_from_wire({"status": "in_progress"}, "vody", total=1).known


async def test_an_annolab_export_stuck_on_an_unknown_word_fails_after_the_grace(
    make_gateway, captured_logs
):
    clock = FakeClock()
    sim = annolab_simulator(
        SimulatorControl(clock=clock),
        AnnoLabSimSettings(
            job_seconds=0.0, queued_seconds=0.0, export_seconds=600.0, initialized_word="Paused"
        ),
    )
    h = await make_gateway(
        ["annolab"],
        sim_apps={"annolab": sim},
        provider_over=ANNOLAB_FAST_POLL,
        unknown_status_grace_seconds=1.0,
    )
    resp = await h.client.post("/v1/jobs", json=ANNOLAB_BODY, headers=AUTH)
    job = await resp.json()
    assert resp.status == 202, job

    async def read_until(done: Any) -> dict[str, Any]:
        for _ in range(100):  # the engine checks every 0.05-0.2 s; reads answer its state
            read: dict[str, Any] = await (
                await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
            ).json()
            if done(read):
                return read
            await asyncio.sleep(0.05)
        raise AssertionError(read)

    stuck = await read_until(lambda r: r["upstream"]["status"] == "Finished (export Paused)")
    assert stuck["status"] == "running"
    failed = await read_until(lambda r: r["done"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "upstream_status_unknown"
    assert "Paused" in failed["error"]["message"]
    unknown = [e for e in captured_logs if e["event"] == "provider_status_unknown"]
    assert len(unknown) == 1 and unknown[0]["upstream_status"] == "Finished (export Paused)"


class TestVodyResultsInShapesNobodyDocumented:
    def test_an_array_under_another_key_is_split_by_input(self):
        body = {"items": [{"color_name": "red", "confidence": 0.9}, {"error": "blurry"}]}
        results = vody_wire.results_from_wire(body, "vody", ["a", "b"])
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        assert results.items["b"].status is ItemStatus.FAILED

    def test_one_input_gets_the_whole_body_as_json(self):
        body = {"prediction": {"hue": "teal"}}
        results = vody_wire.results_from_wire(body, "vody", ["a"])
        item = results.items["a"]
        assert item.status is ItemStatus.SUCCEEDED
        assert item.output == JsonOutput(data=body)

    def test_several_inputs_keep_the_body_as_the_jobs_output(self):
        body = {"shoe": {"hue": "teal"}, "hat": {"hue": "red"}}
        results = vody_wire.results_from_wire(body, "vody", ["shoe", "hat"])
        assert results.job_outputs == (JsonOutput(data=body),)
        assert {i.status for i in results.items.values()} == {ItemStatus.FAILED}
        assert all(
            "job_outputs" in (i.error.message if i.error else "") for i in results.items.values()
        )

    def test_a_running_job_has_no_results_yet(self):
        results = vody_wire.results_from_wire("text", "vody", ["a"], finished=False)
        assert results.items == {}
