"""Modzy's pure translation: request bodies, statuses, result items, outputs, explanations."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
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
    parse_options,
)
from adapters.errors import ProviderBadResponse
from adapters.modzy import items, wire
from adapters.modzy.normalize import normalize_output
from adapters.outputs import (
    ClassificationOutput,
    JsonOutput,
    LabelScore,
    MaskExplanation,
    TokenImportanceExplanation,
    WordScore,
)
from gateway.errors import UnsupportedInput, ValidationFailed

P = "modzy-test"
MODEL = ModelRef("modzy", "ed542963de", "1.0.1")
PREDS = [
    {"class": "negative", "score": 0.05},
    {"class": "positive", "score": 0.93},
    {"class": "neutral", "score": 0.02},
]
CLASSIFIED = ClassificationOutput(
    label="positive",
    score=0.93,
    scores=[
        LabelScore(label="positive", score=0.93),
        LabelScore(label="negative", score=0.05),
        LabelScore(label="neutral", score=0.02),
    ],
)


def text(name: str, value: str = "nice") -> JobInput:
    return JobInput(name=name, kind=InputKind.TEXT, text=value)


def data(name: str, value: bytes = b"\x89PNG", content_type: str | None = "image/png") -> JobInput:
    return JobInput(name=name, kind=InputKind.DATA, data=value, content_type=content_type)


def request(*inputs: JobInput, model: ModelRef = MODEL, explain: bool = False) -> JobRequest:
    return JobRequest(model=model, inputs=inputs, explain=explain)


class TestAuthAndPaths:
    def test_auth_header_is_apikey(self):
        assert wire.auth_headers("abc.def") == {"Authorization": "ApiKey abc.def"}

    def test_paths_are_relative_to_the_api_base_and_quote_the_id(self):
        assert wire.JOBS_PATH == "/jobs"
        assert wire.job_path("j-1") == "/jobs/j-1"
        assert wire.results_path("a/b") == "/results/a%2Fb"


class TestOptions:
    def test_defaults_are_empty(self):
        opts = parse_options(wire.ModzyOptions, {})
        assert opts.input_name is None
        assert opts.timeout is None

    @pytest.mark.parametrize(
        ("options", "pointer"),
        [
            ({"timeout": -1}, "/options/provider/timeout"),
            ({"timeout": True}, "/options/provider/timeout"),
            ({"timeout": "5"}, "/options/provider/timeout"),
            ({"input_name": ""}, "/options/provider/input_name"),
            ({"rules": []}, "/options/provider/rules"),
        ],
        ids=["negative-timeout", "bool-timeout", "string-timeout", "empty-name", "unknown-key"],
    )
    def test_bad_options_name_the_field(self, options: dict[str, Any], pointer: str):
        with pytest.raises(ValidationFailed) as err:
            parse_options(wire.ModzyOptions, options)
        assert [e.pointer for e in err.value.errors] == [pointer]


class TestCheckRequest:
    def test_a_model_without_version_is_refused_at_model(self):
        with pytest.raises(ValidationFailed) as err:
            wire.check_request(request(text("a"), model=ModelRef("modzy", "ed542963de")))
        assert err.value.errors[0].pointer == "/model"
        assert "@<version>" in err.value.detail

    def test_a_job_without_inputs_is_refused(self):
        with pytest.raises(ValidationFailed) as err:
            wire.check_request(request())
        assert err.value.errors[0].pointer == "/inputs"

    @pytest.mark.parametrize(
        ("inputs", "pointer", "named"),
        [
            ((text("a"), text("b"), data("pic"), data("pic2")), "/inputs/2", "'pic'"),
            ((data("pic"), text("a")), "/inputs/1", "'a'"),
        ],
        ids=["text-then-data", "data-then-text"],
    )
    def test_mixed_kinds_name_the_first_input_of_the_other_kind(self, inputs, pointer, named):
        with pytest.raises(UnsupportedInput) as err:
            wire.check_request(request(*inputs))
        assert [e.pointer for e in err.value.errors] == [pointer]
        assert named in err.value.detail

    def test_one_kind_passes(self):
        wire.check_request(request(data("a"), data("b")))


class TestSubmitBody:
    def test_text_inputs_use_input_txt(self):
        body = wire.submit_body(request(text("r1", "good"), text("r2", "bad")), wire.ModzyOptions())
        assert body == {
            "model": {"identifier": "ed542963de", "version": "1.0.1"},
            "explain": False,
            "input": {
                "type": "text",
                "sources": {"r1": {"input.txt": "good"}, "r2": {"input.txt": "bad"}},
            },
        }

    def test_data_inputs_are_embedded_data_uris_under_image(self):
        body = wire.submit_body(request(data("pic", b"\x00\x01PNG")), wire.ModzyOptions())
        assert body["input"]["type"] == "embedded"
        uri = body["input"]["sources"]["pic"]["image"]
        assert uri == "data:image/png;base64," + base64.b64encode(b"\x00\x01PNG").decode()

    def test_a_data_input_without_content_type_is_octet_stream(self):
        body = wire.submit_body(request(data("blob", b"x", None)), wire.ModzyOptions())
        assert (
            body["input"]["sources"]["blob"]["image"] == "data:application/octet-stream;base64,eA=="
        )

    def test_options_set_input_name_and_timeout(self):
        opts = wire.ModzyOptions(input_name="text", timeout=30000)
        body = wire.submit_body(request(text("r1")), opts)
        assert body["input"]["sources"] == {"r1": {"text": "nice"}}
        assert body["timeout"] == 30000

    def test_explain_is_a_bool(self):
        body = wire.submit_body(request(text("r1"), explain=True), wire.ModzyOptions())
        assert body["explain"] is True


class TestSubmitFromWire:
    def test_an_answer_without_status_is_submitted(self):
        job_id, report = wire.submit_from_wire({"jobIdentifier": "j1", "totalInputs": 4}, P, 2)
        assert job_id == "j1"
        assert report.status is JobStatus.QUEUED
        assert report.upstream_status == "SUBMITTED"
        assert report.counts == Counts.all_pending(4)

    def test_an_answer_with_status_is_mapped(self):
        payload = {"jobIdentifier": "j1", "status": "IN_PROGRESS", "total": 2, "completed": 1}
        _, report = wire.submit_from_wire(payload, P, 2)
        assert report.status is JobStatus.RUNNING
        assert report.counts == Counts(total=2, succeeded=1, failed=0, pending=1)

    @pytest.mark.parametrize(
        "payload", [{}, {"jobIdentifier": ""}, {"jobIdentifier": 7}, []], ids=str
    )
    def test_an_answer_without_job_id_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.submit_from_wire(payload, P, 1)


def _job(status: str, **counts: int) -> dict[str, Any]:
    return {"jobIdentifier": "j1", "status": status, **counts}


class TestReportFromWire:
    @pytest.mark.parametrize(
        ("payload", "status", "counts", "error"),
        [
            (_job("SUBMITTED", total=2, pending=2), JobStatus.QUEUED, Counts(2, 0, 0, 2), None),
            (_job("OPEN", total=1, pending=1), JobStatus.QUEUED, Counts(1, 0, 0, 1), None),
            (
                _job("IN_PROGRESS", total=3, completed=1, failed=1, pending=1),
                JobStatus.RUNNING,
                Counts(3, 1, 1, 1),
                None,
            ),
            (
                _job("COMPLETED", total=2, completed=2, failed=0, pending=0),
                JobStatus.SUCCEEDED,
                Counts(2, 2, 0, 0),
                None,
            ),
            (
                _job("COMPLETED", total=3, completed=2, failed=1, pending=0),
                JobStatus.PARTIALLY_SUCCEEDED,
                Counts(3, 2, 1, 0),
                None,
            ),
            (
                _job("COMPLETED", total=2, completed=0, failed=2, pending=0),
                JobStatus.FAILED,
                Counts(2, 0, 2, 0),
                ErrorInfo("all_items_failed", "Every input of the job failed."),
            ),
            (
                _job("CANCELED", total=3, completed=1, failed=0, pending=2),
                JobStatus.CANCELLED,
                Counts(3, 1, 0, 2),
                None,
            ),
            (
                _job("TIMEDOUT", total=1, pending=1),
                JobStatus.FAILED,
                Counts(1, 0, 0, 1),
                ErrorInfo("upstream_timeout", "The job timed out at the provider."),
            ),
            (
                {**_job("ERROR", total=1, failed=1), "message": "engine crashed"},
                JobStatus.FAILED,
                Counts(1, 0, 1, 0),
                ErrorInfo("upstream_failed", "engine crashed"),
            ),
            (
                _job("ERROR", total=1),
                JobStatus.FAILED,
                Counts(1, 0, 0, 1),
                ErrorInfo("upstream_failed", "The job failed at the provider."),
            ),
            (_job("completed", total=1, completed=1), JobStatus.SUCCEEDED, Counts(1, 1), None),
            (
                _job("REBALANCING", total=2, completed=2, pending=0),
                JobStatus.SUCCEEDED,
                Counts(2, 2, 0, 0),
                None,
            ),
        ],
        ids=[
            "submitted",
            "open",
            "in-progress",
            "completed",
            "completed-some-failed",
            "completed-all-failed",
            "canceled",
            "timedout",
            "error-with-message",
            "error-bare",
            "lowercase-word",
            "unknown-word-is-finished-and-judged-by-its-items",
        ],
    )
    def test_status_mapping(self, payload, status, counts, error):
        report = wire.report_from_wire(payload, P)
        assert report.status is status
        assert report.upstream_status == payload["status"]
        assert report.counts == counts
        assert report.error == error

    def test_pending_is_derived_when_missing(self):
        report = wire.report_from_wire(_job("IN_PROGRESS", total=5, completed=1, failed=1), P)
        assert report.counts == Counts(5, 1, 1, 3)

    def test_counts_fall_back_to_the_submitted_total(self):
        report = wire.report_from_wire(_job("SUBMITTED"), P, total=3)
        assert report.counts == Counts.all_pending(3)

    def test_an_uncounted_completed_job_succeeds_without_counts(self):
        report = wire.report_from_wire(_job("COMPLETED"), P)
        assert report.status is JobStatus.SUCCEEDED
        assert report.counts is None

    @pytest.mark.parametrize(
        "payload", [{"jobIdentifier": "j"}, {"status": ""}, ["COMPLETED"], None], ids=str
    )
    def test_a_job_answer_without_status_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.report_from_wire(payload, P)


class TestParseTime:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2021-07-20T01:40:11.187+0000", datetime(2021, 7, 20, 1, 40, 11, 187000, UTC)),
            ("2021-07-20T01:40:09.560+00:00", datetime(2021, 7, 20, 1, 40, 9, 560000, UTC)),
            ("2021-07-20T01:40:09Z", datetime(2021, 7, 20, 1, 40, 9, tzinfo=UTC)),
            (
                "2021-07-20T03:40:09.5+0200",
                datetime(2021, 7, 20, 3, 40, 9, 500000, timezone(timedelta(hours=2))),
            ),
            ("2021-07-20T01:40:09", datetime(2021, 7, 20, 1, 40, 9, tzinfo=UTC)),
            ("yesterday", None),
            ("", None),
            (None, None),
            (1626745211, None),
        ],
        ids=[
            "plus-0000",
            "plus-00-00",
            "zulu",
            "other-offset",
            "naive-is-utc",
            "garbage",
            "empty",
            "none",
            "number",
        ],
    )
    def test_both_modzy_formats_become_aware_datetimes(self, value, expected):
        parsed = items.parse_time(value)
        assert parsed == expected
        if parsed is not None:
            assert parsed.tzinfo is not None


OUTPUT_WRAPPED = {"data": {"result": {"classPredictions": PREDS}, "explanation": None}}
TIMES = {
    "startTime": "2021-07-20T01:40:11.187+0000",
    "updateTime": "2021-07-20T01:40:12.000+0000",
    "endTime": "2021-07-20T01:40:12.421+00:00",
    "elapsedTime": 1234,
}
SUCCESS = {
    "status": "SUCCESSFUL",
    "engine": "model-batch-1",
    "inputFetching": 12,
    "outputUploading": None,
    "modelLatency": 130,
    "queueTime": 676,
    **TIMES,
    "results.json": OUTPUT_WRAPPED,
    "voting": {"up": 0, "down": 0},
}
FAILURE = {"status": "FAILED", "engine": "e", "error": "Model failed to process input", **TIMES}


class TestItemFromWire:
    @pytest.mark.parametrize(
        ("content", "failure", "status", "output", "error"),
        [
            (
                {"status": "FETCHING_DATA", "startTime": TIMES["startTime"]},
                False,
                ItemStatus.RUNNING,
                None,
                None,
            ),
            ({"status": "PROCESSING", "engine": "e"}, False, ItemStatus.RUNNING, None, None),
            (SUCCESS, False, ItemStatus.SUCCEEDED, CLASSIFIED, None),
            (
                FAILURE,
                True,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", "Model failed to process input"),
            ),
            ({"r1": SUCCESS}, False, ItemStatus.SUCCEEDED, CLASSIFIED, None),
            (
                {"r1": FAILURE},
                True,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", "Model failed to process input"),
            ),
            (
                {"status": "SUCCESSFUL", "r1": {"results.json": OUTPUT_WRAPPED}},
                False,
                ItemStatus.SUCCEEDED,
                CLASSIFIED,
                None,
            ),
            ({"error": "boom"}, True, ItemStatus.FAILED, None, ErrorInfo("item_failed", "boom")),
            (
                {"status": "FAILED", "error": {"message": "no pod"}},
                True,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", "no pod"),
            ),
            (
                {"status": "FAILED"},
                True,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", items.ITEM_FAILED_DEFAULT),
            ),
            ({"results.json": OUTPUT_WRAPPED}, False, ItemStatus.SUCCEEDED, CLASSIFIED, None),
            ({"engine": "e"}, False, ItemStatus.RUNNING, None, None),
            (
                "oops",
                False,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", "The provider answered with no object for this input."),
            ),
        ],
        ids=[
            "fetching-data",
            "processing",
            "successful",
            "failed",
            "nested-quirk-success",
            "nested-quirk-failure",
            "nested-quirk-status-outside",
            "failure-map-without-status",
            "error-object",
            "failed-without-message",
            "no-status-with-output",
            "no-status-no-output",
            "not-an-object",
        ],
    )
    def test_item_mapping(self, content, failure, status, output, error):
        item = items.item_from_wire("r1", content, failure=failure)
        assert item.input == "r1"
        assert item.status is status
        assert item.output == output
        assert item.error == error
        assert item.raw == content

    def test_times_and_elapsed_come_through(self):
        item = items.item_from_wire("r1", SUCCESS)
        assert item.started_at == datetime(2021, 7, 20, 1, 40, 11, 187000, UTC)
        assert item.finished_at == datetime(2021, 7, 20, 1, 40, 12, 421000, UTC)
        assert item.elapsed_ms == 1234

    def test_an_input_named_like_its_output_is_not_unnested(self):
        content = {"status": "SUCCESSFUL", "results.json": OUTPUT_WRAPPED}
        item = items.item_from_wire("results.json", content)
        assert item.output == CLASSIFIED
        assert item.status is ItemStatus.SUCCEEDED

    def test_another_output_key_is_the_output(self):
        item = items.item_from_wire("r1", {"status": "SUCCESSFUL", "results.txt": "hello"})
        assert item.output == JsonOutput(data="hello")

    def test_several_outputs_without_results_json_stay_together(self):
        outputs = {"a.json": {"x": 1}, "results.wav": "https://host/api/results/j/r1/results.wav"}
        item = items.item_from_wire("r1", {"status": "SUCCESSFUL", **outputs})
        assert item.output == JsonOutput(data=outputs)


class TestResultsFromWire:
    def test_results_and_failures_in_input_order(self):
        payload = {
            "jobIdentifier": "j1",
            "finished": False,
            "results": {"r3": {"status": "PROCESSING"}, "r1": SUCCESS},
            "failures": {"r2": FAILURE},
        }
        rs = items.results_from_wire(payload, P, ("r1", "r2", "r3", "r4"))
        assert list(rs.items) == ["r1", "r2", "r3"]
        assert [i.status for i in rs.items.values()] == [
            ItemStatus.SUCCEEDED,
            ItemStatus.FAILED,
            ItemStatus.RUNNING,
        ]

    def test_a_failure_wins_over_a_stale_running_entry(self):
        payload = {"results": {"r1": {"status": "PROCESSING"}}, "failures": {"r1": FAILURE}}
        rs = items.results_from_wire(payload, P, ("r1",))
        assert rs.items["r1"].status is ItemStatus.FAILED

    def test_unknown_item_names_are_dropped(self):
        rs = items.results_from_wire({"results": {"zz": SUCCESS}}, P, ("r1",))
        assert rs.items == {}

    def test_missing_and_null_maps_are_empty(self):
        assert items.results_from_wire({"results": None}, P, ("r1",)).items == {}

    @pytest.mark.parametrize("payload", [[], "x", {"results": []}, {"failures": "none"}], ids=str)
    def test_a_bad_shape_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            items.results_from_wire(payload, P, ("r1",))


MASK_EXPLANATION = {"maskRLE": [[0, 3, 2], [4]], "dimensions": {"height": 3, "width": 3}}
WORDS = {
    "positive": [{"word": "great", "score": 0.5, "index": 0}, {"word": "day", "score": -0.01}],
    "negative": [{"word": "great", "score": -0.5, "index": 0}],
}


class TestNormalizeOutput:
    @pytest.mark.parametrize(
        ("value", "output"),
        [
            (OUTPUT_WRAPPED, CLASSIFIED),
            ({"result": {"classPredictions": PREDS}, "explanation": None}, CLASSIFIED),
            (
                {"modelType": "textClassification", "result": {"classPredictions": PREDS}},
                CLASSIFIED,
            ),
            ({"classPredictions": PREDS}, CLASSIFIED),
            (
                {"data": {"result": {"classPredictions": [{"class": "a", "score": "0.7"}]}}},
                ClassificationOutput(
                    label="a", score=0.7, scores=[LabelScore(label="a", score=0.7)]
                ),
            ),
            (
                {"data": {"result": {"classPredictions": []}}},
                ClassificationOutput(label=None, score=None, scores=[]),
            ),
            (
                {"data": {"result": {"classPredictions": [{"class": "a"}]}}},
                JsonOutput(data={"data": {"result": {"classPredictions": [{"class": "a"}]}}}),
            ),
            (
                {"data": {"result": {"boxes": [1, 2]}}},
                JsonOutput(data={"data": {"result": {"boxes": [1, 2]}}}),
            ),
            ({"summary": "ok"}, JsonOutput(data={"summary": "ok"})),
            (
                "https://host/api/results/j/r1/results.wav",
                JsonOutput(data="https://host/api/results/j/r1/results.wav"),
            ),
            ([1, 2], JsonOutput(data=[1, 2])),
        ],
        ids=[
            "wrapped",
            "unwrapped",
            "explainability-object",
            "bare-class-predictions",
            "string-score",
            "empty-predictions",
            "prediction-without-score",
            "other-result",
            "other-object",
            "url-string",
            "list",
        ],
    )
    def test_classification_normalization(self, value, output):
        got, explanation = normalize_output(value)
        assert got == output
        assert explanation is None

    def test_scores_are_sorted_by_score(self):
        got, _ = normalize_output(OUTPUT_WRAPPED)
        assert isinstance(got, ClassificationOutput)
        assert [s.score for s in got.scores] == [0.93, 0.05, 0.02]

    @pytest.mark.parametrize(
        ("value", "explanation"),
        [
            (
                {
                    "modelType": "imageClassification",
                    "result": {"classPredictions": PREDS},
                    "explanation": MASK_EXPLANATION,
                },
                MaskExplanation(height=3, width=3, counts=[0, 3, 2, 4]),
            ),
            (
                {
                    "data": {
                        "result": {"classPredictions": PREDS},
                        "explanation": {"maskRLE": [1, 8], "dimensions": {"height": 3, "width": 3}},
                    }
                },
                MaskExplanation(height=3, width=3, counts=[1, 8]),
            ),
            (
                {
                    "data": {
                        "result": {"classPredictions": PREDS},
                        "explanation": {"wordImportances": WORDS, "explainableText": "great day"},
                    }
                },
                TokenImportanceExplanation(
                    text="great day",
                    by_label={
                        "positive": [
                            WordScore(word="great", score=0.5, index=0),
                            WordScore(word="day", score=-0.01),
                        ],
                        "negative": [WordScore(word="great", score=-0.5, index=0)],
                    },
                ),
            ),
            (
                {
                    "data": {"result": {"classPredictions": PREDS}},
                    "explanation": {
                        "wordImportances": {"positive": []},
                        "explainableText": {"text": "great"},
                    },
                },
                TokenImportanceExplanation(text="great", by_label={"positive": []}),
            ),
            (
                {
                    "result": {"classPredictions": PREDS},
                    "explanation": {"wordImportances": {"positive": []}},
                },
                TokenImportanceExplanation(text=None, by_label={"positive": []}),
            ),
            (
                {
                    "result": {"classPredictions": PREDS},
                    "explanation": {"maskRLE": [[1, -2]], "dimensions": {"height": 1, "width": 1}},
                },
                None,
            ),
            (
                {
                    "result": {"classPredictions": PREDS},
                    "explanation": {"maskRLE": [1], "dimensions": {"height": "3"}},
                },
                None,
            ),
            (
                {
                    "result": {"classPredictions": PREDS},
                    "explanation": {"wordImportances": {"positive": [{"word": "x"}]}},
                },
                None,
            ),
            ({"result": {"classPredictions": PREDS}, "explanation": {"saliency": [1]}}, None),
        ],
        ids=[
            "mask-list-of-lists",
            "mask-flat-wrapped",
            "words-with-text",
            "words-explanation-outside-data",
            "words-without-text",
            "mask-negative-count",
            "mask-bad-dimensions",
            "words-without-score",
            "unknown-explanation",
        ],
    )
    def test_explanations(self, value, explanation):
        output, got = normalize_output(value)
        assert output == CLASSIFIED
        assert got == explanation
