"""The gateway and a provider simulator served on loopback from a thread of their own.

schemathesis calls the API with blocking ``requests``; the servers therefore run on
their own event loop in a background thread, so the test's blocking calls never stall them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.registry import provider_type
from gateway.http.app import create_app
from tests.conftest import make_settings, provider_settings


@dataclass
class Served:
    url: str
    app: web.Application


async def _start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


@contextmanager
def serve_gateway(**settings_over: Any) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="served-gateway", daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    runners: list[web.AppRunner] = []
    try:
        sim_runner, sim_port = run(_start(provider_type("modzy").fast_simulator(None)))
        runners.append(sim_runner)
        base = f"http://127.0.0.1:{sim_port}/api"
        settings = make_settings([provider_settings("modzy", "modzy", base)], **settings_over)

        async def build() -> tuple[web.Application, web.AppRunner, int]:
            app = create_app(settings, registry=CollectorRegistry())
            runner, port = await _start(app)
            return app, runner, port

        app, runner, port = run(build())
        runners.append(runner)
        yield Served(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        for r in reversed(runners):
            run(r.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
