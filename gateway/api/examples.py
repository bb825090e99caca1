"""Examples of every request and answer of ``/openapi.json``.

The first request example is what ``/docs`` fills "Try it out" with, so it is a job the
demo (``gateway demo``, API key ``demo-key``) runs as it is. Each example is checked
against the model that serves its answer (tests/api_docs/test_spec.py) and against the
document's own schemas by Redocly's linter, so an example cannot drift from the API.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from gateway.api.formats import ndjson_line, to_csv

_JOB_ID = "job_01JDQ7X3M0Q9V2B6Z4W8N5K1RT"
_T0 = "2026-11-22T10:00:00.123Z"
_T1 = "2026-11-22T10:00:01.870Z"
_REQUEST_ID = "4f6c2a1e9b0d4e7f8a3c5b2d1e0f9a8b"

SUBMIT: dict[str, Any] = {
    "sentiment": {
        "summary": "Two texts, by alias (runs on the demo)",
        "value": {
            "model": "sentiment",
            "inputs": [
                {"name": "review-1", "text": "Great product, I love it"},
                {"name": "review-2", "text": "Terrible support, bad experience"},
            ],
            "metadata": {"team": "search"},
        },
    },
    "every_kind": {
        "summary": "Every input kind (the contract's example)",
        "value": {
            "model": "modzy-eu/ed542963de@1.0.1",
            "inputs": [
                {"name": "review-1", "text": "Great product"},
                {"name": "photo", "data": "iVBORw0KGgo=", "content_type": "image/png"},
                {
                    "name": "shoe",
                    "url": "https://cdn.example.com/shoe.png",
                    "fields": {"product_type": "Shoes"},
                },
                {"name": "3240", "ref": "3240"},
                {"name": "row-7", "record": {"age": 31, "plan": "pro"}},
            ],
            "options": {"explain": False, "provider": {}},
            "metadata": {"team": "search"},
            "webhook_url": None,
        },
    },
}


def _job(status: str, *, done: bool, succeeded: int, pending: int) -> dict[str, Any]:
    return {
        "id": _JOB_ID,
        "model": "modzy/ed542963de@1.0.1",
        "provider": "modzy",
        "status": status,
        "done": done,
        "counts": {
            "total": 2,
            "succeeded": succeeded,
            "failed": 0,
            "pending": pending,
            "cancelled": 0,
        },
        "created_at": _T0,
        "updated_at": _T1 if done else _T0,
        "finished_at": _T1 if done else None,
        "error": None,
        "upstream": {
            "id": "c5c0c8b5-0b7e-4d0a-9d43-0f2f2b6a4c11",
            "status": "COMPLETED" if done else "SUBMITTED",
        },
        "metadata": {"team": "search"},
    }


JOB_QUEUED = _job("queued", done=False, succeeded=0, pending=2)
JOB_DONE = _job("succeeded", done=True, succeeded=2, pending=0)
JOB_CANCELLED = {**_job("cancelled", done=True, succeeded=0, pending=2), "finished_at": _T1}

ITEM: dict[str, Any] = {
    "input": "review-1",
    "status": "succeeded",
    "output": {
        "type": "classification",
        "label": "positive",
        "score": 0.93,
        "scores": [
            {"label": "positive", "score": 0.93},
            {"label": "negative", "score": 0.07},
        ],
        "reasoning": None,
    },
    "explanation": None,
    "error": None,
    "started_at": _T0,
    "finished_at": _T1,
    "elapsed_ms": 812,
}

RESULTS: dict[str, Any] = {
    "job": JOB_DONE,
    "items": [ITEM],
    "job_outputs": [],
    "next_page_token": "eyJvIjogMSwgInMiOiAiIn0",
    "total_size": 2,
}

JOB_LIST: dict[str, Any] = {"jobs": [JOB_DONE], "next_page_token": None}

PROVIDERS: dict[str, Any] = {
    "providers": [
        {
            "name": "modzy",
            "type": "modzy",
            "state": "available",
            "capabilities": {
                "input_kinds": ["data", "text"],
                "output_types": ["classification", "json"],
                "cancel": True,
                "explain": True,
            },
            "models": ["modzy/ed542963de@1.0.1", "modzy/c60c8dbd79@0.0.1"],
        }
    ]
}

MODELS: dict[str, Any] = {
    "models": [
        {
            "id": "modzy/ed542963de@1.0.1",
            "provider": "modzy",
            "aliases": ["sentiment", "sentiment-ha"],
            "output_type": "classification",
            "description": "Sentiment analysis (text)",
        }
    ],
    "aliases": [
        {
            "name": "sentiment-ha",
            "targets": [
                {"model": "modzy/ed542963de@1.0.1", "weight": None},
                {"model": "modzy-backup/ed542963de@1.0.1", "weight": None},
            ],
        }
    ],
}

HEALTH_OK: dict[str, Any] = {"status": "ok"}
READY: dict[str, Any] = {"status": "ok", "components": {"config": "ok", "redis": "ok"}}
NOT_READY: dict[str, Any] = {
    "status": "unavailable",
    "components": {"config": "ok", "redis": "unavailable"},
}

#: Exports, written by the very functions that write them.
CSV = to_csv([ITEM])
NDJSON = ndjson_line(ITEM).decode()
EVENTS = 'event: job\nid: 1\ndata: {"id": "' + _JOB_ID + '", "status": "queued"}\n\n'

#: The ``code`` a problem of each status most often carries (API.md "Errors").
_CODES = {
    400: ("invalid_json", "The body is not JSON."),
    401: ("unauthenticated", "Missing or bad credential."),
    403: ("forbidden", "The key lacks the scope jobs:write."),
    404: ("not_found", f"Job {_JOB_ID} not found."),
    409: ("job_done", f"Job {_JOB_ID} already finished."),
    413: ("payload_too_large", "The body is over 10485760 bytes."),
    422: ("validation_failed", "The request is not valid."),
    429: ("rate_limited", "Key demo may make 50 requests per second."),
    502: ("provider_error", "Provider modzy answered 500."),
    503: ("provider_unavailable", "Provider modzy is backing off."),
    504: ("provider_timeout", "Provider modzy did not answer in time."),
}


def problem(status: int) -> dict[str, Any]:
    code, detail = _CODES[status]
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": _REQUEST_ID,
    }
    if status == 422:
        body["errors"] = [{"pointer": "/inputs/0/text", "message": "Field required"}]
    return body
