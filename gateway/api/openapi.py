"""``/openapi.json``: the v1 API as OpenAPI 3.1, built from the models that serve it.

Written for client generators as much as for readers: one operation per media type
(the CSV and NDJSON exports have their own, so a generated client never parses CSV as
JSON), every answer header under ``components/headers``, an example of every request
and answer (``gateway.api.examples``), and tags. tests/api_docs/ generates a Python and
a TypeScript client from it and lints it with Redocly.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway.api import examples
from gateway.api.openapi_parts import (
    HEADERS,
    IDEMPOTENCY_KEY,
    INCLUDE,
    INPUT,
    ITEM_STATUS,
    JOB_ID,
    JOB_STATUS,
    LAST_EVENT_ID,
    PREFER,
    PROBLEM_TYPE,
    PROVIDER,
    READ_ERRORS,
    REQUEST_ID,
    headers,
    page,
    problems,
)
from gateway.api.openapi_schemas import component_schemas

TAGS = [
    {"name": "Jobs", "description": "Submit, read, wait for, list and cancel jobs."},
    {"name": "Results", "description": "A job's items, as JSON pages or whole exports."},
    {"name": "Catalog", "description": "The providers and models this gateway serves."},
    {"name": "Operations", "description": "Liveness and readiness probes (no credential)."},
]


def _json(name: str, example: Any) -> dict[str, Any]:
    return {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}, "example": example}
    }


def _ok(description: str, name: str, example: Any, *extra: str) -> dict[str, Any]:
    return {"description": description, "headers": headers(*extra), "content": _json(name, example)}


def _export(media: str, example: str, what: str) -> dict[str, Any]:
    return {
        "tags": ["Results"],
        "summary": f"Every result of a job, as {what}",
        "description": (
            "Every matching item in input order, unpaged, then the job-level outputs "
            '(API.md "Results"). The same as `GET /v1/jobs/{job_id}/results` with '
            f"`Accept: {media}` or `?format=`{what.lower()}."
        ),
        "parameters": [JOB_ID, ITEM_STATUS, INCLUDE],
        "responses": {
            "200": {
                "description": "The export",
                "headers": headers("Cache-Status", "Content-Disposition"),
                "content": {media: {"schema": {"type": "string"}, "example": example}},
            },
            **problems(*READ_ERRORS),
        },
    }


def _unreadable() -> dict[str, Any]:
    """The one 4xx a probe answers: aiohttp's own, before any route (hardening.py)."""
    bad = problems(400)
    bad["400"]["description"] = "Not valid HTTP, or a header over the limits"
    bad["400"]["headers"] = headers(v1=False)
    bad["400"]["content"][PROBLEM_TYPE]["example"] = {
        **examples.problem(400),
        "code": "bad_http_request",
        "detail": "The request is not valid HTTP or exceeds a header limit.",
    }
    return bad


