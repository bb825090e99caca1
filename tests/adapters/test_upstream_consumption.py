"""T-U8, unsafe consumption of a provider's answers (OWASP API10), over loopback HTTP.

A 50 MB body is cut at the cap (10 MB) and is a 502; a body that is not JSON is a 502,
never a 500; a redirect to another local port is not followed (its target sees 0
requests); a body that stalls is aborted at ``sock_read`` (1 s here, 30 s by default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.errors import ProviderBadResponse, ProviderTimeout
from adapters.upstream import Upstream, UpstreamSettings

MB = 1024 * 1024
CAP = 10 * MB


@dataclass
class Servers:
    provider: TestServer
    canary: TestServer
    canary_hits: list[str] = field(default_factory=list)
    streamed: list[int] = field(default_factory=list)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    canary_hits: list[str] = []
    streamed: list[int] = []

    async def canary(request: web.Request) -> web.Response:
        canary_hits.append(request.path)
        return web.json_response({"secret": "internal"})

    canary_app = web.Application()
    canary_app.router.add_route("*", "/{tail:.*}", canary)
    canary_server = TestServer(canary_app, host="127.0.0.1")
    await canary_server.start_server()

    async def declared_50mb(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(50 * MB)})
        await resp.prepare(request)
        await resp.write(b"x" * 65536)
        return resp

    async def chunked_50mb(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        try:
            while sent < 50 * MB:
                await resp.write(b"x" * MB)
                sent += MB
        finally:
            streamed.append(sent)
        return resp

    async def not_json(request: web.Request) -> web.Response:
        return web.Response(text='{"oops": [1, 2', content_type="application/json")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(canary_server.make_url("/steal")))

    async def stalled(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b'{"partial": ')
        await asyncio.sleep(10)
        return resp

    app = web.Application()
    app.router.add_get("/declared", declared_50mb)
    app.router.add_get("/chunked", chunked_50mb)
    app.router.add_get("/not-json", not_json)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/stalled", stalled)
    provider = TestServer(app, host="127.0.0.1")
    await provider.start_server()
    yield Servers(provider, canary_server, canary_hits, streamed)
    await provider.close()
    await canary_server.close()


async def upstream(s: Servers) -> Upstream:
    up = Upstream(
        UpstreamSettings(
            provider="p",
            base_url=str(s.provider.make_url("/")),
            read_timeout=1.0,
            max_response_bytes=CAP,
            retries=0,
        )
    )
    await up.start()
    return up


async def timed_error(up: Upstream, path: str) -> tuple[Exception, float]:
    started = time.monotonic()
    try:
        resp = await up.request("GET", path, operation="results")
        if path == "/not-json":
            resp.json()
        up.raise_for_status(resp)
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError(f"{path} did not fail")


async def test_unsafe_answers_are_refused(servers: Servers, measured):
    up = await upstream(servers)
    try:
        results = {p: await timed_error(up, p) for p in ("/declared", "/chunked", "/not-json")}
        redirect = await timed_error(up, "/redirect")
        stalled = await timed_error(up, "/stalled")
    finally:
        await up.close()
    for path, (exc, _) in results.items():
        assert isinstance(exc, ProviderBadResponse) and exc.status == 502, (path, exc)
    assert "larger than" in str(results["/chunked"][0].detail)  # type: ignore[attr-defined]
    assert isinstance(redirect[0], ProviderBadResponse) and redirect[0].status == 502
    assert servers.canary_hits == [], "the redirect was followed"
    assert isinstance(stalled[0], ProviderTimeout) and stalled[0].status == 504
    assert 0.9 <= stalled[1] < 2.0, f"stalled body aborted after {stalled[1]:.2f} s"
    measured(
        "\nT-U8 unsafe consumption: "
        f"declared 50 MB -> 502 in {results['/declared'][1] * 1000:.0f} ms; "
        f"chunked 50 MB -> 502 in {results['/chunked'][1] * 1000:.0f} ms "
        f"(server wrote {servers.streamed[0] // MB if servers.streamed else '?'} MB before "
        f"the gateway hung up, cap {CAP // MB} MB); invalid JSON -> 502; redirect -> 502 with "
        f"{len(servers.canary_hits)} hits on the target; stalled body -> 504 after "
        f"{stalled[1]:.2f} s (sock_read 1 s)"
    )
