"""The bare pass-through: the floor for any aiohttp gateway.

One ``ClientSession`` with keep-alive, no features: every request is forwarded to
the upstream with the same method, path, query and body (with its ``Content-Type``),
plus one fixed header (the provider credential), and the upstream's status, body and
content type come back. No auth, no logging, no metrics, no store. A ``POST`` of a job
to the simulator's submit route is the baseline of a submit (``bench/hotpath.py``).

    python -m bench.passthrough --port 9301 --upstream http://127.0.0.1:9300 \\
        --header "Authorization: ApiKey ..."
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
HEADERS = web.AppKey("headers", dict[str, str])


async def forward(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    headers = request.app[HEADERS]
    body = None
    if request.body_exists:
        body = await request.read()
        # Passed on: aiohttp would otherwise send a bytes body as application/octet-stream.
        content_type = request.headers.get("Content-Type")
        if content_type:
            headers = {**headers, "Content-Type": content_type}
    async with session.request(
        request.method,
        request.app[UPSTREAM] + request.path_qs,
        data=body,
        headers=headers,
        allow_redirects=False,
    ) as upstream:
        payload = await upstream.read()
        return web.Response(
            status=upstream.status, body=payload, content_type=upstream.content_type
        )


def passthrough_app(upstream: str, headers: dict[str, str]) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[HEADERS] = headers

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL requests are forwarded to")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' to add")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    app = passthrough_app(args.upstream, headers)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
