"""LlamaCloud's official library, llama-cloud 2.19.0, as the oracle for our simulator and adapter.

The library runs unmodified (its async client, in the test's loop) against the
simulator on loopback: upload, classify, wait, list, cancel, delete, as its docstrings
show. Then the adapter and the library do the same job and the requests each sent are
compared: method, path, query, the auth, Accept and Content-Type headers, and body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from llama_cloud import AsyncLlamaCloud, BadRequestError
from llama_cloud.types.classify_configuration_param import ClassifyConfigurationParam, Rule

from adapters.base import InputKind, JobHandle, JobInput, JobRequest, ModelRef
from adapters.llamacloud import EXAMPLE_RULES, PROVIDER_TYPE, SIM_STATE, SIMULATOR_KEY
from adapters.llamacloud.simulator import FAST_SETTINGS, SimState, fast_simulator
from adapters.simulation import SIM_CONTROL, SimulatorControl
from tests.support import FakeClock, wired_adapter

RULES: list[Rule] = [{"type": r["type"], "description": r["description"]} for r in EXAMPLE_RULES]
CONFIG: ClassifyConfigurationParam = {"rules": RULES}
TEXT = b"Invoice number 7781. Line items: 2 chairs. Amount due: $90."


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, FakeClock]]:
    clock = FakeClock()
    app = fast_simulator(SimulatorControl(clock=clock), replace(FAST_SETTINGS, slow_seconds=60))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, clock
    await server.close()


def library(server: TestServer) -> AsyncLlamaCloud:
    base = str(server.make_url("/")).rstrip("/")
    return AsyncLlamaCloud(api_key=SIMULATOR_KEY, base_url=base, max_retries=0)


def sim_state(server: TestServer) -> SimState:
    return server.app[SIM_STATE]


class TestTheLibraryWorkflowRunsAgainstTheSimulator:
    async def test_upload_classify_wait(self, served):
        server, clock = served
        async with library(server) as client:
            file = await client.files.create(
                file=("invoice.txt", TEXT, "text/plain"), purpose="classify"
            )
            assert file.id.startswith("dfl-") and file.purpose == "classify"
            assert (await client.files.retrieve(file.id)).name == "invoice.txt"
            job = await client.classify.create(
                file_input=file.id,
                configuration={"rules": RULES, "mode": "FAST"},
                transaction_id="oracle-1",
            )
            assert job.status == "PENDING" and job.document_input_type == "file_id"
            clock.advance(1.0)
            done = await client.classify.wait_for_completion(
                job.id, polling_interval=0.01, max_interval=0.02
            )
            assert done.status == "COMPLETED"
            assert done.result is not None and done.result.type == "invoice"
            assert 0 < done.result.confidence <= 1 and done.result.reasoning
            again = await client.classify.create(
                file_input=file.id,
                configuration=CONFIG,
                transaction_id="oracle-1",
            )
            assert again.id == job.id
            await client.classify.delete(job.id)
            await client.files.delete(file.id)
        assert sim_state(server).jobs == {}

    async def test_run_list_and_cancel(self, served):
        server, clock = served
        async with library(server) as client:
            clock.advance(0)
            quick = await client.classify.create(
                file_input="pjb-sample-receipt", configuration=CONFIG
            )
            slow_file = await client.files.create(
                file=("slow-scan.txt", TEXT, "text/plain"), purpose="classify"
            )
            slow = await client.classify.create(file_input=slow_file.id, configuration=CONFIG)
            clock.advance(1.0)
            listed = [j async for j in client.classify.list(job_ids=[quick.id, slow.id])]
            assert {j.id: j.status for j in listed} == {quick.id: "COMPLETED", slow.id: "RUNNING"}
            cancelled = await client.classify.cancel(slow.id)
            assert cancelled.status == "CANCELLED"
            got = await client.classify.get(quick.id)
            assert got.result is not None and got.result.type == "receipt"


async def adapter_requests(server: TestServer) -> tuple[list[Any], list[Any], str]:
    """The adapter submits one file, checks it, cancels: what the simulator saw."""
    inputs = (JobInput("invoice.txt", InputKind.DATA, data=TEXT, content_type="text/plain"),)
    options = {"rules": EXAMPLE_RULES, "parsing_configuration": {"max_pages": 2}}
    req = JobRequest(
        model=ModelRef("llamacloud", "classifier"),
        inputs=inputs,
        options={**options, "project_id": "prj-1"},
        submit_key="same-key",
    )
    async with wired_adapter(PROVIDER_TYPE, app=server.app) as w:
        submission = await w.adapter.submit(req)
        handle = JobHandle(submission.upstream_id, req.model, ("invoice.txt",), submission.state)
        await w.adapter.status(handle)
        assert hasattr(w.adapter, "cancel")
        await w.adapter.cancel(handle)
        headers = w.control.requests[0].headers
    return list(sim_state(server).bodies), list(sim_state(server).queries), headers["Authorization"]


async def library_requests(server: TestServer, job_ids: list[str]) -> tuple[list[Any], list[Any]]:
    async with library(server) as client:
        file = await client.files.create(
            file=("invoice.txt", TEXT, "text/plain"), purpose="classify", project_id="prj-1"
        )
        job = await client.classify.create(
            file_input=file.id,
            configuration={
                "rules": RULES,
                "mode": "FAST",
                "parsing_configuration": {"max_pages": 2},
            },
            transaction_id="same-key-0",
            project_id="prj-1",
        )
        assert job.id == job_ids[0]  # the transaction id found the adapter's job
        await client.classify.list(job_ids=job_ids, page_size=50, project_id="prj-1")
        # The adapter cancelled it already: the same request, answered 400 this time.
        with pytest.raises(BadRequestError):
            await client.classify.cancel(job.id, project_id="prj-1")
    return list(sim_state(server).bodies), list(sim_state(server).queries)


def header_shapes(control: SimulatorControl, since: int) -> list[tuple[str, ...]]:
    """Per request since ``since``: the route (job ids as ``{id}``) and the headers that
    say what is sent and what is wanted (auth, Accept, the body's media type)."""
    out: list[tuple[str, ...]] = []
    for seen in control.requests[since:]:
        path = "/".join(
            "{id}" if part.startswith("cls-") else part for part in seen.path.split("/")
        )
        h = {k.lower(): v for k, v in seen.headers.items()}
        media = h.get("content-type", "").split(";")[0].strip()
        out.append((seen.method, path, h.get("authorization", ""), h.get("accept", ""), media))
    return out


async def test_the_adapter_sends_what_the_library_sends(served):
    server, _ = served
    control = server.app[SIM_CONTROL]
    ours, our_queries, auth = await adapter_requests(server)
    our_headers = header_shapes(control, 0)
    state = sim_state(server)
    job_ids = list(state.jobs)
    state.bodies.clear()
    state.queries.clear()
    since = len(control.requests)
    theirs, their_queries = await library_requests(server, job_ids)
    # The same headers on each call: auth, Accept, and the body's media type.
    assert our_headers == header_shapes(control, since)

    assert auth == f"Bearer {SIMULATOR_KEY}"
    # Uploads: the same multipart fields, purpose, file name and type.
    assert ours[0] == theirs[0]
    assert ours[0][1]["fields"] == ["file", "purpose"]
    # Creates: the same JSON body, transaction id included (each names its own upload).
    (our_route, our_body), (their_route, their_body) = ours[1], theirs[1]
    assert our_route == their_route
    assert our_body.pop("file_input").startswith("dfl-")
    assert their_body.pop("file_input").startswith("dfl-")
    assert our_body == their_body
    # Every call: the same route, and the same query (job ids repeated in one list call).
    assert [q[0] for q in our_queries] == [q[0] for q in their_queries]
    assert [sorted(q[1]) for q in our_queries] == [sorted(q[1]) for q in their_queries]
    assert [q[0] for q in our_queries] == [
        "POST /api/v1/beta/files",
        "POST /api/v2/classify",
        "GET /api/v2/classify",
        f"POST /api/v2/classify/{job_ids[0]}/cancel",
    ]
