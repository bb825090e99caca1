"""Job change events between replicas, over one Redis pub/sub channel (``gateway.state.events``).

Every replica subscribes once to the channel (``Keyspace.events``) and wakes its own
watchers of the job a message names; a change is one ``PUBLISH`` of the job id. The
channel carries ids only: a watcher reads the record itself, so a lost message costs
at most a watcher's own timeout. When the subscription breaks (Redis restarted or
unreachable), every watcher is woken to read again, and the listener reconnects.
On a Cluster, redis-py's ``ClusterPubSub`` subscribes on one node, and a classic
``PUBLISH`` reaches every node.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
import structlog

from gateway.state.events import LocalWatchers
from gateway.state.keyspace import Keyspace
from gateway.state.redis_store import REDIS_ERRORS
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.events")

#: Seconds between reconnection attempts while Redis is away.
_RECONNECT_SECONDS = 1.0
#: Longest the listener may take to stop, and its connection to close.
_CLOSE_SECONDS = 2.0
#: Longest Redis may take to confirm the subscription before the listener tries again.
_CONFIRM_SECONDS = 5.0


class RedisEvents(LocalWatchers):
    def __init__(self, client: aioredis.Redis, keys: Keyspace) -> None:
        super().__init__()
        self._r = client
        self._channel = keys.events()
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish(self, job_id: str) -> None:
        # This replica's watchers need no round trip; the others hear it from Redis
        # (and this replica hears its own message too: one more harmless wake-up).
        self.notify(job_id)
        try:
            await self._r.publish(self._channel, job_id)
        except REDIS_ERRORS as exc:
            _log.warning("event_publish_failed", job_id=job_id, error=type(exc).__name__)

    async def start(self) -> None:
        self._listener = spawn(self._listen(), name="job-events")
        # Wait briefly for the subscription, so an event published right after start
        # reaches this replica; a Redis that is down does not hold up the start.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 2.0)

    async def close(self) -> None:
        if self._listener is None:
            return
        self._listener.cancel()
        # Bounded: a pub/sub connection whose client was closed under it (or a hung Redis)
        # must not hold up the app's shutdown.
        done, _ = await asyncio.wait({self._listener}, timeout=_CLOSE_SECONDS)
        if not done:
            _log.warning("event_listener_not_stopped", seconds=_CLOSE_SECONDS)

    async def _confirmed(self, pubsub: Any) -> None:
        deadline = asyncio.get_running_loop().time() + _CONFIRM_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message.get("type") == "subscribe":
                return
        raise TimeoutError("Redis did not confirm the subscription")

    async def _listen(self) -> None:
        while True:
            pubsub: Any = None
            try:
                # A cluster client learns its slot map on its first command; its pub/sub
                # needs the map first.
                await self._r.initialize()
                pubsub = self._r.pubsub()
                await pubsub.subscribe(self._channel)
                # SUBSCRIBE is only sent by now: an event published from another
                # connection before Redis processed it would be missed. Subscribed is
                # when Redis says so.
                await self._confirmed(pubsub)
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self.notify(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: wake the watchers, then reconnect
                _log.warning("event_subscription_lost", error=type(exc).__name__)
                self._subscribed.clear()
                self.notify_all()
                await asyncio.sleep(_RECONNECT_SECONDS)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(pubsub.aclose(), _CLOSE_SECONDS)
