"""The Wood Wide adapter against its simulator over loopback HTTP."""

from __future__ import annotations

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
    ProviderConfig,
    ResultSet,
    SupportsCancel,
)
from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.outputs import (
    AnomalyOutput,
    ClassificationOutput,
    ClusteringOutput,
    EmbeddingOutput,
    FactorsOutput,
    MatchOutput,
    RegressionOutput,
)
from adapters.simulation import Fault, SimulatorControl
from adapters.woodwide import PROVIDER_TYPE, SIM_STATE, SIMULATOR_KEY, WoodWideAdapter
from adapters.woodwide.simulator import SimSettings, create_simulator
from gateway.errors import UnsupportedInput, ValidationFailed
from tests.support import FakeClock, Wired, wired_adapter


def record(name: str, **cells: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.RECORD, record=cells)


def customers(n: int, prefix: str = "c") -> tuple[JobInput, ...]:
    """Rows 0, 3 and 5 of these are anomalies for ``mdl_fraud``."""
    return tuple(
        record(
            f"{prefix}{i}",
            age=20 + i * 3,
            plan=("basic", "plus", "pro")[i % 3],
            monthly_spend=10 + i * 7.5,
            tenure_months=i * 4,
        )
        for i in range(n)
    )


def request(
    *inputs: JobInput, model: str = "mdl_churn", version: str | None = None, **options: Any
) -> JobRequest:
    return JobRequest(model=ModelRef("woodwide", model, version), inputs=inputs, options=options)


def handle(req: JobRequest, submission) -> JobHandle:
    return JobHandle(
        upstream_id=submission.upstream_id,
        model=req.model,
        input_names=tuple(i.name for i in req.inputs),
        state=submission.state,
    )


def clocked(**settings: Any):
    clock = FakeClock()
    app = create_simulator(
        SimulatorControl(clock=clock),
        SimSettings(queued_seconds=1.0, job_seconds=2.0, **settings),
    )
    return clock, app


def adapter_on(w: Wired, **kwargs: Any) -> WoodWideAdapter:
    return WoodWideAdapter(ProviderConfig(name="woodwide", type="woodwide"), w.upstream, **kwargs)


def paths(w: Wired) -> list[str]:
    return [r.path for r in w.control.requests]


async def run(w: Wired, clock: FakeClock, req: JobRequest, adapter: Any = None):
    """Submit, let the job end, and read its status and results."""
    adapter = adapter or w.adapter
    job = handle(req, await adapter.submit(req))
    clock.advance(5)
    report = await adapter.status(job)
    return job, report, await adapter.results(job)


def outputs(results: ResultSet) -> dict[str, Any]:
    return {name: item.output for name, item in results.items.items()}


