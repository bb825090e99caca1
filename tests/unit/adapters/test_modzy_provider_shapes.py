"""Modzy's translation fed the real provider's shapes, as the official library shows them.

Each case is one of the differences between the seed docs and modzy-sdk 0.11.6 (issue
14, point 4): result items carrying the platform's fields (``_util.py``), status words
the SDKs have no constant for (``jobs.py`` ``block_until_complete``: all but
SUBMITTED/IN_PROGRESS are finished), and input names from the model version's
metadata (``models.py`` ``get_version``), multi-input models included.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from adapters.base import (
    ErrorInfo,
    InputKind,
    ItemStatus,
    JobInput,
    JobRequest,
    JobStatus,
    ModelRef,
)
from adapters.modzy import inputs, items, wire
from adapters.outputs import ClassificationOutput, JsonOutput
from gateway.errors import ValidationFailed

P = "modzy-test"
ACCESS_KEY = "AzQBJ3h4B1z60xNmhAJF"
PREDS = {"data": {"result": {"classPredictions": [{"class": "positive", "score": 0.9}]}}}


def platform_item(
    status: str = "SUCCESSFUL", error: str | None = None, outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A result item laid out as modzy-sdk 0.11.6 ``_util.py`` ``run_model`` lays it out."""
    return {
        "model": {"identifier": "ed542963de", "version": "1.0.1"},
        "userIdentifier": "user-42",
        "status": status,
        "engine": "model-batch-ed542963de-1-0-1-0000",
        "error": error,
        "startTime": "2021-07-20T01:40:11.187+0000",
        "endTime": "2021-07-20T01:40:12.421+0000",
        "updateTime": "2021-07-20T01:40:12.421+0000",
        "inputSize": 15,
        "accessKey": ACCESS_KEY,
        "teamIdentifier": "team-7",
        "accountIdentifier": "account-9",
        "timeMeters": None,
        "datasourceCompletedTime": "2021-07-20T01:40:11.500+0000",
        "elapsedTime": 1234,
        **(outputs or {}),
    }


class TestPlatformFields:
    def test_a_results_json_item_keeps_only_the_model_output(self):
        item = items.item_from_wire("r1", platform_item(outputs={"results.json": PREDS}))
        assert item.status is ItemStatus.SUCCEEDED
        assert isinstance(item.output, ClassificationOutput)
        assert item.output.label == "positive"

    def test_another_output_name_is_the_output_without_the_platform_fields(self):
        """The bug: for a model whose output is not results.json, they became the output."""
        item = items.item_from_wire("r1", platform_item(outputs={"results.txt": "bonjour"}))
        assert item.output == JsonOutput(data="bonjour")

    def test_several_outputs_stay_together_without_the_platform_fields(self):
        outputs = {"a.json": {"x": 1}, "b.json": {"y": 2}}
        item = items.item_from_wire("r1", platform_item(outputs=outputs))
        assert item.output == JsonOutput(data=outputs)

    def test_a_null_error_is_no_failure_even_without_a_known_status(self):
        item = items.item_from_wire("r1", platform_item("DONE", outputs={"results.json": PREDS}))
        assert item.status is ItemStatus.SUCCEEDED

    def test_a_failed_item_carries_its_error(self):
        content = platform_item("FAILED", error="Model failed to process input: bad key")
        item = items.item_from_wire("r1", content, failure=True)
        assert item.status is ItemStatus.FAILED
        assert item.error == ErrorInfo("item_failed", "Model failed to process input: bad key")

    @pytest.mark.parametrize("nested", [False, True], ids=["flat", "legacy-nesting"])
    def test_the_raw_item_never_carries_the_access_key_or_the_account(self, nested):
        content = platform_item(outputs={"results.json": PREDS})
        item = items.item_from_wire("r1", {"r1": content} if nested else content)
        shown = json.dumps(item.raw)
        for secret in (ACCESS_KEY, "user-42", "team-7", "account-9"):
            assert secret not in shown
        raw = item.raw["r1"] if nested else item.raw
        assert raw["results.json"] == PREDS and raw["inputSize"] == 15
        assert not items.IDENTITY_FIELDS & set(raw)

    def test_a_whole_results_answer_keeps_no_access_key(self):
        payload = {
            "jobIdentifier": "j1",
            "finished": True,
            "submittedByKey": ACCESS_KEY,
            "results": {"r1": platform_item(outputs={"results.json": PREDS})},
            "failures": {"r2": platform_item("FAILED", error="boom")},
        }
        rs = items.results_from_wire(payload, P, ("r1", "r2"))
        assert ACCESS_KEY not in repr(rs)


