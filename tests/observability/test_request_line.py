"""The canonical request line written without structlog's chain is the line the chain
writes (issue 16): same keys and values, same timestamp format, same redaction of the
caller's text; and whatever is not the JSON format at info goes through the chain."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from gateway.observability import logging as gateway_logging
from gateway.observability.logging import REDACTED, configure_logging, log_request

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def fields(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": "GET",
        "route": "/v1/jobs/{job_id}",
        "path": "/v1/jobs/job_abc",
        "status": 200,
        "duration_ms": 1.25,
        "upstream_ms": 0.0,
        "wait_ms": 0.0,
        "provider": "modzy",
        "job_id": "job_abc",
        "cache": "hit",
        "tenant": "acme",
        "key_id": "acme-svc",
        "ratelimit": "allowed",
        "request_id": "0123456789abcdef",
    }
    base.update(over)
    return base


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    """Where the logs go: set in the test's own phase (pytest sets sys.stdout to its
    capture when a test starts, over anything a fixture set)."""
    out = io.StringIO()
    yield out
    structlog.reset_defaults()
    gateway_logging._request_line = None


def configure(out: io.StringIO, fmt: str = "json", level: str = "info") -> None:
    with contextlib.redirect_stdout(out):
        configure_logging(fmt, level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def both_ways(out: io.StringIO, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The line written directly, and the one structlog's chain writes for it (with the
    request's context bound as the middlewares bind it)."""
    log_request(dict(given))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=given["request_id"], tenant=given["tenant"], key_id=given["key_id"]
    )
    try:
        structlog.get_logger("gateway.access").info("request", **given)
    finally:
        structlog.contextvars.clear_contextvars()
    direct, chained = lines(out)
    return direct, chained


def test_the_line_is_the_one_the_chain_writes(stdout: io.StringIO):
    configure(stdout)
    direct, chained = both_ways(stdout, fields(trace_id="4bf92f3577b34da6a3ce929d0e0e4736"))
    assert ISO.match(direct.pop("timestamp")) and ISO.match(chained.pop("timestamp"))
    assert direct == chained
    assert direct["event"] == "request" and direct["level"] == "info"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("path", "/v1/jobs/api_key=abcd1234efgh"),
        ("job_id", "token=abcdef123456"),
        ("request_id", "password=hunter22-and-more"),
    ],
)
def test_the_callers_text_is_redacted_as_the_chain_redacts_it(
    stdout: io.StringIO, key: str, value: str
):
    configure(stdout)
    direct, chained = both_ways(stdout, fields(**{key: value}))
    assert REDACTED in direct[key] and value.split("=")[1] not in stdout.getvalue()
    assert direct[key] == chained[key]


def test_a_test_capturing_logs_and_the_console_format_get_the_chains_line(
    stdout: io.StringIO,
):
    configure(stdout)
    with structlog.testing.capture_logs() as captured:
        log_request(fields())
    assert [c["event"] for c in captured] == ["request"] and stdout.getvalue() == ""
    configure(stdout, "console")
    log_request(fields())
    assert "GET /v1/jobs/{job_id} 200" in stdout.getvalue()  # the console's own line
    configure(stdout, level="warning")
    before = stdout.getvalue()
    log_request(fields())
    assert stdout.getvalue() == before  # below the level: nothing