def _paths() -> dict[str, Any]:
    job_read = ("Cache-Status", "Preference-Applied")
    return {
        "/v1/jobs": {
            "post": {
                "tags": ["Jobs"],
                "operationId": "submitJob",
                "summary": "Submit a job",
                "parameters": [PREFER, REQUEST_ID, IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/JobCreate"},
                            "examples": examples.SUBMIT,
                        }
                    },
                },
                "responses": {
                    "202": _ok(
                        "Accepted", "Job", examples.JOB_QUEUED, "Location", "Preference-Applied"
                    ),
                    "200": _ok(
                        "Done within Prefer: wait, or a replay of the same Idempotency-Key",
                        "Job",
                        examples.JOB_DONE,
                        "Location",
                        "Preference-Applied",
                    ),
                    **problems(400, 401, 403, 404, 409, 413, 422, 429, 502, 503, 504),
                },
            },
            "get": {
                "tags": ["Jobs"],
                "operationId": "listJobs",
                "summary": "List the caller's jobs, newest first",
                "parameters": [JOB_STATUS, PROVIDER, *page(50, 100)],
                "responses": {
                    "200": _ok("OK", "JobList", examples.JOB_LIST),
                    **problems(401, 403, 422, 429, 503),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "tags": ["Jobs"],
                "operationId": "getJob",
                "summary": "Get a job",
                "parameters": [JOB_ID, PREFER],
                "responses": {
                    "200": _ok("OK", "Job", examples.JOB_DONE, *job_read),
                    "202": _ok(
                        "Not done within Prefer: wait", "Job", examples.JOB_QUEUED, *job_read
                    ),
                    **problems(*READ_ERRORS),
                },
            },
            "delete": {
                "tags": ["Jobs"],
                "operationId": "cancelJob",
                "summary": "Cancel a job",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _ok("OK", "Job", examples.JOB_CANCELLED),
                    **problems(401, 403, 404, 409, 422, 429, 502, 503, 504),
                },
            },
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "tags": ["Jobs"],
                "operationId": "streamJobEvents",
                "summary": "A job's changes, live (Server-Sent Events)",
                "description": (
                    "One `job` event (`id`: a number that grows with the job's progress, "
                    "`data`: the Job) now and at each change of status or counts; the "
                    "stream ends after the terminal one. Comment lines keep an idle "
                    "stream alive. `Last-Event-ID` resumes after the event it names, on "
                    "any replica."
                ),
                "parameters": [JOB_ID, LAST_EVENT_ID],
                "responses": {
                    "200": {
                        "description": "The event stream",
                        "headers": headers(),
                        "content": {
                            "text/event-stream": {
                                "schema": {"type": "string"},
                                "example": examples.EVENTS,
                            }
                        },
                    },
                    **problems(401, 403, 404, 422, 429, 502, 503, 504),
                },
            }
        },
        "/v1/jobs/{job_id}/results": {
            "get": {
                "tags": ["Results"],
                "operationId": "getResults",
                "summary": "Results of a job, in input order, a page at a time",
                "description": (
                    "Partial results are served while the job runs. For every item at "
                    "once as CSV or NDJSON, see exportResultsCsv and exportResultsNdjson "
                    "(this path also serves them under `Accept: text/csv` or "
                    "`application/x-ndjson`, or `?format=csv|ndjson`)."
                ),
                "parameters": [JOB_ID, ITEM_STATUS, INCLUDE, *page(100, 1000)],
                "responses": {
                    "200": _ok("OK", "Results", examples.RESULTS, "Cache-Status"),
                    **problems(*READ_ERRORS),
                },
            }
        },
        "/v1/jobs/{job_id}/results.csv": {
            "get": {
                "operationId": "exportResultsCsv",
                **_export("text/csv", examples.CSV, "CSV"),
            }
        },
        "/v1/jobs/{job_id}/results.ndjson": {
            "get": {
                "operationId": "exportResultsNdjson",
                **_export("application/x-ndjson", examples.NDJSON, "NDJSON"),
            }
        },
        "/v1/jobs/{job_id}/results/{input}": {
            "get": {
                "tags": ["Results"],
                "operationId": "getResultItem",
                "summary": "One item of a job's results",
                "parameters": [JOB_ID, INPUT, INCLUDE],
                "responses": {
                    "200": _ok("OK", "Item", examples.ITEM, "Cache-Status"),
                    **problems(*READ_ERRORS),
                },
            }
        },
        "/v1/providers": {
            "get": {
                "tags": ["Catalog"],
                "operationId": "listProviders",
                "summary": "Configured providers",
                "responses": {
                    "200": _ok("OK", "ProviderList", examples.PROVIDERS),
                    **problems(401, 403, 429),
                },
            }
        },
        "/v1/models": {
            "get": {
                "tags": ["Catalog"],
                "operationId": "listModels",
                "summary": "Configured models and aliases",
                "responses": {
                    "200": _ok("OK", "ModelList", examples.MODELS),
                    **problems(401, 403, 429),
                },
            }
        },
        "/healthz": {
            "get": {
                "tags": ["Operations"],
                "operationId": "healthz",
                "summary": "The process is alive",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "headers": headers(v1=False),
                        "content": _json("Health", examples.HEALTH_OK),
                    },
                    **_unreadable(),
                },
            }
        },
        "/readyz": {
            "get": {
                "tags": ["Operations"],
                "operationId": "readyz",
                "summary": "Ready to serve",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Ready",
                        "headers": headers(v1=False),
                        "content": _json("Health", examples.READY),
                    },
                    "503": {
                        "description": "Not ready",
                        "headers": headers(v1=False),
                        "content": _json("Health", examples.NOT_READY),
                    },
                    **_unreadable(),
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    paths = _paths()
    # The gateway reads an empty query value (``?status=``) as an absent one.
    for operations in paths.values():
        for operation in operations.values():
            operation["parameters"] = [
                {**p, "allowEmptyValue": True} if p["in"] == "query" else p
                for p in operation.get("parameters", [])
            ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inference jobs gateway",
            "version": "1.0.0",
            "description": (
                "One endpoint and one credential for async ML-inference jobs. "
                "Browse it at /docs; docs/api-clients.md says how to generate clients."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "headers": HEADERS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key, or a JWT from the configured issuer.",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