class TestLifecycle:
    async def test_job_is_queued_then_running_then_succeeds(self):
        clock, app = clocked()
        req = request(*customers(3))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            assert isinstance(w.adapter, ProviderAdapter)
            submission = await w.adapter.submit(req)
            assert submission.report is not None
            assert submission.report.status is JobStatus.QUEUED
            assert submission.state == {
                "mode": "file",
                "output_type": "json",
                "rows": {"0": "c0", "1": "c1", "2": "c2"},
                "columns": ["age", "plan", "monthly_spend", "tenure_months"],
            }
            job = handle(req, submission)

            queued = await w.adapter.status(job)
            assert (queued.status, queued.upstream_status) == (JobStatus.QUEUED, "queued")
            clock.advance(1.5)
            running = await w.adapter.status(job)
            assert (running.status, running.upstream_status) == (JobStatus.RUNNING, "running")
            assert (await w.adapter.results(job)).items == {}
            assert w.control.count("GET", "/results") == 0, "results asked before the end"

            clock.advance(1.0)
            done = await w.adapter.status(job)
            assert done.status is JobStatus.SUCCEEDED
            assert done.upstream_status == "succeeded"
            assert done.counts == Counts(total=3, succeeded=3)
            results = await w.adapter.results(job)
            # status() read the rows once; results() reuses them.
            assert w.control.count("GET", "/files/") == 1
            sim_job = app[SIM_STATE].jobs[job.upstream_id]
        assert list(results.items) == ["c0", "c1", "c2"]
        assert sim_job.output_type == "json"
        assert sim_job.input_filename == "inputs.csv"
        assert sim_job.rows[1] == {
            "age": "23",
            "plan": "plus",
            "monthly_spend": "17.5",
            "tenure_months": "4",
        }
        for i, item in enumerate(results.items.values()):
            assert item.status is ItemStatus.SUCCEEDED
            assert isinstance(item.output, ClassificationOutput)
            assert item.output.label == str(item.raw["prediction"])
            assert item.output.score == item.raw["prediction_prob"]
            assert item.raw["id"] == i

    async def test_results_alone_read_the_file_of_a_finished_job(self):
        clock, app = clocked()
        req = request(*customers(2), output_type="csv")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            results = await w.adapter.results(job)
            assert [p.rsplit("/", 1)[-1] for p in paths(w)][-1] == "inference_results.csv"
        assert [i.status for i in results.items.values()] == [ItemStatus.SUCCEEDED] * 2
        assert "prediction_explanation" in results.items["c0"].raw

    @pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
    @pytest.mark.parametrize(
        ("model", "options", "check"),
        [
            (
                "mdl_churn",
                {},
                lambda o: (
                    isinstance(o, ClassificationOutput)
                    and o.score is not None
                    and [(s.label, s.score) for s in o.scores] == [(o.label, o.score)]
                ),
            ),
            (
                "mdl_tier",
                {},
                lambda o: (
                    isinstance(o, ClassificationOutput)
                    and o.scores[0].label == o.label
                    and len(o.scores) == 3
                ),
            ),
            ("mdl_price", {}, lambda o: isinstance(o, RegressionOutput) and o.value > 0),
            (
                "mdl_segments",
                {},
                lambda o: (
                    isinstance(o, ClusteringOutput) and isinstance(o.cluster, int) and o.description
                ),
            ),
            (
                "mdl_fraud",
                {"anomaly_format": "per_row"},
                lambda o: isinstance(o, AnomalyOutput) and o.score is not None,
            ),
            ("mdl_fraud", {}, lambda o: isinstance(o, AnomalyOutput) and o.score is None),
            ("mdl_embed", {}, lambda o: isinstance(o, EmbeddingOutput) and len(o.vector) == 8),
            (
                "mdl_similar",
                {"k": 2, "exclude_self_matches": True},
                lambda o: isinstance(o, MatchOutput) and len(o.matches) == 2,
            ),
            (
                "mdl_factors",
                {},
                lambda o: isinstance(o, EmbeddingOutput) and len(o.vector) == 3,
            ),
        ],
        ids=[
            "binary",
            "multiclass",
            "regression",
            "clustering",
            "anomaly-per-row",
            "anomaly-ids-only",
            "embedding",
            "search",
            "factors",
        ],
    )
    async def test_every_model_type_in_every_format(self, model, options, check, fmt):
        clock, app = clocked()
        req = request(*customers(6), model=model, output_type=fmt, **options)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, req)
            assert f"/inference_results.{fmt}" in paths(w)[-1]
        assert report.status is JobStatus.SUCCEEDED
        assert report.counts == Counts(total=6, succeeded=6)
        for item in results.items.values():
            assert item.status is ItemStatus.SUCCEEDED
            assert check(item.output), item.output
        if model == "mdl_factors":
            (factors,) = results.job_outputs
            assert isinstance(factors, FactorsOutput)
            assert [f.id for f in factors.factors] == [0, 1, 2]
            assert all(f.description and f.captured_variance for f in factors.factors)
        else:
            assert results.job_outputs == ()

    @pytest.mark.parametrize(
        ("model", "options"),
        [
            ("mdl_churn", {}),
            ("mdl_tier", {}),
            ("mdl_price", {}),
            ("mdl_segments", {}),
            ("mdl_fraud", {"anomaly_format": "per_row"}),
            ("mdl_fraud", {}),
            ("mdl_embed", {}),
            ("mdl_similar", {"k": 3}),
        ],
        ids=[
            "binary",
            "multiclass",
            "regression",
            "clustering",
            "per-row",
            "ids-only",
            "embedding",
            "search",
        ],
    )
    async def test_json_csv_parquet_and_rows_agree(self, model, options):
        """The same rows read as json, csv, parquet and from row pages: the same outputs."""
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            seen = []
            for fmt, limit in (("json", 500), ("csv", 500), ("parquet", 500), ("json", 0)):
                req = request(*customers(6), model=model, output_type=fmt, **options)
                _, _, results = await run(w, clock, req, adapter_on(w, file_row_limit=limit))
                if limit:
                    assert paths(w)[-1].endswith(f"/inference_results.{fmt}"), paths(w)[-1]
                seen.append(outputs(results))
        assert seen[0] == seen[1] == seen[2] == seen[3]

    async def test_anomaly_formats_flag_the_same_rows(self):
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            flags = []
            for fmt in ("ids_only", "per_row"):
                req = request(*customers(8), model="mdl_fraud", anomaly_format=fmt)
                _, _, results = await run(w, clock, req)
                flags.append([n for n, o in outputs(results).items() if o.is_anomaly])
        assert flags[0] == flags[1] == ["c0", "c3", "c5"]

    async def test_search_excludes_self_matches_when_asked(self):
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            req = request(*customers(6), model="mdl_similar", k=5, exclude_self_matches=True)
            _, _, results = await run(w, clock, req)
            sim_job = next(iter(app[SIM_STATE].jobs.values()))
        assert (sim_job.k, sim_job.exclude_self_matches) == (5, True)
        for i, item in enumerate(results.items.values()):
            ids = [m.id for m in item.output.matches]
            assert len(ids) == 5 and str(i) not in ids
            scores = [m.score for m in item.output.matches]
            assert scores == sorted(scores, reverse=True)

    async def test_parquet_without_pyarrow_asks_for_json(self):
        clock, app = clocked()
        req = request(*customers(3), output_type="parquet")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, parquet_ok=False)
            job, report, results = await run(w, clock, req, adapter)
            sim_job = app[SIM_STATE].jobs[job.upstream_id]
            assert "/inference_results.json" in paths(w)[-1]
        assert job.state["output_type"] == "json"
        assert sim_job.output_type == "json"
        assert report.status is JobStatus.SUCCEEDED
        assert all(isinstance(o, ClassificationOutput) for o in outputs(results).values())

    async def test_a_simulator_without_parquet_refuses_it(self):
        _, app = clocked(parquet=False)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            with pytest.raises(ProviderRejected, match="parquet"):
                await adapter_on(w, parquet_ok=True).submit(
                    request(*customers(2), output_type="parquet")
                )

    async def test_model_version_goes_to_the_provider(self):
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            req = request(*customers(2), version="mdlv_churn_1")
            job, report, _ = await run(w, clock, req)
            assert app[SIM_STATE].jobs[job.upstream_id].model_version_id == "mdlv_churn_1"
            assert report.status is JobStatus.SUCCEEDED
            with pytest.raises(ProviderRejected, match="version"):
                await w.adapter.submit(request(*customers(2), version="mdlv_other"))

    async def test_fast_simulator_runs_the_contract_examples(self):
        """The examples finish on the fast simulator with rows paged (good) and a file (partial)."""
        ex = PROVIDER_TYPE.examples
        clock = FakeClock()
        app = PROVIDER_TYPE.fast_simulator(SimulatorControl(clock=clock))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            for inputs, status in (
                (ex.good_inputs, JobStatus.SUCCEEDED),
                (ex.partly_failing_inputs, JobStatus.PARTIALLY_SUCCEEDED),
            ):
                req = JobRequest(ModelRef("woodwide", ex.model_id), inputs, options=ex.options)
                w.adapter.validate(req)
                job = handle(req, await w.adapter.submit(req))
                clock.advance(0.5)
                report = await w.adapter.status(job)
                assert report.status is status
            assert w.control.count("GET", "/results/rows") == 2
            assert w.control.count("GET", "/files/") == 1


