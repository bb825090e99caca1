"""The official Modzy library (modzy-sdk 0.11.6, unmodified) against our Modzy simulator.

The library is the oracle: it runs its own documented workflow (its README, its sample
``samples/job_with_text_input_sample.py``, its tests' calls) over real HTTP on loopback,
and what it asks and reads is what the simulator must answer. The library is
synchronous (``requests``), so its calls run in a thread while the simulator serves
from the test's event loop. A second group sends the same jobs through our adapter and
the library and compares the requests the simulator received.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from modzy import ApiClient, error
from modzy.jobs import Jobs

from adapters.base import InputKind, JobHandle, JobInput, JobRequest, ModelRef, SupportsCancel
from adapters.modzy import IMAGE_ID, PROVIDER_TYPE, SENTIMENT_ID, SIMULATOR_KEY, TOPICS_ID
from adapters.modzy.simulator import JOBS, SimSettings, create_simulator
from adapters.simulation import SIM_CONTROL, SeenRequest, SimulatorControl
from tests.support import FakeClock, wired_adapter

T = TypeVar("T")
FAST = SimSettings(queue_seconds=0.02, item_seconds=0.02)
#: Seconds between the library's polls (its default, 5 s, is for a real provider).
POLL = 0.01


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A library call, in a thread, while the simulator keeps serving from this loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """The simulator on a free loopback port; yields the library's base URL (``.../api``)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/api"))
    finally:
        await server.close()


@asynccontextmanager
async def library(base_url: str, api_key: str = SIMULATOR_KEY) -> AsyncIterator[ApiClient]:
    """``ApiClient(base_url=..., api_key=...)``, as the README starts; its session closed after."""
    client = await run(ApiClient, base_url=base_url, api_key=api_key)
    try:
        yield client
    finally:
        client.http.session.close()


def simulator(settings: SimSettings = FAST, clock: FakeClock | None = None) -> web.Application:
    control = SimulatorControl(clock=clock) if clock is not None else SimulatorControl()
    return create_simulator(control, settings)


