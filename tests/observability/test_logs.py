"""T-O3: logs are JSON lines with a request id, one canonical line per request, no credential.

The end-to-end check runs a real ``gateway serve`` process (JSON logging, as in
production) in front of the Modzy simulator and reads every line it wrote to stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from adapters.modzy import PROVIDER_TYPE, SIMULATOR_KEY
from adapters.simulation import SIM_CONTROL, Fault
from gateway.auth.settings import hash_api_key
from gateway.observability.logging import REDACTED, redact, redact_text, scrub
from tests.observability.support import ROOT

KEY = "obs-test-key-5f2a9c0d1e"
WRONG_KEYS = ("Bearer wrong-secret-abcdef123", "another-wrong-secret-987")
QUERY_SECRET = "query-secret-4455667788"
SECRETS = (KEY, SIMULATOR_KEY, "wrong-secret-abcdef123", "another-wrong-secret-987", QUERY_SECRET)
CANONICAL_FIELDS = {
    "request_id", "method", "route", "path", "status", "duration_ms", "upstream_ms",
    "provider", "cache", "tenant", "key_id", "level", "timestamp",
}  # fmt: skip


class TestRedaction:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("Bearer abc.def-123", f"Bearer {REDACTED}"),
            ("apikey sk-123456", f"apikey {REDACTED}"),
            ("Basic dXNlcjpwYXNz", f"Basic {REDACTED}"),
            ("Authorization: ApiKey sk-xyz", f"Authorization: {REDACTED}"),
            ("headers {'X-API-Key': 'k-123456'}", f"headers {{'X-API-Key': '{REDACTED}'}}"),
            ("GET /v1/jobs?api_key=abcd1234&x=1", f"GET /v1/jobs?api_key={REDACTED}&x=1"),
            ('{"password": "hunter22"}', f'{{"password": "{REDACTED}"}}'),
            ("job_3fa9 finished in 2 s", "job_3fa9 finished in 2 s"),
            # F5 (issue 19): whatever the scheme, an Authorization header's credential goes
            ("Authorization: Api-Key ak-123456", f"Authorization: {REDACTED}"),
            ("{'authorization': 'Api-Key ak-123456'}", f"{{'authorization': '{REDACTED}'}}"),
            ("Proxy-Authorization: Negotiate YIIabc=", f"Proxy-Authorization: {REDACTED}"),
            ("Authorization: Token tk-99\r\nAccept: x", f"Authorization: {REDACTED}\r\nAccept: x"),
            ("Authorization=sk-1 next", f"Authorization={REDACTED}"),
            ("sent Api-Key ak-123456", f"sent Api-Key {REDACTED}"),
        ],
        ids=["bearer", "apikey-scheme", "basic", "header-line", "header-dict-repr", "query",
             "json-field", "harmless", "header-any-scheme", "header-any-scheme-repr",
             "proxy-header", "header-then-next-line", "header-no-scheme", "api-key-scheme"],
    )  # fmt: skip
    def test_credentials_inside_strings(self, value, expected):
        assert scrub(value) == expected

    def test_secret_keys_at_any_depth_and_ids_kept(self):
        event = {
            "event": "call",
            "headers": {"Authorization": "x", "Accept": "application/json"},
            "nested": [{"access_token": "t"}, ("Bearer zzz-123",)],
            "key_id": "acme-svc",
            "api_key": "k",
            "item": {"accessKey": "modzy-key-id", "model": "m"},
        }
        out = redact(None, "info", event)
        assert out["item"] == {"accessKey": REDACTED, "model": "m"}
        assert out["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
        assert out["nested"] == [{"access_token": REDACTED}, [f"Bearer {REDACTED}"]]
        assert out["key_id"] == "acme-svc" and out["api_key"] == REDACTED


#: Every word the patterns look for, as written in them.
_WORDS = ("authorization", "proxy-authorization", "x-api-key", "api_key", "api-key", "apikey",
          "password", "secret", "access_token", "token", "cookie", "bearer", "basic")  # fmt: skip


def _variants(word: str) -> list[str]:
    """The word as a caller may write it, including letters IGNORECASE folds onto ASCII
    ones that lower() does not (the long s, the dotted capital I) or does (Kelvin sign)."""
    return [
        word,
        word.upper(),
        word.title(),
        word.replace("s", "\u017f"),
        word.replace("i", "\u0130"),
        word.replace("k", "\u212a"),
    ]


def _regexes_only(value: str) -> str:
    return redact_text(value)


_CHUNKS = st.tuples(
    st.sampled_from(["", "x ", "/v1/jobs?", "{'", "job_3fa9 "]),
    st.sampled_from(_WORDS).flatmap(lambda w: st.sampled_from(_variants(w))),
    st.sampled_from(["=", ": ", " ", "':'", '": "', ",", ""]),
    st.sampled_from(["abc123", "sk-9f8e", "Bearer xyz-1", ""]),
).map("".join)
_TEXT = st.one_of(st.lists(_CHUNKS, min_size=1, max_size=4).map(" ".join), st.text(max_size=40))


class TestRedactionFastPath:
    """Text the cheap pre-check lets through untouched is text the patterns would not change."""

    @pytest.mark.parametrize("word", _WORDS)
    def test_every_word_of_the_patterns_in_every_case_is_redacted(self, word):
        for variant in _variants(word):
            for value in (f"{variant}=sk-9f8e7", f"{variant} sk-9f8e7", f"x {variant}: sk-9f8e7"):
                assert scrub(value) == _regexes_only(value), value
                line = redact(None, "info", {"event": "e", "path": "/v1/jobs", "detail": value})
                assert line["detail"] == _regexes_only(value), value

    @given(_TEXT)
    def test_a_string_is_redacted_as_by_the_patterns_alone(self, value):
        assert scrub(value) == _regexes_only(value)

    @given(st.lists(st.one_of(_TEXT, st.integers(), st.none()), max_size=6))
    def test_a_line_is_redacted_field_by_field(self, values):
        event = {f"field{i}": v for i, v in enumerate(values)}
        out = redact(None, "info", dict(event))
        for key, value in event.items():
            assert out[key] == (_regexes_only(value) if isinstance(value, str) else value)


STDLIB_SCRIPT = textwrap.dedent(
    """
    import logging, warnings, structlog
    from gateway.observability.logging import configure_logging
    configure_logging("json", "info")
    structlog.contextvars.bind_contextvars(request_id="rid-123")
    logging.getLogger("aiohttp.server").error("bad header Authorization: Bearer std-secret-1")
    warnings.warn("deprecated thing")
    try:
        raise ValueError("token=exc-secret-2 refused")
    except ValueError:
        logging.getLogger("redis").exception("redis failed")
        structlog.get_logger("gateway").exception("boom", headers={"x-api-key": "kv-secret-3"})
    """
)


def test_stdlib_logs_go_through_the_same_json_pipeline():
    """aiohttp, redis and warnings lines are JSON, carry the request id, and are redacted."""
    proc = subprocess.run(
        [sys.executable, "-c", STDLIB_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.stderr == ""
    assert [e.get("logger") for e in lines] == ["aiohttp.server", "py.warnings", "redis", None]
    assert all(e["request_id"] == "rid-123" for e in lines)
    assert all("level" in e and "timestamp" in e for e in lines)
    assert lines[2]["exception"][0]["exc_type"] == "ValueError"  # traceback as data
    assert lines[3]["exception"][0]["exc_type"] == "ValueError"
    for secret in ("std-secret-1", "exc-secret-2", "kv-secret-3"):
        assert secret not in proc.stdout


CONSOLE_SCRIPT = textwrap.dedent(
    """
    import logging, structlog
    from gateway.observability.logging import configure_logging
    configure_logging("console", "info")
    log = structlog.get_logger("gateway.access")
    log.info("request", method="GET", path="/v1/\\x1b[2J\\x1b]0;pwned\\x07\\x00x")
    log.info("request", method="GET", path="/v1/\\r\\nfake line")
    logging.getLogger("aiohttp.server").warning("bad path /\\x1b[31mred\\x9b")
    try:
        raise ValueError("in /\\x1b[1mbold")
    except ValueError:
        log.exception("boom")
    """
)


def test_console_lines_escape_control_characters():
    """F4 (issue 19): no raw ESC, NUL, BEL, CR or C1 control reaches a terminal from a
    path a caller wrote; a traceback keeps its line breaks."""
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    out = proc.stdout
    assert proc.stderr == ""
    for raw in ("\x1b", "\x00", "\x07", "\r", "\x9b"):
        assert raw not in out, repr(raw)
    assert "path='/v1/\\x1b[2J\\x1b]0;pwned\\x07\\x00x'" in out  # as repr() writes it
    assert "/\\x1b[31mred\\x9b" in out
    assert "\\x1b[1mbold" in out
    lines = out.splitlines()
    assert not any(line.startswith("fake line") for line in lines)
    assert any(line.startswith("Traceback") for line in lines)  # the traceback's own breaks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_config(tmp_path: Path, sim_url: str) -> Path:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            logging: {{format: json, level: info}}
            providers:
              - name: modzy
                type: modzy
                base_url: {sim_url}/api
                credential: {{env: OBS_TEST_MODZY_KEY}}
                timeouts: {{connect: 2, read: 5, total: 10}}
                models: [{{id: ed542963de, version: "1.0.1", output_type: classification}}]
            aliases: {{sentiment: modzy/ed542963de@1.0.1}}
            api_keys:
              - id: acme-svc
                sha256: {hash_api_key(KEY)}
                tenant: acme
                scopes: [jobs:read, jobs:write]
            """
        )
    )
    return config


