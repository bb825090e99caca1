"""``/openapi.json``: the v1 API as OpenAPI 3.1, built from the models that serve it."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api import models

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _problems(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in statuses:
        entry: dict[str, Any] = {"description": _REASONS[s], "content": _PROBLEM}
        if s in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}, **_RATELIMIT}
        if s == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[str(s)] = entry
    return out


#: IETF draft ratelimit-headers fields, on every /v1/ answer where limits are configured.
_RATELIMIT = {
    "RateLimit-Policy": {
        "required": False,
        "schema": {"type": "string"},
        "description": 'The limits that apply, e.g. "read";q=100;w=60 (sent when configured).',
    },
    "RateLimit": {
        "required": False,
        "schema": {"type": "string"},
        "description": 'What is left of each, e.g. "read";r=42;t=21 (sent when configured).',
    },
}

_REASONS = {
    400: "Bad request (e.g. body is not JSON)",
    401: "Missing or bad credential",
    403: "Scope missing or model not allowed",
    404: "Unknown job, item, model or provider",
    409: "Conflict",
    413: "Body over the configured limit",
    422: "Request not acceptable",
    429: "Caller over its limit",
    502: "Provider answered wrongly",
    503: "Provider or store unavailable",
    504: "Provider did not answer in time",
}

_READ_ERRORS = (401, 403, 404, 422, 429, 502, 503, 504)
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "wait=<seconds> (at most 60): hold the answer until the job is done.",
}
_LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The id of the last event the client has: only later changes are sent.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,30}$"},
}
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    # Never refused: an id that is not 1-128 of [A-Za-z0-9._:@/+=-] is replaced by a new one.
    "description": "Echoed back when 1-128 of [A-Za-z0-9._:@/+=-]; otherwise a new id is used.",
    "schema": {"type": "string"},
}


def _page(default: int, maximum: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "page_size",
            "in": "query",
            # Out-of-range sizes are clamped, not refused: no minimum/maximum in the schema.
            "description": f"Items per page, clamped to 1..{maximum}.",
            "schema": {"type": "integer", "default": default},
        },
        {"name": "page_token", "in": "query", "schema": {"type": "string"}},
    ]


@cache
def openapi_document() -> dict[str, Any]:
    schema_models: list[type[BaseModel]] = [
        models.JobCreate,
        models.Job,
        models.JobList,
        models.Results,
        models.Item,
        models.ProviderList,
        models.ModelList,
        models.Problem,
        models.Health,
    ]
    _, defs = models_json_schema(
        [(m, "validation" if m is models.JobCreate else "serialization") for m in schema_models],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})
    item_status = {
        "name": "status",
        "in": "query",
        "schema": {"enum": ["succeeded", "failed", "pending"]},
    }
    fmt = {"name": "format", "in": "query", "schema": {"enum": ["json", "csv", "ndjson"]}}
    include = {
        "name": "include",
        "in": "query",
        # Comma-separated; names other than ``raw`` are ignored, not refused.
        "description": "Comma-separated extras; `raw` adds each item's provider output.",
        "schema": {"type": "string"},
    }
    paths: dict[str, Any] = {
        "/v1/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit a job",
                "parameters": [
                    _PREFER,
                    _REQUEST_ID,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                    },
                ],
                "requestBody": {"required": True, "content": _json("JobCreate")},
                "responses": {
                    "202": {
                        "description": "Accepted",
                        "content": _json("Job"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "200": {"description": "Done within Prefer: wait", "content": _json("Job")},
                    **_problems(400, 401, 403, 404, 409, 413, 422, 429, 502, 503, 504),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "List the caller's jobs, newest first",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "enum": [
                                "queued",
                                "running",
                                "succeeded",
                                "partially_succeeded",
                                "failed",
                                "cancelled",
                            ]
                        },
                    },
                    {"name": "provider", "in": "query", "schema": {"type": "string"}},
                    *_page(50, 100),
                ],
                "responses": {
                    "200": {"description": "OK", "content": _json("JobList")},
                    **_problems(401, 403, 422, 429, 503),
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "Get a job",
                "parameters": [_JOB_ID, _PREFER],
                "responses": {
                    "200": {"description": "OK", "content": _json("Job")},
                    "202": {"description": "Not done within Prefer: wait", "content": _json("Job")},
                    **_problems(*_READ_ERRORS),
                },
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a job",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {"description": "OK", "content": _json("Job")},
                    **_problems(401, 403, 404, 409, 422, 429, 502, 503, 504),
                },
            },
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "operationId": "streamJobEvents",
                "summary": "A job's changes, live (Server-Sent Events)",
                "description": (
                    "One `job` event (`id`: a number that grows with the job's progress, "
                    "`data`: the Job) now and at each change of status or counts; the "
                    "stream ends after the terminal one. Comment lines keep an idle "
                    "stream alive. `Last-Event-ID` resumes after the event it names, on "
                    "any replica."
                ),
                "parameters": [_JOB_ID, _LAST_EVENT_ID],
                "responses": {
                    "200": {
                        "description": "The event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_problems(401, 403, 404, 422, 429, 502, 503, 504),
                },
            }
        },
        "/v1/jobs/{job_id}/results": {
            "get": {
                "operationId": "getResults",
                "summary": "Results of a job, in input order",
                "parameters": [_JOB_ID, item_status, fmt, include, *_page(100, 1000)],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            **_json("Results"),
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(*_READ_ERRORS),
                },
            }
        },
        "/v1/jobs/{job_id}/results/{input}": {
            "get": {
                "operationId": "getResultItem",
                "summary": "One item of a job's results",
                "parameters": [
                    _JOB_ID,
                    {"name": "input", "in": "path", "required": True, "schema": {"type": "string"}},
                    include,
                ],
                "responses": {
                    "200": {"description": "OK", "content": _json("Item")},
                    **_problems(*_READ_ERRORS),
                },
            }
        },
        "/v1/providers": {
            "get": {
                "operationId": "listProviders",
                "summary": "Configured providers",
                "responses": {
                    "200": {"description": "OK", "content": _json("ProviderList")},
                    **_problems(401, 403, 429),
                },
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "summary": "Configured models and aliases",
                "responses": {
                    "200": {"description": "OK", "content": _json("ModelList")},
                    **_problems(401, 403, 429),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process is alive",
                "security": [],
                "responses": {"200": {"description": "OK", "content": _json("Health")}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Ready to serve",
                "security": [],
                "responses": {
                    "200": {"description": "Ready", "content": _json("Health")},
                    "503": {"description": "Not ready", "content": _json("Health")},
                },
            }
        },
    }
    # The gateway reads an empty query value (``?status=``) as an absent one.
    for operations in paths.values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    parameter["allowEmptyValue"] = True
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inference jobs gateway",
            "version": "1.0.0",
            "description": "One endpoint and one credential for async ML-inference jobs.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
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
