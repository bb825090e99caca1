"""T-R1..R5: body and header limits, slow clients, paging caps, what answers give away."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.base import Capabilities, InputKind
from gateway.config.settings import ServerSettings
from gateway.http.app import create_app
from gateway.http.metrics_server import metrics_site_ctx
from tests.conftest import AUTH, SECRETS, make_settings

LEAKS = re.compile(r"Traceback|File \"|/work/|site-packages|aiohttp|Python/3|\.py\b", re.I)


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    await writer.wait_closed()
    return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


class TestBodyLimit:
    async def test_over_the_limit_is_413_before_any_handler_runs(self, aiohttp_client):
        """T-R1, with a declared length and with a chunked body."""
        settings = make_settings([], max_body_bytes=4096)
        app = create_app(settings, registry=CollectorRegistry())
        calls = []

        async def probe(request: web.Request) -> web.Response:
            calls.append(await request.read())
            return web.json_response({"bytes": len(calls[-1])})

        app.router.add_post("/v1/probe", probe)
        client = await aiohttp_client(app)

        async def chunks(n: int) -> Any:
            for _ in range(n):
                yield b"x" * 1024

        big = b"x" * 5000
        for kwargs in ({"data": big}, {"data": chunks(5)}):
            resp = await client.post("/v1/probe", headers=AUTH, **kwargs)
            body = await resp.json(content_type=None)
            assert resp.status == 413, body
            assert body["code"] == "payload_too_large"
        # and without a credential too: no handler, no authentication work
        assert (await client.post("/v1/probe", data=big)).status == 413
        assert calls == []
        ok = await client.post("/v1/probe", headers=AUTH, data=chunks(3))
        assert ok.status == 200 and (await ok.json()) == {"bytes": 3072}


class TestHeaderLimits:
    async def test_oversized_and_too_many_headers_are_400_not_5xx(
        self, aiohttp_client, captured_logs
    ):
        """T-R2: aiohttp's parser answers, with no library, version or echoed bytes."""
        client = await aiohttp_client(create_app(make_settings([]), registry=CollectorRegistry()))
        port = client.port
        assert port is not None
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        cases = {
            "line-at-limit": (head + b"X-A: " + b"a" * 8190 + b"\r\n\r\n", 200),
            "line-over-limit": (head + b"X-A: " + b"a" * 8191 + b"\r\n\r\n", 400),
            "url-over-limit": (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            "128-headers": (head + b"".join(b"X-%d: v\r\n" % i for i in range(126)) + b"\r\n", 200),
            "129-headers": (head + b"".join(b"X-%d: v\r\n" % i for i in range(127)) + b"\r\n", 400),
            "secret-in-long-line": (
                head + b"Authorization: Bearer " + SECRETS[0].encode() + b"a" * 9000 + b"\r\n\r\n",
                400,
            ),
            "not-http": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
            "unknown-method-token": (b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        }
        for name, (data, expected) in cases.items():
            answer = await raw_request(port, data)
            assert status_of(answer) == expected, (name, answer[:200])
            head_part, body = answer.decode("latin-1").split("\r\n\r\n", 1)
            assert "Server: inference-gateway" in head_part, name
            assert "aiohttp" not in head_part and "Python" not in head_part, name
            if expected == 400:
                assert "application/problem+json" in head_part, name
                assert json.loads(body)["code"] == "bad_http_request", name
                assert "aaaa" not in body and SECRETS[0] not in body, name
        logged = json.dumps(captured_logs, default=str)
        assert SECRETS[0] not in logged and "aaaa" not in logged
        assert any(e.get("event") == "bad_http_request" for e in captured_logs)

    async def test_parser_answers_carry_nosniff_and_a_request_id(
        self, aiohttp_client, captured_logs
    ):
        """F3 (issue 19): a 400 written by aiohttp's parser has the headers every answer has."""
        client = await aiohttp_client(create_app(make_settings([]), registry=CollectorRegistry()))
        port = client.port
        assert port is not None
        ids = set()
        for data in (
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /\x1b HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-Request-ID: mine-1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        ):
            answer = await raw_request(port, data)
            assert status_of(answer) == 400, answer[:200]
            head, body = answer.decode("latin-1").split("\r\n\r\n", 1)
            headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
            assert headers["X-Content-Type-Options"] == "nosniff"
            request_id = headers["X-Request-ID"]
            assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id  # never the caller's
            assert json.loads(body)["request_id"] == request_id
            ids.add(request_id)
        assert len(ids) == 4
        logged = [
            e.get("request_id") for e in captured_logs if e.get("event") == "bad_http_request"
        ]
        assert set(logged) == ids


class TestSlowClients:
    async def test_healthz_stays_fast_while_200_clients_dribble_headers(self, aiohttp_client):
        """T-R3, bounded: 200 connections send a header byte every 0.1 s for about 1 s."""
        client = await aiohttp_client(create_app(make_settings([]), registry=CollectorRegistry()))
        port = client.port
        assert port is not None
        rss_before = _rss_bytes()
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
        for _, writer in conns:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")

        async def dribble() -> None:
            for _ in range(10):
                for _, writer in conns:
                    writer.write(b"a")
                await asyncio.sleep(0.1)

        dripping = asyncio.ensure_future(dribble())
        latencies = []
        while not dripping.done():
            started = time.perf_counter()
            resp = await client.get("/healthz")
            assert resp.status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        await dripping
        for _, writer in conns:
            writer.close()
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        assert len(latencies) >= 20
        assert p99 < 0.1, p99
        assert _rss_bytes() - rss_before < 50 * 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb * 1024


class TestPagingCaps:
    async def test_page_sizes_are_clamped_and_batches_capped(self, make_gateway):
        """T-R4."""
        h = await make_gateway(["modzy"], max_inputs_per_job=3)
        for size in ("1000000000", "-5", "0"):
            resp = await h.client.get(f"/v1/jobs?page_size={size}", headers=AUTH)
            assert resp.status == 200, size
        assert (await h.client.get("/v1/jobs?page_size=ten", headers=AUTH)).status == 422
        inputs = [{"name": f"i{n}", "text": "x"} for n in range(4)]
        resp = await h.client.post(
            "/v1/jobs", json={"model": "sentiment", "inputs": inputs}, headers=AUTH
        )
        body = await resp.json()
        assert resp.status == 422, body
        assert body["code"] == "validation_failed"
        assert h.sim.count("POST") == 0


class Broken:
    """An adapter that fails in a way nobody planned for, with internals in the message."""

    name = "modzy"
    capabilities = Capabilities(input_kinds=frozenset({InputKind.TEXT}), output_types=frozenset())

    def validate(self, request: Any) -> None:
        return None

    async def submit(self, request: Any) -> Any:
        raise RuntimeError(f"boom in /work/main/gateway/jobs.py with key {SECRETS[0]}")

    async def status(self, job: Any) -> Any:
        raise AssertionError

    async def results(self, job: Any) -> Any:
        raise AssertionError


class TestWhatAnswersGiveAway:
    async def test_500_reveals_nothing(self, make_gateway, captured_logs):
        """T-R5: no traceback, path, version or credential in a 5xx body."""
        h = await make_gateway(["modzy"], adapters={"modzy": Broken()})
        body = {"model": "sentiment", "inputs": [{"name": "a", "text": "x"}]}
        resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
        text = await resp.text()
        assert resp.status == 500, text
        assert resp.content_type == "application/problem+json"
        assert not LEAKS.search(text), text
        assert all(s not in text for s in SECRETS)
        assert resp.headers["Server"] == "inference-gateway"
        assert any(e.get("event") == "unhandled_error" for e in captured_logs)

    async def test_unknown_methods_are_405_and_cors_is_off(self, make_gateway):
        h = await make_gateway(["modzy"])
        for method in ("PUT", "PATCH", "TRACE", "PROPFIND"):
            resp = await h.client.request(method, "/v1/jobs", headers=AUTH)
            assert resp.status == 405, method
            assert (await resp.json(content_type=None))["code"] == "method_not_allowed"
        # F6 (issue 19): CONNECT too, whatever its target (aiohttp reads it as a host, no path)
        port = h.client.port
        assert port is not None
        for target in (b"example.com:443", b"/v1/jobs", b"127.0.0.1:6379"):
            answer = await raw_request(
                port, b"CONNECT %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target
            )
            head, body = answer.decode("latin-1").split("\r\n\r\n", 1)
            assert status_of(answer) == 405, (target, answer[:200])
            assert "application/problem+json" in head and "\r\nAllow: " in head
            assert json.loads(body)["code"] == "method_not_allowed"
        preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        for method, path in (("OPTIONS", "/v1/jobs"), ("GET", "/healthz"), ("GET", "/v1/jobs")):
            resp = await h.client.request(method, path, headers={**AUTH, **preflight})
            assert not [k for k in resp.headers if k.lower().startswith("access-control-")]
            assert resp.status < 500

    async def test_security_headers(self, make_gateway):
        h = await make_gateway(["modzy"])
        authed = await h.client.get("/v1/jobs", headers=AUTH)
        assert authed.headers["X-Content-Type-Options"] == "nosniff"
        assert authed.headers["Cache-Control"] == "no-store"
        for resp in (await h.client.get("/healthz"), await h.client.get("/v1/jobs")):
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Server"] == "inference-gateway"

    async def test_metrics_on_their_own_port(self, aiohttp_client, unused_tcp_port):
        settings = make_settings([], server=ServerSettings(metrics_on_main_port=False))
        app = create_app(settings, registry=CollectorRegistry())
        app.cleanup_ctx.append(metrics_site_ctx("127.0.0.1", unused_tcp_port))
        client = await aiohttp_client(app)
        assert (await client.get("/metrics")).status == 404
        await client.get("/healthz")
        async with TestClient(TestServer(web.Application())) as other:
            base = f"http://127.0.0.1:{unused_tcp_port}"
            resp = await other.session.get(f"{base}/metrics")
            text = await resp.text()
            assert resp.status == 200
            assert 'gateway_http_requests_total{code="200",method="GET",route="/healthz"}' in text
            assert resp.headers["Server"] == "inference-gateway"
            assert (await other.session.get(f"{base}/v1/jobs", headers=AUTH)).status == 404
            assert (await other.session.post(f"{base}/metrics")).status == 405
