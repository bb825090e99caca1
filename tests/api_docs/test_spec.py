"""/openapi.json, written for client generators (issue 15): what the generators and
linters need, checked on the document itself.

Redocly's recommended rules find nothing (they also check every example against its
schema); every operation has a tag, one media type per answer, an example of each
request and answer, and the headers it sends; each example is an answer the models
serve; an input is exactly one of its kinds, in the schema as in the gateway.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from pydantic import BaseModel, ValidationError

from gateway.api import examples, models
from gateway.api.openapi import openapi_document
from tests.api_docs.conftest import NODE_ENV, node_tool


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def test_redocly_recommended_rules_find_nothing(tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(openapi_document()))
    run = subprocess.run(
        [str(node_tool("redocly")), "lint", "--format=json", str(spec)],
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(run.stdout[run.stdout.index("{") :])
    found = [f"{p['severity']} {p['ruleId']}: {p['message']}" for p in report["problems"]]
    assert found == [] and run.returncode == 0, found or run.stderr


def test_every_operation_is_tagged_exemplified_and_one_media_type_per_answer():
    doc = openapi_document()
    tags = {t["name"] for t in doc["tags"]}
    for where, op in operations(doc):
        assert set(op["tags"]) <= tags and op["tags"], where
        if "requestBody" in op:
            (media,) = op["requestBody"]["content"].values()
            assert media["examples"], where
        for status, response in op["responses"].items():
            # One media type each: a generated client picks its parser by operation.
            (media,) = response["content"].values()
            assert "example" in media, f"{where} {status}"
            assert "X-Request-ID" in response["headers"], f"{where} {status}"


def test_answer_headers_are_documented_where_they_are_sent():
    ops = dict(operations(openapi_document()))
    submit = ops["POST /v1/jobs"]["responses"]
    assert {"Location", "Preference-Applied", "RateLimit", "RateLimit-Policy"} <= set(
        submit["202"]["headers"]
    )
    for where in ("GET /v1/jobs/{job_id}", "GET /v1/jobs/{job_id}/results"):
        assert "Cache-Status" in ops[where]["responses"]["200"]["headers"], where
    assert "Server-Timing" in ops["GET /healthz"]["responses"]["200"]["headers"]
    assert "Retry-After" in ops["GET /v1/models"]["responses"]["429"]["headers"]


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (models.Job, examples.JOB_QUEUED),
        (models.Job, examples.JOB_DONE),
        (models.Job, examples.JOB_CANCELLED),
        (models.Results, examples.RESULTS),
        (models.Item, examples.ITEM),
        (models.JobList, examples.JOB_LIST),
        (models.ProviderList, examples.PROVIDERS),
        (models.ModelList, examples.MODELS),
        (models.Health, examples.READY),
        *[(models.Problem, examples.problem(s)) for s in (400, 401, 404, 422, 429, 503)],
        *[(models.JobCreate, e["value"]) for e in examples.SUBMIT.values()],
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_examples_are_what_the_gateway_serves(model: type[BaseModel], example: dict[str, Any]):
    parsed = model.model_validate(example)
    if model is not models.JobCreate:
        # An answer example is what the gateway renders (``raw`` only with include=raw,
        # a problem's ``errors`` only when there are some), field for field.
        exclude = {"raw"} if model is models.Item else RAW.get(model)
        dumped = parsed.model_dump(
            mode="json",
            exclude=exclude,
            exclude_none=model is models.Problem,
            # The probes write their bodies themselves, with what they have.
            exclude_unset=model is models.Health,
        )
        assert dumped == example


RAW: dict[type[BaseModel], Any] = {models.Results: {"items": {"__all__": {"raw"}}}}


def _job_create_validator() -> OAS31Validator:
    doc = openapi_document()
    schema = {**doc["components"]["schemas"]["JobCreate"], "components": doc["components"]}
    return OAS31Validator(schema)


@pytest.mark.parametrize(
    ("item", "valid"),
    [
        ({"name": "a", "text": "x"}, True),
        ({"name": "a", "data": "eA==", "content_type": "text/plain"}, True),
        ({"name": "a", "url": "https://example.com/a.png"}, True),
        ({"name": "a", "ref": "3240"}, True),
        ({"name": "a", "record": {"age": 31, "plan": "pro"}, "fields": {"k": 1}}, True),
        ({"name": "a"}, False),
        ({"name": "a", "text": "x", "url": "https://example.com/a.png"}, False),
        ({"name": "a", "data": "eA=="}, False),
        ({"name": "a", "text": "x", "content_type": "text/plain"}, False),
        ({"name": "a", "text": "x", "colour": "red"}, False),
    ],
    ids=[
        "text",
        "data",
        "url",
        "ref",
        "record",
        "no-value",
        "two-kinds",
        "data-without-type",
        "type-without-data",
        "unknown-field",
    ],
)
def test_an_input_is_exactly_one_kind_in_the_schema_as_in_the_gateway(item, valid):
    body = {"model": "sentiment", "inputs": [item]}
    assert _job_create_validator().is_valid(body) is valid
    try:
        models.JobCreate.model_validate(body)
        served = True
    except ValidationError:
        served = False
    assert served is valid
