"""The LlamaCloud adapter against its simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from adapters.base import (
    Counts,
    ErrorInfo,
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
from adapters.llamacloud.simulator import FAST_SETTINGS, SimSettings, SimState, fast_simulator
from adapters.outputs import ClassificationOutput
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from adapters.upstream import Upstream, UpstreamSettings
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, Wired, wired_adapter

EXAMPLES = PROVIDER_TYPE.examples
SEEDED = {"dfl-sample-invoice", "3f1c2a8e-5b7d-4c1e-9a2f-6d8e0b4c7a15"}


def doc(name: str, text: str, content_type: str = "text/plain") -> JobInput:
    return JobInput(name=name, kind=InputKind.DATA, data=text.encode(), content_type=content_type)


def request(*inputs: JobInput, model: str = "classifier", **options: Any) -> JobRequest:
    if "rules" not in options:
        options["rules"] = EXAMPLE_RULES
    return JobRequest(model=ModelRef("llamacloud", model), inputs=inputs, options=options)


def handle(submission: Submission, req: JobRequest) -> JobHandle:
    return JobHandle(
        upstream_id=submission.upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=submission.state,
    )


def classification(item: ItemResult) -> ClassificationOutput:
    assert isinstance(item.output, ClassificationOutput)
    return item.output


def sim(clock: FakeClock, **changes: Any) -> web.Application:
    return fast_simulator(SimulatorControl(clock=clock), replace(FAST_SETTINGS, **changes))


class TestLifecycle:
    async def test_submit_poll_results(self):
        """Uploads data, reuses a ref, stays running until the end, then reads every page."""
        clock = FakeClock()
        app = sim(clock)
        req = request(*EXAMPLES.good_inputs, **EXAMPLES.options)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            assert isinstance(w.adapter, ProviderAdapter)
            submission = await w.adapter.submit(req)
            assert submission.report is not None
            assert submission.report.status is JobStatus.RUNNING
            assert submission.report.upstream_status == "PENDING"
            file_ids = submission.state["file_ids"]
            assert file_ids["sample"] == "dfl-sample-invoice"
            state = app[SIM_STATE]
            uploaded = state.files[file_ids["invoice-7"]]
            assert (uploaded.name, uploaded.content_type) == ("invoice-7", "text/plain")
            assert w.control.count("POST", "/api/v1/files") == 3

            job = handle(submission, req)
            report = await w.adapter.status(job)
            assert (report.status, report.upstream_status) == (JobStatus.RUNNING, "PENDING")
            early = await w.adapter.results(job)
            assert early.items == {}
            assert w.control.count("GET", "/results") == 0

            clock.advance(1.0)
            report = await w.adapter.status(job)
            assert (report.status, report.upstream_status) == (JobStatus.SUCCEEDED, "SUCCESS")
            results = await w.adapter.results(job)
            # Four files, two per page in the fast simulator.
            assert w.control.count("GET", "/results") == 2
            labels = {name: classification(item).label for name, item in results.items.items()}
            assert labels == {
                "invoice-7": "invoice",
                "receipt-3": "receipt",
                "contract-1": "contract",
                "sample": "invoice",
            }
            item = results.items["invoice-7"]
            assert item.status is ItemStatus.SUCCEEDED
            output = classification(item)
            assert output.score is not None
            assert 0.5 < output.score <= 1.0
            assert output.scores[0].label == "invoice"
            assert "invoice" in (output.reasoning or "")
            assert item.raw["file_id"] == file_ids["invoice-7"]
            assert item.raw["result"]["type"] == "invoice"

    async def test_partial_success_counts_and_failed_item(self):
        clock = FakeClock()
        req = request(*EXAMPLES.partly_failing_inputs, **EXAMPLES.options)
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await w.adapter.status(job)
            assert report.status is JobStatus.PARTIALLY_SUCCEEDED
            assert report.upstream_status == "PARTIAL_SUCCESS"
            assert report.counts == Counts(total=3, succeeded=2, failed=1)
            results = await w.adapter.results(job)
            failed = results.items["scan-fail-1"]
            assert failed.status is ItemStatus.FAILED
            assert failed.error == ErrorInfo(
                "item_failed", "the provider returned no classification for this file"
            )
            assert failed.raw["result"] is None
            assert classification(results.items["receipt-4"]).label == "receipt"

    async def test_every_file_failing_fails_the_job(self):
        clock = FakeClock()
        req = request(doc("a", "this will fail"), doc("fail-b", "fine text"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            report = await w.adapter.status(job)
            assert report.status is JobStatus.FAILED
            assert report.error == ErrorInfo(
                "upstream_failed", "Classification failed for every file."
            )
            results = await w.adapter.results(job)
            assert {i.status for i in results.items.values()} == {ItemStatus.FAILED}

    async def test_listed_fail_names_fail(self):
        clock = FakeClock()
        req = request(doc("x", "invoice number"), doc("y", "a receipt"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock, fail_names=frozenset({"y"}))) as w:
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            results = await w.adapter.results(job)
            assert results.items["x"].status is ItemStatus.SUCCEEDED
            assert results.items["y"].status is ItemStatus.FAILED

    async def test_unmatched_document_has_null_label(self):
        clock = FakeClock()
        req = request(doc("poem", "roses are red, violets are blue"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            item = (await w.adapter.results(job)).items["poem"]
            assert item.status is ItemStatus.SUCCEEDED
            output = classification(item)
            assert output == ClassificationOutput(
                label=None, score=output.score, reasoning=output.reasoning
            )
            assert output.score is not None
            assert output.score < 0.1

    async def test_results_walk_many_pages(self):
        clock = FakeClock()
        inputs = [doc(f"inv-{n}", f"invoice number {n} amount due") for n in range(7)]
        req = request(*inputs)
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            results = await w.adapter.results(job)
            assert sorted(results.items) == sorted(i.name for i in inputs)
            assert w.control.count("GET", "/results") == 4
            queries = [q for key, q in _sim_state(w).queries if key.endswith("/results")]
            assert queries[0].get("page_token") is None
            assert all(q.get("page_token") for q in queries[1:])
            assert len({q.get("page_token") for q in queries}) == 4

    async def test_project_and_organization_go_on_every_call(self):
        clock = FakeClock()
        req = request(doc("a", "invoice"), project_id="proj-1", organization_id="org-1")
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            submission = await w.adapter.submit(req)
            job = handle(submission, req)
            clock.advance(1.0)
            await w.adapter.status(job)
            await w.adapter.results(job)
            state = _sim_state(w)
            assert state.jobs[submission.upstream_id].project_id == "proj-1"
            assert len(state.queries) == 5  # upload, create, status, job + results
            for _, query in state.queries:
                assert query["project_id"] == "proj-1"
                assert query["organization_id"] == "org-1"

    async def test_provider_defaults_supply_rules(self):
        clock = FakeClock()
        req = JobRequest(model=ModelRef("llamacloud", "classifier"), inputs=(doc("a", "receipt"),))
        defaults = {"rules": [{"type": "receipt", "description": "a store receipt"}]}
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock), defaults=defaults) as w:
            w.adapter.validate(req)
            submission = await w.adapter.submit(req)
            assert _sim_state(w).jobs[submission.upstream_id].rules == defaults["rules"]


def _sim_state(w: Wired) -> SimState:
    return w.server.app[SIM_STATE]


class TestContractExamples:
    @pytest.mark.parametrize(
        ("inputs", "final"),
        [
            (EXAMPLES.good_inputs, JobStatus.SUCCEEDED),
            (EXAMPLES.partly_failing_inputs, JobStatus.PARTIALLY_SUCCEEDED),
        ],
        ids=["good", "partly-failing"],
    )
    async def test_examples_finish_on_the_fast_simulator(self, inputs, final):
        """With real time, the examples end within about a second, as the suite expects."""
        req = JobRequest(
            model=ModelRef("llamacloud", EXAMPLES.model_id), inputs=inputs, options=EXAMPLES.options
        )
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.adapter.validate(req)
            job = handle(await w.adapter.submit(req), req)
            for _ in range(40):
                report = await w.adapter.status(job)
                if report.status.done:
                    break
                await asyncio.sleep(0.05)
            assert report.status is final
            results = await w.adapter.results(job)
            assert set(results.items) == set(job.input_names)


class TestNoCancel:
    async def test_adapter_does_not_offer_cancel(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            assert not isinstance(w.adapter, SupportsCancel)
            assert not hasattr(w.adapter, "cancel")
            assert w.adapter.capabilities.cancel is False
            assert PROVIDER_TYPE.capabilities.cancel is False


class TestUploadFailures:
    async def test_upload_failing_half_way_creates_no_job(self):
        """The third upload fails: the error surfaces, no job exists, earlier files go."""
        clock = FakeClock()
        app = sim(clock, fail_upload_after=2)
        req = request(doc("a", "invoice"), doc("b", "receipt"), doc("c", "contract"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderBadResponse, match="HTTP 500"):
                await w.adapter.submit(req)
            state = app[SIM_STATE]
            assert state.jobs == {}
            assert w.control.count("POST", "/api/v1/classifier/jobs") == 0
            assert state.uploads_ok == 2
            assert w.control.count("DELETE", "/api/v1/files/") == 2
            assert set(state.files) == SEEDED

    async def test_upload_rate_limit_is_unavailable_with_retry_after(self):
        clock = FakeClock()
        app = sim(clock, upload_rate_limit=2)
        req = request(doc("a", "invoice"), doc("b", "receipt"), doc("c", "contract"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderUnavailable) as caught:
                await w.adapter.submit(req)
            assert caught.value.headers["Retry-After"] == "5"
            assert app[SIM_STATE].jobs == {}
            assert set(app[SIM_STATE].files) == SEEDED
            # The window passes: the same upload goes through.
            clock.advance(5.0)
            submission = await w.adapter.submit(request(doc("d", "invoice")))
            assert submission.upstream_id in app[SIM_STATE].jobs

    async def test_unknown_ref_is_rejected_and_uploads_are_discarded(self):
        app = sim(FakeClock())
        req = request(
            doc("a", "invoice"), JobInput(name="r", kind=InputKind.REF, ref=str(uuid.uuid4()))
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderRejected, match="File not found"):
                await w.adapter.submit(req)
            assert app[SIM_STATE].jobs == {}
            assert set(app[SIM_STATE].files) == SEEDED

    async def test_server_error_on_create_keeps_files(self):
        """After a 5xx the job may exist, so its files must stay."""
        app = sim(FakeClock())
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            w.control.set_faults(
                [Fault(kind="status", status=500, match="POST /api/v1/classifier/jobs")]
            )
            with pytest.raises(ProviderBadResponse):
                await w.adapter.submit(request(doc("a", "invoice")))
            assert len(app[SIM_STATE].files) == len(SEEDED) + 1
            assert w.control.count("DELETE") == 0


class TestUpstreamErrors:
    async def test_429_on_status_after_retries(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults(
                [
                    Fault(
                        kind="status",
                        status=429,
                        match="GET /api/v1/classifier/jobs/",
                        retry_after="0",
                    )
                ]
            )
            job = JobHandle(str(uuid.uuid4()), ModelRef("llamacloud", "classifier"), ("a",))
            with pytest.raises(ProviderUnavailable) as caught:
                await w.adapter.status(job)
            assert caught.value.headers["Retry-After"] == "1"
            assert w.control.count("GET", "/api/v1/classifier/jobs/") == 3

    async def test_fault_bodies_use_the_provider_error_shape(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=422, match="POST /api/v1/files")])
            with pytest.raises(ProviderRejected, match="Simulated fault"):
                await w.adapter.submit(request(doc("a", "invoice")))

    async def test_refused_credential_is_bad_response_without_the_key(self):
        secret = "llx-not-the-right-secret"
        async with wired_adapter(PROVIDER_TYPE, credential=secret) as w:
            with pytest.raises(ProviderBadResponse) as caught:
                await w.adapter.submit(request(doc("a", "invoice")))
            assert secret not in caught.value.detail
            assert secret not in str(caught.value)
            job = JobHandle(str(uuid.uuid4()), ModelRef("llamacloud", "classifier"), ("a",))
            with pytest.raises(ProviderBadResponse):
                await w.adapter.status(job)

    async def test_unknown_upstream_id(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = JobHandle(str(uuid.uuid4()), ModelRef("llamacloud", "classifier"), ("a",))
            with pytest.raises(UpstreamJobNotFound):
                await w.adapter.status(job)
            with pytest.raises(UpstreamJobNotFound):
                await w.adapter.results(job)

    @pytest.mark.parametrize(
        "match",
        ["GET /api/v1/classifier/jobs/", "POST /api/v1/files", "/results"],
        ids=["status", "upload", "results"],
    )
    async def test_malformed_json_is_bad_response(self, match):
        clock = FakeClock()
        req = request(doc("a", "invoice"))
        async with wired_adapter(PROVIDER_TYPE, app=sim(clock)) as w:
            if match == "POST /api/v1/files":
                w.control.set_faults([Fault(kind="malformed", match=match)])
                with pytest.raises(ProviderBadResponse, match="not JSON"):
                    await w.adapter.submit(req)
                return
            job = handle(await w.adapter.submit(req), req)
            clock.advance(1.0)
            w.control.set_faults([Fault(kind="malformed", match=match)])
            with pytest.raises(ProviderBadResponse, match="not JSON"):
                await w.adapter.results(job)

    async def test_endless_result_pages_are_cut_off(self):
        async def job(request):
            return web.json_response({"id": "j", "status": "SUCCESS"})

        async def results(request):
            return web.json_response({"items": [], "next_page_token": "same"})

        app = web.Application()
        app.router.add_get("/api/v1/classifier/jobs/j", job)
        app.router.add_get("/api/v1/classifier/jobs/j/results", results)
        async with wired_adapter(PROVIDER_TYPE, app=_with_control(app)) as w:
            h = JobHandle("j", ModelRef("llamacloud", "classifier"), ("a",))
            with pytest.raises(ProviderBadResponse, match="never end"):
                await w.adapter.results(h)


def _with_control(app: web.Application) -> web.Application:
    app[SIM_CONTROL] = SimulatorControl()
    return app


class TestValidation:
    @pytest.mark.parametrize(
        ("options", "pointer"),
        [
            ({"mode": "FAST"}, "/options/provider/rules"),
            ({"rules": []}, "/options/provider/rules"),
            ({"rules": [{"type": "x"}]}, "/options/provider/rules/0/description"),
            ({"rules": EXAMPLE_RULES, "mode": "SLOW"}, "/options/provider/mode"),
            ({"rules": EXAMPLE_RULES, "colour": 1}, "/options/provider/colour"),
            (
                {"rules": EXAMPLE_RULES, "parsing_configuration": {"pages": 1}},
                "/options/provider/parsing_configuration/pages",
            ),
            (
                {"rules": EXAMPLE_RULES, "parsing_configuration": {"max_pages": 0}},
                "/options/provider/parsing_configuration/max_pages",
            ),
        ],
        ids=[
            "rules-missing",
            "rules-empty",
            "rule-no-description",
            "bad-mode",
            "unknown-option",
            "unknown-parsing-key",
            "zero-max-pages",
        ],
    )
    def test_bad_options(self, options, pointer):
        adapter = _offline_adapter()
        req = JobRequest(
            model=ModelRef("llamacloud", "classifier"), inputs=(doc("a", "x"),), options=options
        )
        with pytest.raises(ValidationFailed) as caught:
            adapter.validate(req)
        assert pointer in [e.pointer for e in caught.value.errors]

    def test_contract_bad_options_pointer(self):
        req = JobRequest(
            model=ModelRef("llamacloud", EXAMPLES.model_id),
            inputs=EXAMPLES.good_inputs,
            options=EXAMPLES.bad_options or {},
        )
        with pytest.raises(ValidationFailed) as caught:
            _offline_adapter().validate(req)
        assert [e.pointer for e in caught.value.errors] == [EXAMPLES.bad_option_pointer]

    def test_other_model_is_refused(self):
        with pytest.raises(ValidationFailed) as caught:
            _offline_adapter().validate(request(doc("a", "x"), model="classify-v2"))
        assert [e.pointer for e in caught.value.errors] == ["/model"]

    def test_text_input_is_unsupported(self):
        assert EXAMPLES.unsupported_input is not None
        with pytest.raises(UnsupportedInput) as caught:
            _offline_adapter().validate(request(doc("a", "x"), EXAMPLES.unsupported_input))
        assert [e.pointer for e in caught.value.errors] == ["/inputs/1"]

    def test_ref_must_look_like_a_file_id(self):
        bad = JobInput(name="r", kind=InputKind.REF, ref="../../etc")
        with pytest.raises(ValidationFailed) as caught:
            _offline_adapter().validate(request(bad))
        assert [e.pointer for e in caught.value.errors] == ["/inputs/0/ref"]

    def test_good_request_passes(self):
        _offline_adapter().validate(request(*EXAMPLES.good_inputs, **EXAMPLES.options))


def _offline_adapter() -> LlamaCloudAdapter:
    """Validation needs no network: the upstream is never started."""
    upstream = Upstream(UpstreamSettings(provider="llamacloud", base_url="http://127.0.0.1:9"))
    return LlamaCloudAdapter(ProviderConfig(name="llamacloud", type="llamacloud"), upstream)


def test_settings_default_to_documented_limits():
    s = SimSettings()
    assert (s.upload_rate_limit, s.upload_rate_window) == (50, 5.0)
    assert s.api_key == PROVIDER_TYPE.simulator_credential == "llx-simulator-key"
