"""Job change events: whoever waits on a job wakes when any replica changes it.

Every change of a job's record is published (``publish``); a request holding a
``Prefer: wait`` (and, later, an event stream) watches the job and wakes at once. An
event says only *that* the job changed: the watcher reads the record itself, so a
lost or duplicated event costs a read, never a wrong answer, and watchers also wake
on a timeout of their own. ``MemoryEvents`` serves one process;
``gateway.state.redis_events`` carries events between replicas over Redis pub/sub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class JobEvents(Protocol):
    async def publish(self, job_id: str) -> None:
        """Tell every watcher of ``job_id``, on every replica, that it changed."""
        ...

    def watch(self, job_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """``async with events.watch(id) as changed``: ``changed`` is set on each change."""
        ...


class LocalWatchers:
    """This process's watchers by job id; both event implementations deliver to it."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def notify(self, job_id: str) -> None:
        for event in self._watchers.get(job_id, ()):
            event.set()

    def notify_all(self) -> None:
        """Wake everyone (events may have been missed, e.g. while Redis was away)."""
        for events in self._watchers.values():
            for event in events:
                event.set()

    @asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[job_id]

    def __len__(self) -> int:
        return sum(len(w) for w in self._watchers.values())


class MemoryEvents(LocalWatchers):
    """Events within one process."""

    async def publish(self, job_id: str) -> None:
        self.notify(job_id)