async def exercise(base: str, sim: Any) -> tuple[list[str], str]:
    """Requests of every kind; returns the X-Request-ID of each answer the application
    wrote, and that of the 400 aiohttp's parser wrote."""
    ids: list[str] = []
    bearer = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(base) as s:

        async def call(method: str, path: str, **kw: Any) -> Any:
            async with s.request(method, path, **kw) as r:
                ids.append(r.headers["X-Request-ID"])
                return r.status, await r.json(content_type=None)

        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}
        status, job = await call(
            "POST", "/v1/jobs", json=body, headers={**bearer, "Prefer": "wait=5"}
        )
        assert status == 200, job
        status, _ = await call(
            "GET", f"/v1/jobs/{job['id']}", headers={"X-API-Key": KEY, "X-Request-ID": "obs-rid-1"}
        )
        assert status == 200 and ids[-1] == "obs-rid-1"
        assert (await call("GET", f"/v1/jobs/{job['id']}/results", headers=bearer))[0] == 200
        assert (await call("GET", "/v1/jobs", headers={"Authorization": WRONG_KEYS[0]}))[0] == 401
        assert (await call("GET", "/v1/jobs", headers={"X-API-Key": WRONG_KEYS[1]}))[0] == 401
        assert (await call("GET", f"/v1/jobs?api_key={QUERY_SECRET}", headers=bearer))[0] == 200
        assert (await call("GET", "/no/such/route"))[0] == 404
        sim.set_faults([Fault(kind="status", status=500, match="POST", times=1)])
        assert (await call("POST", "/v1/jobs", json=body, headers=bearer))[0] == 502
    # A request aiohttp cannot parse never reaches the app; its log line must be JSON too.
    reader, writer = await asyncio.open_connection(*base.removeprefix("http://").split(":"))
    writer.write(b"GET / HTTP/1.1\r\nBad Name: Bearer " + KEY.encode() + b"\r\n\r\n")
    await writer.drain()
    answer = (await reader.read()).decode("latin-1")
    writer.close()
    await writer.wait_closed()
    parser_id = answer.split("X-Request-ID: ", 1)[1].split("\r\n", 1)[0]
    return ids, parser_id


