"""The Vody adapter against its simulator over loopback HTTP."""

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
    SupportsCancel,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.outputs import ClassificationOutput
from adapters.simulation import Fault, SimulatorControl
from adapters.vody import PROVIDER_TYPE
from adapters.vody.simulator import SimSettings, create_simulator
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, wired_adapter


def image(name: str, path: str | None = None, **fields: Any) -> JobInput:
    return JobInput(
        name=name,
        kind=InputKind.URL,
        url=f"https://cdn.example.com/{path or name}.png",
        fields=fields or {"product_type": "Shoes"},
    )


def request(*inputs: JobInput, model: str = "color-classification", **options: Any) -> JobRequest:
    return JobRequest(model=ModelRef("vody", model), inputs=inputs, options=options)


def handle(req: JobRequest, submission) -> JobHandle:
    return JobHandle(
        upstream_id=submission.upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=submission.state,
    )


def clocked(**settings: Any) -> tuple[FakeClock, Any]:
    clock = FakeClock()
    app = create_simulator(SimulatorControl(clock=clock), SimSettings(job_seconds=2.0, **settings))
    return clock, app


class TestLifecycle:
    async def test_color_job_runs_then_succeeds_with_classifications(self):
        clock, app = clocked()
        req = request(image("a"), image("b"), image("c"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            assert submission.report is not None
            assert submission.report.status is JobStatus.RUNNING
            job = handle(req, submission)

            running = await w.adapter.status(job)
            assert running.status is JobStatus.RUNNING
            assert running.upstream_status == "in_progress"
            assert running.counts == Counts.all_pending(3)
            assert (await w.adapter.results(job)).items == {}
            assert w.control.count("GET", "/results") == 0

            clock.advance(2.0)
            done = await w.adapter.status(job)
            assert done.status is JobStatus.SUCCEEDED
            assert done.upstream_status == "completed"
            assert done.counts == Counts(total=3, succeeded=3)

            results = await w.adapter.results(job)
        assert list(results.items) == ["a", "b", "c"]
        for name, item in results.items.items():
            assert item.status is ItemStatus.SUCCEEDED
            assert isinstance(item.output, ClassificationOutput)
            assert item.output.label == item.raw["color_name"]
            assert item.output.score == float(item.raw["confidence"])
            assert len(item.output.scores) == 3
            assert item.raw["image_path"] == f"https://cdn.example.com/{name}.png"

    async def test_pattern_model_returns_patterns(self):
        clock, app = clocked()
        req = request(
            image("shirt", category="Fashion", product_type="Shirts"),
            model="pattern-classification",
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            results = await w.adapter.results(job)
            sent = w.control.requests[0]
        assert sent.path == "/inference/pattern-classification"
        assert sent.headers["x-vody-api-key"] == PROVIDER_TYPE.simulator_credential
        item = results.items["shirt"]
        assert isinstance(item.output, ClassificationOutput)
        assert item.output.label == item.raw["pattern"]
        assert item.raw["product_type"] == "Shirts"
        assert item.raw["category"] == "Fashion"

    async def test_fast_simulator_finishes_the_contract_examples(self):
        """The contract examples go submit → poll → results on the fast simulator."""
        ex = PROVIDER_TYPE.examples
        req = JobRequest(
            model=ModelRef("vody", ex.model_id), inputs=ex.good_inputs, options=ex.options
        )
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.adapter.validate(req)
            job = handle(req, await w.adapter.submit(req))
            report = await _poll(w.adapter, job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.SUCCEEDED
        assert {r.status for r in results.items.values()} == {ItemStatus.SUCCEEDED}
        assert results.items["boot"].raw["product_type"] == "Shoes"
        assert results.items["boot"].raw["category"] == "Fashion"

    async def test_fast_simulator_partly_fails_the_partly_failing_example(self):
        ex = PROVIDER_TYPE.examples
        req = JobRequest(model=ModelRef("vody", ex.model_id), inputs=ex.partly_failing_inputs)
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            report = await _poll(w.adapter, job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert {n: r.status for n, r in results.items.items()} == {
            "sandal": ItemStatus.SUCCEEDED,
            "bad-fail-1": ItemStatus.FAILED,
            "loafer": ItemStatus.SUCCEEDED,
        }

    async def test_numbers_as_numbers_and_another_id_key_still_work(self):
        clock, app = clocked(numbers_as_strings=False, id_key="inference_id", submit_status=202)
        req = request(image("a"), image("b"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.counts == Counts(total=2, succeeded=2)
        for item in results.items.values():
            assert isinstance(item.output, ClassificationOutput)
            assert isinstance(item.output.score, float)


async def _poll(adapter: ProviderAdapter, job: JobHandle):
    for _ in range(100):
        report = await adapter.status(job)
        if report.status.done:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError("job never finished")


class TestFailures:
    async def test_some_failed_items_make_a_partial_success(self):
        clock, app = clocked(fail_paths=frozenset({"https://cdn.example.com/c.png"}))
        req = request(image("a"), image("bad-fail-1", "missing-fail"), image("c"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.counts == Counts(total=3, succeeded=1, failed=2)
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        for name in ("bad-fail-1", "c"):
            assert results.items[name].status is ItemStatus.FAILED
            assert results.items[name].error == ErrorInfo("item_failed", "could not fetch image")

    @pytest.mark.parametrize("fail_job", [True, False], ids=["job-failed", "job-completed"])
    async def test_every_item_failed_is_a_failed_job(self, fail_job):
        clock, app = clocked(fail_job_when_all_items_fail=fail_job)
        req = request(image("x-fail"), image("y-FAIL"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            report = await w.adapter.status(job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.FAILED
        assert report.upstream_status == ("failed" if fail_job else "completed")
        assert report.error is not None
        assert {r.status for r in results.items.values()} == {ItemStatus.FAILED}
        assert results.items["x-fail"].error == ErrorInfo("item_failed", "could not fetch image")

    async def test_failed_job_without_results_fails_every_input(self):
        clock, app = clocked()
        req = request(image("x-fail"), image("y-fail"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            w.control.set_faults([Fault(kind="status", status=404, match="/results")])
            results = await w.adapter.results(job)
        assert [r.error for r in results.items.values()] == [
            ErrorInfo("item_failed", "All items in the request failed.")
        ] * 2


class TestNoCancel:
    async def test_adapter_does_not_offer_cancel(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            assert isinstance(w.adapter, ProviderAdapter)
            assert not isinstance(w.adapter, SupportsCancel)
            assert not hasattr(w.adapter, "cancel")
            assert w.adapter.capabilities.cancel is False


class TestUpstreamErrors:
    async def test_429_after_retries_is_unavailable_with_retry_after(self):
        req = request(image("a"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults(
                [Fault(kind="status", status=429, retry_after="0", match="/status")]
            )
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.status(job)
            assert w.control.count("GET", "/status") == 3  # one try + two retries
        assert info.value.headers["Retry-After"] == "1"

    async def test_simulated_rate_limit_answers_429_in_vodys_words(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.rate_limit_rps = 0.01
            req = request(image("a"))
            job = handle(req, await w.adapter.submit(req))
            resp = await w.upstream.request(
                "GET", f"/inference/{job.upstream_id}/status", operation="t"
            )
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.status(job)
        assert resp.status == 429
        assert resp.json() == {"message": "Rate limit exceeded"}
        assert int(info.value.headers["Retry-After"]) >= 1

    async def test_refused_credential_is_a_bad_response_without_the_key(self):
        async with wired_adapter(PROVIDER_TYPE, credential="secret-wrong-key-123") as w:
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(request(image("a")))
        assert "secret-wrong-key-123" not in str(info.value.detail)
        assert "credential" in info.value.detail

    @pytest.mark.parametrize("method", ["status", "results"])
    async def test_unknown_inference_id_is_not_found(self, method):
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = JobHandle("0924dcfe-0000", ModelRef("vody", "color-classification"), ("a",))
            with pytest.raises(UpstreamJobNotFound):
                await getattr(w.adapter, method)(job)

    @pytest.mark.parametrize("method", ["submit", "status", "results"])
    async def test_malformed_json_is_a_bad_response(self, method):
        req = request(image("a"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults([Fault(kind="malformed")])
            call = w.adapter.submit(req) if method == "submit" else getattr(w.adapter, method)(job)
            # A 2xx submit answer that cannot be read may stand for a job: it says so.
            said = "may have started the job" if method == "submit" else "not JSON"
            with pytest.raises(ProviderBadResponse, match=said):
                await call

    async def test_a_submit_vody_refuses_is_provider_rejected(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=400, match="POST", times=1)])
            with pytest.raises(ProviderRejected, match="Simulated fault"):
                await w.adapter.submit(request(image("a")))

    async def test_a_model_vody_lacks_is_rejected_not_job_not_found(self):
        app = create_simulator(None, SimSettings(models=("pattern-classification",)))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderRejected, match="no model"):
                await w.adapter.submit(request(image("a")))


class TestValidation:
    async def test_bad_option_names_its_pointer(self):
        ex = PROVIDER_TYPE.examples
        assert ex.bad_options is not None
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(request(image("a"), **ex.bad_options))
        assert [e.pointer for e in info.value.errors] == [ex.bad_option_pointer]

    async def test_unknown_option_is_refused(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(request(image("a"), colour="red"))
        assert [e.pointer for e in info.value.errors] == ["/options/provider/colour"]

    async def test_missing_product_type_without_default_names_the_field(self):
        req = request(image("a"), JobInput(name="b", kind=InputKind.URL, url="https://x/b.png"))
        async with wired_adapter(PROVIDER_TYPE, defaults={}) as w:
            with pytest.raises(ValidationFailed) as info:
                await w.adapter.submit(req)
            assert w.control.count("POST") == 0
        assert [e.pointer for e in info.value.errors] == ["/inputs/1/fields/product_type"]

    async def test_product_type_from_config_defaults(self):
        req = request(JobInput(name="b", kind=InputKind.URL, url="https://x/b.png"))
        async with wired_adapter(PROVIDER_TYPE, defaults={"product_type": "Bags"}) as w:
            w.adapter.validate(req)
            submission = await w.adapter.submit(req)
        assert submission.state["image_paths"] == ["https://x/b.png"]

    async def test_unknown_model_names_the_model_pointer(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(request(image("a"), model="texture-classification"))
        assert [e.pointer for e in info.value.errors] == ["/model"]

    async def test_unsupported_input_kind_and_explain(self):
        ex = PROVIDER_TYPE.examples
        assert ex.unsupported_input is not None
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(UnsupportedInput) as kind:
                w.adapter.validate(request(image("a"), ex.unsupported_input))
            with pytest.raises(UnsupportedInput) as explain:
                w.adapter.validate(replace(request(image("a")), explain=True))
        assert [e.pointer for e in kind.value.errors] == ["/inputs/1"]
        assert [e.pointer for e in explain.value.errors] == ["/options/explain"]
