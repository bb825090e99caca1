"""Wood Wide's official library, woodwide 0.9.0, as the oracle for our simulator and adapter.

The library runs unmodified (``AsyncWoodWide`` in the test's loop, with its own
``_strict_response_validation`` on, so every answer must parse as the library's
types) against the simulator on loopback: its catalog, the documented batch-inference
workflow (``async_infer_batch_and_wait``, ``async_download_job_results``,
``async_iter_result_rows``), file inference, cancel and errors. Result links point at
another host name (``localhost`` beside ``127.0.0.1``), which the library fetches
without its key, and which the simulator refuses if a key comes along. Then the
adapter and the library do the same jobs, and the requests each sent are compared:
method, path, query, auth header and body.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from woodwide import (
    AsyncWoodWide,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    async_download_job_results,
    async_infer_batch_and_wait,
    async_iter_result_rows,
    async_wait_for_job,
)

from adapters.base import InputKind, JobHandle, JobInput, JobRequest, ModelRef, ProviderConfig
from adapters.woodwide import PROVIDER_TYPE, SIMULATOR_KEY, WoodWideAdapter
from adapters.woodwide.simulator import SimSettings, create_simulator
from adapters.woodwide.wire import records_csv
from tests.support import Wired, wired_adapter

#: Jobs end at once on the simulator's own clock; the library still polls for them.
QUICK = SimSettings(queued_seconds=0.0, job_seconds=0.0, results_host="localhost")
RECORDS = [
    {"age": 34, "plan": "pro", "monthly_spend": 89.5, "tenure_months": 26},
    {"age": 51, "plan": "basic", "monthly_spend": 19.0, "tenure_months": 3},
    {"age": 27, "plan": "plus", "monthly_spend": 45.25, "tenure_months": 11},
]


@dataclass
class Sent:
    """One request as the simulator received it, body included."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    accept: str | None
    content_type: str
    body: Any


