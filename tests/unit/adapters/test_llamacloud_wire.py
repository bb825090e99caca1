"""LlamaCloud wire translation (v2 classify): named table cases, no network."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import Counts, ErrorInfo, InputKind, ItemStatus, JobInput, JobStatus
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
            ("dfl-abc_123", True),
            ("pjb-7f3a", True),
            ("dfl-", False),
            ("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e", False),
            ("3240", False),
            ("../etc/passwd", False),
            ("dfl-abc/cancel", False),
        ],
        ids=["file", "parse-job", "dfl-empty", "v1-uuid", "number", "path", "with-suffix"],
    )
    def test_is_file_input(self, ref, ok):
        assert wire.is_file_input(ref) is ok


class TestOptions:
    @pytest.mark.parametrize(
        "options",
        [
            {"rules": RULES, "mode": "MULTIMODAL"},
            {"rules": RULES, "parsing_configuration": {"target_pages": [0, 1]}},
            {"rules": RULES, "parsing_configuration": {"target_pages": "1,,3"}},
            {"rules": RULES, "parsing_configuration": {"max_pages": 0}},
            {"rules": []},
        ],
        ids=["v1-mode", "v1-page-list", "bad-page-string", "zero-pages", "no-rules"],
    )
    def test_refused(self, options):
        with pytest.raises(ValidationError):
            wire.LlamaCloudOptions.model_validate(options)

    def test_page_ranges_as_v2_takes_them(self):
        parsed = wire.LlamaCloudOptions.model_validate(
            {"rules": RULES, "parsing_configuration": {"target_pages": "1, 3-5", "lang": "de"}}
        )
        assert parsed.parsing_configuration is not None
        assert parsed.parsing_configuration.target_pages == "1, 3-5"


class TestRequests:
    def test_create_body(self):
        options = wire.LlamaCloudOptions.model_validate(
            {"rules": RULES, "parsing_configuration": {"max_pages": 2}}
        )
        assert wire.create_body("dfl-1", options, "key-0") == {
            "file_input": "dfl-1",
            "configuration": {
                "rules": RULES,
                "mode": "FAST",
                "parsing_configuration": {"max_pages": 2},
            },
            "transaction_id": "key-0",
        }

    def test_create_body_without_parsing(self):
        options = wire.LlamaCloudOptions.model_validate({"rules": RULES})
        body = wire.create_body("pjb-1", options, "k-3")
        assert "parsing_configuration" not in body["configuration"]

    def test_transaction_ids_differ_per_input_and_repeat_per_submit(self):
        assert wire.transaction_id("abc", 0) == wire.transaction_id("abc", 0)
        assert wire.transaction_id("abc", 0) != wire.transaction_id("abc", 1)

    def test_list_params_repeat_job_ids(self):
        assert wire.list_params(["a", "b"], {"project_id": "p"}, "t1", 50) == [
            ("job_ids", "a"),
            ("job_ids", "b"),
            ("page_size", "50"),
            ("project_id", "p"),
            ("page_token", "t1"),
        ]

    def test_upload_form_names_the_file_and_purpose(self):
        item = JobInput(name="a.txt", kind=InputKind.DATA, data=b"x", content_type="text/plain")
        form = wire.upload_form(item)
        names = [field[0]["name"] for field in form._fields]
        assert names == ["file", "purpose"]
        assert form._fields[1][2] == "classify"


class TestAnswers:
    @pytest.mark.parametrize(
        "payload",
        [None, [], {}, {"id": ""}, {"id": 3}],
        ids=["none", "list", "empty", "blank", "int"],
    )
    def test_missing_id(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.id_from_wire(payload, "job")

    @pytest.mark.parametrize(
        "payload", [None, {}, {"status": ""}, {"status": 5}], ids=["none", "empty", "blank", "int"]
    )
    def test_missing_status(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.word_from_wire(payload)

    def test_status_word_is_upper_cased(self):
        assert wire.word_from_wire({"status": "running"}) == "RUNNING"

    @pytest.mark.parametrize(
        ("payload", "count", "token"),
        [
            ({"items": [{"id": "a"}, "junk"], "next_page_token": "t"}, 1, "t"),
            ({"items": [], "next_page_token": None}, 0, None),
            ({"items": [{"id": "a"}], "next_page_token": ""}, 1, None),
            ({}, 0, None),
        ],
        ids=["more", "empty", "blank-token", "no-items"],
    )
    def test_page(self, payload, count, token):
        items, next_token = wire.page_from_wire(payload)
        assert (len(items), next_token) == (count, token)

    @pytest.mark.parametrize("payload", [None, {"items": {}}], ids=["none", "items-object"])
    def test_bad_page(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.page_from_wire(payload)


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "cls-1",
        "status": status,
        "created_at": "2026-01-02T03:04:05.000Z",
        "updated_at": "2026-01-02T03:04:09.000Z",
        **extra,
    }


RESULT = {"type": "invoice", "confidence": 0.93, "reasoning": "mentions an invoice number"}


class TestItems:
    def test_completed(self):
        item = wire.item_from_wire("a", job("COMPLETED", result=RESULT))
        assert item is not None
        assert item.status is ItemStatus.SUCCEEDED
        assert item.output == ClassificationOutput(
            label="invoice",
            score=0.93,
            scores=[LabelScore(label="invoice", score=0.93)],
            reasoning="mentions an invoice number",
        )
        assert item.finished_at is not None and item.started_at is not None

    def test_no_rule_matched_is_a_success_without_label(self):
        item = wire.item_from_wire("a", job("COMPLETED", result={**RESULT, "type": None}))
        assert item is not None and item.status is ItemStatus.SUCCEEDED
        assert isinstance(item.output, ClassificationOutput)
        assert (item.output.label, item.output.scores) == (None, [])

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (job("FAILED", error_message="could not parse"), "could not parse"),
            (job("FAILED"), "classification failed"),
            (job("COMPLETED", result=None), wire.NO_RESULT),
        ],
        ids=["failed", "failed-silent", "completed-without-result"],
    )
    def test_failures(self, payload, message):
        item = wire.item_from_wire("a", payload)
        assert item is not None and item.status is ItemStatus.FAILED
        assert item.error == ErrorInfo("item_failed", message)
        assert item.output is None

    def test_cancelled(self):
        item = wire.item_from_wire("a", job("CANCELLED"))
        assert item is not None and item.status is ItemStatus.CANCELLED

    @pytest.mark.parametrize("word", ["PENDING", "RUNNING", "SOMETHING_NEW"])
    def test_running_has_no_item(self, word):
        assert wire.item_from_wire("a", job(word)) is None


class TestReport:
    @pytest.mark.parametrize(
        ("words", "failed", "status", "upstream", "counts"),
        [
            (["PENDING", "PENDING"], {}, JobStatus.QUEUED, "PENDING", Counts(2, 0, 0, 2)),
            (
                ["PENDING", "RUNNING"],
                {},
                JobStatus.RUNNING,
                "PENDING:1,RUNNING:1",
                Counts(2, 0, 0, 2),
            ),
            (
                ["COMPLETED", "RUNNING", "FAILED"],
                {2: "x"},
                JobStatus.RUNNING,
                "COMPLETED:1,FAILED:1,RUNNING:1",
                Counts(3, 1, 1, 1),
            ),
            (["COMPLETED", "COMPLETED"], {}, JobStatus.SUCCEEDED, "COMPLETED", Counts(2, 2, 0, 0)),
            (
                ["COMPLETED", "FAILED"],
                {1: "x"},
                JobStatus.PARTIALLY_SUCCEEDED,
                "COMPLETED:1,FAILED:1",
                Counts(2, 1, 1, 0),
            ),
            (
                ["COMPLETED", "GONE"],
                {1: wire.GONE_MESSAGE},
                JobStatus.PARTIALLY_SUCCEEDED,
                "COMPLETED:1,GONE:1",
                Counts(2, 1, 1, 0),
            ),
            (
                ["COMPLETED", "CANCELLED"],
                {},
                JobStatus.CANCELLED,
                "CANCELLED:1,COMPLETED:1",
                Counts(2, 1, 0, 1),
            ),
            (
                ["COMPLETED"],
                {0: wire.NO_RESULT},
                JobStatus.FAILED,
                "COMPLETED",
                Counts(1, 0, 1, 0),
            ),
        ],
        ids=[
            "all-pending-is-queued",
            "one-running",
            "mixed-still-running",
            "all-completed",
            "some-failed",
            "one-lost",
            "cancelled",
            "completed-without-result",
        ],
    )
    def test_report(self, words, failed, status, upstream, counts):
        report = wire.report_from_words(words, failed)
        assert (report.status, report.upstream_status, report.counts) == (
            status,
            upstream,
            counts,
        )

    def test_every_file_failing_fails_the_job_with_the_first_reason(self):
        report = wire.report_from_words(["FAILED", "FAILED"], {0: "bad scan", 1: "empty"})
        assert report.status is JobStatus.FAILED
        assert report.error is not None and "bad scan" in report.error.message