class TestPaging:
    async def test_rows_are_walked_when_the_provider_gives_no_file(self):
        clock, app = clocked(rows_page_cap=2, results_uri_max_rows=0)
        req = request(*customers(5), model="mdl_embed")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, req)
            assert w.control.count("GET", "/results/rows") == 3
            assert w.control.count("GET", "/files/") == 0
        assert report.counts == Counts(total=5, succeeded=5)
        assert [i.raw["id"] for i in results.items.values()] == [0, 1, 2, 3, 4]

    async def test_rows_are_walked_past_the_adapters_file_limit(self):
        clock, app = clocked(rows_page_cap=2)
        req = request(*customers(5), model="mdl_similar", k=2)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            adapter = adapter_on(w, file_row_limit=4, rows_page_size=3)
            _, _, results = await run(w, clock, req, adapter)
            # 5 result rows (one per query row), 2 per page however many we ask for.
            assert w.control.count("GET", "/results/rows") == 3
            assert w.control.count("GET", "/files/") == 0
        assert all(len(o.matches) == 2 for o in outputs(results).values())

    async def test_an_expired_file_link_falls_back_to_rows(self):
        clock, app = clocked(url_ttl_seconds=-10)
        req = request(*customers(3), model="mdl_segments")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, req)
            assert w.control.count("GET", "/files/") == 1
            assert w.control.count("GET", "/results/rows") == 1
        assert report.status is JobStatus.SUCCEEDED
        assert all(isinstance(o, ClusteringOutput) for o in outputs(results).values())