def _job(status: str, **counts: int) -> dict[str, Any]:
    return {"jobIdentifier": "j1", "status": status, **counts}


class TestStatusWordsTheSdksDoNotName:
    @pytest.mark.parametrize(
        ("payload", "status", "error"),
        [
            (
                _job("COMPLETED_WITH_ERROR", total=3, completed=2, failed=1, pending=0),
                JobStatus.PARTIALLY_SUCCEEDED,
                None,
            ),
            (
                _job("COMPLETED_WITH_ERROR", total=2, completed=0, failed=2, pending=0),
                JobStatus.FAILED,
                ErrorInfo("all_items_failed", "Every input of the job failed."),
            ),
            (
                _job("COMPLETED_WITH_ERROR"),
                JobStatus.FAILED,
                ErrorInfo(
                    "upstream_failed", "The job ended at the provider as COMPLETED_WITH_ERROR."
                ),
            ),
            (_job("PENDING", total=2, completed=2, pending=0), JobStatus.SUCCEEDED, None),
            (
                _job("PENDING", total=1, pending=1),
                JobStatus.FAILED,
                ErrorInfo(
                    "upstream_failed",
                    "The job ended at the provider as PENDING with no input done.",
                ),
            ),
            (_job("ARCHIVED"), JobStatus.SUCCEEDED, None),
        ],
        ids=[
            "with-error-partly",
            "with-error-all-failed",
            "with-error-uncounted",
            "pending-counted-done",
            "pending-nothing-done",
            "unknown-uncounted",
        ],
    )
    def test_every_word_but_submitted_and_in_progress_is_finished(self, payload, status, error):
        report = wire.report_from_wire(payload, P)
        assert report.status.done
        assert (report.status, report.error) == (status, error)
        assert report.upstream_status == payload["status"]

    @pytest.mark.parametrize("word", ["SUBMITTED", "IN_PROGRESS", "OPEN"])
    def test_the_words_of_a_job_on_its_way_are_not_finished(self, word):
        assert not wire.report_from_wire(_job(word, total=1, pending=1), P).status.done


def text(name: str, value: str = "nice", **fields: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.TEXT, text=value, fields=fields)


def data(name: str, value: bytes = b"\x89PNG", **fields: Any) -> JobInput:
    return JobInput(
        name=name, kind=InputKind.DATA, data=value, content_type="image/png", fields=fields
    )


def body(*items_: JobInput, model_inputs=None, **options: Any) -> dict[str, Any]:
    req = JobRequest(model=ModelRef("modzy", "m1", "1.0.0"), inputs=items_)
    return wire.submit_body(req, wire.ModzyOptions(**options), model_inputs)


