"""The Modzy adapter against its simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
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
    ProviderAdapter,
    Submission,
    SupportsCancel,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.modzy import IMAGE_ID, PROVIDER_TYPE, SENTIMENT_ID
from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.outputs import ClassificationOutput, MaskExplanation, TokenImportanceExplanation
from adapters.simulation import Fault, SimulatorControl
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, wired_adapter

SENTIMENT = ModelRef("modzy", SENTIMENT_ID, "1.0.1")
IMAGE = ModelRef("modzy", IMAGE_ID, "0.0.1")


def text(name: str, value: str = "a fine day") -> JobInput:
    return JobInput(name=name, kind=InputKind.TEXT, text=value)


def picture(name: str, value: bytes = b"\x89PNG\r\n fake pixels") -> JobInput:
    return JobInput(name=name, kind=InputKind.DATA, data=value, content_type="image/png")


def request(
    *inputs: JobInput, model: ModelRef = SENTIMENT, explain: bool = False, **options: Any
) -> JobRequest:
    return JobRequest(model=model, inputs=inputs, explain=explain, options=options)


def handle(req: JobRequest, submission: Submission) -> JobHandle:
    return JobHandle(
        upstream_id=submission.upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=submission.state,
    )


def clocked(**settings: Any) -> tuple[FakeClock, Any]:
    """A simulator on a fake clock: queue 1 s, then 1 s per item, one at a time."""
    clock = FakeClock()
    merged: dict[str, Any] = {"queue_seconds": 1.0, "item_seconds": 1.0, **settings}
    app = create_simulator(SimulatorControl(clock=clock), SimSettings(**merged))
    return clock, app


async def cancel(adapter: ProviderAdapter, job: JobHandle):
    assert isinstance(adapter, SupportsCancel)
    return await adapter.cancel(job)


async def _poll(adapter: ProviderAdapter, job: JobHandle):
    for _ in range(100):
        report = await adapter.status(job)
        if report.status.done:
            return report
        await asyncio.sleep(0.03)
    raise AssertionError("job never finished")


class TestLifecycle:
    async def test_adapter_implements_the_port_and_cancel(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            assert isinstance(w.adapter, ProviderAdapter)
            assert isinstance(w.adapter, SupportsCancel)
            assert w.adapter.capabilities.cancel is True
            assert w.adapter.capabilities.explain is True

    async def test_queued_early_404_partial_then_complete(self):
        """A job goes queued (results 404 → empty) → running with partial results → succeeded."""
        clock, app = clocked()
        req = request(text("r1", "I love it"), text("r2", "awful, just awful"), text("r3"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            assert submission.report is not None
            assert submission.report.status is JobStatus.QUEUED
            assert submission.report.counts == Counts.all_pending(3)
            job = handle(req, submission)
            looked_up, sent = w.control.requests
            assert (looked_up.method, looked_up.path) == (
                "GET",
                "/api/models/ed542963de/versions/1.0.1",
            )
            assert (sent.method, sent.path) == ("POST", "/api/jobs")
            assert sent.headers["Authorization"] == f"ApiKey {PROVIDER_TYPE.simulator_credential}"

            queued = await w.adapter.status(job)
            assert (queued.status, queued.upstream_status) == (JobStatus.QUEUED, "SUBMITTED")
            early = await w.adapter.results(job)
            assert early.items == {}
            # The early 404 was checked against the job itself.
            assert w.control.count("GET", "/api/results/") == 1
            assert w.control.count("GET", f"/api/jobs/{job.upstream_id}") == 2

            clock.advance(2.5)  # r1 done, r2 processing, r3 not started
            running = await w.adapter.status(job)
            assert (running.status, running.upstream_status) == (JobStatus.RUNNING, "IN_PROGRESS")
            assert running.counts == Counts(total=3, succeeded=1, failed=0, pending=2)
            partial = await w.adapter.results(job)
            assert list(partial.items) == ["r1", "r2"]
            assert partial.items["r1"].status is ItemStatus.SUCCEEDED
            assert partial.items["r2"].status is ItemStatus.RUNNING
            assert partial.items["r2"].output is None

            clock.advance(2)
            done = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert (done.status, done.upstream_status) == (JobStatus.SUCCEEDED, "COMPLETED")
        assert done.counts == Counts(total=3, succeeded=3)
        assert list(results.items) == ["r1", "r2", "r3"]
        labels = {}
        for name, item in results.items.items():
            assert item.status is ItemStatus.SUCCEEDED
            assert isinstance(item.output, ClassificationOutput)
            assert [s.label for s in item.output.scores] != []
            assert item.output.score == max(s.score for s in item.output.scores)
            assert item.explanation is None
            assert item.raw["results.json"]["data"]["result"]["classPredictions"]
            assert item.started_at is not None and item.started_at.tzinfo is not None
            assert item.finished_at is not None and item.finished_at > item.started_at
            assert item.elapsed_ms == 1000
            labels[name] = item.output.label
        assert labels["r1"] == "positive"
        assert labels["r2"] == "negative"

    async def test_fast_simulator_finishes_the_contract_examples(self):
        """The contract examples go submit → poll → results on the fast simulator."""
        ex = PROVIDER_TYPE.examples
        model = ModelRef("modzy", ex.model_id, ex.version)
        async with wired_adapter(PROVIDER_TYPE) as w:
            good = JobRequest(model=model, inputs=ex.good_inputs, options=ex.options)
            w.adapter.validate(good)
            job = handle(good, await w.adapter.submit(good))
            report = await _poll(w.adapter, job)
            results = await w.adapter.results(job)
            partly = JobRequest(model=model, inputs=ex.partly_failing_inputs, options=ex.options)
            partly_job = handle(partly, await w.adapter.submit(partly))
            partly_report = await _poll(w.adapter, partly_job)
            partly_results = await w.adapter.results(partly_job)
        assert report.status is JobStatus.SUCCEEDED
        assert {r.status for r in results.items.values()} == {ItemStatus.SUCCEEDED}
        assert len(results.items) == len(ex.good_inputs)
        assert partly_report.status is JobStatus.PARTIALLY_SUCCEEDED
        failed = {n for n, r in partly_results.items.items() if r.status is ItemStatus.FAILED}
        assert failed == {"bad-fail-1"}

    async def test_legacy_nesting_and_the_other_time_format(self):
        clock, app = clocked(
            legacy_nesting=True,
            time_offset="+00:00",
            submit_status=202,
            submit_includes_status=True,
        )
        req = request(text("r1", "great"), text("bad-FAIL"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            assert submission.report is not None
            assert submission.report.upstream_status == "SUBMITTED"
            assert submission.report.counts == Counts.all_pending(2)
            job = handle(req, submission)
            clock.advance(5)
            results = await w.adapter.results(job)
        ok, failed = results.items["r1"], results.items["bad-FAIL"]
        assert set(ok.raw) == {"r1"}  # the raw item keeps the nesting
        assert ok.raw["r1"]["startTime"].endswith("+00:00")
        assert isinstance(ok.output, ClassificationOutput)
        assert ok.output.label == "positive"
        assert ok.started_at is not None and ok.started_at.tzinfo is not None
        assert failed.status is ItemStatus.FAILED
        assert failed.error is not None and "Model failed to process input" in failed.error.message

    async def test_results_of_a_job_answer_empty_maps_without_early_404(self):
        _, app = clocked(early_404=False)
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            results = await w.adapter.results(job)
            assert w.control.count("GET", "/api/jobs/") == 0
        assert results.items == {}


class TestFailures:
    async def test_failed_items_carry_the_models_message(self):
        clock, app = clocked(fail_inputs=frozenset({"r3"}))
        req = request(text("r1", "good"), text("r2", "this will FAIL"), text("r3"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.upstream_status == "COMPLETED"
        assert report.counts == Counts(total=3, succeeded=1, failed=2)
        assert results.items["r1"].status is ItemStatus.SUCCEEDED
        for name in ("r2", "r3"):
            item = results.items[name]
            assert item.status is ItemStatus.FAILED
            assert item.output is None
            assert item.error == ErrorInfo(
                "item_failed",
                f"Model failed to process input: input.txt of input item {name!r} "
                "could not be read.",
            )
            assert item.raw["status"] == "FAILED"

    async def test_every_item_failed_is_a_failed_job_with_an_error(self):
        clock, app = clocked()
        req = request(text("x-fail"), text("y", "fail me"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.FAILED
        assert report.error == ErrorInfo("all_items_failed", "Every input of the job failed.")
        assert {r.status for r in results.items.values()} == {ItemStatus.FAILED}

    async def test_a_job_over_its_timeout_is_failed_upstream_timeout(self):
        clock, app = clocked()
        req = request(text("r1"), text("r2"), text("r3"), timeout=2500)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert (report.status, report.upstream_status) == (JobStatus.FAILED, "TIMEDOUT")
        assert report.error == ErrorInfo("upstream_timeout", "The job timed out at the provider.")
        assert report.counts == Counts(total=3, succeeded=1, failed=0, pending=2)
        assert list(results.items) == ["r1"]


class TestCancel:
    async def test_cancel_a_running_job(self):
        clock, app = clocked()
        req = request(text("r1"), text("r2"), text("r3"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2.5)
            cancelled = await cancel(w.adapter, job)
            clock.advance(10)
            later = await w.adapter.status(job)
            results = await w.adapter.results(job)
            assert w.control.count("DELETE", "/api/jobs/") == 1
        assert cancelled is not None
        assert (cancelled.status, cancelled.upstream_status) == (JobStatus.CANCELLED, "CANCELED")
        assert cancelled.counts == Counts(total=3, succeeded=1, failed=0, pending=2)
        assert later == cancelled
        # Only the item that ended before the cancel has a result; the others never will.
        assert list(results.items) == ["r1"]

    async def test_cancel_a_queued_job_leaves_no_results(self):
        _, app = clocked()
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            cancelled = await cancel(w.adapter, job)
            results = await w.adapter.results(job)
        assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
        assert results.items == {}

    async def test_cancel_after_the_job_ended_answers_its_terminal_status(self):
        clock, app = clocked()
        req = request(text("r1"), text("r2-fail"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(10)
            report = await cancel(w.adapter, job)
            resp = await w.upstream.request("DELETE", f"/jobs/{job.upstream_id}", operation="t")
        assert report is not None
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.upstream_status == "COMPLETED"
        assert resp.status == 400
        assert "already COMPLETED" in resp.json()["message"]

    async def test_cancel_refused_for_another_reason_is_provider_rejected(self):
        _, app = clocked()
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="status", status=409, match="DELETE")])
            with pytest.raises(ProviderRejected, match="Simulated fault"):
                await cancel(w.adapter, job)


class TestExplain:
    async def test_text_explanation_is_word_importances(self):
        clock, app = clocked()
        req = request(text("r1", "Great food, terrible service!"), explain=True)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            item = (await w.adapter.results(job)).items["r1"]
        assert isinstance(item.output, ClassificationOutput)
        explanation = item.explanation
        assert isinstance(explanation, TokenImportanceExplanation)
        assert explanation.text == "great food terrible service"
        assert set(explanation.by_label) == {"positive", "negative", "neutral"}
        positive = {w.word: w for w in explanation.by_label["positive"]}
        assert positive["great"].score > 0 > positive["terrible"].score
        assert positive["terrible"].index == 2
        words = explanation.text.split()
        for word in explanation.by_label["negative"]:
            assert word.index is not None
            assert words[word.index] == word.word

    async def test_image_explanation_is_a_column_major_mask(self):
        clock, app = clocked()
        req = request(picture("p1"), picture("p2", b"other bytes"), model=IMAGE, explain=True)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            results = await w.adapter.results(job)
        for item in results.items.values():
            assert isinstance(item.output, ClassificationOutput)
            assert item.output.label in {"cat", "dog", "bird", "shoe"}
            mask = item.explanation
            assert isinstance(mask, MaskExplanation)
            assert mask.encoding == "rle_column_major"
            assert 6 <= mask.height <= 10 and 6 <= mask.width <= 10
            assert sum(mask.counts) == mask.height * mask.width
            assert item.raw["results.json"]["modelType"] == "imageClassification"

    async def test_image_without_explain_is_the_wrapped_form(self):
        clock, app = clocked()
        req = request(picture("p1"), model=IMAGE)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            again = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            first = (await w.adapter.results(job)).items["p1"]
            second = (await w.adapter.results(again)).items["p1"]
        assert "data" in first.raw["results.json"]
        assert first.explanation is None
        assert first.output == second.output  # deterministic from the bytes


class TestValidation:
    async def test_mixed_kinds_are_refused_before_any_request(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(UnsupportedInput) as info:
                await w.adapter.submit(request(text("r1"), text("r2"), picture("p1")))
            assert w.control.count() == 0
        assert [e.pointer for e in info.value.errors] == ["/inputs/2"]
        assert "'p1'" in info.value.detail

    async def test_unsupported_kind_names_the_input(self):
        ex = PROVIDER_TYPE.examples
        assert ex.unsupported_input is not None
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(UnsupportedInput) as info:
                w.adapter.validate(request(text("r1"), ex.unsupported_input))
        assert [e.pointer for e in info.value.errors] == ["/inputs/1"]

    async def test_bad_option_names_its_pointer(self):
        ex = PROVIDER_TYPE.examples
        assert ex.bad_options is not None
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ValidationFailed) as info:
                await w.adapter.submit(request(text("r1"), **ex.bad_options))
            assert w.control.count() == 0
        assert [e.pointer for e in info.value.errors] == [ex.bad_option_pointer]

    async def test_a_model_without_version_is_refused_at_model(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(request(text("r1"), model=replace(SENTIMENT, version=None)))
        assert [e.pointer for e in info.value.errors] == ["/model"]

    async def test_defaults_supply_the_input_name_checked_against_the_model(self):
        async with wired_adapter(PROVIDER_TYPE, defaults={"input_name": "text"}) as w:
            with pytest.raises(ValidationFailed, match=r"'input\.txt'") as info:
                await w.adapter.submit(request(text("r1")))
            assert w.control.count("POST") == 0
            ok = await w.adapter.submit(request(text("r1"), input_name="input.txt"))
        assert ok.upstream_id
        assert [e.pointer for e in info.value.errors] == ["/options/provider/input_name"]

    @pytest.mark.parametrize(
        ("req", "said"),
        [
            (request(text("r1"), model=replace(SENTIMENT, version="9.9.9")), "not found"),
            (request(text("r1"), model=IMAGE), "takes 'embedded' inputs"),
            (request(picture("p1")), "takes 'text' inputs"),
        ],
        ids=["unknown-version", "text-to-image-model", "image-to-text-model"],
    )
    async def test_what_the_simulator_refuses_is_provider_rejected(self, req, said):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected, match=said):
                await w.adapter.submit(req)

    async def test_a_submit_404_is_an_unknown_model_not_an_unknown_job(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=404, match="POST")])
            with pytest.raises(ProviderRejected, match="no model 'ed542963de'"):
                await w.adapter.submit(request(text("r1")))


class TestUpstreamErrors:
    async def test_refused_credential_is_a_bad_response_without_the_key(self):
        async with wired_adapter(PROVIDER_TYPE, credential="secret.wrong-key-123") as w:
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(request(text("r1")))
        assert "secret.wrong-key-123" not in str(info.value.detail)
        assert "credential" in info.value.detail

    @pytest.mark.parametrize("method", ["status", "results", "cancel"])
    async def test_unknown_job_id_is_not_found(self, method):
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = JobHandle("4a6f27b3-0000-0000-0000-000000000000", SENTIMENT, ("r1",))
            with pytest.raises(UpstreamJobNotFound):
                await getattr(w.adapter, method)(job)

    async def test_429_after_retries_is_unavailable_with_retry_after(self):
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="status", status=429, retry_after="0", match="GET")])
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.status(job)
            assert w.control.count("GET", "/api/jobs/") == 3  # one try + two retries
        assert info.value.headers["Retry-After"] == "1"

    async def test_a_long_retry_after_is_passed_on_without_waiting(self):
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults(
                [Fault(kind="status", status=429, retry_after="30", match="/results")]
            )
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.results(job)
            assert w.control.count("GET", "/results") == 1
        assert info.value.headers["Retry-After"] == "30"

    async def test_a_submit_is_not_retried_on_503(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=503, retry_after="0", match="POST")])
            with pytest.raises(ProviderUnavailable):
                await w.adapter.submit(request(text("r1")))
            assert w.control.count("POST") == 1

    @pytest.mark.parametrize("status", [500, 502])
    async def test_5xx_is_a_bad_response(self, status):
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="status", status=status)])
            with pytest.raises(ProviderBadResponse, match=f"HTTP {status}"):
                await w.adapter.status(job)

    async def test_a_transient_503_is_retried_away(self):
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="status", status=503, times=1)])
            report = await w.adapter.status(job)
        assert report.upstream_status in {"SUBMITTED", "IN_PROGRESS", "COMPLETED"}

    @pytest.mark.parametrize("method", ["submit", "status", "results", "cancel"])
    async def test_malformed_json_is_a_bad_response(self, method):
        req = request(text("r1"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="malformed")])
            call = w.adapter.submit(req) if method == "submit" else getattr(w.adapter, method)(job)
            # A 2xx submit answer that cannot be read may stand for a job: it says so.
            said = "may have started the job" if method == "submit" else "not JSON"
            with pytest.raises(ProviderBadResponse, match=said):
                await call

    async def test_a_hang_with_a_short_read_timeout_is_provider_timeout(self):
        req = request(text("r1"))

        def short(settings):
            return replace(settings, read_timeout=0.1, retries=0)

        async with wired_adapter(PROVIDER_TYPE, upstream_settings=short) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="hang", match="GET")])
            with pytest.raises(ProviderTimeout):
                await w.adapter.status(job)