class TestFailures:
    @pytest.mark.parametrize("fmt", ["json", "csv"])
    async def test_rows_with_fail_are_failed_items(self, fmt):
        clock, app = clocked()
        inputs = (*customers(2), record("bad-fail-1", age="fail", plan="pro"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*inputs, output_type=fmt))
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.counts == Counts(total=3, succeeded=2, failed=1)
        bad = results.items["bad-fail-1"]
        assert bad.status is ItemStatus.FAILED
        assert bad.error == ErrorInfo("item_failed", "no result for this row")
        assert results.items["c1"].status is ItemStatus.SUCCEEDED

    @pytest.mark.parametrize(
        ("model", "options"),
        [("mdl_fraud", {}), ("mdl_factors", {}), ("mdl_price", {})],
        ids=["ids-only", "factors", "per-row"],
    )
    async def test_failed_rows_listed_in_the_summary(self, model, options):
        clock, app = clocked(fail_row_ids=frozenset({1}))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*customers(3), model=model, **options))
        assert report.counts == Counts(total=3, succeeded=2, failed=1)
        assert [i.status for i in results.items.values()] == [
            ItemStatus.SUCCEEDED,
            ItemStatus.FAILED,
            ItemStatus.SUCCEEDED,
        ]

    async def test_missing_rows_fail_without_a_summary_list(self):
        clock, app = clocked(fail_row_ids=frozenset({0}), report_failed_rows=False)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*customers(2), model="mdl_segments"))
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert results.items["c0"].error == ErrorInfo("item_failed", "no result for this row")

    async def test_job_of_failing_rows_fails_with_the_providers_message(self):
        clock, app = clocked()
        inputs = (record("a-fail", x="fail"), record("b", x="FAIL here"))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, request(*inputs))
            assert w.control.count("GET", "/results") == 0
        assert report.status is JobStatus.FAILED
        assert report.upstream_status == "failed"
        assert report.error is not None and "none of the 2 rows" in report.error.message
        assert [i.error.message for i in results.items.values()] == [report.error.message] * 2

    async def test_unknown_model_is_rejected(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected, match="Model not found") as info:
                await w.adapter.submit(request(*customers(1), model="mdl_nope"))
        assert [e.pointer for e in info.value.errors] == ["/model"]

    async def test_unknown_model_version_names_the_option(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected, match="version not found") as info:
                await w.adapter.submit(request(*customers(1), model_version_id="mdlv_nope"))
        assert [e.pointer for e in info.value.errors] == ["/options/provider/model_version_id"]

    @pytest.mark.parametrize("call", ["status", "results", "cancel"])
    async def test_unknown_upstream_job(self, call):
        req = request(*customers(1))
        async with wired_adapter(PROVIDER_TYPE) as w:
            job = JobHandle("job_gone", req.model, ("c0",), {})
            with pytest.raises(UpstreamJobNotFound):
                await getattr(w.adapter, call)(job)

    async def test_refused_credential_is_a_bad_response_that_hides_the_key(self):
        async with wired_adapter(PROVIDER_TYPE, credential="sk_wrong_secret_123") as w:
            with pytest.raises(ProviderBadResponse) as exc:
                await w.adapter.submit(request(*customers(1)))
            assert w.control.requests[-1].headers["Authorization"] == "Bearer sk_wrong_secret_123"
        assert "sk_wrong_secret_123" not in exc.value.detail
        assert "credentials" in exc.value.detail

    async def test_rate_limit_surfaces_with_retry_after_after_retries(self):
        _, app = clocked()
        req = request(*customers(1))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            w.control.set_faults(
                [Fault(kind="status", status=429, retry_after="0", match="GET /jobs")]
            )
            with pytest.raises(ProviderUnavailable) as exc:
                await w.adapter.status(job)
            assert w.control.count("GET", "/jobs/") == 3  # the first try and two retries
        assert exc.value.headers["Retry-After"] == "1"

    async def test_long_retry_after_is_passed_on_at_once(self):
        async with wired_adapter(PROVIDER_TYPE) as w:
            w.control.set_faults([Fault(kind="status", status=429, retry_after="30")])
            with pytest.raises(ProviderUnavailable) as exc:
                await w.adapter.submit(request(*customers(1)))
            assert w.control.count("POST") == 1
        assert exc.value.headers["Retry-After"] == "30"

    @pytest.mark.parametrize(
        ("match", "call"),
        [("GET /jobs/", "status"), ("/files/", "results"), ("/results/rows", "results")],
        ids=["job", "file", "rows"],
    )
    async def test_malformed_answers_are_bad_responses(self, match, call):
        clock, app = clocked(results_uri_max_rows=None if match == "/files/" else 0)
        req = request(*customers(2))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            w.control.set_faults([Fault(kind="malformed", match=match)])
            with pytest.raises(ProviderBadResponse):
                await getattr(w.adapter, call)(job)


