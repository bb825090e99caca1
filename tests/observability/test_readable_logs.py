"""Logs a person can read: the console format's short lines, and what each line says.

The JSON format keeps every field (``test_logs``); the console format drops empty
fields and says a request in its first words.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

from tests.conftest import AUTH
from tests.observability.support import ROOT

CONSOLE_REQUEST = textwrap.dedent(
    """
    import structlog
    from gateway.observability.logging import configure_logging
    configure_logging("console", "info")
    structlog.contextvars.bind_contextvars(request_id="4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e")
    log = structlog.get_logger("gateway.access")
    common = dict(upstream_ms=0.0, wait_ms=0.0, tenant="acme", key_id="acme-svc",
                  ratelimit="allowed")
    log.info("request", method="POST", route="/v1/jobs", path="/v1/jobs", status=202,
             duration_ms=14.27, provider="modzy", job_id="job_Q2x9fJ3kLm0pRt5vWy8zAb",
             cache="miss", **common)
    log.info("request", method="GET", route="/healthz", path="/healthz", status=200,
             duration_ms=0.4, provider=None, job_id=None, cache=None, **common)
    log.info("request", method="GET", route="/v1/jobs/{job_id}", path="/v1/jobs/x",
             status=502, duration_ms=31.0, provider="vody", job_id="job_x", cache=None,
             **common)
    log.info("breaker_opened", provider="vody", reason=None)
    """
)


def test_console_request_lines_are_short_and_have_no_empty_fields():
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_REQUEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    submit, health, failed, other = lines
    assert "POST /v1/jobs 202 14ms" in submit
    for part in ("job=job_Q2x9fJ3kLm0pRt5vWy8zAb", "provider=modzy", "cache=miss"):
        assert part in submit
    # Filler and what the first words already say are gone; the tenant is in JSON only.
    for gone in ("None", "request_id", "tenant", "ratelimit", "upstream_ms", "path=", "status="):
        assert gone not in submit, gone
    assert len(submit) <= 120, (len(submit), submit)
    assert submit[2] == ":" and submit[5] == ":"  # the time of day first: HH:MM:SS
    assert "GET /healthz 200 0ms" in health and "None" not in health
    assert len(health) <= 80, health
    # A 5xx keeps the request id: someone will look it up.
    assert "request_id=4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e" in failed
    assert "breaker_opened" in other and "reason" not in other


class TestWhatLinesSay:
    async def test_submit_line_names_the_new_job_and_reads_name_theirs(
        self, make_gateway, captured_logs
    ):
        gw = await make_gateway(["modzy"])
        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}
        resp = await gw.client.post("/v1/jobs", json=body, headers=AUTH)
        job = await resp.json()
        assert resp.status == 202, job
        assert (await gw.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).status == 200
        requests = [e for e in captured_logs if e.get("event") == "request"]
        assert [(e["route"], e["job_id"]) for e in requests] == [
            ("/v1/jobs", job["id"]),
            ("/v1/jobs/{job_id}", job["id"]),
        ]

    async def test_each_provider_call_is_logged_at_debug(self, make_gateway, captured_logs):
        gw = await make_gateway(["modzy"])
        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}
        assert (await gw.client.post("/v1/jobs", json=body, headers=AUTH)).status == 202
        calls: list[dict[str, Any]] = [
            e for e in captured_logs if e.get("event") == "provider_call"
        ]
        assert calls, captured_logs
        assert all(e["log_level"] == "debug" for e in calls)
        submit = next(e for e in calls if e["operation"] == "submit")
        assert submit["provider"] == "modzy" and submit["method"] == "POST"
        assert submit["status"] == 200 and submit["ms"] >= 0 and submit["attempt"] == 1
        assert all("url" not in e for e in calls)
