"""One contract suite for every provider adapter, each against its own simulator.

Every provider type in ``adapters.registry`` runs the same cases with the inputs its
package declares in ``ContractExamples``: a job that succeeds, results walked across
the provider's pages, a partly failing job, a 429 with ``Retry-After``, a refused
credential, an unknown upstream id, options and input kinds the provider refuses.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace

import pytest

from adapters.base import (
    ItemStatus,
    JobHandle,
    JobRequest,
    JobStatus,
    ModelRef,
    ProviderAdapter,
    StatusReport,
    SupportsCancel,
)
from adapters.errors import ProviderBadResponse, ProviderUnavailable, UpstreamJobNotFound
from adapters.provider_type import ProviderType
from adapters.registry import available_types
from adapters.simulation import Fault
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import wired_adapter

TYPES = available_types()


@dataclass(frozen=True)
class ResultRoute:
    #: ``"METHOD /path"`` of the provider's results reads (counted at the simulator).
    pattern: re.Pattern[str]
    #: Whether the provider's API pages results; where it does not, the one call's
    #: body holds them all and "two pages" cannot be asked of it (``why``).
    pages: bool
    why: str = ""


RESULT_ROUTES = {
    # One classify job per input; results are read from the job list, by id, in pages.
    "llamacloud": ResultRoute(re.compile(r"GET /api/v2/classify"), pages=True),
    # /results itself is one small summary with the file's URL; the rows come in pages.
    "woodwide": ResultRoute(re.compile(r"GET /jobs/[^/]+/results/rows"), pages=True),
    "modzy": ResultRoute(
        re.compile(r"GET /api/results/[^/]+"),
        pages=False,
        why="GET /api/results/{id} returns every item in one body; only the job history pages",
    ),
    "vody": ResultRoute(
        re.compile(r"GET /inference/[^/]+/results"),
        pages=False,
        why="GET /inference/{id}/results takes no page parameters and answers every item",
    ),
    "annolab": ResultRoute(
        re.compile(r"GET /v1/export/download/[^/]+/[^/]+"),
        pages=False,
        why="results are a project export: one zip of JSONL, downloaded in one request",
    ),
}


def test_every_provider_type_says_whether_its_results_page():
    assert {t.name for t in TYPES} == set(RESULT_ROUTES)
    assert all(r.pages or r.why for r in RESULT_ROUTES.values())


def request(pt: ProviderType, *, failing: bool = False) -> JobRequest:
    ex = pt.examples
    return JobRequest(
        model=ModelRef(pt.name, ex.model_id, ex.version),
        inputs=ex.partly_failing_inputs if failing else ex.good_inputs,
        options=ex.options,
    )


def handle(req: JobRequest, upstream_id: str, state) -> JobHandle:
    return JobHandle(
        upstream_id=upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=state,
    )


async def run_to_done(adapter: ProviderAdapter, req: JobRequest) -> tuple[JobHandle, StatusReport]:
    adapter.validate(req)
    sub = await adapter.submit(req)
    job = handle(req, sub.upstream_id, sub.state)
    for _ in range(200):
        report = await adapter.status(job)
        if report.state is not None:  # a step of a workflow taken: kept, as the gateway does
            job = replace(job, state=report.state)
        if report.status.done:
            return job, report
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {sub.upstream_id} never finished")


@pytest.fixture(params=TYPES, ids=[t.name for t in TYPES])
def pt(request) -> ProviderType:
    return request.param


def test_every_known_provider_type_is_in_the_suite():
    assert {t.name for t in TYPES} >= {"modzy", "vody", "annolab", "llamacloud"}


class TestAdapterContract:
    async def test_a_good_job_succeeds_with_one_result_per_input(self, pt):
        req = request(pt)
        assert len(req.inputs) >= 3
        async with wired_adapter(pt) as w:
            job, report = await run_to_done(w.adapter, req)
            results = await w.adapter.results(job)
        assert report.status is JobStatus.SUCCEEDED, report
        assert report.upstream_status
        assert set(results.items) == {i.name for i in req.inputs}
        for item in results.items.values():
            assert item.status is ItemStatus.SUCCEEDED, item
            assert item.output is not None or results.job_outputs, item
            assert item.output is None or item.output.type in pt.capabilities.output_types
            assert item.raw is not None

    async def test_results_are_walked_across_provider_pages(self, pt):
        """Every input comes back, from two or more result pages where the API pages.

        The fast simulators' pages are small (two items or rows) and the good inputs
        are more than one page, so a paging adapter that stopped after its first page
        would both lose items and make one results call.
        """
        route = RESULT_ROUTES[pt.name]
        req = request(pt)
        async with wired_adapter(pt) as w:
            job, _ = await run_to_done(w.adapter, req)
            results = await w.adapter.results(job)
            seen = [f"{r.method} {r.path}" for r in w.control.requests]
        assert len(results.items) == len(req.inputs)
        result_calls = [s for s in seen if route.pattern.fullmatch(s)]
        assert result_calls, f"no call matched the results route {route.pattern.pattern}"
        if route.pages:
            assert len(result_calls) >= 2, result_calls

    async def test_a_partly_failing_job_reports_each_failed_item(self, pt):
        req = request(pt, failing=True)
        async with wired_adapter(pt) as w:
            job, report = await run_to_done(w.adapter, req)
            results = await w.adapter.results(job)
        statuses = [i.status for i in results.items.values()]
        assert ItemStatus.FAILED in statuses
        assert ItemStatus.SUCCEEDED in statuses
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED, report
        for item in results.items.values():
            if item.status is ItemStatus.FAILED:
                assert item.error is not None and item.error.message
                assert item.output is None

    async def test_a_short_429_is_retried_and_a_long_one_surfaces_with_retry_after(self, pt):
        req = request(pt)
        async with wired_adapter(pt) as w:
            job, _ = await run_to_done(w.adapter, req)
            # Results, not status: a finished job's status may need no call at all.
            w.control.set_faults([Fault(kind="status", status=429, retry_after="0", times=1)])
            assert len((await w.adapter.results(job)).items) == len(req.inputs)
            w.control.set_faults([Fault(kind="status", status=429, retry_after="7")])
            with pytest.raises(ProviderUnavailable) as info:
                await w.adapter.results(job)
        assert info.value.headers["Retry-After"] == "7"

    async def test_a_refused_credential_is_a_502_that_does_not_repeat_it(self, pt):
        secret = "wrong-CREDENTIAL-never-shown-0001"
        async with wired_adapter(pt, credential=secret) as w:
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(request(pt))
        assert secret not in str(info.value.detail)
        assert info.value.status == 502

    async def test_an_unknown_upstream_id_is_not_found(self, pt):
        # One input: a provider that runs one job per input (LlamaCloud) fails only the
        # inputs whose job it lost, and the job as a whole only when it lost them all.
        req = replace(request(pt), inputs=request(pt).inputs[:1])
        async with wired_adapter(pt) as w:
            sub = await w.adapter.submit(req)
            unknown = handle(req, "987654321", sub.state)
            with pytest.raises(UpstreamJobNotFound):
                await w.adapter.status(unknown)

    async def test_bad_options_name_the_field(self, pt):
        ex = pt.examples
        if ex.bad_options is None:
            assert pt.name not in {"annolab", "llamacloud", "woodwide"}
            return
        async with wired_adapter(pt) as w:
            with pytest.raises(ValidationFailed) as info:
                w.adapter.validate(replace(request(pt), options=ex.bad_options))
        assert ex.bad_option_pointer in [e.pointer for e in info.value.errors]

    async def test_an_input_kind_it_cannot_take_is_unsupported(self, pt):
        ex = pt.examples
        assert ex.unsupported_input is not None
        assert ex.unsupported_input.kind not in pt.capabilities.input_kinds
        async with wired_adapter(pt) as w:
            with pytest.raises(UnsupportedInput) as info:
                w.adapter.validate(replace(request(pt), inputs=(ex.unsupported_input,)))
        assert info.value.errors[0].pointer == "/inputs/0"

    async def test_capabilities_say_truthfully_whether_it_can_cancel(self, pt):
        async with wired_adapter(pt) as w:
            assert isinstance(w.adapter, SupportsCancel) == pt.capabilities.cancel