class TestValidation:
    @pytest.mark.parametrize(
        ("inputs", "options", "error", "pointer"),
        [
            (
                customers(1),
                {"output_type": "xml"},
                ValidationFailed,
                "/options/provider/output_type",
            ),
            (customers(1), {"k": 0}, ValidationFailed, "/options/provider/k"),
            (customers(1), {"colour": "red"}, ValidationFailed, "/options/provider/colour"),
            (
                (JobInput(name="r", kind=InputKind.REF, ref="1"),),
                {"dataset_id": "ds_demo", "dataset_version_id": "dsv_demo_1"},
                ValidationFailed,
                "/options/provider/dataset_id",
            ),
            (
                (JobInput(name="t", kind=InputKind.TEXT, text="churn?"),),
                {},
                UnsupportedInput,
                "/inputs/0",
            ),
            (
                (JobInput(name="r", kind=InputKind.REF, ref="1"),),
                {},
                UnsupportedInput,
                "/inputs/0",
            ),
        ],
        ids=[
            "output-type",
            "k",
            "unknown-option",
            "both-datasets",
            "text-input",
            "ref-without-dataset",
        ],
    )
    async def test_refused_before_any_request(self, inputs, options, error, pointer):
        async with wired_adapter(PROVIDER_TYPE) as w:
            req = request(*inputs, **options)
            with pytest.raises(error) as exc:
                w.adapter.validate(req)
            assert pointer in [e.pointer for e in exc.value.errors]
            with pytest.raises(error):
                await w.adapter.submit(req)
            assert w.control.requests == []

    async def test_provider_defaults_apply(self):
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app, defaults={"output_type": "csv"}) as w:
            job, _, _ = await run(w, clock, request(*customers(1)))
        assert job.state["output_type"] == "csv"


def dataset_rows(*ids: str) -> tuple[JobInput, ...]:
    return tuple(JobInput(name=f"row-{i}", kind=InputKind.REF, ref=i) for i in ids)


