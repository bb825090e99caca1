"""The LlamaCloud adapter (v2: one classify job per input) against its simulator."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from adapters.base import (
    Counts,
    InputKind,
    ItemResult,
    ItemStatus,
    JobHandle,
    JobInput,
    JobRequest,
    JobStatus,
    ModelRef,
    ProviderAdapter,
    ProviderConfig,
    StatusReport,
    Submission,
    SupportsCancel,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.llamacloud import EXAMPLE_RULES, PROVIDER_TYPE, SIM_STATE, LlamaCloudAdapter
from adapters.llamacloud import adapter as adapter_module
from adapters.llamacloud.simulator import FAST_SETTINGS, SimState, fast_simulator
from adapters.outputs import ClassificationOutput
from adapters.simulation import Fault, SimulatorControl
from adapters.upstream import Upstream, UpstreamSettings
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, Wired, wired_adapter

EXAMPLES = PROVIDER_TYPE.examples
SEEDED = {"dfl-sample-invoice", "dfl-sample-contract"}


def doc(name: str, text: str) -> JobInput:
    return JobInput(name=name, kind=InputKind.DATA, data=text.encode(), content_type="text/plain")


def request(*inputs: JobInput, key: str = "", **options: Any) -> JobRequest:
    if "rules" not in options:
        options["rules"] = EXAMPLE_RULES
    return JobRequest(
        model=ModelRef("llamacloud", "classifier"), inputs=inputs, options=options, submit_key=key
    )


class Job:
    """A submitted job as the gateway keeps it: each report's state replaces the last."""

    def __init__(self, adapter: ProviderAdapter, submission: Submission, req: JobRequest):
        self.adapter = adapter
        self.handle = JobHandle(
            upstream_id=submission.upstream_id,
            model=req.model,
            input_names=tuple(i.name for i in req.inputs),
            state=submission.state,
        )

    def keep(self, report: StatusReport) -> StatusReport:
        if report.state is not None:
            self.handle = replace(self.handle, state=report.state)
        return report

    async def status(self) -> StatusReport:
        return self.keep(await self.adapter.status(self.handle))

    async def results(self) -> dict[str, ItemResult]:
        return dict((await self.adapter.results(self.handle)).items)

    async def cancel(self) -> StatusReport:
        assert isinstance(self.adapter, SupportsCancel)
        report = await self.adapter.cancel(self.handle)
        assert report is not None
        return self.keep(report)


def label(item: ItemResult) -> str | None:
    assert isinstance(item.output, ClassificationOutput), item
    return item.output.label


def sim(clock: FakeClock, **changes: Any) -> web.Application:
    return fast_simulator(SimulatorControl(clock=clock), replace(FAST_SETTINGS, **changes))


def sim_state(w: Wired) -> SimState:
    return w.server.app[SIM_STATE]


def calls(w: Wired, method: str, path: str) -> int:
    return sum(1 for r in w.control.requests if r.method == method and r.path == path)