class TestDocumentedWorkflow:
    async def test_the_text_sample_end_to_end(self):
        """samples/job_with_text_input_sample.py, step by step, a wrong input key included."""
        async with served(simulator()) as base, library(base) as client:
            model = await run(client.models.get_by_name, "Sentiment Analysis")
            assert model.modelId == SENTIMENT_ID
            version = await run(client.models.get_version, model, model.latest_version)
            assert version.version == "1.0.1"
            assert version.timeout.status > 0 and version.timeout.run > 0
            assert [(i.name, i.acceptedMediaTypes) for i in version.inputs] == [
                ("input.txt", "text/plain")
            ]
            assert [o.name for o in version.outputs] == ["results.json"]
            key = version.inputs[0].name
            sources = {
                "source-key": {key: "Modzy is great!"},
                "second-key": {key: "Sometimes I really hate ribs"},
                "another-key": {key: "Born and raised in Pennsylvania, Swift moved on"},
                "wrong-key": {"a.wrong.key": "This input is wrong!"},
            }
            job = await run(client.jobs.submit_text, model.modelId, version.version, sources)
            assert job.status == Jobs.status.SUBMITTED
            await run(job.block_until_complete, timeout=10, poll_interval=POLL)
            assert job.status == Jobs.status.COMPLETED
            result = await run(job.get_result)
            assert (result.finished, result.total, result.completed, result.failed) == (
                True,
                4,
                3,
                1,
            )
            outputs = {
                k: result.get_source_outputs(k)["results.json"] for k in sources if k != "wrong-key"
            }
            with pytest.raises(error.ResultsError, match=r"a\.wrong\.key"):
                result.get_source_outputs("wrong-key")
        top = {k: o["data"]["result"]["classPredictions"][0]["class"] for k, o in outputs.items()}
        assert top["source-key"] == "positive" and top["second-key"] == "negative"

    async def test_the_readme_single_source_job_through_the_early_404(self):
        """README: submit, ``results.block_until_complete``, ``get_first_outputs()``.

        The job is held queued (a frozen clock) until the library has met the documented
        early 404 of the results route and checked the job exists; then it may run.
        """
        clock = FakeClock()
        app = simulator(SimSettings(queue_seconds=1, item_seconds=1), clock)
        control = app[SIM_CONTROL]
        async with served(app) as base, library(base) as client:
            job = await run(client.jobs.submit_text, SENTIMENT_ID, "1.0.1", {"input.txt": "great"})
            waiting = asyncio.ensure_future(
                run(client.results.block_until_complete, job, timeout=10, poll_interval=POLL)
            )
            for _ in range(500):
                seen = [(r.method, r.path, r.status) for r in control.requests]
                if ("GET", f"/api/jobs/{job.job_identifier}", 200) in seen:
                    break
                await asyncio.sleep(0.01)
            assert ("GET", f"/api/results/{job.job_identifier}", 404) in seen
            clock.advance(100)
            result = await asyncio.wait_for(waiting, 10)
        assert result.finished is True
        assert list(result.results) == ["job"]  # the library's name for a single source
        outputs = result.get_first_outputs()
        assert outputs["results.json"]["data"]["result"]["classPredictions"]

    async def test_embedded_and_multi_input_jobs(self):
        async with served(simulator()) as base, library(base) as client:
            picture = await run(
                client.jobs.submit_embedded, IMAGE_ID, "0.0.1", {"p1": {"image": b"\x89PNG fake"}}
            )
            topics = await run(client.models.get_version, TOPICS_ID, "2.0.0")
            names = [i.name for i in topics.inputs]
            assert names == ["input.txt", "config.json"]
            config = json.dumps({"labels": ["sports", "politics"]})
            both = await run(
                client.jobs.submit_text,
                TOPICS_ID,
                "2.0.0",
                {"s1": {"input.txt": "the sports final", "config.json": config}},
            )
            results = []
            for job in (picture, both):
                results.append(
                    await run(
                        client.results.block_until_complete, job, timeout=10, poll_interval=POLL
                    )
                )
        image, topic = (r.get_first_outputs()["results.json"] for r in results)
        assert image["data"]["result"]["classPredictions"][0]["class"] in {
            "cat",
            "dog",
            "bird",
            "shoe",
        }
        assert topic["data"]["result"]["classPredictions"][0]["class"] == "sports"

    async def test_cancel_history_and_features(self):
        """The SDK's own tests: ``test_cancel_job``, history by status, job features."""
        clock = FakeClock()
        app = simulator(SimSettings(queue_seconds=1, item_seconds=1), clock)
        async with served(app) as base, library(base) as client:
            job = await run(
                client.jobs.submit_text,
                SENTIMENT_ID,
                "1.0.1",
                {str(i): {"input.txt": "Modzy is great!"} for i in range(2)},
            )
            pending = await run(client.jobs.get_history, status="pending")
            canceled = await run(client.jobs.cancel, job.job_identifier)
            with pytest.raises(error.BadRequestError):
                await run(client.jobs.cancel, job.job_identifier)
            terminated = await run(client.jobs.get_history, status="terminated")
            features = await run(client.jobs.get_features)
            result = await run(client.results.get, job)
        assert [j.job_identifier for j in pending] == [job.job_identifier]
        assert pending[0].model.name == "Sentiment Analysis" and pending[0].submitted_by
        assert canceled.status == Jobs.status.CANCELED
        assert [j.status for j in terminated] == [Jobs.status.CANCELED]
        assert features.maximum_inputs_per_job >= 2
        assert result.finished is True

    async def test_the_model_routes_the_library_offers(self):
        async with served(simulator()) as base, library(base) as client:
            every = await run(client.models.get_all)
            model = await run(client.models.get, SENTIMENT_ID)
            again = await run(client.models.get, model)  # by object, as the SDK tests do
            related = await run(client.models.get_related, SENTIMENT_ID)
            versions = await run(client.models.get_versions, SENTIMENT_ID)
            sample_in = await run(client.models.get_version_input_sample, SENTIMENT_ID, "1.0.1")
            sample_out = await run(client.models.get_version_output_sample, SENTIMENT_ID, "1.0.1")
            with pytest.raises(error.NotFoundError) as missing:
                await run(client.models.get, "notamodelidentifier")
        assert {m.modelId for m in every} == {SENTIMENT_ID, IMAGE_ID, TOPICS_ID}
        assert all("latestVersion" in m and hasattr(m, "versions") for m in every)
        assert (model.modelId, model.latestVersion, again.modelId) == (
            SENTIMENT_ID,
            "1.0.1",
            SENTIMENT_ID,
        )
        assert related and all(m.modelId != SENTIMENT_ID for m in related)
        assert [v.version for v in versions] == ["1.0.1"]
        assert list(sample_in["input"]["sources"]["0001"]) == ["input.txt"]
        assert sample_out["results"]
        assert missing.value.response.status_code == 404 and missing.value.message

    async def test_a_wrong_key_is_refused_when_the_client_is_made(self):
        async with served(simulator()) as base:
            with pytest.raises(ValueError, match="api_key should be a valid key"):
                await run(ApiClient, base_url=base, api_key="nope.not-the-key")