class TestDataset:
    async def test_refs_report_the_named_rows_of_a_stored_dataset(self):
        clock, app = clocked()
        req = request(*dataset_rows("3", "7"), model="mdl_price", dataset_id="ds_demo")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job, report, results = await run(w, clock, req)
            assert w.control.count("POST", "/infer-batch") == 1
            # The same rows uploaded as records score the same.
            rows = app[SIM_STATE].jobs[job.upstream_id].rows
            uploaded = request(record("r3", **rows[3]), record("r7", **rows[7]), model="mdl_price")
            _, _, direct = await run(w, clock, uploaded)
        assert job.state["rows"] == {"3": "row-3", "7": "row-7"}
        assert report.counts == Counts(total=2, succeeded=2)
        assert list(results.items) == ["row-3", "row-7"]
        assert [o.value for o in outputs(results).values()] == [
            o.value for o in outputs(direct).values()
        ]
        assert results.items["row-3"].raw["id"] == 3

    async def test_a_ref_past_the_last_row_fails(self):
        clock, app = clocked()
        req = request(
            *dataset_rows("1", "99"), model="mdl_segments", dataset_version_id="dsv_demo_1"
        )
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            _, report, results = await run(w, clock, req)
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert results.items["row-99"].error == ErrorInfo("item_failed", "no result for this row")

    async def test_an_identical_request_reuses_the_job_unless_forced(self):
        clock, app = clocked()
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            first = await w.adapter.submit(request(*dataset_rows("1"), dataset_id="ds_demo"))
            again = await w.adapter.submit(request(*dataset_rows("2"), dataset_id="ds_demo"))
            forced = await w.adapter.submit(
                request(*dataset_rows("1"), dataset_id="ds_demo", force_rerun=True)
            )
            clock.advance(5)
            finished = await w.adapter.submit(request(*dataset_rows("1"), dataset_id="ds_demo"))
        assert again.upstream_id == first.upstream_id
        assert forced.upstream_id != first.upstream_id
        assert finished.upstream_id == forced.upstream_id
        assert finished.report is None  # a finished job: counts come from status()

    async def test_gateway_jobs_sharing_an_upstream_job_keep_their_own_rows(self):
        clock, app = clocked()
        req_a = request(*dataset_rows("1", "2"), dataset_id="ds_demo")
        req_b = request(*dataset_rows("5"), dataset_id="ds_demo")
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job_a = handle(req_a, await w.adapter.submit(req_a))
            job_b = handle(req_b, await w.adapter.submit(req_b))
            assert job_a.upstream_id == job_b.upstream_id
            clock.advance(5)
            assert (await w.adapter.status(job_a)).counts == Counts(total=2, succeeded=2)
            assert (await w.adapter.status(job_b)).counts == Counts(total=1, succeeded=1)
            results_b = await w.adapter.results(job_b)
            results_a = await w.adapter.results(job_a)
        assert list(results_a.items) == ["row-1", "row-2"]
        assert list(results_b.items) == ["row-5"]

    @pytest.mark.parametrize("field", ["dataset_id", "dataset_version_id"])
    async def test_unknown_dataset_is_rejected_naming_the_option(self, field):
        async with wired_adapter(PROVIDER_TYPE) as w:
            with pytest.raises(ProviderRejected, match="Dataset not found") as info:
                await w.adapter.submit(request(*dataset_rows("1"), **{field: "ds_nope"}))
        assert info.value.status == 422
        assert [e.pointer for e in info.value.errors] == [f"/options/provider/{field}"]


class TestCancel:
    async def test_cancel_a_running_job(self):
        clock, app = clocked()
        req = request(*customers(2))
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            assert isinstance(w.adapter, SupportsCancel)
            assert w.adapter.capabilities.cancel
            job = handle(req, await w.adapter.submit(req))
            clock.advance(1.5)
            report = await w.adapter.cancel(job)
            assert report is not None
            assert (report.status, report.upstream_status) == (JobStatus.CANCELLED, "canceled")
            clock.advance(5)
            assert (await w.adapter.status(job)).status is JobStatus.CANCELLED
            results = await w.adapter.results(job)
            assert w.control.count("GET", "/results") == 0
        assert [i.status for i in results.items.values()] == [ItemStatus.CANCELLED] * 2

    async def test_cancel_after_the_end_reports_the_end(self):
        clock, app = clocked()
        inputs = (*customers(1), record("x-fail", a="fail"))
        req = request(*inputs)
        async with wired_adapter(PROVIDER_TYPE, app=app) as w:
            job = handle(req, await w.adapter.submit(req))
            clock.advance(5)
            assert isinstance(w.adapter, SupportsCancel)
            report = await w.adapter.cancel(job)
        assert report is not None
        assert report.status is JobStatus.PARTIALLY_SUCCEEDED
        assert report.counts == Counts(total=2, succeeded=1, failed=1)


def test_contract_examples_are_consistent():
    ex = PROVIDER_TYPE.examples
    assert PROVIDER_TYPE.simulator_credential == SIMULATOR_KEY
    assert len(ex.good_inputs) >= 3
    assert any("fail" in i.name for i in ex.partly_failing_inputs)
    assert ex.unsupported_input is not None
    assert ex.unsupported_input.kind not in PROVIDER_TYPE.capabilities.input_kinds
    assert replace(ex, version=None) == ex
