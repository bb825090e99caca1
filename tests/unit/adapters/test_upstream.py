"""Upstream: Retry-After parsing, error mapping, size caps, redirects, retries, request id."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamJobNotFound,
)
from adapters.upstream import (
    REQUEST_ID,
    Upstream,
    UpstreamResponse,
    UpstreamSettings,
    message_from_body,
    parse_retry_after,
)


class TestParseRetryAfter:
    NOW = 1_700_000_000.0

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2", 2.0),
            ("0", 0.0),
            ("999999", 60.0),
            ("", None),
            (None, None),
            ("soon", None),
            ("-5", None),
            ("1.5", None),
        ],
        ids=["seconds", "zero", "clamped", "empty", "missing", "garbage", "negative", "fraction"],
    )
    def test_seconds_and_garbage(self, value, expected):
        assert parse_retry_after(value, maximum=60, now=self.NOW) == expected

    def test_http_date(self):
        when = datetime.fromtimestamp(self.NOW, UTC) + timedelta(seconds=30)
        got = parse_retry_after(format_datetime(when, usegmt=True), maximum=60, now=self.NOW)
        assert got == pytest.approx(30, abs=1)

    def test_http_date_in_the_past_is_zero(self):
        when = datetime.fromtimestamp(self.NOW, UTC) - timedelta(seconds=30)
        assert parse_retry_after(format_datetime(when, usegmt=True), maximum=60, now=self.NOW) == 0


def resp(
    status: int, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> UpstreamResponse:
    return UpstreamResponse(status=status, headers=headers or {}, body=body, provider="p")


class TestRaiseForStatus:
    up = Upstream(UpstreamSettings(provider="p", base_url="http://127.0.0.1:1"))

    @pytest.mark.parametrize(
        ("status", "error", "code"),
        [
            (400, ProviderRejected, "provider_rejected"),
            (401, ProviderBadResponse, "provider_error"),
            (403, ProviderBadResponse, "provider_error"),
            (404, UpstreamJobNotFound, "not_found"),
            (422, ProviderRejected, "provider_rejected"),
            (429, ProviderUnavailable, "provider_unavailable"),
            (500, ProviderBadResponse, "provider_error"),
            (503, ProviderUnavailable, "provider_unavailable"),
            (504, ProviderTimeout, "provider_timeout"),
            (302, ProviderBadResponse, "provider_error"),
        ],
        ids=lambda v: str(v) if isinstance(v, int) else None,
    )
    def test_maps_status(self, status, error, code):
        with pytest.raises(error) as info:
            self.up.raise_for_status(resp(status))
        assert info.value.code == code

    def test_ok_passes(self):
        self.up.raise_for_status(resp(200))

    def test_refused_credential_does_not_repeat_the_provider(self):
        body = b'{"message": "key sk-SECRET is invalid"}'
        with pytest.raises(ProviderBadResponse) as info:
            self.up.raise_for_status(resp(401, body))
        assert "SECRET" not in info.value.detail

    def test_rejection_carries_the_provider_message(self):
        with pytest.raises(ProviderRejected) as info:
            self.up.raise_for_status(resp(400, b'{"message": "input too long"}'))
        assert "input too long" in info.value.detail

    def test_429_carries_retry_after(self):
        with pytest.raises(ProviderUnavailable) as info:
            self.up.raise_for_status(resp(429, headers={"Retry-After": "7"}))
        assert info.value.headers["Retry-After"] == "7"

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b'{"message": "m"}', "m"),
            (b'{"detail": "d"}', "d"),
            (
                b'{"detail": [{"loc": ["body", "rules"], "msg": "field required"}]}',
                "rules: field required",
            ),
            (b"not json", None),
            (b"[1]", None),
        ],
        ids=["message", "detail", "fastapi", "not-json", "array"],
    )
    def test_message_from_body(self, body, expected):
        assert message_from_body(resp(400, body)) == expected


@pytest.fixture
async def server():
    seen: dict[str, object] = {"count": 0}

    async def flaky(request: web.Request) -> web.Response:
        seen["count"] = int(seen["count"]) + 1  # type: ignore[call-overload]
        if int(seen["count"]) < 3:  # type: ignore[call-overload]
            return web.json_response({"message": "busy"}, status=503)
        return web.json_response({"ok": True})

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/target")

    async def target(request: web.Request) -> web.Response:
        seen["target"] = True
        return web.json_response({})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"rid": request.headers.get("X-Request-ID")})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def post_fail(request: web.Request) -> web.Response:
        seen["posts"] = int(seen.get("posts", 0)) + 1  # type: ignore[call-overload]
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/big", big)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/target", target)
    app.router.add_get("/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_post("/post", post_fail)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv, seen
    await srv.close()


async def make(srv: TestServer, **over) -> Upstream:
    up = Upstream(
        UpstreamSettings(
            provider="p",
            base_url=str(srv.make_url("/")),
            backoff_base=0.01,
            backoff_cap=0.05,
            **over,
        )
    )
    await up.start()
    return up


class TestUpstreamOverHttp:
    async def test_retries_a_read_on_503_then_succeeds(self, server):
        srv, seen = server
        up = await make(srv, retries=2)
        try:
            r = await up.request("GET", "/flaky", operation="status")
        finally:
            await up.close()
        assert r.status == 200
        assert seen["count"] == 3

    async def test_does_not_retry_a_submit_that_reached_the_provider(self, server):
        srv, seen = server
        up = await make(srv, retries=2)
        try:
            r = await up.request("POST", "/post", operation="submit", json_body={})
        finally:
            await up.close()
        assert r.status == 503
        assert seen["posts"] == 1

    async def test_caps_the_response_size(self, server):
        srv, _ = server
        up = await make(srv, max_response_bytes=1024)
        try:
            with pytest.raises(ProviderBadResponse, match="larger than"):
                await up.request("GET", "/big", operation="results")
        finally:
            await up.close()

    async def test_never_follows_a_redirect(self, server):
        srv, seen = server
        up = await make(srv)
        try:
            r = await up.request("GET", "/redirect", operation="status")
            with pytest.raises(ProviderBadResponse):
                up.raise_for_status(r)
        finally:
            await up.close()
        assert "target" not in seen

    async def test_forwards_the_request_id(self, server):
        srv, _ = server
        up = await make(srv)
        token = REQUEST_ID.set("rid-123")
        try:
            r = await up.request("GET", "/echo", operation="status")
        finally:
            REQUEST_ID.reset(token)
            await up.close()
        assert r.json() == {"rid": "rid-123"}

    async def test_read_timeout_becomes_provider_timeout(self, server):
        srv, _ = server
        up = await make(srv, read_timeout=0.2, retries=0)
        try:
            started = time.monotonic()
            with pytest.raises(ProviderTimeout):
                await up.request("GET", "/slow", operation="status")
            assert time.monotonic() - started < 2
        finally:
            await up.close()

    async def test_connection_refused_becomes_provider_unavailable(self):
        up = Upstream(UpstreamSettings(provider="p", base_url="http://127.0.0.1:9", retries=0))
        await up.start()
        try:
            with pytest.raises(ProviderUnavailable):
                await up.request("GET", "/x", operation="status")
        finally:
            await up.close()

    async def test_absolute_url_must_share_the_origin(self, server):
        srv, _ = server
        up = await make(srv)
        try:
            with pytest.raises(ProviderBadResponse, match="another host"):
                await up.request("GET", "", operation="x", absolute_url="http://169.254.169.254/")
        finally:
            await up.close()


class TestSignedUrls:
    BASE = "http://provider.test:8080/api"

    @pytest.mark.parametrize(
        ("url", "allowed"),
        [
            ("https://bucket.s3.amazonaws.com/export.zip?X-Amz-Signature=abc", True),
            ("http://provider.test:8080/files/export.zip?signature=abc", True),
            ("http://bucket.s3.amazonaws.com/export.zip", False),
            ("http://provider.test:9999/export.zip", False),
            ("ftp://bucket.example/export.zip", False),
            ("/relative/export.zip", False),
            ("https:///no-host", False),
            ("https://127.0.0.1:9/x.zip", False),
            ("https://10.1.2.3/x.zip", False),
            ("https://169.254.169.254/latest/meta-data", False),
            ("https://[::1]/x.zip", False),
            ("https://[fd00::1]/x.zip", False),
            ("https://8.8.8.8/x.zip", True),
        ],
        ids=[
            "https-elsewhere",
            "own-origin",
            "http-elsewhere",
            "other-port",
            "ftp",
            "relative",
            "no-host",
            "loopback-literal",
            "private-literal",
            "metadata-service",
            "ipv6-loopback",
            "ipv6-private",
            "public-literal",
        ],
    )
    def test_https_anywhere_or_the_providers_own_origin(self, url, allowed):
        from adapters.upstream import signed_url_allowed

        assert signed_url_allowed(url, self.BASE) is allowed

    async def test_an_https_link_elsewhere_is_tried_and_plain_http_is_not(self):
        """Allowed, so it is really tried (here: nothing listens, so 503 not 502)."""
        up = Upstream(
            UpstreamSettings(
                provider="p",
                base_url="http://127.0.0.1:1",
                connect_timeout=1,
                retries=0,
                headers={"Authorization": "Bearer secret"},
            )
        )
        await up.start()
        try:
            with pytest.raises(ProviderUnavailable):
                await up.request(
                    "GET", "", operation="results", signed_url="https://localhost:9/x.zip"
                )
            with pytest.raises(ProviderBadResponse, match="not https"):
                await up.request("GET", "", operation="results", signed_url="http://10.0.0.1/x")
        finally:
            await up.close()