class TestTheProvidersNewerShapes:
    async def test_completed_with_error_ends_the_librarys_wait(self):
        """Its rule: any word but SUBMITTED/IN_PROGRESS is finished (``block_until_complete``)."""
        settings = SimSettings(queue_seconds=0.02, item_seconds=0.02, completed_with_error=True)
        async with served(simulator(settings)) as base, library(base) as client:
            job = await run(
                client.jobs.submit_text,
                SENTIMENT_ID,
                "1.0.1",
                {"ok": {"input.txt": "great"}, "bad": {"input.txt": "please fail"}},
            )
            await run(job.block_until_complete, timeout=10, poll_interval=POLL)
            result = await run(job.get_result)
        assert job.status == "COMPLETED_WITH_ERROR"
        assert result.finished is True
        assert result.get_source_outputs("ok")["results.json"]
        with pytest.raises(error.ResultsError):
            result.get_source_outputs("bad")

    async def test_platform_fields_are_what_the_library_hands_its_caller(self):
        settings = SimSettings(queue_seconds=0.02, item_seconds=0.02, platform_fields=True)
        async with served(simulator(settings)) as base, library(base) as client:
            job = await run(
                client.jobs.submit_text, SENTIMENT_ID, "1.0.1", {"s": {"input.txt": "hi"}}
            )
            result = await run(
                client.results.block_until_complete, job, timeout=10, poll_interval=POLL
            )
        outputs = result.get_source_outputs("s")
        # The library returns the item whole: output and platform fields side by side.
        assert {"results.json", "accessKey", "teamIdentifier", "inputSize", "error"} <= set(outputs)
        assert outputs["error"] is None


# -- the same jobs through the library and through our adapter -----------------------------

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COMPARED_HEADERS = ("Authorization", "Accept", "Content-Type")


def exchange(requests: list[SeenRequest]) -> list[tuple[str, str, dict[str, str]]]:
    """Method, path (job ids as ``{id}``) and the compared headers of each request."""
    return [
        (
            r.method,
            _ID.sub("{id}", r.path),
            {h: r.headers[h].split(";")[0] for h in _COMPARED_HEADERS if h in r.headers},
        )
        for r in requests
    ]


async def _through_the_library(base: str, control: SimulatorControl, model: ModelRef, send):
    async with library(base) as client:
        control.requests.clear()  # the client's own construction probes are not the job's
        await run(client.models.get_version, model.model_id, model.version)
        job = await run(send, client)
        await run(client.jobs.get, job.job_identifier)
        await run(client.jobs.cancel, job.job_identifier)
        await run(client.results.get, job.job_identifier)
    return job.job_identifier, list(control.requests)


async def _through_the_adapter(w: Any, req: JobRequest):
    w.control.requests.clear()
    submission = await w.adapter.submit(req)
    job = JobHandle(submission.upstream_id, req.model, tuple(i.name for i in req.inputs))
    await w.adapter.status(job)
    canceller = w.adapter
    assert isinstance(canceller, SupportsCancel)
    await canceller.cancel(job)
    await w.adapter.results(job)
    return submission.upstream_id, list(w.control.requests)


