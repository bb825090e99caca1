"""Vody's wire translation: request building, status and results parsing (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemResult,
    ItemStatus,
    JobInput,
    JobStatus,
    ModelRef,
    ResultSet,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import ClassificationOutput, JsonOutput, LabelScore
from adapters.vody import wire
from gateway.errors import ValidationFailed


def url_input(name: str, url: str, **fields: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.URL, url=url, fields=fields)


class TestAuthAndPaths:
    def test_auth_headers_carry_the_key_and_ask_for_json(self):
        assert wire.auth_headers("k-1") == {"x-vody-api-key": "k-1", "Accept": "application/json"}

    @pytest.mark.parametrize(
        ("fn", "arg", "expected"),
        [
            (wire.submit_path, "color-classification", "/inference/color-classification"),
            (wire.status_path, "abc-123", "/inference/abc-123/status"),
            (wire.results_path, "abc-123", "/inference/abc-123/results"),
            (wire.status_path, "a/b?c", "/inference/a%2Fb%3Fc/status"),
        ],
        ids=["submit", "status", "results", "id-escaped"],
    )
    def test_paths(self, fn, arg, expected):
        assert fn(arg) == expected


class TestCheckModel:
    @pytest.mark.parametrize(
        "model_id", ["color-classification", "pattern-classification"], ids=["color", "pattern"]
    )
    def test_known_models_pass(self, model_id):
        wire.check_model(ModelRef("vody", model_id))

    @pytest.mark.parametrize(
        ("model", "words"),
        [
            (ModelRef("vody", "size-classification"), "no model"),
            (ModelRef("vody", "color-classification", "1.0"), "no versions"),
        ],
        ids=["unknown-model", "versioned"],
    )
    def test_refusals_name_the_model_pointer(self, model, words):
        with pytest.raises(ValidationFailed) as info:
            wire.check_model(model)
        assert [e.pointer for e in info.value.errors] == ["/model"]
        assert words in info.value.detail


class TestToWire:
    @pytest.mark.parametrize(
        ("model_id", "inputs", "options", "expected"),
        [
            (
                "color-classification",
                [url_input("a", "https://x/0.png", product_type="Shoes")],
                wire.VodyOptions(),
                [{"image_path": "https://x/0.png", "product_type": "Shoes"}],
            ),
            (
                "color-classification",
                [
                    url_input(
                        "a",
                        "https://x/0.png",
                        product_type="Shoes",
                        hex_color_label="#FE2934",
                        category="Fashion",
                    )
                ],
                wire.VodyOptions(),
                [
                    {
                        "image_path": "https://x/0.png",
                        "product_type": "Shoes",
                        "hex_color_label": "#FE2934",
                        "category": "Fashion",
                    }
                ],
            ),
            (
                "pattern-classification",
                [
                    url_input("a", "https://x/0.png"),
                    url_input("b", "https://x/1.png", category="B"),
                ],
                wire.VodyOptions(product_type="Shirts", category="Fashion"),
                [
                    {
                        "image_path": "https://x/0.png",
                        "product_type": "Shirts",
                        "category": "Fashion",
                    },
                    {"image_path": "https://x/1.png", "product_type": "Shirts", "category": "B"},
                ],
            ),
        ],
        ids=["fields-only", "color-extras", "options-as-defaults-fields-win"],
    )
    def test_builds_an_array_of_items(self, model_id, inputs, options, expected):
        assert wire.to_wire(model_id, inputs, options) == expected

    @pytest.mark.parametrize(
        ("model_id", "inputs", "pointers"),
        [
            (
                "color-classification",
                [
                    url_input("a", "https://x/0.png", product_type="S"),
                    url_input("b", "https://x/1"),
                ],
                ["/inputs/1/fields/product_type"],
            ),
            (
                "pattern-classification",
                [url_input("a", "https://x/0.png", product_type="S", hex_color_label="#000000")],
                ["/inputs/0/fields/hex_color_label"],
            ),
            (
                "color-classification",
                [url_input("a", "https://x/0.png", product_type="S", colour="red")],
                ["/inputs/0/fields/colour"],
            ),
            (
                "color-classification",
                [url_input("a", "https://x/0.png", product_type=7)],
                ["/inputs/0/fields/product_type"],
            ),
        ],
        ids=["missing-product-type", "hex-on-pattern", "unknown-field", "non-string"],
    )
    def test_bad_fields_name_their_pointer(self, model_id, inputs, pointers):
        with pytest.raises(ValidationFailed) as info:
            wire.to_wire(model_id, inputs, wire.VodyOptions())
        assert [e.pointer for e in info.value.errors] == pointers


class TestSubmitFromWire:
    @pytest.mark.parametrize(
        ("payload", "expected_id"),
        [
            ({"id": "u-1", "status": "in_progress", "request_item_count": "2"}, "u-1"),
            ({"inference_id": "u-2"}, "u-2"),
            ({"inference-id": "u-3", "status": "in_progress"}, "u-3"),
            ({"id": 42}, "42"),
        ],
        ids=["id", "inference_id", "inference-dash-id", "numeric-id"],
    )
    def test_reads_the_inference_id(self, payload, expected_id):
        upstream_id, report = wire.submit_from_wire(payload, "vody", 2)
        assert upstream_id == expected_id
        assert report.status is JobStatus.RUNNING
        assert report.upstream_status == "in_progress"
        assert report.counts == Counts.all_pending(2)

    @pytest.mark.parametrize(
        "payload",
        [{"status": "in_progress"}, [], {"id": ""}, {"id": True}, None],
        ids=["no-id", "array", "empty-id", "bool-id", "null"],
    )
    def test_an_answer_without_id_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.submit_from_wire(payload, "vody", 1)


def _status(word: str, **extra: Any) -> dict[str, Any]:
    return {"id": "u-1", "status": word, "model": "color-classification", **extra}


def _results(*statuses: ItemStatus) -> ResultSet:
    return ResultSet(
        items={f"i{n}": ItemResult(input=f"i{n}", status=s) for n, s in enumerate(statuses)}
    )


class TestReportFromWire:
    @pytest.mark.parametrize(
        ("payload", "results", "status", "counts"),
        [
            (
                _status("in_progress", request_item_count="3", response_item_count="0"),
                None,
                JobStatus.RUNNING,
                Counts(total=3, pending=3),
            ),
            (
                _status("completed", request_item_count="2", response_item_count="2"),
                None,
                JobStatus.SUCCEEDED,
                Counts(total=2, succeeded=2),
            ),
            (
                _status("completed", request_item_count=3, response_item_count=2),
                None,
                JobStatus.PARTIALLY_SUCCEEDED,
                Counts(total=3, succeeded=2, failed=1),
            ),
            (
                _status("completed", request_item_count="2", response_item_count="2"),
                _results(ItemStatus.SUCCEEDED, ItemStatus.FAILED),
                JobStatus.PARTIALLY_SUCCEEDED,
                Counts(total=2, succeeded=1, failed=1),
            ),
            (
                _status("completed", request_item_count="2.0"),
                _results(ItemStatus.FAILED, ItemStatus.FAILED),
                JobStatus.FAILED,
                Counts(total=2, failed=2),
            ),
            (
                _status("COMPLETED"),
                None,
                JobStatus.SUCCEEDED,
                Counts(total=4, succeeded=4),
            ),
            (
                _status("warming_up", request_item_count="bogus"),
                None,
                JobStatus.RUNNING,
                Counts(total=4, pending=4),
            ),
        ],
        ids=[
            "in-progress",
            "completed-strings",
            "completed-numbers-one-missing",
            "completed-from-items",
            "completed-all-items-failed",
            "upper-case-no-counts",
            "unknown-word-keeps-polling",
        ],
    )
    def test_maps_status_and_counts(self, payload, results, status, counts):
        report = wire.report_from_wire(payload, "vody", total=4, results=results)
        assert report.status is status
        assert report.counts == counts
        assert report.upstream_status == payload["status"]
        assert (report.error is not None) == (status is JobStatus.FAILED)

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (_status("failed", error="bad batch", request_item_count="2"), "bad batch"),
            (_status("failed", message="quota"), "quota"),
            (_status("failed", response_code="500"), "The inference failed (response code 500)."),
            (_status("failed"), "The inference failed."),
        ],
        ids=["error", "message", "response-code", "nothing"],
    )
    def test_failed_carries_the_providers_words(self, payload, message):
        report = wire.report_from_wire(payload, "vody", total=2)
        assert report.status is JobStatus.FAILED
        assert report.error == ErrorInfo("upstream_failed", message)
        assert report.counts == Counts(total=2, failed=2)

    @pytest.mark.parametrize(
        "payload", [{"id": "x"}, {"status": 3}, [], "completed"], ids=["none", "int", "list", "str"]
    )
    def test_a_status_answer_without_status_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.report_from_wire(payload, "vody", total=1)


COLOR_ITEM = {
    "image_path": "https://x/0.png",
    "product_type": "Shoes",
    "predicted_hex_color": "#FE2934",
    "color_name": "Red",
    "confidence": "0.87",
    "colors": [
        {"hex": "#FE2934", "name": "Red", "confidence": 0.87},
        {"hex": "#000000", "name": "Black", "confidence": "0.1"},
    ],
}
PATTERN_ITEM = {
    "image_path": "https://x/1.png",
    "product_type": "Shirts",
    "pattern": "striped",
    "confidence": 0.7,
    "patterns": [
        {"pattern": "striped", "confidence": 0.7},
        {"pattern": "plaid", "confidence": 0.2},
    ],
}


class TestItemFromWire:
    @pytest.mark.parametrize(
        ("item", "output"),
        [
            (
                COLOR_ITEM,
                ClassificationOutput(
                    label="Red",
                    score=0.87,
                    scores=[
                        LabelScore(label="Red", score=0.87),
                        LabelScore(label="Black", score=0.1),
                    ],
                ),
            ),
            (
                PATTERN_ITEM,
                ClassificationOutput(
                    label="striped",
                    score=0.7,
                    scores=[
                        LabelScore(label="striped", score=0.7),
                        LabelScore(label="plaid", score=0.2),
                    ],
                ),
            ),
            (
                {"image_path": "p", "predicted_hex_color": "#000000", "confidence": "87%"},
                ClassificationOutput(label="#000000", score=0.87),
            ),
            (
                {"colors": [{"hex": "#FFFFFF", "confidence": "0.6"}, {"name": "x"}]},
                ClassificationOutput(
                    label="#FFFFFF", score=0.6, scores=[LabelScore(label="#FFFFFF", score=0.6)]
                ),
            ),
            (
                {"image_path": "p", "tags": ["a"]},
                JsonOutput(data={"image_path": "p", "tags": ["a"]}),
            ),
        ],
        ids=["color", "pattern", "hex-only-percent", "scores-only", "unknown-shape"],
    )
    def test_succeeded_items(self, item, output):
        result = wire.item_from_wire("in", item)
        assert result.status is ItemStatus.SUCCEEDED
        assert result.output == output
        assert result.raw == item

    @pytest.mark.parametrize(
        ("item", "message"),
        [
            ({"image_path": "p", "error": "could not fetch image"}, "could not fetch image"),
            ({"image_path": "p", "error": {"code": 3}}, "{'code': 3}"),
            ("garbage", "The provider answered with no object for this input."),
        ],
        ids=["error-string", "error-object", "not-an-object"],
    )
    def test_failed_items(self, item, message):
        result = wire.item_from_wire("in", item)
        assert result.status is ItemStatus.FAILED
        assert result.error == ErrorInfo("item_failed", message)
        assert result.output is None


class TestResultsFromWire:
    def test_maps_items_by_position(self):
        payload = [COLOR_ITEM, {"image_path": "https://x/9.png", "error": "could not fetch image"}]
        rs = wire.results_from_wire(payload, "vody", ["a", "b"])
        assert list(rs.items) == ["a", "b"]
        assert rs.items["a"].status is ItemStatus.SUCCEEDED
        assert rs.items["b"].status is ItemStatus.FAILED

    def test_echoed_image_path_overrides_position(self):
        """A provider that answers out of order is mapped by the echoed image_path."""
        payload = [PATTERN_ITEM, COLOR_ITEM]
        rs = wire.results_from_wire(
            payload, "vody", ["zero", "one"], ["https://x/0.png", "https://x/1.png"]
        )
        zero, one = rs.items["zero"].output, rs.items["one"].output
        assert isinstance(zero, ClassificationOutput)
        assert isinstance(one, ClassificationOutput)
        assert (zero.label, one.label) == ("Red", "striped")
        assert list(rs.items) == ["zero", "one"]

    def test_duplicate_image_paths_keep_their_positions(self):
        payload = [COLOR_ITEM, {**COLOR_ITEM, "error": "could not fetch image"}]
        paths = ["https://x/0.png", "https://x/0.png"]
        rs = wire.results_from_wire(payload, "vody", ["a", "b"], paths)
        assert rs.items["a"].status is ItemStatus.SUCCEEDED
        assert rs.items["b"].status is ItemStatus.FAILED

    @pytest.mark.parametrize(
        ("finished", "statuses"),
        [
            (True, {"a": ItemStatus.SUCCEEDED, "b": ItemStatus.FAILED}),
            (False, {"a": ItemStatus.SUCCEEDED}),
        ],
        ids=["finished-missing-fails", "unfinished-missing-absent"],
    )
    def test_missing_items(self, finished, statuses):
        rs = wire.results_from_wire([COLOR_ITEM], "vody", ["a", "b"], finished=finished)
        assert {n: r.status for n, r in rs.items.items()} == statuses

    @pytest.mark.parametrize(
        ("payload", "count"),
        [(None, 0), ({}, 0), ([], 0), ({"results": [COLOR_ITEM]}, 1)],
        ids=["null", "empty-object", "empty-array", "wrapped"],
    )
    def test_lenient_containers(self, payload, count):
        rs = wire.results_from_wire(payload, "vody", ["a"], finished=False)
        assert len(rs.items) == count

    @pytest.mark.parametrize("payload", ["text", 5, {"x": 1}], ids=["string", "number", "object"])
    def test_a_shape_that_cannot_be_split_is_kept_whole_not_a_502(self, payload):
        rs = wire.results_from_wire(payload, "vody", ["a", "b"])
        assert len(rs.job_outputs) == 1
        assert {r.status for r in rs.items.values()} == {ItemStatus.FAILED}

    def test_failed_results_mark_every_input(self):
        rs = wire.failed_results(["a", "b"], "boom")
        assert [r.error for r in rs.items.values()] == [ErrorInfo("item_failed", "boom")] * 2
