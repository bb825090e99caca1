"""Wood Wide's wire translation: requests, statuses, result files and rows (no network)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemStatus,
    JobInput,
    JobRequest,
    JobStatus,
    ModelRef,
    StatusReport,
    parse_options,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import (
    AnomalyOutput,
    ClassificationOutput,
    ClusteringOutput,
    EmbeddingOutput,
    Factor,
    FactorsOutput,
    JsonOutput,
    LabelScore,
    Match,
    MatchOutput,
    RegressionOutput,
)
from adapters.woodwide import normalize, tables, wire
from adapters.woodwide.tables import Table
from gateway.errors import UnsupportedInput, ValidationFailed


def record(name: str, **cells: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.RECORD, record=cells)


def ref(name: str, row: str) -> JobInput:
    return JobInput(name=name, kind=InputKind.REF, ref=row)


def request(*inputs: JobInput, version: str | None = None, **options: Any) -> JobRequest:
    return JobRequest(
        model=ModelRef("woodwide", "mdl_churn", version), inputs=inputs, options=options
    )


def options(**values: Any) -> wire.WoodWideOptions:
    return parse_options(wire.WoodWideOptions, values)


def pointers(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


class TestAuthAndPaths:
    def test_auth_header_is_bearer(self):
        assert wire.auth_headers("sk_1") == {"Authorization": "Bearer sk_1"}

    @pytest.mark.parametrize(
        ("fn", "arg", "expected"),
        [
            (wire.infer_async_path, "mdl_churn", "/models/mdl_churn/infer-async"),
            (wire.infer_batch_path, "mdl_churn", "/models/mdl_churn/infer-batch"),
            (wire.job_path, "job_A1", "/jobs/job_A1"),
            (wire.results_path, "job_A1", "/jobs/job_A1/results"),
            (wire.rows_path, "job_A1", "/jobs/job_A1/results/rows"),
            (wire.cancel_path, "job_A1", "/jobs/job_A1/cancel"),
            (wire.job_path, "a/b?c", "/jobs/a%2Fb%3Fc"),
        ],
        ids=["infer-async", "infer-batch", "job", "results", "rows", "cancel", "id-escaped"],
    )
    def test_paths(self, fn, arg, expected):
        assert fn(arg) == expected


class TestOptions:
    def test_defaults(self):
        opts = options()
        assert (opts.output_type, opts.anomaly_format, opts.k, opts.on_dataset) == (
            "json",
            "ids_only",
            None,
            False,
        )

    @pytest.mark.parametrize(
        ("values", "pointer"),
        [
            ({"output_type": "xml"}, "/options/provider/output_type"),
            ({"anomaly_format": "all"}, "/options/provider/anomaly_format"),
            ({"k": 0}, "/options/provider/k"),
            ({"exclude_self_matches": "maybe"}, "/options/provider/exclude_self_matches"),
            ({"dataset_id": ""}, "/options/provider/dataset_id"),
            ({"rules": []}, "/options/provider/rules"),
        ],
        ids=["output-type", "anomaly-format", "k-zero", "bool", "empty-dataset", "unknown"],
    )
    def test_bad_option_names_its_field(self, values, pointer):
        with pytest.raises(ValidationFailed) as exc:
            options(**values)
        assert pointers(exc) == [pointer]


class TestCheckRequest:
    def test_records_pass(self):
        wire.check_request(request(record("a", x=1), record("b", y=2)), options())

    def test_dataset_refs_pass(self):
        wire.check_request(request(ref("a", "0"), ref("b", "12")), options(dataset_id="ds_demo"))

    @pytest.mark.parametrize(
        ("inputs", "opts", "version", "error", "pointer"),
        [
            (
                (ref("a", "1"),),
                {"dataset_id": "ds_1", "dataset_version_id": "dsv_1"},
                None,
                ValidationFailed,
                "/options/provider/dataset_id",
            ),
            (
                (record("a", x=1),),
                {"model_version_id": "mdlv_2"},
                "mdlv_1",
                ValidationFailed,
                "/options/provider/model_version_id",
            ),
            ((record("a", x=1),), {"dataset_id": "ds_1"}, None, UnsupportedInput, "/inputs/0"),
            ((record("a", x=1), ref("b", "1")), {}, None, UnsupportedInput, "/inputs/1"),
            ((ref("a", "row-1"),), {"dataset_id": "ds_1"}, None, ValidationFailed, "/inputs/0/ref"),
            (
                (ref("a", "1"), ref("b", "01")),
                {"dataset_id": "ds_1"},
                None,
                ValidationFailed,
                "/inputs/1/ref",
            ),
            ((record("a"), record("b")), {}, None, ValidationFailed, "/inputs"),
            (
                (JobInput(name="a", kind=InputKind.RECORD, record={"x": 1}, fields={"f": "v"}),),
                {},
                None,
                ValidationFailed,
                "/inputs/0/fields",
            ),
        ],
        ids=[
            "both-datasets",
            "version-mismatch",
            "record-with-dataset",
            "ref-without-dataset",
            "ref-not-a-row-id",
            "ref-named-twice",
            "records-without-fields",
            "fields",
        ],
    )
    def test_refusals_name_the_field(self, inputs, opts, version, error, pointer):
        with pytest.raises(error) as exc:
            wire.check_request(request(*inputs, version=version), options(**opts))
        assert type(exc.value) is error
        assert pointers(exc) == [pointer]

    def test_same_version_in_model_and_options_is_fine(self):
        wire.check_request(
            request(record("a", x=1), version="mdlv_1"), options(model_version_id="mdlv_1")
        )


class TestRequestBuilding:
    def test_csv_has_the_union_of_columns_in_first_seen_order(self):
        text = wire.records_csv([{"b": 1, "a": "x"}, {"a": "y", "c": True}, {}])
        rows = list(csv.reader(io.StringIO(text)))
        assert rows == [["b", "a", "c"], ["1", "x", ""], ["", "y", "true"], ["", "", ""]]

    @pytest.mark.parametrize(
        ("value", "cell"),
        [
            (None, ""),
            (False, "false"),
            (3, "3"),
            (0.1, "0.1"),
            ('a,b "q"', 'a,b "q"'),
            ({"z": 1, "a": [1, 2]}, '{"a":[1,2],"z":1}'),
        ],
        ids=["none", "bool", "int", "float", "quoted-text", "nested"],
    )
    def test_csv_cells(self, value, cell):
        text = wire.records_csv([{"v": value}])
        assert list(csv.reader(io.StringIO(text)))[1] == [cell]

    def test_infer_fields_are_strings_and_leave_unset_options_out(self):
        fields = wire.infer_fields(
            options(k=3, exclude_self_matches=False, anomaly_format="per_row"), "csv", "mdlv_1"
        )
        assert fields == {
            "output_type": "csv",
            "anomaly_format": "per_row",
            "k": "3",
            "exclude_self_matches": "false",
            "model_version_id": "mdlv_1",
        }
        assert wire.infer_fields(options(), "json", None) == {
            "output_type": "json",
            "anomaly_format": "ids_only",
        }

    @pytest.mark.parametrize(
        ("opts", "expected"),
        [
            (
                {"dataset_id": "ds_demo"},
                {"dataset_id": "ds_demo", "output_type": "json", "anomaly_format": "ids_only"},
            ),
            (
                {"dataset_version_id": "dsv_1", "force_rerun": True, "k": 2},
                {
                    "dataset_version_id": "dsv_1",
                    "force_rerun": True,
                    "k": 2,
                    "output_type": "json",
                    "anomaly_format": "ids_only",
                },
            ),
        ],
        ids=["dataset", "version-rerun"],
    )
    def test_batch_body(self, opts, expected):
        assert wire.batch_body(options(**opts), "json", None) == expected

    def test_upload_form_carries_the_csv_and_fields(self):
        form = wire.upload_form("a\n1\n", {"output_type": "csv"})
        names = [f[0]["name"] for f in form._fields]
        assert names == ["file", "output_type"]
        assert form._fields[0][0]["filename"] == "inputs.csv"

    @pytest.mark.parametrize(
        ("requested", "parquet_ok", "expected"),
        [("parquet", False, "json"), ("parquet", True, "parquet"), ("csv", False, "csv")],
        ids=["parquet-without-pyarrow", "parquet-with-pyarrow", "csv"],
    )
    def test_effective_output_type(self, requested, parquet_ok, expected):
        assert wire.effective_output_type(requested, parquet_ok) == expected

    def test_row_names_map_row_ids_to_inputs(self):
        req = request(record("a", x=1), record("b", x=2))
        assert wire.row_names(req, options()) == {"0": "a", "1": "b"}
        req = request(ref("a", "7"), ref("b", "03"))
        assert wire.row_names(req, options(dataset_id="ds")) == {"7": "a", "3": "b"}


class TestStatus:
    @pytest.mark.parametrize(
        ("word", "status"),
        [
            ("initializing", JobStatus.QUEUED),
            ("pending", JobStatus.QUEUED),
            ("queued", JobStatus.QUEUED),
            ("running", JobStatus.RUNNING),
            ("succeeded", JobStatus.SUCCEEDED),
            ("failed", JobStatus.FAILED),
            ("rejected", JobStatus.FAILED),
            ("canceled", JobStatus.CANCELLED),
            ("RUNNING", JobStatus.RUNNING),
        ],
        ids=lambda v: str(v),
    )
    def test_status_words(self, word, status):
        report = wire.report_from_wire({"id": "j", "status": word})
        assert report.status is status
        assert report.upstream_status == word

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"status": "failed", "error_message": "bad column 'x'"}, "bad column 'x'"),
            ({"status": "rejected", "error_message": None}, "The job failed at the provider."),
        ],
        ids=["message", "no-message"],
    )
    def test_failed_job_carries_the_error(self, body, message):
        report = wire.report_from_wire(body)
        assert report.error == ErrorInfo("upstream_failed", message)

    @pytest.mark.parametrize("body", [{"status": None}, []], ids=["null", "list"])
    def test_unreadable_status_is_a_bad_response(self, body):
        with pytest.raises(ProviderBadResponse):
            wire.report_from_wire(body)

    @pytest.mark.parametrize(
        ("body", "job_id"),
        [({"job_id": "job_1", "id": "x"}, "job_1"), ({"id": "job_2"}, "job_2"), ({"id": 7}, "7")],
        ids=["job_id", "id", "int"],
    )
    def test_job_id(self, body, job_id):
        assert wire.job_id_from_wire(body) == job_id

    @pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": True}, "job"], ids=str)
    def test_missing_job_id_is_a_bad_response(self, body):
        with pytest.raises(ProviderBadResponse):
            wire.job_id_from_wire(body)

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"job_id": "j", "status": "queued"}, JobStatus.QUEUED),
            ({"job_id": "j", "status": "running"}, JobStatus.RUNNING),
            ({"job_id": "j", "status": "succeeded"}, None),
            ({"job_id": "j"}, None),
        ],
        ids=["queued", "running", "finished-existing-job", "no-status"],
    )
    def test_submit_report(self, body, expected):
        report = wire.submit_report(body)
        assert (report.status if report else None) is expected

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"model_type": "Clustering"}, "clustering"),
            ({"resources": {"model": {"type": "search"}}}, "search"),
            ({}, None),
        ],
        ids=["top-level", "resources", "none"],
    )
    def test_model_type(self, body, expected):
        assert wire.model_type_of(body) == expected

    @pytest.mark.parametrize(
        ("counts", "status", "error"),
        [
            (Counts(3, 3, 0), JobStatus.SUCCEEDED, None),
            (Counts(3, 2, 1), JobStatus.PARTIALLY_SUCCEEDED, None),
            (Counts(2, 0, 2), JobStatus.FAILED, "all_items_failed"),
        ],
        ids=["all", "some", "none"],
    )
    def test_finished_report(self, counts, status, error):
        report = wire.finished_report(StatusReport(JobStatus.SUCCEEDED, "succeeded"), counts)
        assert report.status is status
        assert report.counts == counts
        assert (report.error.code if report.error else None) == error


class TestResultsMeta:
    def test_parse(self):
        meta = tables.results_meta_from_wire(
            {
                "inference_results_uri": "http://h/files/x.json",
                "row_paginatable": True,
                "summary": {"total_row_count": 5, "failed_row_ids": [2, "4"]},
            }
        )
        assert meta.uri == "http://h/files/x.json"
        assert meta.row_paginatable
        assert meta.total_rows == 5
        assert meta.failed_row_ids == frozenset({"2", "4"})

    def test_sparse_answer(self):
        meta = tables.results_meta_from_wire({"inference_results_uri": None})
        assert (meta.uri, meta.row_paginatable, meta.total_rows, meta.failed_row_ids) == (
            None,
            None,
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("uri", "paginatable", "total", "plan"),
        [
            ("http://127.0.0.1:8/files/r.json", True, 10, "file"),
            ("http://127.0.0.1:8/files/r.json", True, 501, "rows"),
            ("http://127.0.0.1:8/files/r.json", False, 5000, "file"),
            ("http://127.0.0.1:8/files/r.json", True, None, "file"),
            ("http://127.0.0.1:8/files/r.json", None, 5000, "file"),
            ("https://storage.example.com/r.json", True, 10, "file"),
            ("https://storage.example.com/r.json", True, 501, "rows"),
            ("https://storage.example.com/r.json", None, 10, "file"),
            ("http://storage.example.com/r.json", True, 10, "rows"),
            ("http://storage.example.com/r.json", False, 10, "file"),
            (None, True, 10, "rows"),
        ],
        ids=[
            "small-file",
            "large-paged",
            "large-not-paginatable",
            "unknown-size",
            "large-paginatable-null",
            "signed-link-elsewhere",
            "signed-link-elsewhere-large-paged",
            "signed-link-elsewhere-paginatable-null",
            "plain-http-elsewhere-paged",
            "plain-http-elsewhere-only-way",
            "no-uri",
        ],
    )
    def test_read_plan(self, uri, paginatable, total, plan):
        meta = tables.ResultsMeta(uri, paginatable, total, None, {})
        assert tables.read_plan(meta, "http://127.0.0.1:8", 500) == plan

    @pytest.mark.parametrize("paginatable", [False, None], ids=["false", "null"])
    def test_no_way_to_read_is_a_bad_response(self, paginatable):
        meta = tables.ResultsMeta(None, paginatable, 3, None, {})
        with pytest.raises(ProviderBadResponse):
            tables.read_plan(meta, "http://127.0.0.1:8", 500)

    def test_rows_page(self):
        rows, total, limit = tables.rows_page_from_wire(
            {"limit": 2, "offset": 0, "rows": [{"id": 0}, {"id": 1}], "total": 9}
        )
        assert (rows, total, limit) == ([{"id": 0}, {"id": 1}], 9, 2)

    @pytest.mark.parametrize(
        "body", [{"rows": None}, {"rows": [1]}, []], ids=["null", "not-objects", "list"]
    )
    def test_bad_rows_page(self, body):
        with pytest.raises(ProviderBadResponse):
            tables.rows_page_from_wire(body)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(3, "3"), (3.0, "3"), ("3", "3"), (" 03 ", "3"), ("a1", "a1")],
        ids=["int", "float", "str", "padded", "opaque"],
    )
    def test_row_id(self, value, expected):
        assert tables.row_id(value) == expected


class TestTables:
    def test_json_columns_become_rows(self):
        table = tables.table_from_json(
            {
                "model_type": "prediction",
                "data": {"id": [0, 1], "prediction": [1, 0], "prediction_prob": [0.9, 0.8]},
                "prediction_descriptions": {},
            }
        )
        assert table.rows == [
            {"id": 0, "prediction": 1, "prediction_prob": 0.9},
            {"id": 1, "prediction": 0, "prediction_prob": 0.8},
        ]
        assert table.model_type == "prediction"
        assert "prediction_descriptions" in table.extras

    @pytest.mark.parametrize(
        ("body", "columns", "rows"),
        [
            ({"data": [{"id": 0, "x": 1}]}, ("id", "x"), [{"id": 0, "x": 1}]),
            (
                {"anomalous_ids": [2, 5]},
                ("anomalous_ids",),
                [{"anomalous_ids": 2}, {"anomalous_ids": 5}],
            ),
            ({"data": {"anomalous_ids": []}}, ("anomalous_ids",), []),
            (
                {"model_type": "search", "data": {"0": ["7", "9"], "1": "4"}},
                ("id", "match_id", "rank"),
                [
                    {"id": "0", "match_id": "7", "rank": 1},
                    {"id": "0", "match_id": "9", "rank": 2},
                    {"id": "1", "match_id": "4", "rank": 1},
                ],
            ),
        ],
        ids=["row-list", "top-level-anomalous-ids", "empty-column", "search-mapping"],
    )
    def test_json_shapes(self, body, columns, rows):
        table = tables.table_from_json(body)
        assert (table.columns, table.rows) == (columns, rows)

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[1, 2]",
            b'{"data": {"id": [0, 1], "x": [1]}}',
            b'{"data": {"id": 1}}',
            b'{"status": "ok"}',
            b'{"data": [1]}',
        ],
        ids=["not-json", "not-object", "ragged", "not-lists", "no-data", "rows-not-objects"],
    )
    def test_bad_json_files(self, body):
        with pytest.raises(ProviderBadResponse):
            tables.table_from_file(body, "json")

    def test_csv_file(self):
        table = tables.table_from_file(
            b"\xef\xbb\xbfid,is_anomaly\r\n0,True\r\n\r\n1,False\r\n", "csv"
        )
        assert table.columns == ("id", "is_anomaly")
        assert table.rows == [{"id": "0", "is_anomaly": "True"}, {"id": "1", "is_anomaly": "False"}]

    @pytest.mark.parametrize(
        ("body", "columns"),
        [(b"", ()), (b"anomalous_ids\n", ("anomalous_ids",))],
        ids=["empty", "header-only"],
    )
    def test_csv_without_rows(self, body, columns):
        table = tables.table_from_csv(body)
        assert (table.columns, table.rows) == (columns, [])

    @pytest.mark.parametrize("body", [b"id,x\n0,1,2\n", b"\xff\xfe"], ids=["ragged", "not-utf8"])
    def test_bad_csv_files(self, body):
        with pytest.raises(ProviderBadResponse):
            tables.table_from_csv(body)

    def test_parquet_without_pyarrow_is_a_bad_response(self, monkeypatch):
        monkeypatch.setattr(tables, "parquet_available", lambda: False)
        with pytest.raises(ProviderBadResponse, match="pyarrow"):
            tables.table_from_file(b"PAR1", "parquet")

    @pytest.mark.parametrize(
        ("content_type", "requested", "expected"),
        [
            ("application/json", "csv", "json"),
            ("text/csv", "json", "csv"),
            ("application/octet-stream", "json", "parquet"),
            ("binary/weird", "csv", "csv"),
        ],
        ids=["json", "csv", "parquet", "unknown-uses-requested"],
    )
    def test_output_type_of(self, content_type, requested, expected):
        assert tables.output_type_of(content_type, requested) == expected

    def test_table_from_rows_collects_columns(self):
        table = tables.table_from_rows([{"id": 0, "a": 1}, {"id": 1, "b": 2}])
        assert table.columns == ("id", "a", "b")


NAMES = {"0": "r0", "1": "r1"}


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> Table:
    built = tables.table_from_rows(rows)
    return Table(columns or built.columns, built.rows)


class TestNormalize:
    @pytest.mark.parametrize(
        ("model_type", "row", "output"),
        [
            (
                "prediction",
                {"id": 0, "prediction": 1, "prediction_prob": 0.88},
                ClassificationOutput(
                    label="1", score=0.88, scores=[LabelScore(label="1", score=0.88)]
                ),
            ),
            (
                "prediction",
                {
                    "id": "0",
                    "prediction": "1",
                    "prediction_prob": "0.88",
                    "prediction_explanation": "x",
                },
                ClassificationOutput(
                    label="1", score=0.88, scores=[LabelScore(label="1", score=0.88)]
                ),
            ),
            (
                "prediction",
                {
                    "id": 0,
                    "prediction": "pro",
                    "prediction_prob": 0.5,
                    "prediction_probs": {"pro": 0.5, "basic": 0.2, "plus": 0.3},
                },
                ClassificationOutput(
                    label="pro",
                    score=0.5,
                    scores=[
                        LabelScore(label="pro", score=0.5),
                        LabelScore(label="plus", score=0.3),
                        LabelScore(label="basic", score=0.2),
                    ],
                ),
            ),
            (
                "prediction",
                {
                    "id": "0",
                    "prediction": "pro",
                    "prediction_prob": "",
                    "prediction_probs": '{"pro":0.7,"basic":0.3}',
                },
                ClassificationOutput(
                    label="pro",
                    score=0.7,
                    scores=[
                        LabelScore(label="pro", score=0.7),
                        LabelScore(label="basic", score=0.3),
                    ],
                ),
            ),
            ("prediction", {"id": 0, "prediction": 123.5}, RegressionOutput(value=123.5)),
            ("prediction", {"id": "0", "prediction": "123.5"}, RegressionOutput(value=123.5)),
            ("prediction", {"id": 0, "prediction": "yes"}, ClassificationOutput(label="yes")),
            (
                "clustering",
                {"id": 0, "cluster_label": 2, "cluster_description": "Big spenders"},
                ClusteringOutput(cluster=2, description="Big spenders"),
            ),
            (
                "clustering",
                {"id": "0", "cluster_label": "2", "cluster_description": ""},
                ClusteringOutput(cluster=2),
            ),
            (
                "anomaly",
                {"id": 0, "is_anomaly": True, "anomaly_score": 0.93},
                AnomalyOutput(is_anomaly=True, score=0.93),
            ),
            (
                "anomaly",
                {"id": "0", "is_anomaly": "False", "anomaly_score": "0.1"},
                AnomalyOutput(is_anomaly=False, score=0.1),
            ),
            (
                "embedding",
                {"id": 0, "dim_10": 0.5, "dim_2": -1.0, "dim_0": 0.25, "dim_1": 0},
                EmbeddingOutput(vector=[0.25, 0, -1.0, 0.5]),
            ),
            (
                "embedding",
                {"id": "0", "dim_0": "0.25", "dim_1": "-1"},
                EmbeddingOutput(vector=[0.25, -1.0]),
            ),
            ("something_new", {"id": 0, "score": 3}, JsonOutput(data={"score": 3})),
            (None, {"id": 0, "cluster_label": 1}, ClusteringOutput(cluster=1)),
        ],
        ids=[
            "binary-json",
            "binary-csv",
            "multiclass-json",
            "multiclass-csv",
            "regression-json",
            "regression-csv",
            "label-without-prob",
            "clustering-json",
            "clustering-csv",
            "anomaly-per-row-json",
            "anomaly-per-row-csv",
            "embedding-numeric-order",
            "embedding-csv",
            "unknown-type-as-json",
            "type-from-columns",
        ],
    )
    def test_per_row_outputs(self, model_type, row, output):
        items, job_outputs = normalize.items_from_table(_table([row]), model_type, {"0": "r0"})
        item = items["r0"]
        assert item.status is ItemStatus.SUCCEEDED
        assert item.output == output
        assert item.raw == row
        assert job_outputs == ()

    @pytest.mark.parametrize(
        ("rows", "columns"),
        [
            ([{"anomalous_ids": 1}], None),
            ([{"anomalous_ids": "1"}], None),
            ([{"anomalous_ids": "[1]"}], None),
        ],
        ids=["json", "csv", "list-in-a-cell"],
    )
    def test_anomaly_ids_only(self, rows, columns):
        items, _ = normalize.items_from_table(_table(rows, columns), "anomaly", NAMES)
        assert items["r0"].output == AnomalyOutput(is_anomaly=False, score=None)
        assert items["r0"].raw is None
        assert items["r1"].output == AnomalyOutput(is_anomaly=True, score=None)
        assert items["r1"].raw == rows[0]

    def test_anomaly_ids_only_without_anomalies(self):
        items, _ = normalize.items_from_table(Table(("anomalous_ids",), []), None, NAMES)
        assert all(i.output == AnomalyOutput(is_anomaly=False) for i in items.values())

    def test_search_groups_rows_by_query_and_orders_by_rank(self):
        rows = [
            {"id": "0", "match_id": "9", "rank": "2", "score": "0.8"},
            {"id": "1", "match_id": "4", "rank": "1", "score": "0.7"},
            {"id": "0", "match_id": "17", "rank": "1", "score": "0.95"},
        ]
        items, _ = normalize.items_from_table(_table(rows), "search", NAMES)
        assert items["r0"].output == MatchOutput(
            matches=[Match(id="17", score=0.95), Match(id="9", score=0.8)]
        )
        assert items["r1"].output == MatchOutput(matches=[Match(id="4", score=0.7)])
        assert items["r0"].raw == [rows[0], rows[2]]

    def test_factors_are_a_job_output_and_items_have_none(self):
        rows = [
            {"factor_id": "1", "factor_description": "Tenure", "captured_variance": "0.2"},
            {"factor_id": "0", "factor_description": "Spend", "captured_variance": "0.5"},
        ]
        items, job_outputs = normalize.items_from_table(_table(rows), "factors", NAMES)
        assert job_outputs == (
            FactorsOutput(
                factors=[
                    Factor(id=0, description="Spend", captured_variance=0.5),
                    Factor(id=1, description="Tenure", captured_variance=0.2),
                ]
            ),
        )
        assert [(i.status, i.output) for i in items.values()] == [(ItemStatus.SUCCEEDED, None)] * 2

    def test_missing_and_listed_rows_fail(self):
        rows = [{"id": 0, "prediction": 1.0}]
        names = {"0": "r0", "1": "r1", "2": "r2"}
        items, _ = normalize.items_from_table(_table(rows), "prediction", names, {"0"})
        assert list(items) == ["r0", "r1", "r2"]
        for item in items.values():
            assert item.status is ItemStatus.FAILED
            assert item.error == ErrorInfo("item_failed", "no result for this row")

    def test_failed_row_ids_apply_to_ids_only_and_factors(self):
        items, _ = normalize.items_from_table(
            Table(("anomalous_ids",), []), "anomaly", NAMES, {"1"}
        )
        assert [i.status for i in items.values()] == [ItemStatus.SUCCEEDED, ItemStatus.FAILED]

    @pytest.mark.parametrize(
        ("model_type", "row"),
        [
            ("prediction", {"id": 0, "prediction": 1, "prediction_prob": "high"}),
            ("clustering", {"id": 0}),
            ("anomaly", {"id": 0, "is_anomaly": "perhaps"}),
            ("embedding", {"id": 0, "dim_0": "x"}),
            ("prediction", {"prediction": 1.0}),
            ("search", {"id": 0}),
        ],
        ids=["prob", "cluster-missing", "bool", "dim", "no-id", "no-match-id"],
    )
    def test_unreadable_rows_are_kept_as_json_never_a_bad_response(self, model_type, row):
        """Issue 14 point 6: a 502 here would come back on every read of a finished job.
        A row with an id is its input's json output; rows without one, the job's."""
        items, job_outputs = normalize.items_from_table(_table([row]), model_type, {"0": "r0"})
        rest = {k: v for k, v in row.items() if k != "id"}
        if "id" in row:
            assert items["r0"].status is ItemStatus.SUCCEEDED
            assert items["r0"].output == JsonOutput(data=rest) and job_outputs == ()
        else:
            assert items["r0"].status is ItemStatus.FAILED  # no row names it
            assert job_outputs == (JsonOutput(data=[row]),)

    @pytest.mark.parametrize(
        ("columns", "kind"),
        [
            (("anomalous_ids",), "anomaly"),
            (("id", "is_anomaly", "anomaly_score"), "anomaly"),
            (("factor_id", "captured_variance"), "factors"),
            (("id", "match_id", "rank"), "search"),
            (("id", "cluster_label"), "clustering"),
            (("id", "dim_0", "dim_1"), "embedding"),
            (("id", "prediction"), "prediction"),
            (("id", "dimension"), None),
        ],
        ids=[
            "ids-only",
            "per-row",
            "factors",
            "search",
            "clustering",
            "embedding",
            "prediction",
            "unknown",
        ],
    )
    def test_detect_model_type(self, columns, kind):
        assert normalize.detect_model_type(columns) == kind

    @pytest.mark.parametrize(
        ("status", "item_status", "message"),
        [
            (JobStatus.CANCELLED, ItemStatus.CANCELLED, None),
            (JobStatus.FAILED, ItemStatus.FAILED, "bad file"),
        ],
        ids=["cancelled", "failed"],
    )
    def test_finish_unfinished(self, status, item_status, message):
        error = ErrorInfo("upstream_failed", message) if message else None
        items = normalize.finish_unfinished(("a", "b"), StatusReport(status, "x", error=error))
        assert [i.status for i in items.values()] == [item_status] * 2
        assert items["a"].error == (ErrorInfo("item_failed", message) if message else None)

    def test_counts_from_items(self):
        items, _ = normalize.items_from_table(
            _table([{"id": 0, "prediction": 1.0}]), "prediction", NAMES
        )
        assert normalize.counts_from_items(items, 2) == Counts(total=2, succeeded=1, failed=1)


def test_json_example_from_the_docs_round_trips():
    """The documented sync-infer json body normalizes to classifications."""
    body = json.dumps(
        {
            "job_id": "j",
            "status": "succeeded",
            "model_type": "prediction",
            "data": {
                "id": [0, 1, 2],
                "prediction": [1, 0, 1],
                "prediction_prob": [0.88, 0.95, 0.7],
            },
            "prediction_descriptions": {"1": {"summary": "s", "description": "d"}},
        }
    ).encode()
    table = tables.table_from_file(body, "json")
    items, _ = normalize.items_from_table(table, None, {"0": "a", "1": "b", "2": "c"})
    got = [i.output for i in items.values()]
    assert all(isinstance(o, ClassificationOutput) for o in got)
    assert [(o.label, o.score) for o in got if isinstance(o, ClassificationOutput)] == [
        ("1", 0.88),
        ("0", 0.95),
        ("1", 0.7),
    ]
