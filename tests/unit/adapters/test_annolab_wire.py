"""AnnoLab's wire translation: request building, status mapping, export zip parsing."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from adapters.annolab import wire
from adapters.base import (
    Counts,
    ErrorInfo,
    InputKind,
    ItemStatus,
    JobInput,
    JobStatus,
    ModelRef,
    parse_options,
)
from adapters.errors import ProviderBadResponse
from adapters.outputs import Annotation, AnnotationsOutput
from gateway.errors import ValidationFailed

OPTIONS = wire.AnnoLabOptions(project="Sample Project", output_layer="Gold Set", group="Company")


def ref(name: str, value: str | None, **fields: Any) -> JobInput:
    return JobInput(name=name, kind=InputKind.REF, ref=value, fields=fields)


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def record(sid: int = 3240, layer: str = "Gold Set", **over: Any) -> dict[str, Any]:
    base = {
        "id": 44,
        "sourceId": sid,
        "typeName": "Party",
        "value": "Acme",
        "offsets": [10, 14],
        "textBounds": None,
        "imageBounds": None,
        "layerName": layer,
        "pageNumber": 1,
        "endPageNumber": 1,
    }
    return {**base, **over}


class TestAuthAndPaths:
    def test_auth_header_uses_the_api_key_scheme(self):
        assert wire.auth_headers("k-1") == {"Authorization": "Api-Key k-1"}

    @pytest.mark.parametrize(
        ("job_id", "path"),
        [("12", "/v1/infer/batch/12"), ("a/b", "/v1/infer/batch/a%2Fb")],
        ids=["int-id", "escaped"],
    )
    def test_status_path(self, job_id, path):
        assert wire.status_path(job_id) == path


class TestValidation:
    def test_a_model_version_is_refused_naming_the_model(self):
        with pytest.raises(ValidationFailed) as info:
            wire.check_model(ModelRef("annolab", "NER Contracts", "1.0"))
        assert info.value.errors[0].pointer == "/model"

    def test_a_model_without_version_passes(self):
        wire.check_model(ModelRef("annolab", "8"))

    def test_refs_become_integer_source_ids_in_order(self):
        inputs = [ref("a", "3240"), ref("b", " 4414 "), ref("c", "3240")]
        assert wire.source_ids(inputs) == [3240, 4414, 3240]

    @pytest.mark.parametrize(
        "value",
        ["abc", "0", "-5", "12.0", "", None, "١٢", "1e3"],
        ids=["word", "zero", "negative", "decimal", "empty", "none", "arabic-digits", "exponent"],
    )
    def test_a_ref_that_is_not_a_source_id_names_the_input(self, value):
        with pytest.raises(ValidationFailed) as info:
            wire.source_ids([ref("ok", "3240"), ref("bad", value)])
        assert [e.pointer for e in info.value.errors] == ["/inputs/1/ref"]

    def test_per_input_fields_are_refused(self):
        with pytest.raises(ValidationFailed) as info:
            wire.source_ids([ref("a", "3240", page="1")])
        assert [e.pointer for e in info.value.errors] == ["/inputs/0/fields"]

    @pytest.mark.parametrize(
        ("options", "defaults", "pointer"),
        [
            ({"output_layer": "L", "group": "G"}, {}, "/options/provider/project"),
            ({"project": "P", "group": "G"}, {}, "/options/provider/output_layer"),
            ({"project": "P", "output_layer": "L"}, {}, "/options/provider/group"),
            (
                {"project": ["P"], "output_layer": "L", "group": "G"},
                {},
                "/options/provider/project",
            ),
            ({"project": "  ", "output_layer": "L", "group": "G"}, {}, "/options/provider/project"),
            ({"project": True}, {"output_layer": "L", "group": "G"}, "/options/provider/project"),
            (
                {"rules": 1},
                {"project": "P", "output_layer": "L", "group": "G"},
                "/options/provider/rules",
            ),
        ],
        ids=[
            "no-project",
            "no-layer",
            "no-group",
            "project-list",
            "project-blank",
            "project-bool",
            "unknown-option",
        ],
    )
    def test_bad_options_name_the_field(self, options, defaults, pointer):
        with pytest.raises(ValidationFailed) as info:
            parse_options(wire.AnnoLabOptions, options, defaults)
        assert pointer in [e.pointer for e in info.value.errors]

    def test_options_come_from_defaults_and_ids_stay_integers(self):
        parsed = parse_options(
            wire.AnnoLabOptions,
            {"output_layer": 13},
            {"project": 1, "output_layer": "Gold Set", "group": "Company Name"},
        )
        # [library] annolab 0.7.2 sends an integer id as a JSON integer.
        assert parsed == wire.AnnoLabOptions(project=1, output_layer=13, group="Company Name")


class TestSubmit:
    def test_body_names_everything_and_sends_each_source_once(self):
        assert wire.submit_body("NER Contracts", [3240, 4414, 3240], OPTIONS) == {
            "projectIdentifier": "Sample Project",
            "modelIdentifier": "NER Contracts",
            "sourceIds": [3240, 4414],
            "outputLayerIdentifier": "Gold Set",
            "groupName": "Company",
        }

    def test_answer_gives_string_id_state_and_queued_report(self):
        # The state keeps the project as sent (the export names it so, as the library
        # does) and the id AnnoLab resolved it to.
        payload = {
            "inferenceJobId": 12,
            "status": "Queued",
            "projectName": "Sample Project",
            "projectId": 1,
            "outputLayerName": "Gold Set",
            "outputLayerId": 12,
            "sourceIds": [3240, 4414],
        }
        options = wire.AnnoLabOptions(project="Sample Project", output_layer="12", group="G")
        got = wire.submit_from_wire(payload, "annolab", [3240, 4414, 3240], options)
        assert got.upstream_id == "12"
        assert got.state == {
            "project": "Sample Project",
            "project_id": 1,
            "layer": "Gold Set",
            "layer_id": 12,
            "group": "G",
            "sources": [3240, 4414, 3240],
        }
        assert got.report.status is JobStatus.QUEUED
        assert got.report.upstream_status == "Queued"
        assert got.report.counts == Counts.all_pending(3)

    def test_minimal_answer_falls_back_to_the_options(self):
        got = wire.submit_from_wire({"inferenceJobId": "7"}, "annolab", [3240], OPTIONS)
        assert got.upstream_id == "7"
        assert got.state["project"] == "Sample Project"
        assert got.state["layer"] == "Gold Set"
        assert got.state["layer_id"] is None
        assert got.report.status is JobStatus.QUEUED

    @pytest.mark.parametrize(
        "payload",
        [{}, {"inferenceJobId": None}, {"inferenceJobId": "x1"}, {"inferenceJobId": True}, []],
        ids=["empty", "null", "not-int", "bool", "array"],
    )
    def test_answer_without_an_integer_id_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.submit_from_wire(payload, "annolab", [1], OPTIONS)


class TestStatus:
    @pytest.mark.parametrize(
        ("payload", "status", "counts", "error"),
        [
            ({"status": "Queued"}, JobStatus.QUEUED, Counts.all_pending(3), None),
            ({"status": "Running"}, JobStatus.RUNNING, Counts.all_pending(3), None),
            ({"status": "In Progress"}, JobStatus.RUNNING, Counts.all_pending(3), None),
            ({"status": "Indexing"}, JobStatus.RUNNING, Counts.all_pending(3), None),
            ({"status": "Finished"}, JobStatus.SUCCEEDED, Counts(3, succeeded=3), None),
            (
                {"status": "Finished", "errors": [{"sourceId": 4413, "message": "no text"}]},
                JobStatus.PARTIALLY_SUCCEEDED,
                Counts(3, succeeded=2, failed=1),
                None,
            ),
            (
                {"status": "Finished", "failedSourceIds": [3240, 4413]},
                JobStatus.FAILED,
                Counts(3, failed=3),
                ErrorInfo("all_items_failed", "Every input of the job failed."),
            ),
            (
                {"status": "Finished", "errors": [{"sourceId": 9999, "message": "x"}]},
                JobStatus.SUCCEEDED,
                Counts(3, succeeded=3),
                None,
            ),
            (
                {"status": "Errored", "error": "Model crashed"},
                JobStatus.FAILED,
                Counts(3, failed=3),
                ErrorInfo("upstream_failed", "Model crashed"),
            ),
            (
                {"status": "Errored"},
                JobStatus.FAILED,
                Counts(3, failed=3),
                ErrorInfo("upstream_failed", "The inference failed at the provider."),
            ),
        ],
        ids=[
            "queued",
            "running",
            "in-progress",
            "unknown-word",
            "finished",
            "finished-one-source-failed",
            "finished-every-source-failed",
            "error-for-another-source",
            "errored",
            "errored-silently",
        ],
    )
    def test_status_mapping(self, payload, status, counts, error):
        # Two inputs name 3240, so one source error fails two of the three inputs.
        report = wire.report_from_wire(payload, "annolab", [3240, 4413, 3240])
        assert report.status is status
        assert report.upstream_status == payload["status"]
        assert report.counts == counts
        assert report.error == error

    @pytest.mark.parametrize(
        "payload",
        [{}, {"status": ""}, {"status": 3}, "Finished"],
        ids=["none", "empty", "int", "str"],
    )
    def test_status_without_a_word_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.report_from_wire(payload, "annolab", [1])

    def test_source_errors_read_both_shapes(self):
        payload = {
            "errors": [{"sourceId": 1, "message": "m1"}, {"sourceId": "2", "error": "m2"}, "junk"],
            "failedSourceIds": [1, 3, "x"],
        }
        assert wire.source_errors(payload) == {1: "m1", 2: "m2", 3: wire.SOURCE_FAILED}


class TestExportRequests:
    def test_export_body_asks_for_the_jobs_sources_and_layer(self):
        state = {"project": "1", "layer": "Gold Set", "group": "G", "sources": [5, 6, 5]}
        assert wire.export_body(state) == {
            "projectIdentifier": "1",
            "groupName": "G",
            "includeAnnotationTypes": True,
            "includeSources": False,
            "includeTextBounds": False,
            "sourceIds": [5, 6],
            "annotationLayerNames": ["Gold Set"],
        }

    def test_export_answer_gives_its_status_url(self):
        payload = {"message": "ok", "exportStatusUrl": "https://x/v1/export/status/341"}
        assert wire.export_status_url(payload, "annolab") == "https://x/v1/export/status/341"

    @pytest.mark.parametrize(
        "payload", [{}, {"exportStatusUrl": ""}, []], ids=["none", "empty", "list"]
    )
    def test_export_answer_without_url_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.export_status_url(payload, "annolab")

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({"status": "initalized"}, wire.ExportState("initialized")),
            ({"status": "initialized"}, wire.ExportState("initialized")),
            ({"status": "started"}, wire.ExportState("started")),
            # A word the SDK does not know: still running, and flagged (the job fails after
            # the grace period rather than run forever).
            ({"status": "Queued"}, wire.ExportState("started", unknown="Queued")),
            (
                {"status": "finished", "downloadUrl": "https://x/dl/1.zip?sig=a"},
                wire.ExportState("finished", download_url="https://x/dl/1.zip?sig=a"),
            ),
            (
                {"status": "finished", "downloadUrl": "/v1/export/download/1/a.zip"},
                wire.ExportState("finished", download_url="https://x/v1/export/download/1/a.zip"),
            ),
            ({"status": "errored", "error": "boom"}, wire.ExportState("errored", error="boom")),
            ({"status": "errored"}, wire.ExportState("errored")),
        ],
        ids=[
            "sdk-typo",
            "initialized",
            "started",
            "unknown-word",
            "finished",
            "finished-relative-url",
            "errored",
            "errored-silently",
        ],
    )
    def test_export_status(self, payload, expected):
        got = wire.export_state_from_wire(payload, "annolab", "https://x/v1/export/status/1")
        assert got == expected
        assert got.done is (expected.status in ("finished", "errored"))

    @pytest.mark.parametrize(
        "payload", [{}, {"status": "finished"}, None], ids=["no-status", "finished-no-url", "null"]
    )
    def test_bad_export_status_is_a_bad_response(self, payload):
        with pytest.raises(ProviderBadResponse):
            wire.export_state_from_wire(payload, "annolab", "https://x/s/1")


class TestExportZip:
    def test_reads_every_annotations_file_and_skips_the_rest(self):
        data = make_zip(
            {
                "p-1.annotations.jsonl": jsonl(record(1), record(2)) + "\n  \n",
                "more/p-2.Annotations.jsonl": jsonl(record(3)),
                "p-1.layers.jsonl": jsonl({"name": "Gold Set"}),
                "p-1.relations.jsonl": "",
            }
        )
        records = wire.annotations_from_zip(data, "annolab")
        assert sorted(r["sourceId"] for r in records) == [1, 2, 3]

    def test_an_empty_annotations_file_is_no_annotations(self):
        assert wire.annotations_from_zip(make_zip({"p.annotations.jsonl": ""}), "annolab") == []

    @pytest.mark.parametrize(
        "data",
        [
            b"not a zip",
            make_zip({"p.layers.jsonl": "{}\n"}),
            make_zip({"p.annotations.jsonl": '{"sourceId": 1\n'}),
            make_zip({"p.annotations.jsonl": b"\xff\xfe{}"}),
        ],
        ids=["not-zip", "no-annotations-file", "bad-json-line", "not-utf8"],
    )
    def test_unreadable_export_is_a_bad_response(self, data):
        with pytest.raises(ProviderBadResponse):
            wire.annotations_from_zip(data, "annolab")


class TestAnnotations:
    @pytest.mark.parametrize(
        ("over", "expected"),
        [
            ({}, Annotation(label="Party", text="Acme", start=10, end=14, page=1)),
            (
                {
                    "typeName": "Invoice",
                    "value": None,
                    "offsets": None,
                    "imageBounds": {
                        "type": "Polygon",
                        "coordinates": [[[0, 0], [612, 0], [612, 792], [0, 792], [0, 0]]],
                    },
                },
                Annotation(label="Invoice", page=1, bbox=[0.0, 0.0, 612.0, 792.0]),
            ),
            (
                {
                    "imageBounds": {
                        "type": "MultiPolygon",
                        "coordinates": [
                            [[[10, 20], [30, 20], [30, 40], [10, 20]]],
                            [[[5, 50], [15, 50], [15, 60], [5, 50]]],
                        ],
                    }
                },
                Annotation(
                    label="Party", text="Acme", start=10, end=14, page=1, bbox=[5, 20, 30, 60]
                ),
            ),
            (
                {"imageBounds": [1, 2, 3, 4], "pageNumber": 3},
                Annotation(label="Party", text="Acme", start=10, end=14, page=3, bbox=[1, 2, 3, 4]),
            ),
            (
                {"offsets": [[3, 5], [9, 12]]},
                Annotation(label="Party", text="Acme", start=3, end=12, page=1),
            ),
            (
                {"offsets": {"start": 7, "end": 9}, "pageNumber": None},
                Annotation(label="Party", text="Acme", start=7, end=9),
            ),
            (
                {"value": 12.5, "offsets": "0-4", "imageBounds": {"type": "Polygon"}},
                Annotation(label="Party", page=1),
            ),
        ],
        ids=[
            "entity",
            "page-classification",
            "multipolygon",
            "flat-bbox",
            "nested-offsets",
            "offsets-object",
            "odd-shapes",
        ],
    )
    def test_record_to_annotation(self, over, expected):
        assert wire.annotation_from_wire(record(**over)) == expected

    def test_results_keep_the_layers_annotations_per_source(self):
        records = [
            record(3240, value="A"),
            record(3240, layer="Model Predictions", value="other layer"),
            record(4414, layer="Renamed", layerId=12, value="B"),
            record(9999, value="other source"),
            record(3240, value="C"),
        ]
        results = wire.results_from_wire(
            records,
            ["a", "b", "c", "a-again"],
            [3240, 4414, 5853, 3240],
            layer="Gold Set",
            layer_id=12,
        )
        assert list(results.items) == ["a", "b", "c", "a-again"]
        a = results.items["a"]
        assert a.status is ItemStatus.SUCCEEDED
        assert isinstance(a.output, AnnotationsOutput)
        assert [x.text for x in a.output.annotations] == ["A", "C"]
        assert [r["value"] for r in a.raw] == ["A", "C"]
        b_out = results.items["b"].output
        assert isinstance(b_out, AnnotationsOutput)
        assert [x.text for x in b_out.annotations] == ["B"]
        assert results.items["c"].status is ItemStatus.SUCCEEDED
        assert results.items["c"].output == AnnotationsOutput(annotations=[])
        assert results.items["c"].raw == []
        assert results.items["a-again"].output == a.output

    def test_a_source_the_inference_failed_on_is_a_failed_item(self):
        results = wire.results_from_wire(
            [record(4413)],
            ["ok", "bad-fail-1"],
            [3240, 4413],
            layer="Gold Set",
            errors={4413: "no text"},
        )
        assert results.items["ok"].status is ItemStatus.SUCCEEDED
        bad = results.items["bad-fail-1"]
        assert bad.status is ItemStatus.FAILED
        assert bad.error == ErrorInfo("item_failed", "no text")
        assert bad.output is None

    def test_failed_results_use_the_source_error_or_the_job_error(self):
        results = wire.failed_results(["a", "b"], [1, 2], "job failed", {2: "source 2 failed"})
        assert results.items["a"].error == ErrorInfo("item_failed", "job failed")
        assert results.items["b"].error == ErrorInfo("item_failed", "source 2 failed")
        assert {r.status for r in results.items.values()} == {ItemStatus.FAILED}

    @pytest.mark.parametrize(
        "state",
        [{}, {"sources": [1]}, {"sources": ["1", "2"]}, {"sources": [True, 2]}],
        ids=["missing", "too-few", "strings", "bool"],
    )
    def test_state_without_a_source_per_input_is_our_bug(self, state):
        with pytest.raises(RuntimeError):
            wire.sources_from_state(state, 2)

    def test_state_sources_read_back(self):
        assert wire.sources_from_state({"sources": [1, 2]}, 2) == [1, 2]
