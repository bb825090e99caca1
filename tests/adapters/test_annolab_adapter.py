"""The AnnoLab adapter against its simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.annolab import PROVIDER_TYPE, AnnoLabAdapter, wire
from adapters.annolab.adapter import EXPORT_TRIES
from adapters.annolab.simulator import DOC_TYPES, SimSettings, create_simulator, source_doc
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
    StatusReport,
    SupportsCancel,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.outputs import AnnotationsOutput
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, wired_adapter

NER = "NER Contracts"
CLASSIFY = "Staple + Classify Documents"
OPTIONS = {
    "project": "Sample Project",
    "output_layer": "Model Predictions",
    "group": "Company Name",
}


def annotations_of(item: Any) -> list[Any]:
    from adapters.outputs import AnnotationsOutput

    assert isinstance(item.output, AnnotationsOutput)
    return list(item.output.annotations)


def source(name: str, sid: int | str) -> JobInput:
    return JobInput(name=name, kind=InputKind.REF, ref=str(sid))


def request(*inputs: JobInput, model: str = NER, **options: Any) -> JobRequest:
    return JobRequest(
        model=ModelRef("annolab", model), inputs=inputs, options={**OPTIONS, **options}
    )


def handle(req: JobRequest, submission) -> JobHandle:
    return JobHandle(
        upstream_id=submission.upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=submission.state,
    )


def clocked(**settings: Any) -> tuple[FakeClock, web.Application]:
    """A simulator on a fake clock: queued 0.5 s, finished at 2 s, exports ready at once."""
    clock = FakeClock()
    base = {"job_seconds": 2.0, "queued_seconds": 0.5, "export_seconds": 0.0, **settings}
    app = create_simulator(SimulatorControl(clock=clock), SimSettings(**base))
    return clock, app


async def step(adapter: ProviderAdapter, job: JobHandle) -> tuple[JobHandle, StatusReport]:
    """One status check as the gateway makes it: the report's state replaces the job's."""
    report = await adapter.status(job)
    if report.state is not None:
        job = replace(job, state=report.state)
    return job, report


async def settle(adapter: ProviderAdapter, job: JobHandle) -> tuple[JobHandle, StatusReport]:
    """Checks until the job is done, on a clock that stands still: once the inference
    finished, one check starts the export and the next reads it."""
    for _ in range(5):
        job, report = await step(adapter, job)
        if report.status.done:
            return job, report
    raise AssertionError(f"not done after 5 checks: {report}")


async def _poll(adapter: ProviderAdapter, job: JobHandle) -> tuple[JobHandle, StatusReport]:
    for _ in range(100):
        job, report = await step(adapter, job)
        if report.status.done:
            return job, report
        await asyncio.sleep(0.05)
    raise AssertionError("job never finished")


class TestLifecycle:
    async def test_ner_job_queues_runs_then_succeeds_with_annotations(self):
        clock, app = clocked()
        req = request(source("a", 3240), source("b", 4414), source("c", 5853))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            assert submission.upstream_id.isdigit()
            assert submission.report is not None
            assert submission.report.status is JobStatus.QUEUED
            job = handle(req, submission)

            queued = await w.adapter.status(job)
            assert (queued.status, queued.upstream_status) == (JobStatus.QUEUED, "Queued")
            assert queued.counts == Counts.all_pending(3)

            clock.advance(1.0)
            running = await w.adapter.status(job)
            assert (running.status, running.upstream_status) == (JobStatus.RUNNING, "Running")
            assert (await w.adapter.results(job)).items == {}
            assert w.control.count("POST", "/v1/export") == 0

            clock.advance(1.0)
            # Finished: the check starts the export and keeps its status URL; the job is
            # not done for the gateway until its annotations can be read.
            job, exporting = await step(w.adapter, job)
            assert exporting.status is JobStatus.RUNNING
            assert exporting.upstream_status.startswith("Finished (export")
            assert job.state["export"]["status_url"]
            assert w.control.count("POST", "/v1/export") == 1
            job, done = await step(w.adapter, job)
            assert (done.status, done.upstream_status) == (JobStatus.SUCCEEDED, "Finished")
            assert done.counts == Counts(total=3, succeeded=3)
            assert job.state["export"]["download_url"]

            results = await w.adapter.results(job)
            sent = w.control.requests[0]
        assert sent.path == "/v1/infer/batch"
        assert sent.headers["Authorization"] == f"Api-Key {PROVIDER_TYPE.simulator_credential}"
        assert list(results.items) == ["a", "b", "c"]
        for name, sid in (("a", 3240), ("b", 4414), ("c", 5853)):
            item = results.items[name]
            assert item.status is ItemStatus.SUCCEEDED
            assert isinstance(item.output, AnnotationsOutput)
            labels = [x.label for x in item.output.annotations]
            assert labels == ["Party", "Party", "Date", "Amount"]
            text = source_doc(sid).text
            for ann in item.output.annotations:
                assert text[ann.start : ann.end] == ann.text
                assert ann.page == 1
                assert ann.score is None
            assert [r["sourceId"] for r in item.raw] == [sid] * 4
            assert {r["layerName"] for r in item.raw} == {"Model Predictions"}

    async def test_classify_model_by_name_with_a_layer_given_by_id(self):
        clock, app = clocked()
        req = request(source("doc", 4024), model=CLASSIFY, output_layer=13)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            submission = await w.adapter.submit(req)
            job = handle(req, submission)
            clock.advance(5)
            job, report = await settle(w.adapter, job)
            results = await w.adapter.results(job)
        assert submission.state["layer"] == "Model Predictions"
        assert report.status is JobStatus.SUCCEEDED
        (ann,) = annotations_of(results.items["doc"])
        assert ann.label in DOC_TYPES
        assert ann.bbox == [0.0, 0.0, 612.0, 792.0]
        assert (ann.text, ann.start, ann.end, ann.page) == (None, None, None, 1)

    async def test_a_source_named_twice_is_inferred_once_and_answers_both(self):
        clock, app = clocked()
        req = request(source("one", 3240), source("again", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            results = await w.adapter.results(job)
        assert results.items["one"].output == results.items["again"].output
        assert len(annotations_of(results.items["one"])) == 4

    async def test_export_is_polled_until_finished(self):
        """Real clock: the export goes initalized (the SDK's spelling) → started → finished."""
        app = create_simulator(
            None,
            SimSettings(
                job_seconds=0.0,
                queued_seconds=0.0,
                export_seconds=0.3,
                initialized_word="initalized",
                running_word="In Progress",
                submit_status=201,
            ),
        )
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            assert isinstance(w.adapter, AnnoLabAdapter)
            w.adapter.export_poll_first = 0.05
            job = handle(req, await w.adapter.submit(req))
            results = await w.adapter.results(job)
            polls = w.control.count("GET", "/v1/export/status/")
            downloads = w.control.count("GET", "/v1/export/download/")
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        assert polls >= 2
        assert downloads == 1

    async def test_the_signed_download_gets_no_annolab_key(self):
        """The link's signature grants it; the key must not reach a storage host."""
        clock, app = clocked()
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            results = await w.adapter.results(job)
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        (download,) = [r for r in w.control.requests if "/v1/export/download/" in r.path]
        others = [r for r in w.control.requests if r is not download]
        assert "Authorization" not in download.headers
        assert all(r.headers.get("Authorization", "").startswith("Api-Key ") for r in others)

    async def test_a_plain_http_link_to_another_host_is_never_followed(self):
        """Only https leaves the provider's origin; the other host sees no request."""
        hits: list[str] = []

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            hits.append(request.path)
            return await handler(request)

        canary = TestServer(web.Application(middlewares=[count]), host="127.0.0.1")
        await canary.start_server()
        try:
            origin = str(canary.make_url("/")).rstrip("/")
            clock, app = clocked(download_origin=origin)
            req = request(source("a", 3240))
            async with wired_adapter(PROVIDER_TYPE, app=app) as w:
                job = handle(req, await w.adapter.submit(req))
                clock.advance(5)
                with pytest.raises(ProviderBadResponse, match="not https"):
                    await w.adapter.results(job)
        finally:
            await canary.close()
        assert hits == []

    async def test_the_download_keeps_the_response_size_cap(self):
        clock, app = clocked()
        req = request(source("a", 3240), source("b", 4414))
        cap = 512  # every JSON answer fits (< 300 bytes); the export's zip (~1 KB) does not
        async with wired_adapter(
            PROVIDER_TYPE, app=app, upstream_settings=lambda s: replace(s, max_response_bytes=cap)
        ) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            with pytest.raises(ProviderBadResponse, match="larger than"):
                await w.adapter.results(job)
            assert w.control.count("GET", "/v1/export/download/") >= 1

    async def test_fast_simulator_finishes_the_contract_examples(self):
        ex = PROVIDER_TYPE.examples
        model = ModelRef("annolab", ex.model_id, ex.version)
        good = JobRequest(model=model, inputs=ex.good_inputs, options=ex.options)
        partly = JobRequest(model=model, inputs=ex.partly_failing_inputs, options=ex.options)
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.adapter.validate(good)
            good_job = handle(good, await w.adapter.submit(good))
            partly_job = handle(partly, await w.adapter.submit(partly))
            good_job, good_report = await _poll(w.adapter, good_job)
            partly_job, partly_report = await _poll(w.adapter, partly_job)
            good_results = await w.adapter.results(good_job)
            partly_results = await w.adapter.results(partly_job)
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(replace(good, options=ex.bad_options or {}))
            assert ex.unsupported_input is not None
            with pytest.raises(UnsupportedInput):
                w.adapter.validate(replace(good, inputs=(ex.unsupported_input,)))
        assert good_report.status is JobStatus.SUCCEEDED
        assert {r.status for r in good_results.items.values()} == {ItemStatus.SUCCEEDED}
        assert partly_report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert partly_results.items["bad-fail-1"].status is ItemStatus.FAILED
        assert partly_results.items["contract-4024"].status is ItemStatus.SUCCEEDED
        assert ex.bad_option_pointer in [e.pointer for e in info.value.errors]

    async def test_works_when_the_simulator_is_mounted_under_a_prefix(self):
        """Export status and download URLs are built from the request, prefix included."""
        sim = create_simulator(
            None, SimSettings(job_seconds=0.0, queued_seconds=0.0, export_seconds=0.0)
        )
        root = web.Application()
        root.add_subapp("/annolab/", sim)
        root[SIM_CONTROL] = sim[SIM_CONTROL]
        req = request(source("a", 5853))
        async with wired_adapter(
            PROVIDER_TYPE,
            app=root,
            upstream_settings=lambda s: replace(s, base_url=s.base_url + "/annolab"),
        ) as w:
            job = handle(req, await w.adapter.submit(req))
            results = await w.adapter.results(job)
            paths = [r.path for r in w.control.requests]
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        assert all(p.startswith("/annolab/v1/") for p in paths)
        assert any(p.startswith("/annolab/v1/export/download/") for p in paths)


class TestExportWorkflow:
    """The export is a step of the job kept in its state, taken one check at a time."""

    async def test_an_export_of_a_minute_is_polled_across_checks_and_started_once(self):
        clock, app = clocked(export_seconds=60.0)
        req = request(source("a", 3240), source("b", 4414))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            words = []
            for _ in range(6):  # ten simulated seconds between checks: no check waits
                job, report = await step(w.adapter, job)
                words.append(report.upstream_status)
                assert report.status is JobStatus.RUNNING
                assert report.counts == Counts.all_pending(2)
                clock.advance(10)
            job, report = await step(w.adapter, job)
            results = await w.adapter.results(job)
            started = w.control.count("POST", "/v1/export")
        assert words[0] == "Finished (export started)"
        assert "Finished (export initialized)" in words and "Finished (export started)" in words
        assert report.status is JobStatus.SUCCEEDED
        assert started == 1
        assert [i.status for i in results.items.values()] == [ItemStatus.SUCCEEDED] * 2

    async def test_an_export_status_word_the_sdk_does_not_know_is_flagged_not_run_forever(self):
        """Issue 14 point 6: the export said a word nobody documented. The job runs, and
        the report is flagged unknown with the word, so the gateway logs it once and
        fails the job if it stands (``gateway.jobs.records``); a known word moves on."""
        clock, app = clocked(export_seconds=60.0, initialized_word="QUEUED_FOR_WRITE")
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, started = await step(w.adapter, job)  # the inference done: export started
            job, unknown = await step(w.adapter, job)
            clock.advance(40)
            job, known = await step(w.adapter, job)
        assert started.known and started.upstream_status == "Finished (export started)"
        assert unknown.status is JobStatus.RUNNING and not unknown.known
        assert unknown.upstream_status == "Finished (export QUEUED_FOR_WRITE)"
        assert known.known and known.upstream_status == "Finished (export started)"

    async def test_results_read_the_kept_export_without_starting_another(self):
        clock, app = clocked()
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, _ = await settle(w.adapter, job)
            for _ in range(2):
                results = await w.adapter.results(job)
            started = w.control.count("POST", "/v1/export")
        assert started == 1
        assert results.items["a"].status is ItemStatus.SUCCEEDED

    async def test_an_expired_download_link_is_replaced_by_a_fresh_export(self):
        clock, app = clocked()
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, _ = await settle(w.adapter, job)
            export = dict(job.state["export"])
            export["download_url"] = export["download_url"].split("signature=")[0] + "signature=x"
            job = replace(job, state={**job.state, "export": export})
            results = await w.adapter.results(job)
            started = w.control.count("POST", "/v1/export")
        assert started == 2
        assert results.items["a"].status is ItemStatus.SUCCEEDED

    async def test_an_erring_export_is_started_again_then_fails_the_job(self):
        clock, app = clocked(export_errors=True)
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            reports = []
            for _ in range(EXPORT_TRIES + 1):
                job, report = await step(w.adapter, job)
                reports.append(report)
            started = w.control.count("POST", "/v1/export")
        assert [r.status for r in reports] == [JobStatus.RUNNING] * EXPORT_TRIES + [
            JobStatus.FAILED
        ]
        assert started == EXPORT_TRIES
        error = reports[-1].error
        assert error is not None and error.code == "upstream_failed"
        assert "could not export" in error.message and "Export failed" in error.message


class TestFailures:
    async def test_some_failed_sources_make_a_partial_success(self):
        clock, app = clocked(fail_sources=frozenset({5853}))
        req = request(source("a", 3240), source("bad-fail-1", 4413), source("c", 5853))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, report = await settle(w.adapter, job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.upstream_status == "Finished"
        assert report.counts == Counts(total=3, succeeded=1, failed=2)
        assert results.items["a"].status is ItemStatus.SUCCEEDED
        for name, sid in (("bad-fail-1", 4413), ("c", 5853)):
            item = results.items[name]
            assert item.status is ItemStatus.FAILED
            assert item.error == ErrorInfo(
                "item_failed",
                f"Model run failed on source {sid}: the document has no extractable text.",
            )

    async def test_every_source_failed_is_an_errored_job_without_an_export(self):
        clock, app = clocked()
        req = request(source("x", 4413), source("y", 1013))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, report = await settle(w.adapter, job)
            results = await w.adapter.results(job)
            exports = w.control.count("POST", "/v1/export")
        assert (report.status, report.upstream_status) == (JobStatus.FAILED, "Errored")
        assert report.error == ErrorInfo(
            "upstream_failed", "Inference failed: no source could be processed."
        )
        assert report.counts == Counts(total=2, failed=2)
        assert {r.status for r in results.items.values()} == {ItemStatus.FAILED}
        error = results.items["x"].error
        assert error is not None
        assert "4413" in error.message
        assert exports == 0

    async def test_every_source_failed_in_a_finished_job_is_a_failed_job(self):
        clock, app = clocked(errored_when_all_fail=False)
        req = request(source("x", 4413))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, report = await settle(w.adapter, job)
            results = await w.adapter.results(job)
        assert (report.status, report.upstream_status) == (JobStatus.FAILED, "Finished")
        assert report.error is not None
        assert report.error.code == "all_items_failed"
        assert results.items["x"].status is ItemStatus.FAILED

    async def test_unreported_source_errors_look_like_empty_successes(self):
        """[inferred] switch: without ``errors`` a failed source is one with no annotations."""
        clock, app = clocked(report_source_errors=False)
        req = request(source("a", 3240), source("b", 4413))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            job, report = await settle(w.adapter, job)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.SUCCEEDED
        assert results.items["b"].status is ItemStatus.SUCCEEDED
        assert results.items["b"].output == AnnotationsOutput(annotations=[])

    async def test_an_errored_export_is_a_bad_response(self):
        clock, app = clocked(export_errors=True)
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            with pytest.raises(ProviderBadResponse):
                await w.adapter.results(job)

    async def test_an_export_that_takes_too_long_is_unavailable_then_read_when_done(self):
        clock, app = clocked(export_seconds=60.0)
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            assert isinstance(w.adapter, AnnoLabAdapter)
            w.adapter.export_timeout = 0.2
            w.adapter.export_poll_first = 0.05
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.results(job)
            polls = w.control.count("GET", "/v1/export/status/")
            # The next read polls the same export (no second one), which ends meanwhile.
            with pytest.raises(ProviderUnavailable):
                await w.adapter.results(job)
            clock.advance(60)
            results = await w.adapter.results(job)
            started = w.control.count("POST", "/v1/export")
        assert info.value.headers["Retry-After"] == "5"
        assert 2 <= polls <= 5
        assert started == 1
        assert [i.status for i in results.items.values()] == [ItemStatus.SUCCEEDED]

    @pytest.mark.parametrize(
        "fault",
        [
            Fault(kind="status", status=404, match="/v1/export/status/"),
            Fault(kind="status", status=400, match="/v1/export/project"),
            Fault(kind="malformed", match="/v1/export/download/"),
            Fault(kind="status", status=500, match="/v1/export/download/"),
        ],
        ids=["status-404", "export-400", "download-not-zip", "download-500"],
    )
    async def test_export_trouble_is_a_bad_response(self, fault):
        clock, app = clocked()
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            w.control.set_faults([fault])
            with pytest.raises(ProviderBadResponse):
                await w.adapter.results(job)


class TestNoCancel:
    async def test_adapter_does_not_offer_cancel(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            assert isinstance(w.adapter, ProviderAdapter)
            assert not isinstance(w.adapter, SupportsCancel)
            assert not hasattr(w.adapter, "cancel")
            assert w.adapter.capabilities.cancel is False
            assert w.adapter.capabilities.as_dict() == {
                "input_kinds": ["ref"],
                "output_types": ["annotations"],
                "cancel": False,
                "explain": False,
            }


class TestValidation:
    @pytest.mark.parametrize(
        ("req", "error", "pointer"),
        [
            (
                request(source("a", 3240), JobInput(name="t", kind=InputKind.TEXT, text="hi")),
                UnsupportedInput,
                "/inputs/1",
            ),
            (request(source("a", 3240), source("b", "doc-7")), ValidationFailed, "/inputs/1/ref"),
            (
                JobRequest(
                    model=ModelRef("annolab", NER),
                    inputs=(source("a", 3240),),
                    options={"output_layer": "Gold Set"},
                ),
                ValidationFailed,
                "/options/provider/project",
            ),
            (request(source("a", 3240), group=""), ValidationFailed, "/options/provider/group"),
            (request(source("a", 3240), layer="x"), ValidationFailed, "/options/provider/layer"),
            (
                JobRequest(
                    model=ModelRef("annolab", NER, "2"),
                    inputs=(source("a", 3240),),
                    options=OPTIONS,
                ),
                ValidationFailed,
                "/model",
            ),
            (
                JobRequest(
                    model=ModelRef("annolab", NER),
                    inputs=(source("a", 3240),),
                    options=OPTIONS,
                    explain=True,
                ),
                UnsupportedInput,
                "/options/explain",
            ),
        ],
        ids=[
            "text-input",
            "ref-not-int",
            "no-project",
            "empty-group",
            "unknown-option",
            "version",
            "explain",
        ],
    )
    async def test_refused_before_any_request(self, req, error, pointer):
        async with wired_adapter(PROVIDER_TYPE, defaults={}) as w:
            with pytest.raises(error) as info:
                await w.adapter.submit(req)
            assert w.control.count() == 0
        assert pointer in [e.pointer for e in info.value.errors]

    async def test_project_and_group_come_from_the_provider_defaults(self):
        req = JobRequest(
            model=ModelRef("annolab", "8"),
            inputs=(source("a", 3240),),
            options={"output_layer": "Gold Set"},
        )
        async with wired_adapter(
            PROVIDER_TYPE, defaults={"project": 1, "group": "Company Name"}
        ) as w:
            submission = await w.adapter.submit(req)
        # [library] The export names the project by name, as annolab 0.7.2 does, even
        # when the caller gave its id; the id AnnoLab resolved is kept beside it.
        assert submission.state["project"] == "Sample Project"
        assert submission.state["project_id"] == 1
        assert wire.export_body(submission.state)["projectIdentifier"] == "Sample Project"
        assert submission.state["group"] == "Company Name"
        assert submission.state["layer"] == "Gold Set"

    def test_ids_go_out_as_integers_and_the_export_names_the_project_as_sent(self):
        """annolab 0.7.2 sends ``outputLayerIdentifier`` 13 (not "13") and exports by the
        project's name, not by the numeric id the submit answer resolved it to."""
        options = wire.AnnoLabOptions.model_validate(
            {"project": "Sample Project", "output_layer": 13, "group": "Company Name"}
        )
        body = wire.submit_body("8", [3240], options)
        assert body["outputLayerIdentifier"] == 13
        assert body["projectIdentifier"] == "Sample Project"
        answer = {"inferenceJobId": 7, "projectId": 1, "outputLayerName": "Model Predictions"}
        submitted = wire.submit_from_wire(answer, "annolab", [3240], options)
        export = wire.export_body(submitted.state)
        assert export["projectIdentifier"] == "Sample Project"
        assert export["annotationLayerNames"] == ["Model Predictions"]
        assert submitted.state["project_id"] == 1

    @pytest.mark.parametrize("bad", [0, -3, True, "", "  ", ["Sample Project"], 1.5])
    def test_an_identifier_is_a_name_or_a_positive_integer(self, bad):
        with pytest.raises(ValueError, match="project"):
            wire.AnnoLabOptions.model_validate(
                {"project": bad, "output_layer": "Gold Set", "group": "G"}
            )


class TestUpstreamErrors:
    @pytest.mark.parametrize(
        ("options", "model", "said"),
        [
            ({"project": "Nope"}, NER, "Project 'Nope' not found."),
            ({"output_layer": "Nope"}, NER, "Annotation layer 'Nope' not found"),
            ({"group": "Nope"}, NER, "Group 'Nope' not found."),
            ({}, "No Such Model", "Model 'No Such Model' not found."),
        ],
        ids=["project", "layer", "group", "model"],
    )
    async def test_unknown_names_at_submit_are_rejected_in_annolabs_words(
        self, options, model, said
    ):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected) as info:
                await w.adapter.submit(request(source("a", 3240), model=model, **options))
        assert said in info.value.detail

    async def test_a_source_annolab_does_not_have_is_rejected(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected) as info:
                await w.adapter.submit(request(source("a", 12)))
        assert "[12]" in info.value.detail

    async def test_429_after_retries_is_unavailable_with_retry_after(self):
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults(
                [Fault(kind="status", status=429, retry_after="0", match="/v1/infer/batch/")]
            )
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.status(job)
            assert w.control.count("GET", "/v1/infer/batch/") == 3  # one try + two retries
        assert info.value.headers["Retry-After"] == "1"

    async def test_simulated_rate_limit_answers_429_in_annolabs_words(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.rate_limit_rps = 0.01  # the submit takes the one token
            req = request(source("a", 3240))
            job = handle(req, await w.adapter.submit(req))
            resp = await w.upstream.request(
                "GET", f"/v1/infer/batch/{job.upstream_id}", operation="t", idempotent=False
            )
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.status(job)
        assert resp.status == 429
        assert resp.json() == {"message": "Rate limit exceeded"}
        assert int(info.value.headers["Retry-After"]) >= 1

    async def test_refused_credential_is_a_bad_response_without_the_key(self):
        async with wired_adapter(PROVIDER_TYPE, credential="secret-wrong-key-123") as w:
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(request(source("a", 3240)))
        assert "secret-wrong-key-123" not in info.value.detail
        assert "credentials" in info.value.detail

    async def test_missing_permission_is_a_bad_response(self):
        app = create_simulator(None, SimSettings(permissions=frozenset({"Read"})))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(request(source("a", 3240)))
        assert "credentials" in info.value.detail

    @pytest.mark.parametrize("upstream_id", ["999999", "abc"], ids=["unknown-int", "not-int"])
    async def test_unknown_upstream_id_is_not_found(self, upstream_id):
        req = request(source("a", 3240))
        job = JobHandle(
            upstream_id=upstream_id,
            model=req.model,
            input_names=("a",),
            state={"sources": [3240], "project": "1", "layer": "Gold Set", "group": "G"},
        )
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(UpstreamJobNotFound):
                await w.adapter.status(job)
            with pytest.raises(UpstreamJobNotFound):
                await w.adapter.results(job)

    @pytest.mark.parametrize(
        ("match", "call"),
        [
            ("POST /v1/infer/batch", "submit"),
            ("GET /v1/infer/batch/", "status"),
            ("/v1/export/status/", "results"),
        ],
        ids=["submit", "status", "export-status"],
    )
    async def test_malformed_json_is_a_bad_response(self, match, call):
        clock, app = clocked()
        req = request(source("a", 3240))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(2)
            w.control.set_faults([Fault(kind="malformed", match=match)])
            call_it = {
                "submit": lambda: w.adapter.submit(req),
                "status": lambda: w.adapter.status(job),
                "results": lambda: w.adapter.results(job),
            }[call]
            with pytest.raises(ProviderBadResponse) as info:
                await call_it()
        # A 2xx submit answer that cannot be read may stand for a job: it says so.
        said = "may have started the job" if call == "submit" else "not JSON"
        assert said in info.value.detail
