"""Watching the Redis behind the gateway: what it keeps on disk, and when it restarted.

At start-up the watch asks whether Redis is durable (``gateway.state.redis_persistence``)
and says so once; ``/readyz`` shows the answer. Then, every ``interval`` seconds, it
reads each server's ``run_id`` (``INFO server``): a new one means the server restarted
or another took over (a Sentinel failover, a new Cluster master), and whatever it kept
only in memory is gone, so the watch calls ``on_restart`` (the job store writes back
the records this process knows, ``gateway.state.recall``). A Redis that does not
answer is only asked again later; the watch never stops the gateway starting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from gateway.state.redis_persistence import Persistence, PersistenceReport, check_persistence
from gateway.state.redis_store import REDIS_ERRORS
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.state")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def run_ids(client: aioredis.Redis) -> frozenset[str]:
    """The run_id of each server the client reaches (a Cluster: every master)."""
    primaries = getattr(client, "get_primaries", None)
    if primaries is None:
        info = await client.execute_command("INFO", "server")  # type: ignore[no-untyped-call]  # untyped in redis-py
        return frozenset({_text(info["run_id"])})
    if not primaries():
        await client.initialize()
    ids = set()
    for node in primaries():
        info = await client.execute_command("INFO", "server", target_nodes=node)  # type: ignore[no-untyped-call]  # untyped in redis-py
        ids.add(_text(info["run_id"]))
    return frozenset(ids)


class RedisWatch:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        interval: float,
        on_restart: Callable[[str], None],
        first_check_seconds: float = 2.0,
    ) -> None:
        """Args:
        interval: seconds between two looks at the servers' run_ids.
        on_restart: called with a reason when a server restarted or was replaced.
        first_check_seconds: what the check at start-up may cost at most.
        """
        self._r = client
        self._interval = interval
        self._on_restart = on_restart
        self._first = first_check_seconds
        self.report = PersistenceReport()
        self._ids: frozenset[str] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def persistence(self) -> Persistence:
        return self.report.current

    async def start(self) -> None:
        """Check persistence once (bounded), then keep watching in the background."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.check(), self._first)
        self._task = spawn(self._loop(), name="redis-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        """One look: persistence while unknown, and whether a server is new."""
        if self.report.current.durable is None:
            self.report.note(await check_persistence(self._r))
        try:
            ids = await run_ids(self._r)
        except REDIS_ERRORS:
            return  # down or hung: the next look tells whether it came back new
        if not ids:
            return  # a Cluster client before it found its nodes: nothing known yet
        if self._ids is not None and ids != self._ids:
            _log.warning("redis_restarted", servers=len(ids))
            # What a new server keeps may differ (a failover to a differently set one).
            self.report.note(await check_persistence(self._r))
            self._on_restart("redis_restarted")
        self._ids = ids

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception as exc:  # the watch must outlive any one look
                _log.warning("redis_watch_failed", error=repr(exc))