async def test_serve_writes_only_json_lines_with_request_ids_and_no_credentials(tmp_path):
    sim_app = PROVIDER_TYPE.fast_simulator(None)
    async with TestServer(sim_app, host="127.0.0.1") as sim:
        port = free_port()
        config = serve_config(tmp_path, str(sim.make_url("")).rstrip("/"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port),
            cwd=ROOT,
            env={**os.environ, "OBS_TEST_MODZY_KEY": SIMULATOR_KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            ready_ids = await wait_ready(base, proc)
            exercised, parser_id = await exercise(base, sim_app[SIM_CONTROL])
            ids = ready_ids + exercised
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)  # what Kubernetes sends
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    out, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, err
    assert err == ""
    for secret in SECRETS:
        assert secret not in out, secret

    lines = [json.loads(line) for line in out.splitlines() if line.strip()]  # every line is JSON
    assert lines[0]["event"] == "serving"
    assert lines[0]["listening_on"] == f"http://127.0.0.1:{port}"
    assert lines[0]["providers"] == ["modzy"] and lines[0]["engine"] == "on"
    assert lines[0]["redis"].startswith("none")
    assert lines[-1]["event"] == "stopped"
    requests = [e for e in lines if e["event"] == "request"]
    # One canonical line per request, carrying the id the caller saw.
    assert [e["request_id"] for e in requests] == ids
    for e in requests:
        assert set(e) >= CANONICAL_FIELDS, CANONICAL_FIELDS - set(e)
        assert "?" not in e["path"]
    done = [e for e in requests if e["route"] == "/v1/jobs" and e["status"] == 200]
    assert done[0]["tenant"] == "acme" and done[0]["key_id"] == "acme-svc"
    assert done[0]["provider"] == "modzy" and done[0]["upstream_ms"] > 0
    assert done[0]["job_id"].startswith("job_")  # the submit's line names the new job
    # Lines written inside a request carry its id; the rest are process-level.
    # The unparseable request's line carries the id its 400 answer carried.
    unparsed = [e for e in lines if e["event"] == "bad_http_request"]
    assert [e["request_id"] for e in unparsed] == [parser_id]
    in_request = [e for e in lines if "request_id" in e and e not in unparsed]
    assert {e["request_id"] for e in in_request} == set(ids)
    outside = [e for e in lines if "request_id" not in e]
    # Start-up and the drain, aiohttp's own lines, and the job engine's work, which no
    # request does (its lines carry the job id instead).
    allowed = {"serving", "draining", "stopped", "aiohttp.server", "engine_job_finished"}
    assert all("job_id" in e for e in outside if e["event"].startswith("engine_"))
    assert {e.get("logger") or e["event"] for e in outside} <= allowed, outside
    assert any(e["event"] == "provider_error" for e in in_request)


async def wait_ready(base: str, proc: asyncio.subprocess.Process) -> list[str]:
    ids = []
    async with aiohttp.ClientSession() as s:
        for _ in range(150):
            assert proc.returncode is None, await proc.communicate()
            try:
                async with s.get(f"{base}/healthz") as r:
                    ids.append(r.headers["X-Request-ID"])
                    return ids
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    pytest.fail("gateway serve did not start in 15 s")