def recording(app: web.Application) -> list[Sent]:
    """Append a middleware to ``app`` (before it starts) that keeps every request's body."""
    sent: list[Sent] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.content_type == "multipart/form-data":
            form = await request.post()  # kept by aiohttp for the handler
            body = {}
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    body[key] = (value.filename, value.content_type, value.file.read())
                    value.file.seek(0)
                else:
                    body[key] = value
        elif request.can_read_body:
            raw = await request.read()  # kept by aiohttp for the handler
            body = json.loads(raw) if raw else None
        sent.append(
            Sent(
                request.method,
                request.path,
                {k: request.query.getall(k) for k in request.query},
                request.headers.get("Authorization"),
                request.headers.get("Accept"),
                request.content_type,
                body,
            )
        )
        return await handler(request)

    app.middlewares.append(record)
    return sent


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, list[Sent]]]:
    app = create_simulator(None, QUICK)
    sent = recording(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, sent
    await server.close()


def library(server: TestServer, key: str = SIMULATOR_KEY) -> AsyncWoodWide:
    base = str(server.make_url("/")).rstrip("/")
    return AsyncWoodWide(
        api_key=key, base_url=base, max_retries=0, _strict_response_validation=True
    )


def upload(records: list[dict[str, Any]] = RECORDS) -> tuple[str, bytes, str]:
    """The library's file tuple for the CSV the adapter makes of these records."""
    return ("inputs.csv", records_csv(records).encode(), "text/csv")


class TestTheLibraryWorkflowRunsAgainstTheSimulator:
    async def test_catalog(self, served):
        server, _ = served
        async with library(server) as client:
            models = await client.models.list()
            model = await client.models.retrieve("mdl_rating")
            datasets = await client.datasets.list()
            dataset = await client.datasets.retrieve("ds_demo")
            with pytest.raises(NotFoundError):
                await client.models.retrieve("mdl_nope")
        assert {m.id for m in models.items} >= {"mdl_churn", "mdl_factors", "mdl_similar"}
        assert (model.api_model_type, model.label_column) == ("prediction", "rating")
        assert model.current_version is not None and model.current_version.status == "ready"
        assert [d.id for d in datasets.items] == ["ds_demo"]
        assert dataset.current_version is not None and dataset.current_version.row_count == 20

    async def test_batch_inference_then_download_and_rows(self, served, tmp_path):
        server, sent = served
        async with library(server) as client:
            done = await async_infer_batch_and_wait(
                client, "mdl_segments", dataset_id="ds_demo", output_type="json", poll_interval=0.01
            )
            assert (done.job.type, done.job.status) == ("infer_batch", "succeeded")
            assert done.job.resources is not None
            assert done.results.row_paginatable is True
            assert done.results.summary is not None
            assert done.results.summary["total_row_count"] == 20
            link = done.results.inference_results_uri
            assert link is not None and link.startswith(f"http://localhost:{server.port}/")
            path = await async_download_job_results(client, done.job.id, tmp_path / "out.json")
            both = await async_download_job_results(
                client, done.job.id, tmp_path / "both.json", result_type="combined"
            )
            rows = [r async for r in async_iter_result_rows(client, done.job.id, page_size=7)]
        data = json.loads(path.read_text())["data"]
        assert list(data) == ["id", "cluster_label", "cluster_description"]
        assert data["id"] == list(range(20))
        combined = json.loads(both.read_text())["data"]
        assert list(combined)[:3] == ["id", "age", "plan"]
        assert combined["cluster_label"] == data["cluster_label"]
        assert [r["id"] for r in rows] == list(range(20))
        assert {"age", "cluster_label"} <= set(rows[0])
        files = [s for s in sent if s.path.startswith("/files/")]
        assert len(files) == 2 and all(s.authorization is None for s in files)
        assert all(s.authorization == f"Bearer {SIMULATOR_KEY}" for s in sent if s not in files)

    @pytest.mark.parametrize(
        ("model", "columns"),
        [
            ("mdl_churn", {"id", "prediction", "prediction_prob"}),
            ("mdl_rating", {"id", "prediction", "prediction_probs"}),
            ("mdl_price", {"id", "prediction"}),
            ("mdl_fraud", {"anomalous_ids"}),
            ("mdl_embed", {"id"} | {f"dim_{i}" for i in range(8)}),
            (
                "mdl_factors",
                {"id"}
                | {
                    f"factor_{k}_{part}"
                    for k in range(3)
                    for part in ("score", "description", "captured_variance")
                },
            ),
        ],
        ids=["binary", "multiclass", "regression", "anomaly", "embedding", "factors"],
    )
    async def test_file_inference_answers_the_documented_columns(
        self, served, tmp_path, model, columns
    ):
        """Columns as ``models.infer_async``'s docstring lists them, for each model type."""
        server, _ = served
        async with library(server) as client:
            job = await client.models.infer_async(model, file=upload(), output_type="csv")
            assert job.status == "queued" and job.api_model_version_id.startswith("mdlv_")
            await async_wait_for_job(client, job.job_id, poll_interval=0.01)
            results = await client.jobs.retrieve_results(job.job_id)
            path = await async_download_job_results(client, job.job_id, tmp_path / "r.csv")
        header = csv.DictReader(io.StringIO(path.read_text())).fieldnames or []
        assert set(header) - {"prediction_explanation"} == columns
        if model == "mdl_factors":
            assert results.descriptions is not None
            described = json.loads(results.descriptions["factor_descriptions"])
            assert set(described["0"]) == {"description", "summary", "captured_variance"}

    async def test_sync_inference(self, served):
        server, _ = served
        async with library(server) as client:
            body = await client.models.infer("mdl_tier", file=upload(), output_type="json")
        assert isinstance(body, Mapping)
        assert body["model_type"] == "prediction" and body["data"]["id"] == [0, 1, 2]
        assert set(body["prediction_descriptions"]) == {"basic", "plus", "pro"}

    async def test_cancel_and_failures_end_the_wait(self):
        app = create_simulator(None, SimSettings(queued_seconds=30, job_seconds=60))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with library(server) as client:
                job = await client.models.infer_async("mdl_churn", file=upload())
                with pytest.raises(ConflictError):
                    await client.jobs.retrieve_results(job.job_id)
                cancelled = await client.jobs.cancel(job.job_id)
                assert (cancelled.id, cancelled.status) == (job.job_id, "canceled")
                with pytest.raises(RuntimeError, match="ended with status canceled"):
                    await async_wait_for_job(client, job.job_id, poll_interval=0.01)
        finally:
            await server.close()

    async def test_a_job_whose_rows_all_fail_raises_with_the_providers_message(self, served):
        server, _ = served
        async with library(server) as client:
            job = await client.models.infer_async(
                "mdl_churn", file=upload([{"age": "fail", "plan": "x"}])
            )
            with pytest.raises(RuntimeError, match="none of the 1 rows"):
                await async_wait_for_job(client, job.job_id, poll_interval=0.01)

    async def test_a_wrong_key_is_an_authentication_error(self, served):
        server, _ = served
        async with library(server, key="sk_wrong") as client:
            with pytest.raises(AuthenticationError):
                await client.jobs.list()

    async def test_results_that_cannot_be_paged_still_download(self, tmp_path):
        app = create_simulator(
            None, SimSettings(queued_seconds=0, job_seconds=0, row_paginatable=None)
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with library(server) as client:
                job = await client.models.infer_async(
                    "mdl_price", file=upload(), output_type="json"
                )
                results = await client.jobs.retrieve_results(job.job_id)
                assert results.row_paginatable is None
                path = await async_download_job_results(client, job.job_id, tmp_path / "r.json")
                with pytest.raises(ConflictError):
                    await client.jobs.retrieve_result_rows(job.job_id)
        finally:
            await server.close()
        assert len(json.loads(path.read_text())["data"]["prediction"]) == 3


# -- the same jobs, through the adapter and through the library ---------------------------


def _shape(s: Sent, job_id: str | None) -> tuple[Any, ...]:
    """What must match: method, path (the job id as ``{id}``), query, auth, Accept, body
    and its type.

    A signed link's query is its signature (different for each job): only its names count.
    A request without a body has no media type to compare (the library labels its empty
    POSTs ``application/json``).
    """
    path = s.path.replace(job_id, "{id}") if job_id else s.path
    query = sorted(s.query) if path.startswith("/files/") else s.query
    media = s.content_type if s.body is not None else None
    return (s.method, path, query, s.authorization, s.accept, media, s.body)


def _job_id(sent: list[Sent]) -> str | None:
    for s in sent:
        if s.path.startswith("/jobs/"):
            return s.path.split("/")[2]
    return None


def _distinct(sent: list[Sent]) -> list[tuple[Any, ...]]:
    """Each request once (the library asks for the results twice), in the order sent."""
    job_id = _job_id(sent)
    out: list[tuple[Any, ...]] = []
    for shape in (_shape(s, job_id) for s in sent):
        if shape not in out:
            out.append(shape)
    return out


async def _through_the_adapter(
    request: JobRequest, *, rows: bool = False, cancel: bool = False
) -> list[tuple[Any, ...]]:
    settings = SimSettings(queued_seconds=60 if cancel else 0, job_seconds=120 if cancel else 0)
    app = create_simulator(None, settings)
    sent = recording(app)
    async with wired_adapter(PROVIDER_TYPE, app=app) as w:
        adapter = _adapter(w, rows)
        submission = await adapter.submit(request)
        job = JobHandle(
            submission.upstream_id,
            request.model,
            tuple(i.name for i in request.inputs),
            submission.state,
        )
        if cancel:
            await adapter.cancel(job)
        else:
            await adapter.status(job)
    return _distinct(sent)


def _adapter(w: Wired, rows: bool) -> WoodWideAdapter:
    """The adapter; with ``rows``, one that reads the row pages rather than the file."""
    config = ProviderConfig(name="woodwide", type="woodwide")
    return WoodWideAdapter(config, w.upstream, file_row_limit=0 if rows else 500)


async def _through_the_library(work: Any, tmp_path: Any, **settings: Any) -> list[tuple[Any, ...]]:
    app = create_simulator(
        None, SimSettings(**({"queued_seconds": 0, "job_seconds": 0} | settings))
    )
    sent = recording(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with library(server) as client:
            await work(client, tmp_path)
    finally:
        await server.close()
    return _distinct(sent)


def _records(model: str, **options: Any) -> JobRequest:
    inputs = tuple(
        JobInput(name=f"r{i}", kind=InputKind.RECORD, record=r) for i, r in enumerate(RECORDS)
    )
    return JobRequest(ModelRef("woodwide", model), inputs, options=options)


class TestTheAdapterSendsWhatTheLibrarySends:
    async def test_file_inference_read_from_the_signed_link(self, tmp_path):
        ours = await _through_the_adapter(_records("mdl_tier", output_type="csv"))

        async def work(client: AsyncWoodWide, tmp: Any) -> None:
            job = await client.models.infer_async(
                "mdl_tier", file=upload(), output_type="csv", anomaly_format="ids_only"
            )
            await async_wait_for_job(client, job.job_id, poll_interval=0.01)
            await async_download_job_results(client, job.job_id, tmp / "r.csv")

        theirs = await _through_the_library(work, tmp_path)
        assert ours == theirs
        post, *_ = ours
        assert post[1] == "/models/mdl_tier/infer-async"
        assert post[3] == f"Bearer {SIMULATOR_KEY}" and post[5] == "multipart/form-data"
        name, content, media = upload()
        assert post[6] == {
            "file": (name, media, content),
            "output_type": "csv",
            "anomaly_format": "ids_only",
        }
        (file,) = [s for s in ours if s[1].startswith("/files/")]
        assert file[3] is None  # no key on the signed link

    async def test_search_options_on_a_stored_dataset_read_by_rows(self, tmp_path):
        options = {
            "dataset_id": "ds_demo",
            "k": 2,
            "exclude_self_matches": True,
            "force_rerun": True,
            "model_version_id": "mdlv_similar_1",
        }
        refs = tuple(JobInput(name=f"row-{i}", kind=InputKind.REF, ref=str(i)) for i in range(3))
        request = JobRequest(ModelRef("woodwide", "mdl_similar"), refs, options=options)
        ours = await _through_the_adapter(request, rows=True)

        async def work(client: AsyncWoodWide, tmp: Any) -> None:
            job = await client.models.infer_batch(
                "mdl_similar",
                output_type="json",
                anomaly_format="ids_only",
                **options,  # type: ignore[arg-type]
            )
            await async_wait_for_job(client, job.job_id, poll_interval=0.01)
            await client.jobs.retrieve_results(job.job_id)
            async for _ in async_iter_result_rows(client, job.job_id, page_size=500):
                pass

        theirs = await _through_the_library(work, tmp_path)
        assert ours == theirs
        post = ours[0]
        assert post[1:] == (
            "/models/mdl_similar/infer-batch",
            {},
            f"Bearer {SIMULATOR_KEY}",
            "application/json",
            "application/json",
            {"output_type": "json", "anomaly_format": "ids_only", **options},
        )
        assert ours[-1][:3] == (
            "GET",
            "/jobs/{id}/results/rows",
            {"limit": ["500"], "offset": ["0"]},
        )

    async def test_cancel(self, tmp_path):
        ours = await _through_the_adapter(_records("mdl_churn"), cancel=True)

        async def work(client: AsyncWoodWide, tmp: Any) -> None:
            job = await client.models.infer_async(
                "mdl_churn", file=upload(), output_type="json", anomaly_format="ids_only"
            )
            await client.jobs.cancel(job.job_id)

        theirs = await _through_the_library(work, tmp_path, queued_seconds=60, job_seconds=120)
        assert ours == theirs
        assert ours[-1][:2] == ("POST", "/jobs/{id}/cancel") and ours[-1][5] is None
