"""A hung or dead Redis costs a request at most one socket timeout, on every path.

redis-py bounds each command by ``redis.socket_timeout``, but a request makes several
Redis calls in turn (a limit decision, a record read, an idempotency key, a job slot,
a listing's pages), and each would wait out its own timeout: with Redis paused, reads
and submits took two timeouts or more. The gate sits in the client, under every
component: once a command fails for want of Redis (a timeout, a refused or broken
connection, a server still loading its data), Redis is *down* for this process and
every command fails at once with ``RedisResting``, a ``ConnectionError``, so each
component takes the way out it already has (the limits decide locally, a store read
answers 503, the cache misses). One ``PING`` at a time, in the background, finds out
when Redis answers again; from then on commands go through as before. A request that
was in flight when Redis hung pays its one timeout; the requests after it pay none.

No request is ever the probe: a probe taken from the requests' own commands would make
whichever request drew it pay a second timeout. A timeout that was only a slow answer
(a busy loop, a large listing) costs the commands of the next moment: the background
``PING`` answers within a round trip and the gate opens again.

The gate guards the standalone and Sentinel-managed clients, which talk to one server.
A Cluster client is not gated: one hung node must not fail the commands bound for the
healthy ones (``gateway.state.redis_cluster`` bounds what a hung node costs there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from redis.asyncio.client import Pipeline

from gateway.tasks import spawn

_log = structlog.get_logger("gateway.redis")

#: What says Redis is not answering (rather than refusing one command: a script error,
#: a wrong type): the client's timeouts and connection failures, the socket's own.
OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    TimeoutError,
)

#: The most often a background PING is sent. One that failed at once (a refused
#: connection) waits out the rest; one that timed out is followed at once, so while
#: Redis hangs a PING is always waiting on it and is answered the moment it wakes.
_PING_EVERY = 0.2


#: How the event loops word a write to a transport they have closed.
_CLOSED_TRANSPORT = ("unable to perform operation on", "handler is closed", "transport is closing")


def closed_transport(exc: BaseException) -> redis.exceptions.ConnectionError | None:
    """The ``ConnectionError`` a write to a just-dropped socket should have been.

    A Redis that dies while redis-py is connecting (its handshake after the TCP connect)
    leaves a transport the event loop has closed; writing to it raises ``RuntimeError``
    ("unable to perform operation on <TCPTransport closed=True>; the handler is closed"
    under uvloop; "transport is closing" from asyncio's SSL transport), which
    redis-py does not catch. It is a lost connection like any other, and every caller
    already knows what to do with one; as a ``RuntimeError`` it reached a client as a 500.
    """
    if isinstance(exc, RuntimeError) and any(m in str(exc) for m in _CLOSED_TRANSPORT):
        lost = redis.exceptions.ConnectionError(f"Connection lost: {exc}")
        lost.__cause__ = exc
        return lost
    return None


class RedisResting(redis.exceptions.ConnectionError):
    """Refused without asking Redis: it failed a moment ago and has not answered since."""


class RedisGate:
    """Whether this process's Redis answers; down from a failure until a ``PING`` works."""

    def __init__(self, *, on_change: Callable[[bool], None] | None = None) -> None:
        self._ping: Callable[[], Awaitable[Any]] | None = None
        self._on_change = on_change
        self._down = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self._down

    def bind(self, ping: Callable[[], Awaitable[Any]]) -> None:
        """The ``PING`` that finds Redis back (sent past the gate)."""
        self._ping = ping

    def check(self) -> None:
        if self._down:
            raise RedisResting("Redis failed a moment ago and has not answered since.")

    def failed(self, exc: BaseException) -> None:
        """A command ended with ``exc``: if Redis itself failed, close the gate."""
        if self._down or isinstance(exc, RedisResting) or not isinstance(exc, OUTAGES):
            return
        if self._ping is None:
            return
        self._set(down=True, reason=exc)
        self._watch = spawn(self._until_back(), name="redis-gate")

    async def _until_back(self) -> None:
        assert self._ping is not None
        loop = asyncio.get_running_loop()
        while True:
            sent = loop.time()
            try:
                await self._ping()
            except OUTAGES:
                await asyncio.sleep(max(0.0, sent + _PING_EVERY - loop.time()))
                continue
            except redis.exceptions.RedisError:
                # An answer, if not a PONG (an ACL refusing PING): Redis is there.
                pass
            break
        self._watch = None
        self._set(down=False)

    def _set(self, *, down: bool, reason: BaseException | None = None) -> None:
        self._down = down
        if down:
            _log.warning("redis_unavailable", error=type(reason).__name__)
        else:
            _log.info("redis_available")
        if self._on_change is not None:
            self._on_change(not down)

    async def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)


class GatedRedis(aioredis.Redis):
    """redis-py's client, with every command and pipeline passing ``gate`` first."""

    gate: RedisGate

    def attach(self, gate: RedisGate) -> GatedRedis:
        self.gate = gate
        gate.bind(lambda: aioredis.Redis.execute_command(self, "PING"))  # type: ignore[no-untyped-call]  # untyped in redis-py
        return self

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.gate.check()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # untyped in redis-py
        except BaseException as exc:
            lost = closed_transport(exc)
            self.gate.failed(lost or exc)
            if lost is not None:
                raise lost from exc
            raise

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pool, callbacks = self.connection_pool, self.response_callbacks
        pipe = _GatedPipeline(pool, callbacks, transaction, shard_hint)
        pipe.gate = self.gate
        return pipe


class _GatedPipeline(Pipeline):
    gate: RedisGate

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.gate.check()
        try:
            return await super().execute(raise_on_error)
        except BaseException as exc:
            lost = closed_transport(exc)
            self.gate.failed(lost or exc)
            if lost is not None:
                raise lost from exc
            raise
