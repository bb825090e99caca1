"""The engine's task queue port, and the queue of a process without Redis.

A task is a named handler and a small JSON-able dict of arguments, run once after an
optional delay. A task id makes enqueueing idempotent: while a task with that id is
waiting, enqueueing it again does nothing. With Redis the queue is durable and shared
by every replica (``gateway.state.streaq_queue``, on the ``streaq`` library): a task a
killed replica held runs again on another. ``MemoryTaskQueue`` keeps tasks in this
process only, for one process with no Redis: they end with it, as its jobs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from gateway.tasks import spawn

_log = structlog.get_logger("gateway.engine")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A kind of task: its handler and how it is run."""

    name: str
    handler: Handler
    #: A run that takes longer is cancelled (and counts as a failed try).
    timeout_seconds: float = 300.0
    #: Runs of one task that may fail (raise) before it is dropped; None: no limit.
    max_tries: int | None = 5
    #: Taken before every waiting task that is not: a caller waits on it (a webhook
    #: delivery), where the others (status checks) only keep to a schedule.
    urgent: bool = False


class TaskQueue(Protocol):
    def register(self, spec: TaskSpec) -> None:
        """Know how to run tasks named ``spec.name`` (before ``start``)."""
        ...

    async def enqueue(
        self, name: str, args: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None
    ) -> None:
        """Run task ``name`` with ``args`` in ``delay`` seconds, on some replica."""
        ...

    async def start(self) -> None:
        """Start running tasks (this replica becomes a worker)."""
        ...

    async def close(self, grace_seconds: float = 0.0) -> None:
        """Stop taking tasks; what is running gets ``grace_seconds`` to finish, then is
        cancelled (on Redis it runs again on another replica once its lease lapses)."""
        ...


class MemoryTaskQueue:
    """Tasks on this process's event loop; a failing task is retried with backoff."""

    def __init__(self, *, concurrency: int = 32, clock: Callable[[], float] = time.monotonic):
        self._specs: dict[str, TaskSpec] = {}
        self._waiting: dict[str, asyncio.TimerHandle | None] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self._limit = asyncio.Semaphore(concurrency)
        # Urgent tasks have places of their own: they never queue behind the others.
        self._urgent_limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._started = False
        self._closed = False
        self._pending: list[tuple[str, dict[str, Any], float, str]] = []
        self._counter = 0

    def register(self, spec: TaskSpec) -> None:
        self._specs[spec.name] = spec

    async def enqueue(
        self, name: str, args: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None
    ) -> None:
        if name not in self._specs:
            raise KeyError(f"no task named {name!r}")
        if self._closed:
            return
        if task_id is None:
            self._counter += 1
            task_id = f"{name}:{self._counter}"
        if task_id in self._waiting:
            return
        if not self._started:
            self._waiting[task_id] = None
            self._pending.append((name, args, delay, task_id))
            return
        self._schedule(name, args, delay, task_id, tries=0)

    def _schedule(
        self, name: str, args: dict[str, Any], delay: float, task_id: str, tries: int
    ) -> None:
        loop = asyncio.get_running_loop()
        # A fresh context: a task must not carry the request that queued it (its log
        # fields, its request facts), as a task on the Redis queue never does.
        self._waiting[task_id] = loop.call_later(
            max(0.0, delay), self._fire, name, args, task_id, tries, context=contextvars.Context()
        )

    def _fire(self, name: str, args: dict[str, Any], task_id: str, tries: int) -> None:
        self._waiting.pop(task_id, None)
        task = spawn(self._run(name, args, task_id, tries), name=f"engine:{name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, name: str, args: dict[str, Any], task_id: str, tries: int) -> None:
        spec = self._specs[name]
        async with self._urgent_limit if spec.urgent else self._limit:
            try:
                await asyncio.wait_for(spec.handler(args), spec.timeout_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                tries += 1
                if spec.max_tries is not None and tries >= spec.max_tries:
                    _log.error("engine_task_dropped", task=name, tries=tries, error=repr(exc))
                    return
                _log.warning("engine_task_failed", task=name, tries=tries, error=repr(exc))
                if not self._closed and task_id not in self._waiting:
                    # The same backoff as the Redis queue's: tries squared, in seconds.
                    self._schedule(name, args, float(tries**2), task_id, tries)

    async def start(self) -> None:
        self._started = True
        pending, self._pending = self._pending, []
        for name, args, delay, task_id in pending:
            self._waiting.pop(task_id, None)
            self._schedule(name, args, delay, task_id, tries=0)

    async def close(self, grace_seconds: float = 0.0) -> None:
        self._closed = True
        for handle in self._waiting.values():
            if handle is not None:
                handle.cancel()
        self._waiting.clear()
        running = list(self._running)
        if running and grace_seconds > 0:
            await asyncio.wait(running, timeout=grace_seconds)
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __len__(self) -> int:
        """Tasks waiting to run (for tests and the tracked-jobs gauge)."""
        return len(self._waiting)