class TestOurRequestsAreTheLibrarys:
    """Method, path, auth and JSON body of every request of a job: the library's and ours.

    The simulator's clock is frozen, so both jobs are queued when cancelled and both
    read the results of a cancelled job: the same answers lead to the same next step.
    """

    @pytest.mark.parametrize(
        ("model", "inputs", "send"),
        [
            (
                ModelRef("modzy", SENTIMENT_ID, "1.0.1"),
                (
                    JobInput("r1", InputKind.TEXT, text="Modzy is great!"),
                    JobInput("r2", InputKind.TEXT, text="Sometimes I really hate ribs"),
                ),
                lambda c: c.jobs.submit_text(
                    SENTIMENT_ID,
                    "1.0.1",
                    {
                        "r1": {"input.txt": "Modzy is great!"},
                        "r2": {"input.txt": "Sometimes I really hate ribs"},
                    },
                ),
            ),
            (
                ModelRef("modzy", SENTIMENT_ID, "1.0.1"),
                (JobInput("job", InputKind.TEXT, text="Modzy is great!"),),
                lambda c: c.jobs.submit_text(
                    SENTIMENT_ID, "1.0.1", {"input.txt": "Modzy is great!"}
                ),
            ),
            (
                ModelRef("modzy", TOPICS_ID, "2.0.0"),
                (
                    JobInput(
                        "s1",
                        InputKind.TEXT,
                        text="the final",
                        fields={"config.json": '{"labels": ["sports"]}'},
                    ),
                ),
                lambda c: c.jobs.submit_text(
                    TOPICS_ID,
                    "2.0.0",
                    {"s1": {"input.txt": "the final", "config.json": '{"labels": ["sports"]}'}},
                ),
            ),
            (
                ModelRef("modzy", IMAGE_ID, "0.0.1"),
                (
                    JobInput(
                        "p1",
                        InputKind.DATA,
                        data=b"\x89PNG fake",
                        content_type="application/octet-stream",
                    ),
                ),
                lambda c: c.jobs.submit_embedded(
                    IMAGE_ID, "0.0.1", {"p1": {"image": b"\x89PNG fake"}}
                ),
            ),
        ],
        ids=["text-bulk", "text-single-source", "multi-input", "embedded"],
    )
    async def test_the_same_job_makes_the_same_requests(self, model, inputs, send):
        clock = FakeClock()
        app = simulator(SimSettings(queue_seconds=1, item_seconds=1), clock)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            base = w.base_url
            theirs_id, theirs = await _through_the_library(base, w.control, model, send)
            ours_id, ours = await _through_the_adapter(w, JobRequest(model=model, inputs=inputs))
            bodies = (app[JOBS][theirs_id].body, app[JOBS][ours_id].body)
        assert exchange(ours) == exchange(theirs)
        assert [r.status for r in ours] == [r.status for r in theirs]
        assert bodies[0] == bodies[1]
        assert exchange(ours)[:2] == [
            (
                "GET",
                f"/api/models/{model.model_id}/versions/{model.version}",
                {"Authorization": f"ApiKey {SIMULATOR_KEY}", "Accept": "application/json"},
            ),
            (
                "POST",
                "/api/jobs",
                {
                    "Authorization": f"ApiKey {SIMULATOR_KEY}",
                    "Accept": "application/json",
                    "Content-Type": "application/json",
                },
            ),
        ]

    async def test_an_embedded_value_keeps_its_media_type_where_the_library_says_octet_stream(
        self,
    ):
        """The one difference: the library labels every embedded value
        ``application/octet-stream`` (``_util.encode_data_uri``); we send the input's own type.
        """
        clock = FakeClock()
        app = simulator(SimSettings(queue_seconds=1, item_seconds=1), clock)
        picture = JobInput("p1", InputKind.DATA, data=b"\x89PNG fake", content_type="image/png")
        model = ModelRef("modzy", IMAGE_ID, "0.0.1")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            theirs_id, _ = await _through_the_library(
                w.base_url,
                w.control,
                model,
                lambda c: c.jobs.submit_embedded(
                    IMAGE_ID, "0.0.1", {"p1": {"image": b"\x89PNG fake"}}
                ),
            )
            ours_id, _ = await _through_the_adapter(w, JobRequest(model=model, inputs=(picture,)))
        theirs = app[JOBS][theirs_id].body["input"]["sources"]["p1"]["image"]
        ours = app[JOBS][ours_id].body["input"]["sources"]["p1"]["image"]
        assert theirs.startswith("data:application/octet-stream;base64,")
        assert ours.startswith("data:image/png;base64,")
        assert ours.split(",", 1)[1] == theirs.split(",", 1)[1]
