"""The process's lifecycle: serving, then draining; what /readyz and the shutdown share.

A drain begins at SIGTERM (or SIGINT), not when aiohttp closes the listener: from then
on /readyz answers 503 while the listener still takes requests for
``server.drain_delay_seconds``, so a load balancer that polls readiness stops sending
before connections are refused. Then the listener closes and the requests in flight get
what is left of ``server.shutdown_timeout``, counted from the signal; long polls
(``Prefer: wait``) answer at once with the job as it stands.

aiohttp's own shutdown waits for handlers twice with the timeout it is given (once for
them to finish, once after cancelling them), so the gateway waits itself, once, and
gives aiohttp a short timeout for what remains.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

_log = structlog.get_logger("gateway")

#: What aiohttp gets for each of its two waits, after the gateway's own drain.
AIOHTTP_SHUTDOWN_SECONDS = 0.5


@dataclass
class Lifecycle:
    #: True from SIGTERM on: /readyz answers 503 so the load balancer stops sending.
    draining: bool = False
    #: When the drain began (``time.monotonic()``), None while serving.
    drain_started_at: float | None = None
    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: Called once when the drain begins (e.g. to let long polls answer now).
    on_drain: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._idle.set()

    def begin_drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        self.drain_started_at = time.monotonic()
        for hook in self.on_drain:
            hook()

    def started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def wait_idle(self, until: float) -> bool:
        """Wait until no request is in flight or ``time.monotonic()`` reaches ``until``."""
        left = until - time.monotonic()
        if left <= 0:
            return self._idle.is_set()
        try:
            await asyncio.wait_for(self._idle.wait(), left)
        except TimeoutError:
            return False
        return True


def lifecycle_middleware(lifecycle: Lifecycle) -> Middleware:
    """Counts the requests in flight, so the drain knows when none is left."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        lifecycle.started()
        try:
            return await handler(request)
        finally:
            lifecycle.finished()

    return middleware


def handle_stop_signals(lifecycle: Lifecycle, drain_delay: float) -> None:
    """SIGTERM and SIGINT begin the drain; the listener closes ``drain_delay`` later.

    For ``web.run_app(handle_signals=False)``: called from an on_startup hook, in the
    running loop. A second signal during the drain delay closes the listener at once.
    """
    loop = asyncio.get_running_loop()

    def stop() -> None:
        raise web.GracefulExit()

    def on_signal(signum: int) -> None:
        if lifecycle.draining:
            loop.call_soon(stop)
            return
        lifecycle.begin_drain()
        _log.info("draining", signal=signal.Signals(signum).name, delay_seconds=drain_delay)
        loop.call_later(drain_delay, stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