def refused(*items_: JobInput, model_inputs=None, **options: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        body(*items_, model_inputs=model_inputs, **options)
    return info.value


VERSION = {
    "version": "1.0.0",
    "inputs": [
        {"name": "input", "acceptedMediaTypes": "text/plain", "maximumSize": 1000000},
        {"name": "config.json", "acceptedMediaTypes": "application/json"},
    ],
    "outputs": [{"name": "results.json", "mediaType": "application/json"}],
}


class TestInputNamesFromMetadata:
    def test_the_names_are_read_from_the_version_details(self):
        assert inputs.input_names_from_wire(VERSION) == ("input", "config.json")

    @pytest.mark.parametrize(
        "payload",
        [{}, {"inputs": []}, {"inputs": "input"}, {"inputs": [{"name": ""}, 7]}, None],
        ids=["no-inputs", "empty", "not-a-list", "no-usable-name", "not-an-object"],
    )
    def test_a_version_without_usable_names_declares_none(self, payload):
        assert inputs.input_names_from_wire(payload) is None

    def test_a_single_input_model_gets_its_own_name_not_a_guess(self):
        sent = body(text("r1", "hi"), model_inputs=("document",))
        assert sent["input"]["sources"] == {"r1": {"document": "hi"}}

    def test_an_image_model_named_otherwise_than_image(self):
        sent = body(data("p1", b"x"), model_inputs=("input",))
        assert sent["input"]["sources"] == {"p1": {"input": "data:image/png;base64,eA=="}}

    def test_without_metadata_the_old_defaults_are_guessed(self):
        assert body(text("r1"))["input"]["sources"] == {"r1": {"input.txt": "nice"}}
        assert set(body(data("p1"))["input"]["sources"]["p1"]) == {"image"}

    def test_an_input_name_option_the_model_lacks_is_refused(self):
        err = refused(text("r1"), model_inputs=("input.txt",), input_name="text")
        assert [e.pointer for e in err.errors] == ["/options/provider/input_name"]
        assert "'input.txt'" in err.detail

    def test_an_input_name_option_the_model_has_is_used(self):
        sent = body(text("r1", config="{}"), model_inputs=("a", "config"), input_name="a")
        assert sent["input"]["sources"] == {"r1": {"a": "nice", "config": "{}"}}


NULL_CONFIG: dict[str, Any] = {"config.json": None}


class TestMultiInputModels:
    def test_fields_give_the_other_inputs_and_json_values_go_as_json_text(self):
        sent = body(
            text("r1", "goal!", **{"config.json": {"labels": ["sports", "politics"]}}),
            text("r2", "vote", **{"config.json": '{"labels": ["politics"]}'}),
            model_inputs=("input", "config.json"),
        )
        assert sent["input"]["sources"] == {
            "r1": {"input": "goal!", "config.json": '{"labels":["sports","politics"]}'},
            "r2": {"input": "vote", "config.json": '{"labels": ["politics"]}'},
        }

    def test_in_a_data_job_fields_are_data_uris_too(self):
        sent = body(
            data("p1", b"x", mode="fast", params={"k": 1}), model_inputs=("image", "mode", "params")
        )
        source = sent["input"]["sources"]["p1"]
        assert source["mode"] == "data:text/plain;base64," + base64.b64encode(b"fast").decode()
        assert (
            source["params"]
            == "data:application/json;base64," + base64.b64encode(b'{"k":1}').decode()
        )

    def test_a_missing_model_input_is_refused_before_anything_is_sent(self):
        err = refused(text("r1"), model_inputs=("input", "config.json"))
        assert [e.pointer for e in err.errors] == ["/inputs/0/fields"]
        assert "'input', 'config.json'" in err.detail

    def test_a_field_the_model_lacks_is_refused_at_its_pointer(self):
        err = refused(text("r1", **{"conf.json": "{}"}), model_inputs=("input", "config.json"))
        assert [e.pointer for e in err.errors] == ["/inputs/0/fields/conf.json"]

    def test_fields_that_leave_no_input_for_the_value_are_refused(self):
        err = refused(
            text("r1", input="x", **{"config.json": "{}"}), model_inputs=("input", "config.json")
        )
        assert [e.pointer for e in err.errors] == ["/inputs/0/fields"]
        assert "leaving none" in err.detail

    def test_every_bad_input_is_named(self):
        err = refused(
            text("ok", **{"config.json": "{}"}),
            text("bad-1"),
            text("bad-2", **NULL_CONFIG),
            model_inputs=("input", "config.json"),
        )
        assert [e.pointer for e in err.errors] == [
            "/inputs/1/fields",
            "/inputs/2/fields/config.json",
        ]