class TestLifecycle:
    async def test_one_classify_job_per_input_from_queued_to_succeeded(self):
        clock = FakeClock()
        app = sim(clock)
        req = request(*EXAMPLES.good_inputs, key="sub-1", **EXAMPLES.options)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            state = app[SIM_STATE]
            assert calls(w, "POST", "/api/v1/beta/files") == 3  # the ref is not uploaded
            assert calls(w, "POST", "/api/v2/classify") == 4
            jobs = list(state.jobs.values())
            assert [j.transaction_id for j in jobs] == [f"sub-1-{i}" for i in range(4)]
            assert jobs[3].file_input == "dfl-sample-invoice"
            assert state.files[jobs[0].file_input].purpose == "classify"
            assert submission.upstream_id == jobs[0].id
            assert submission.report is not None
            assert submission.report.status is JobStatus.QUEUED
            assert submission.report.counts == Counts.all_pending(4)

            job = Job(w.adapter, submission, req)
            clock.advance(0.1)
            report = await job.status()
            assert (report.status, report.upstream_status) == (JobStatus.RUNNING, "RUNNING")
            assert await job.results() == {}

            clock.advance(0.2)
            report = await job.status()
            assert (report.status, report.upstream_status) == (JobStatus.SUCCEEDED, "COMPLETED")
            assert report.counts == Counts(total=4, succeeded=4)
            results = await job.results()
        assert {name: label(item) for name, item in results.items()} == {
            "invoice-7": "invoice",
            "receipt-3": "receipt",
            "contract-1": "contract",
            "sample": "invoice",
        }
        item = results["invoice-7"]
        assert isinstance(item.output, ClassificationOutput)
        assert item.output.score is not None and 0.5 < item.output.score <= 1.0
        assert "invoice" in (item.output.reasoning or "")
        assert item.raw["status"] == "COMPLETED"

    async def test_status_is_one_list_call_for_many_jobs_and_none_once_finished(self):
        clock = FakeClock()
        app = sim(clock, max_page_size=100, list_page_size=100)
        inputs = [
            JobInput(name=f"d{n}", kind=InputKind.REF, ref="dfl-sample-invoice") for n in range(120)
        ]
        req = request(*inputs)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            w.control.requests.clear()
            await job.status()
            lists = [r for r in w.control.requests if r.path == "/api/v2/classify"]
            assert len(lists) == 3  # 50 + 50 + 20 ids
            assert len(w.control.requests) == 3
            clock.advance(1.0)
            assert (await job.status()).status is JobStatus.SUCCEEDED
            w.control.requests.clear()
            assert (await job.status()).status is JobStatus.SUCCEEDED
            assert w.control.requests == []
            results = await job.results()
        assert len(results) == 120
        assert all(item.status is ItemStatus.SUCCEEDED for item in results.values())

    async def test_partial_results_as_each_input_finishes(self):
        clock = FakeClock()
        app = sim(clock, slow_seconds=30.0)
        req = request(doc("a", "invoice number"), doc("slow-b", "store receipt"), doc("c", "x"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await job.status()
            assert report.status is JobStatus.RUNNING
            assert report.upstream_status == "COMPLETED:2,RUNNING:1"
            assert report.counts == Counts(total=3, succeeded=2, pending=1)
            partial = await job.results()
            assert set(partial) == {"a", "c"}
            # The next check asks only about the job still running.
            w.control.requests.clear()
            await job.status()
            slow_id = sim_state(w).jobs[job.handle.state["ids"][0]].id
            assert [r.path for r in w.control.requests] == ["/api/v2/classify"]
            assert sim_state(w).queries[-1][1] == [("job_ids", slow_id), ("page_size", "50")]
            clock.advance(30.0)
            assert (await job.status()).status is JobStatus.SUCCEEDED
            assert set(await job.results()) == {"a", "slow-b", "c"}

    async def test_some_inputs_failing_partly_succeed(self):
        req = request(*EXAMPLES.partly_failing_inputs, **EXAMPLES.options)
        clock = FakeClock()
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await job.status()
            results = await job.results()
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.counts == Counts(total=3, succeeded=2, failed=1)
        failed = results["scan-fail-1"]
        assert failed.status is ItemStatus.FAILED
        assert failed.error is not None and "could not be parsed" in failed.error.message

    async def test_every_input_failing_fails_the_job(self):
        req = request(doc("fail-1", "x"), doc("fail-2", "y"))
        clock = FakeClock()
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await job.status()
        assert report.status is JobStatus.FAILED
        assert report.error is not None and "Every file failed" in report.error.message

    async def test_an_unmatched_document_succeeds_without_a_label(self):
        req = request(doc("odd", "zebra giraffe"))
        clock = FakeClock()
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            await job.status()
            item = (await job.results())["odd"]
        assert item.status is ItemStatus.SUCCEEDED
        assert label(item) is None

    async def test_project_and_organization_go_on_every_call(self):
        req = request(doc("a", "invoice"), project_id="p1", organization_id="o1")
        clock = FakeClock()
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            await job.status()
            await job.results()
            queries = sim_state(w).queries
        assert len(queries) == 4  # upload, create, status, results
        for _, query in queries:
            assert ("project_id", "p1") in query and ("organization_id", "o1") in query

    async def test_provider_defaults_supply_rules(self):
        async with wired_adapter(PROVIDER_TYPE, defaults={"rules": EXAMPLE_RULES}) as w:
            req = JobRequest(
                model=ModelRef("llamacloud", "classifier"),
                inputs=(doc("a", "invoice number"),),
            )
            w.adapter.validate(req)
            submission = await w.adapter.submit(req)
        assert submission.upstream_id.startswith("cls-")

    async def test_a_job_from_the_v1_api_fails_clearly(self):
        req = request(doc("a", "x"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            old = JobHandle(
                upstream_id="3f1c2a8e-5b7d-4c1e-9a2f-6d8e0b4c7a15",
                model=req.model,
                input_names=("a",),
                state={"file_ids": {"a": "x"}, "params": {}},
            )
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.status(old)
        assert "v1" in str(info.value.detail)


class TestResend:
    async def test_a_create_whose_answer_is_lost_is_resent_and_makes_no_second_job(self):
        req = request(doc("a", "invoice"), doc("b", "receipt"), key="k1")
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="lost", match="POST /api/v2/classify", times=1)])
            submission = await w.adapter.submit(req)
            assert calls(w, "POST", "/api/v2/classify") == 3
            assert len(sim_state(w).jobs) == 2
            assert submission.upstream_id in sim_state(w).jobs

    async def test_a_whole_submit_resent_with_its_key_gets_the_same_jobs(self):
        refs = [
            JobInput(name=f"r{n}", kind=InputKind.REF, ref="dfl-sample-invoice") for n in range(3)
        ]
        async with wired_adapter(PROVIDER_TYPE) as w:
            first = await w.adapter.submit(request(*refs, key="same"))
            again = await w.adapter.submit(request(*refs, key="same"))
            other = await w.adapter.submit(request(*refs, key="other"))
        assert (again.upstream_id, again.state["ids"]) == (first.upstream_id, first.state["ids"])
        assert other.upstream_id != first.upstream_id


class TestCancel:
    async def test_cancel_stops_every_running_job_and_keeps_finished_results(self):
        clock = FakeClock()
        req = request(doc("a", "invoice"), doc("slow-b", "receipt"), doc("slow-c", "contract"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            assert isinstance(w.adapter, SupportsCancel) and PROVIDER_TYPE.capabilities.cancel
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(0.5)
            await job.status()
            report = await job.cancel()
            assert calls(w, "POST", f"/api/v2/classify/{job.handle.state['ids'][0]}/cancel") == 1
            assert calls(w, "POST", f"/api/v2/classify/{job.handle.upstream_id}/cancel") == 0
            results = await job.results()
            states = {j.id: j.cancelled_at is not None for j in sim_state(w).jobs.values()}
        assert report.status is JobStatus.CANCELLED
        assert report.counts == Counts(total=3, succeeded=1, pending=2)
        assert sum(states.values()) == 2
        assert results["a"].status is ItemStatus.SUCCEEDED
        assert {results["slow-b"].status, results["slow-c"].status} == {ItemStatus.CANCELLED}

    async def test_a_job_that_ended_meanwhile_keeps_its_end(self):
        """The gateway's state says running; the provider finished it: 400 on cancel."""
        clock = FakeClock()
        req = request(doc("a", "invoice"), doc("b", "receipt"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await job.cancel()
        assert report.status is JobStatus.SUCCEEDED
        assert report.counts == Counts(total=2, succeeded=2)


class TestSubmitFailures:
    async def test_an_upload_failing_half_way_creates_no_job_and_deletes_the_rest(self):
        clock = FakeClock()
        app = sim(clock, fail_upload_after=2)
        req = request(doc("a", "x"), doc("b", "y"), doc("c", "z"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderBadResponse):
                await w.adapter.submit(req)
            assert app[SIM_STATE].jobs == {}
            assert set(app[SIM_STATE].files) == SEEDED

    async def test_the_upload_rate_limit_is_unavailable_with_retry_after(self):
        clock = FakeClock()
        app = sim(clock, upload_rate_limit=1, upload_rate_window=30.0)
        req = request(doc("a", "x"), doc("b", "y"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.submit(req)
        assert info.value.headers["Retry-After"] == "30"

    async def test_a_refused_create_cancels_the_jobs_made_and_deletes_the_uploads(
        self, monkeypatch
    ):
        clock = FakeClock()
        app = sim(clock)
        req = request(
            doc("a", "x"),
            JobInput(name="gone", kind=InputKind.REF, ref="dfl-missing"),
            doc("c", "z"),
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            # One call at a time: the first input's job exists when the second is refused.
            monkeypatch.setattr(adapter_module, "PARALLEL_CALLS", 1)
            with pytest.raises(ProviderRejected) as info:
                await w.adapter.submit(req)
            jobs = list(app[SIM_STATE].jobs.values())
        assert "dfl-missing" in str(info.value.detail)
        assert len(jobs) == 1 and jobs[0].cancelled_at is not None
        assert set(app[SIM_STATE].files) == SEEDED

    async def test_a_server_error_on_create_keeps_the_files(self):
        """After a 5xx the failed create may have made a job, which needs its file."""
        clock = FakeClock()
        app = sim(clock)
        req = request(doc("a", "x"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            w.control.set_faults([Fault(kind="status", status=500, match="POST /api/v2/classify")])
            with pytest.raises(ProviderBadResponse):
                await w.adapter.submit(req)
            assert len(app[SIM_STATE].files) == len(SEEDED) + 1


class TestLostJobs:
    async def test_a_job_the_provider_lost_fails_only_its_input(self):
        clock = FakeClock()
        req = request(doc("a", "invoice"), doc("b", "receipt"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            del sim_state(w).jobs[job.handle.state["ids"][0]]
            clock.advance(1.0)
            report = await job.status()
            results = await job.results()
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert results["b"].status is ItemStatus.FAILED
        assert results["b"].error is not None and "no longer knows" in results["b"].error.message
        assert results["a"].status is ItemStatus.SUCCEEDED

    async def test_a_job_whose_every_provider_job_is_lost_is_not_found(self):
        req = request(doc("a", "invoice"))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = Job(w.adapter, await w.adapter.submit(req), req)
            sim_state(w).jobs.clear()
            with pytest.raises(UpstreamJobNotFound):
                await job.status()


class TestValidation:
    @pytest.mark.parametrize(
        ("options", "pointer"),
        [
            ({"rules": [{"type": "a"}]}, "/options/provider/rules/0/description"),
            ({"rules": EXAMPLE_RULES, "mode": "MULTIMODAL"}, "/options/provider/mode"),
            (
                {"rules": EXAMPLE_RULES, "parsing_configuration": {"target_pages": [0]}},
                "/options/provider/parsing_configuration/target_pages",
            ),
            ({"rules": EXAMPLE_RULES, "colour": "red"}, "/options/provider/colour"),
        ],
        ids=["rule-without-description", "v1-mode", "v1-pages", "unknown-option"],
    )
    def test_bad_options(self, options, pointer):
        adapter = offline_adapter()
        req = JobRequest(
            model=ModelRef("llamacloud", "classifier"), inputs=(doc("a", "x"),), options=options
        )
        with pytest.raises(ValidationFailed) as info:
            adapter.validate(req)
        assert pointer in [e.pointer for e in info.value.errors]

    def test_other_model_is_refused(self):
        req = replace(request(doc("a", "x")), model=ModelRef("llamacloud", "extract"))
        with pytest.raises(ValidationFailed):
            offline_adapter().validate(req)

    def test_text_input_is_unsupported(self):
        req = request(JobInput(name="t", kind=InputKind.TEXT, text="hi"))
        with pytest.raises(UnsupportedInput):
            offline_adapter().validate(req)

    @pytest.mark.parametrize("ref", ["3f1c2a8e-5b7d-4c1e-9a2f-6d8e0b4c7a15", "../x", "12"])
    def test_ref_must_be_a_file_or_parse_job_id(self, ref):
        req = request(JobInput(name="r", kind=InputKind.REF, ref=ref))
        with pytest.raises(ValidationFailed) as info:
            offline_adapter().validate(req)
        assert info.value.errors[0].pointer == "/inputs/0/ref"

    def test_good_request_passes(self):
        offline_adapter().validate(
            request(doc("a", "x"), JobInput(name="p", kind=InputKind.REF, ref="pjb-1"))
        )


def offline_adapter() -> LlamaCloudAdapter:
    """Validation needs no network: the upstream is never started."""
    upstream = Upstream(UpstreamSettings(provider="llamacloud", base_url="http://127.0.0.1:9"))
    return LlamaCloudAdapter(ProviderConfig(name="llamacloud", type="llamacloud"), upstream)
