"""``redis.mode: cluster``: redis-py's ``RedisCluster``, held to the standalone client's promises.

Two differences of redis-py's cluster client matter to the gateway, and are undone here:

* **No blocking pool.** Each node's pool fails a command at once with
  ``MaxConnectionsError`` past ``max_connections``, where the standalone client waits
  (``BlockingConnectionPool``) up to the socket timeout for a free connection. Under a
  burst every limit decision would then go to its fallback and store reads would 503.
  Here a process has at most ``max_connections`` commands or pipelines in flight (so
  no node's pool is ever exhausted); the others wait for their turn, at most
  ``redis.socket_timeout``, then fail as the standalone pool does.
* **A timeout is retried.** The cluster client retries a timed-out command after
  refreshing its slot map, so a hung node cost a command two socket timeouts or more.
  Here a command is retried once after a broken connection or a cluster in the middle
  of a failover (as the standalone client retries a broken connection), never after a
  timeout: a hung node costs a command one ``redis.socket_timeout``. The slot-map
  refresh that follows a failure asks the node that failed last (redis-py would ask
  the nodes in random order, so a hung node could cost the next command a second
  timeout). (A pipeline, used by job submits and listings, is retried by redis-py's
  own rule: a hung node may cost it two.)

Everything else is redis-py's: slot routing, MOVED/ASK redirections, topology refresh.
Keys that one command, script or transaction uses together share a hash tag
(``gateway.state.keyspace``); non-transactional pipelines are split by node by redis-py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, cast

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    RedisClusterException,
    SlotNotCoveredError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.state.redis_gate import closed_transport

#: Set while a task holds a turn: what redis-py runs inside it (a multi-key command split
#: by slot, a pipeline's per-command retry) must not wait for a second one.
_HOLDING: ContextVar[bool] = ContextVar("gateway_redis_cluster_turn", default=False)


class BoundedRedisCluster(RedisCluster):
    """A ``RedisCluster`` whose commands wait for a free turn and never retry a timeout."""

    # redis-py's own list less TimeoutError (read by execute_command as self.__class__'s).
    ERRORS_ALLOW_RETRY = (ConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]

    _turns: asyncio.Semaphore
    _turn_timeout: float
    #: The node behind the last broken connection or timeout: asked last for the slot map.
    _last_failed: str | None = None

    @classmethod
    def for_url(cls, url: str, *, max_connections: int, **options: Any) -> BoundedRedisCluster:
        client = cast(
            BoundedRedisCluster, cls.from_url(url, max_connections=max_connections, **options)
        )
        client._turns = asyncio.Semaphore(max_connections)
        client._turn_timeout = float(options.get("socket_timeout") or 1.0)
        return client

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One of ``max_connections`` places in flight, waited for up to the socket timeout."""
        if _HOLDING.get():
            yield
            return
        if self._turns.locked():
            try:
                async with asyncio.timeout(self._turn_timeout):
                    await self._turns.acquire()
            except TimeoutError:
                raise MaxConnectionsError("No connection available.") from None
        else:
            await self._turns.acquire()
        held = _HOLDING.set(True)
        try:
            yield
        finally:
            _HOLDING.reset(held)
            self._turns.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turn():
            try:
                return await super().execute_command(*args, **kwargs)
            except (ConnectionError, RedisTimeoutError) as exc:
                self._last_failed = getattr(exc, "last_failed_node_name", None)
                raise
            except RuntimeError as exc:
                lost = closed_transport(exc)
                if lost is None:
                    raise
                raise lost from exc

    async def initialize(
        self,
        additional_startup_nodes_info: list[tuple[str, int]] | None = None,
        last_failed_node_name: str | None = None,
    ) -> RedisCluster:
        failed = last_failed_node_name or self._last_failed
        done = await super().initialize(additional_startup_nodes_info, failed)
        self._last_failed = None
        return done

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        # mypy takes ClusterPipeline for abstract (an attribute redis-py declares only).
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(ClusterPipeline):
    """A pipeline takes one turn for all its commands (at most one connection per node)."""

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, BoundedRedisCluster)
        async with client.turn():
            try:
                return await super().execute(raise_on_error, allow_redirections)
            except RuntimeError as exc:
                lost = closed_transport(exc)
                if lost is None:
                    raise
                raise lost from exc
