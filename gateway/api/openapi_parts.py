"""The pieces ``gateway.api.openapi`` builds operations from: headers, parameters, problems.

Answer headers live once under ``components/headers`` and are referenced, so a client
generator sees one definition of each.
"""

from __future__ import annotations

from typing import Any

from gateway.api import examples

PROBLEM_TYPE = "application/problem+json"

#: The headers of answers (API.md "Headers"), by name.
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        # On every answer, the framework's own error pages included (hardening.py).
        "required": True,
        "description": "The caller's X-Request-ID if it was sane, else a new id.",
        "schema": {"type": "string", "maxLength": 128},
        "example": "4f6c2a1e9b0d4e7f8a3c5b2d1e0f9a8b",
    },
    "Server-Timing": {
        "description": (
            "upstream;dur= (time spent at the provider), wait;dur= (under Prefer: wait) "
            "and gateway;dur= (the gateway's own overhead), in milliseconds."
        ),
        "schema": {"type": "string"},
        "example": "upstream;dur=12.5, gateway;dur=1.8",
    },
    "RateLimit-Policy": {
        "description": 'The limits that apply, e.g. "read";q=100;w=60 (sent when configured).',
        "schema": {"type": "string"},
        "example": '"read";q=100;w=60',
    },
    "RateLimit": {
        "description": 'What is left of each, e.g. "read";r=42;t=21 (sent when configured).',
        "schema": {"type": "string"},
        "example": '"read";r=42;t=21',
    },
    "Cache-Status": {
        "description": (
            "RFC 9211, on job and result reads: `gateway; hit` when served from the "
            "gateway's cache, `gateway; fwd=miss` when the provider was asked."
        ),
        "schema": {"type": "string", "enum": ["gateway; hit", "gateway; fwd=miss"]},
        "example": "gateway; fwd=miss",
    },
    "Preference-Applied": {
        "description": "RFC 7240: the wait applied, in seconds, when the request sent Prefer.",
        "schema": {"type": "string", "pattern": "^wait="},
        "example": "wait=10",
    },
    "Location": {
        "required": True,
        "description": "The job's URL.",
        "schema": {"type": "string"},
        "example": "/v1/jobs/job_01JDQ7X3M0Q9V2B6Z4W8N5K1RT",
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
        "example": 2,
    },
    "WWW-Authenticate": {
        "required": True,
        "description": "The scheme to authenticate with.",
        "schema": {"type": "string"},
        "example": "Bearer",
    },
    "Content-Disposition": {
        "description": "The file name a browser saves the export as.",
        "schema": {"type": "string"},
        "example": 'attachment; filename="job_01JDQ7X3M0Q9V2B6Z4W8N5K1RT.csv"',
    },
}


def headers(*names: str, v1: bool = True) -> dict[str, Any]:
    """References to the named answer headers, plus those every answer carries."""
    every = ("X-Request-ID", "Server-Timing", *(("RateLimit-Policy", "RateLimit") if v1 else ()))
    return {n: {"$ref": f"#/components/headers/{n}"} for n in (*every, *names)}


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

READ_ERRORS = (401, 403, 404, 422, 429, 502, 503, 504)


def problems(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in statuses:
        extra = ("Retry-After",) if s in (429, 503) else ("WWW-Authenticate",) if s == 401 else ()
        out[str(s)] = {
            "description": _REASONS[s],
            "headers": headers(*extra),
            "content": {
                PROBLEM_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": examples.problem(s),
                }
            },
        }
    return out


# Optional parameters have no ``example``: Swagger UI's "Try it out" fills them in and
# sends them (a Prefer: wait, a reused Idempotency-Key, a stale page_token). Path
# parameters do, being required anyway.
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job's id, as submitJob returned it.",
    "schema": {"type": "string", "minLength": 1},
    "example": "job_01JDQ7X3M0Q9V2B6Z4W8N5K1RT",
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    # No pattern: RFC 7240 says a preference the server does not understand is ignored.
    "description": "wait=<seconds> (at most 60): hold the answer until the job is done.",
    "schema": {"type": "string"},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The id of the last event the client has: only later changes are sent.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,30}$"},
}
REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    # Never refused: an id that is not 1-128 of [A-Za-z0-9._:@/+=-] is replaced by a new one.
    "description": "Echoed back when 1-128 of [A-Za-z0-9._:@/+=-]; otherwise a new id is used.",
    "schema": {"type": "string"},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "The same key with the same body returns the same job (200) for at least 24 h; "
        "with another body it is a 422."
    ),
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}
INCLUDE = {
    "name": "include",
    "in": "query",
    # Comma-separated; names other than ``raw`` are ignored, not refused.
    "description": "Comma-separated extras; `raw` adds each item's provider output.",
    "schema": {"type": "string"},
}
ITEM_STATUS = {
    "name": "status",
    "in": "query",
    "description": "Only items of this status (`pending`: not finished yet).",
    "schema": {"type": "string", "enum": ["succeeded", "failed", "pending"]},
}
JOB_STATUS = {
    "name": "status",
    "in": "query",
    "description": "Only jobs of this status.",
    "schema": {"$ref": "#/components/schemas/JobStatus"},
}
PROVIDER = {
    "name": "provider",
    "in": "query",
    "description": "Only jobs of this provider.",
    "schema": {"type": "string"},
}
INPUT = {
    "name": "input",
    "in": "path",
    "required": True,
    "description": "The input's name, as it was submitted.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    "example": "review-1",
}


def page(default: int, maximum: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "page_size",
            "in": "query",
            # The bounds are the sizes served; a size outside them is clamped, not refused
            # (tests/security/test_fuzz.py says so to schemathesis).
            "description": f"Items per page, 1..{maximum}; other sizes are clamped.",
            "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        },
        {
            "name": "page_token",
            "in": "query",
            "description": "The next_page_token of the previous page, for the same query.",
            "schema": {"type": "string"},
        },
    ]
