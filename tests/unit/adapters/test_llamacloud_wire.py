"""LlamaCloud wire translation: named table cases, no network."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import (
    Counts,
    ErrorInfo,
    ItemResult,
    ItemStatus,
    JobStatus,
    StatusReport,
)
from adapters.errors import ProviderBadResponse
from adapters.llamacloud import wire
from adapters.outputs import ClassificationOutput, LabelScore

RULES = [{"type": "invoice", "description": "has an invoice number"}]


class TestAuthAndParams:
    def test_bearer_header(self):
        assert wire.auth_headers("llx-abc") == {"Authorization": "Bearer llx-abc"}

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({}, {}),
            ({"project_id": "p1"}, {"project_id": "p1"}),
            (
                {"project_id": "p1", "organization_id": "o1"},
                {"project_id": "p1", "organization_id": "o1"},
            ),
            ({"organization_id": "o1"}, {"organization_id": "o1"}),
        ],
        ids=["none", "project", "project-and-org", "org-only"],
    )
    def test_query_params(self, extra, expected):
        options = wire.LlamaCloudOptions.model_validate({"rules": RULES, **extra})
        assert wire.query_params(options) == expected

    @pytest.mark.parametrize(
        ("ref", "ok"),
        [
            ("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e", True),
            ("dfl-abc_123", True),
            ("dfl-", False),
            ("3240", False),
            ("../etc/passwd", False),
            ("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e/results", False),
        ],
        ids=["uuid", "dfl", "dfl-empty", "number", "path", "uuid-with-suffix"],
    )
    def test_is_file_id(self, ref, ok):
        assert wire.is_file_id(ref) is ok


class TestCreateBody:
    @pytest.mark.parametrize(
        ("options", "file_ids", "expected"),
        [
            (
                {"rules": RULES},
                ["a", "b"],
                {"file_ids": ["a", "b"], "rules": RULES, "mode": "FAST"},
            ),
            (
                {"rules": RULES, "mode": "MULTIMODAL", "parsing_configuration": {"max_pages": 2}},
                ["a"],
                {
                    "file_ids": ["a"],
                    "rules": RULES,
                    "mode": "MULTIMODAL",
                    "parsing_configuration": {"lang": "en", "max_pages": 2},
                },
            ),
            (
                {"rules": RULES, "project_id": "p"},
                ["a", "b", "a"],
                {"file_ids": ["a", "b"], "rules": RULES, "mode": "FAST"},
            ),
            (
                {"rules": RULES, "parsing_configuration": {"lang": "de", "target_pages": [0, 2]}},
                ["a"],
                {
                    "file_ids": ["a"],
                    "rules": RULES,
                    "mode": "FAST",
                    "parsing_configuration": {"lang": "de", "target_pages": [0, 2]},
                },
            ),
        ],
        ids=["defaults", "multimodal-parsing", "dedupe-and-no-project-in-body", "target-pages"],
    )
    def test_body(self, options, file_ids, expected):
        parsed = wire.LlamaCloudOptions.model_validate(options)
        assert wire.create_job_body(file_ids, parsed) == expected


class TestReport:
    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({"status": "PENDING"}, StatusReport(JobStatus.RUNNING, "PENDING")),
            ({"status": "SUCCESS"}, StatusReport(JobStatus.SUCCEEDED, "SUCCESS")),
            (
                {"status": "PARTIAL_SUCCESS"},
                StatusReport(JobStatus.PARTIALLY_SUCCEEDED, "PARTIAL_SUCCESS"),
            ),
            (
                {"status": "ERROR", "error_message": "parse failed"},
                StatusReport(
                    JobStatus.FAILED, "ERROR", error=ErrorInfo("upstream_failed", "parse failed")
                ),
            ),
            (
                {"status": "ERROR", "error_message": None},
                StatusReport(
                    JobStatus.FAILED,
                    "ERROR",
                    error=ErrorInfo("upstream_failed", "The provider reported the job as failed."),
                ),
            ),
            ({"status": "CANCELLED"}, StatusReport(JobStatus.CANCELLED, "CANCELLED")),
            ({"status": "THINKING"}, StatusReport(JobStatus.RUNNING, "THINKING")),
        ],
        ids=["pending", "success", "partial", "error", "error-no-message", "cancelled", "unknown"],
    )
    def test_report(self, payload, expected):
        assert wire.report_from_wire({"id": "j", **payload}) == expected

    @pytest.mark.parametrize(
        "payload",
        [[], {"id": "j"}, {"status": 3}, {"status": ""}],
        ids=["not-object", "no-status", "status-not-string", "status-empty"],
    )
    def test_bad_job(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.report_from_wire(payload, provider="lc")

    @pytest.mark.parametrize(
        "payload", [None, {"id": ""}, {"id": 4}], ids=["none", "empty", "number"]
    )
    def test_missing_id(self, payload):
        with pytest.raises(ProviderBadResponse, match="has no id"):
            wire.id_from_wire(payload, "job")


class TestResultsPage:
    @pytest.mark.parametrize(
        ("payload", "count", "token"),
        [
            ({"items": [{"id": "1"}], "next_page_token": "t2"}, 1, "t2"),
            ({"items": [{"id": "1"}], "next_page_token": None}, 1, None),
            ({"items": [{"id": "1"}]}, 1, None),
            ({"items": [], "next_page_token": ""}, 0, None),
            ({"items": [{"id": "1"}, "junk"], "total_size": 2}, 1, None),
        ],
        ids=["more", "null-token", "missing-token", "empty-token", "skips-non-objects"],
    )
    def test_page(self, payload, count, token):
        items, next_token = wire.results_page_from_wire(payload)
        assert (len(items), next_token) == (count, token)

    @pytest.mark.parametrize("payload", [[], {"items": {}}], ids=["list", "items-not-list"])
    def test_bad_page(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.results_page_from_wire(payload)


def _raw(result: dict[str, Any] | None, file_id: str = "f1") -> dict[str, Any]:
    return {
        "id": "r1",
        "classify_job_id": "j",
        "file_id": file_id,
        "created_at": "2019-12-27T18:11:19.117Z",
        "updated_at": "2019-12-27T18:11:20.117Z",
        "result": result,
    }


class TestItems:
    @pytest.mark.parametrize(
        ("result", "status", "output", "error"),
        [
            (
                {"type": "invoice", "confidence": 0.93, "reasoning": "has a total"},
                ItemStatus.SUCCEEDED,
                ClassificationOutput(
                    label="invoice",
                    score=0.93,
                    scores=[LabelScore(label="invoice", score=0.93)],
                    reasoning="has a total",
                ),
                None,
            ),
            (
                {"type": None, "confidence": 0.1, "reasoning": "nothing matched"},
                ItemStatus.SUCCEEDED,
                ClassificationOutput(label=None, score=0.1, reasoning="nothing matched"),
                None,
            ),
            (
                {"type": "invoice", "confidence": 0, "reasoning": "r"},
                ItemStatus.SUCCEEDED,
                ClassificationOutput(
                    label="invoice",
                    score=0.0,
                    scores=[LabelScore(label="invoice", score=0.0)],
                    reasoning="r",
                ),
                None,
            ),
            (
                {"type": "invoice"},
                ItemStatus.SUCCEEDED,
                ClassificationOutput(label="invoice", score=None),
                None,
            ),
            (
                None,
                ItemStatus.FAILED,
                None,
                ErrorInfo("item_failed", "the provider returned no classification for this file"),
            ),
        ],
        ids=["label", "no-match-null-type", "zero-confidence", "no-confidence", "null-result"],
    )
    def test_item(self, result, status, output, error):
        raw = _raw(result)
        item = wire.item_from_wire("doc", raw)
        assert (item.input, item.status, item.output, item.error) == ("doc", status, output, error)
        assert item.raw is raw
        assert item.finished_at is not None
        assert item.finished_at.isoformat() == "2019-12-27T18:11:20.117000+00:00"

    def test_items_map_file_ids_to_every_input_and_skip_strangers(self):
        file_ids = {"a": "f1", "b": "f2", "a-again": "f1"}
        raws = [
            _raw({"type": "x", "confidence": 1.0, "reasoning": ""}, "f1"),
            _raw(None, "f2"),
            _raw(None, "f-unknown"),
            {"id": "no-file"},
        ]
        items = wire.items_from_wire(raws, file_ids)
        assert sorted(items) == ["a", "a-again", "b"]
        assert items["a"].status is ItemStatus.SUCCEEDED
        assert items["a-again"].input == "a-again"
        assert items["b"].status is ItemStatus.FAILED

    @pytest.mark.parametrize(
        ("report", "expected"),
        [
            (
                StatusReport(JobStatus.FAILED, "ERROR", error=ErrorInfo("upstream_failed", "boom")),
                ItemResult(
                    input="b", status=ItemStatus.FAILED, error=ErrorInfo("item_failed", "boom")
                ),
            ),
            (
                StatusReport(JobStatus.CANCELLED, "CANCELLED"),
                ItemResult(input="b", status=ItemStatus.CANCELLED),
            ),
            (StatusReport(JobStatus.SUCCEEDED, "SUCCESS"), None),
        ],
        ids=["error-fills-failed", "cancelled-fills-cancelled", "success-leaves-gaps"],
    )
    def test_finish_missing(self, report, expected):
        have = {"a": ItemResult(input="a", status=ItemStatus.SUCCEEDED)}
        out = wire.finish_missing(have, ("a", "b"), report)
        assert out["a"] is have["a"]
        assert out.get("b") == expected

    def test_counts_treat_missing_as_failed(self):
        items = {
            "a": ItemResult(input="a", status=ItemStatus.SUCCEEDED),
            "b": ItemResult(input="b", status=ItemStatus.FAILED),
        }
        assert wire.counts_from_items(items, 3) == Counts(total=3, succeeded=1, failed=2)
