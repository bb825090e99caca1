"""``/metrics`` on a port of its own (``server.metrics_port``), apart from the API.

Scrapers reach the metrics port inside the cluster while only the API port is exposed,
so tenant credentials can never reach operational data (OWASP API5). The metrics app
serves ``GET /metrics`` and nothing else, from the main app's registry; it starts and
stops with the main app (a cleanup context on it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.http.handlers import meta
from gateway.http.keys import METRICS
from gateway.http.middleware.hardening import SERVER_NAME
from gateway.observability.metrics import Metrics


def metrics_app(metrics: Metrics) -> web.Application:
    """An app that answers ``GET /metrics`` from ``metrics`` and 404/405 to anything else."""
    app = web.Application(client_max_size=1024)
    app[METRICS] = metrics
    app.router.add_get("/metrics", meta.metrics)
    app.on_response_prepare.append(_server_header)
    return app


def metrics_site_ctx(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for the main app that serves its metrics on ``host:port``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(metrics_app(app[METRICS]), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            yield
        finally:
            await runner.cleanup()

    return ctx


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME
