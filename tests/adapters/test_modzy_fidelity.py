"""The Modzy adapter against its simulator in the real provider's shapes (issue 14, point 4).

Input names from the model version's metadata (read once per version), multi-input
models through ``fields``, an item failed (not the job) for a wrong input name, the
``COMPLETED_WITH_ERROR`` word, and result items carrying the platform's fields, whose
``accessKey`` must never reach a caller: not through the adapter, not through the API.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemStatus,
    JobHandle,
    JobInput,
    JobRequest,
    JobStatus,
    ModelRef,
    Submission,
)
from adapters.errors import ProviderBadResponse, ProviderRejected
from adapters.modzy import IMAGE_ID, PROVIDER_TYPE, SENTIMENT_ID, SIM_ACCESS_KEY, TOPICS_ID
from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.outputs import ClassificationOutput
from adapters.simulation import Fault, SimulatorControl
from tests.conftest import AUTH, leaked
from tests.support import FakeClock, wired_adapter

SENTIMENT = ModelRef("modzy", SENTIMENT_ID, "1.0.1")
IMAGE = ModelRef("modzy", IMAGE_ID, "0.0.1")
TOPICS = ModelRef("modzy", TOPICS_ID, "2.0.0")
VERSION_ROUTE = "GET /api/models/"


def text(name: str, value: str = "a fine day", **fields: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.TEXT, text=value, fields=fields)


def request(*inputs: JobInput, model: ModelRef = SENTIMENT) -> JobRequest:
    return JobRequest(model=model, inputs=inputs)


def handle(req: JobRequest, submission: Submission) -> JobHandle:
    return JobHandle(submission.upstream_id, req.model, tuple(i.name for i in req.inputs))


def clocked(**settings: Any) -> tuple[FakeClock, Any]:
    clock = FakeClock()
    merged: dict[str, Any] = {"queue_seconds": 1.0, "item_seconds": 1.0, **settings}
    return clock, create_simulator(SimulatorControl(clock=clock), SimSettings(**merged))


def version_reads(control: SimulatorControl) -> list[str]:
    return [r.path for r in control.requests if f"{r.method} {r.path}".startswith(VERSION_ROUTE)]


class TestInputNames:
    async def test_read_once_per_model_version_from_its_details(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            for _ in range(3):
                await w.adapter.submit(request(text("r1")))
            picture = JobInput("p1", InputKind.DATA, data=b"\x89PNG", content_type="image/png")
            await w.adapter.submit(request(picture, model=IMAGE))
            reads = version_reads(w.control)
            sent = [r for r in w.control.requests if r.method == "POST"]
        assert reads == [
            f"/api/models/{SENTIMENT_ID}/versions/1.0.1",
            f"/api/models/{IMAGE_ID}/versions/0.0.1",
        ]
        assert len(sent) == 4
        assert sent[0].headers["Authorization"] == f"ApiKey {PROVIDER_TYPE.simulator_credential}"

    async def test_an_unknown_version_is_rejected_before_any_submit(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected, match="no model 'ed542963de'"):
                await w.adapter.submit(
                    request(text("r1"), model=ModelRef("modzy", SENTIMENT_ID, "9"))
                )
            assert w.control.count("POST") == 0

    async def test_a_failed_read_sends_nothing_and_is_not_remembered(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=500, match=VERSION_ROUTE, times=1)])
            with pytest.raises(ProviderBadResponse):
                await w.adapter.submit(request(text("r1")))
            assert w.control.count("POST") == 0
            assert (await w.adapter.submit(request(text("r1")))).upstream_id
            assert len(version_reads(w.control)) == 2


class TestMultiInputModels:
    async def test_fields_carry_the_other_input_and_a_bad_value_fails_only_its_item(self):
        clock, app = clocked()
        labels = {"labels": ["sports", "politics", "science"]}
        req = request(
            text("match", "A great goal in the sports final", **{"config.json": labels}),
            text("vote", "The politics of the vote", **{"config.json": labels}),
            text("broken", "anything", **{"config.json": "not json"}),
            model=TOPICS,
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert (report.status, report.upstream_status) == (
            JobStatus.PARTIALLY_SUCCEEDED,
            "COMPLETED",
        )
        assert report.counts == Counts(total=3, succeeded=2, failed=1)
        match, vote = results.items["match"].output, results.items["vote"].output
        assert isinstance(match, ClassificationOutput) and match.label == "sports"
        assert isinstance(vote, ClassificationOutput) and vote.label == "politics"
        broken = results.items["broken"]
        assert broken.status is ItemStatus.FAILED
        assert broken.error is not None and "config.json is not valid JSON" in broken.error.message

    async def test_without_metadata_a_wrong_guess_fails_the_items_not_the_job(self):
        """A key refused the model routes (403): names guessed; Modzy fails each item."""
        clock, app = clocked()
        req = request(text("r1"), text("r2"), model=TOPICS)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            w.control.set_faults([Fault(kind="status", status=403, match=VERSION_ROUTE)])
            submission = await w.adapter.submit(req)  # accepted: the job is not refused
            job = handle(req, submission)
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.FAILED
        assert report.error == ErrorInfo("all_items_failed", "Every input of the job failed.")
        for item in results.items.values():
            assert item.status is ItemStatus.FAILED
            assert item.error is not None and "input 'config.json' missing" in item.error.message


class TestProviderShapes:
    async def test_completed_with_error_is_finished_and_items_are_judged_one_by_one(self):
        clock, app = clocked(completed_with_error=True)
        req = request(text("r1", "great"), text("r2-fail"), text("r3", "awful"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.upstream_status == "COMPLETED_WITH_ERROR"
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED and report.status.done
        assert report.counts == Counts(total=3, succeeded=2, failed=1)
        statuses = {n: i.status for n, i in results.items.items()}
        assert statuses == {
            "r1": ItemStatus.SUCCEEDED,
            "r2-fail": ItemStatus.FAILED,
            "r3": ItemStatus.SUCCEEDED,
        }

    async def test_platform_fields_are_neither_output_nor_shown_raw(self):
        clock, app = clocked(platform_fields=True)
        req = request(text("r1", "great"), text("r2-fail"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(1.5)  # r1 running: its item carries the fields already
            running = await w.adapter.results(job)
            clock.advance(10)
            results = await w.adapter.results(job)
            sent = await w.upstream.request("GET", f"/results/{job.upstream_id}", operation="t")
        assert sent.json()["results"]["r1"]["accessKey"] == SIM_ACCESS_KEY  # the provider's shape
        assert running.items["r1"].status is ItemStatus.RUNNING
        ok, failed = results.items["r1"], results.items["r2-fail"]
        assert isinstance(ok.output, ClassificationOutput) and ok.output.label == "positive"
        assert failed.status is ItemStatus.FAILED and failed.error is not None
        for item in (*running.items.values(), ok, failed):
            assert "accessKey" not in item.raw and "userIdentifier" not in item.raw
            assert "inputSize" in item.raw
        assert SIM_ACCESS_KEY not in repr(results) + repr(running)


async def test_an_access_key_in_a_result_item_never_reaches_a_results_answer(make_gateway):
    """Through the whole gateway: results, one item, CSV and NDJSON, raw included."""
    sim = create_simulator(
        None, SimSettings(queue_seconds=0.01, item_seconds=0.01, platform_fields=True)
    )
    h = await make_gateway(["modzy"], sim_apps={"modzy": sim})
    inputs = [{"name": "r1", "text": "great"}, {"name": "r2-fail", "text": "meh"}]
    resp = await h.client.post(
        "/v1/jobs", json={"model": "sentiment", "inputs": inputs}, headers=AUTH
    )
    job = await resp.json()
    assert resp.status in (200, 201, 202), job
    waited = await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"})
    assert (await waited.json())["done"] is True
    shown = []
    for path in ("results", "results?include=raw", "results/r1?include=raw"):
        answer = await h.client.get(f"/v1/jobs/{job['id']}/{path}", headers=AUTH)
        assert answer.status == 200, await answer.text()
        shown.append(await answer.text())
    for accept in ("text/csv", "application/x-ndjson"):
        answer = await h.client.get(
            f"/v1/jobs/{job['id']}/results?include=raw", headers={**AUTH, "Accept": accept}
        )
        shown.append(await answer.text())
    everything = "\n".join(shown)
    assert "inputSize" in everything  # the raw items were there
    assert SIM_ACCESS_KEY not in everything
    assert leaked(everything) == []
    assert "positive" in json.dumps(shown)
