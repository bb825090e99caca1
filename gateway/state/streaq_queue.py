"""The engine's task queue in Redis, on the ``streaq`` library (``gateway.state.task_queue``).

streaq keeps tasks in a Redis stream read by a consumer group: a replica that takes a
task keeps renewing its claim while the task runs, and a task whose replica stopped
renewing (killed, hung) is claimed by another after ``engine.lease_seconds``. Delayed
tasks wait in a sorted set until due. A task id is written with ``SET NX``, so
enqueueing a task that is still waiting does nothing. Every gateway replica runs a
streaq worker inside its own event loop: no extra process to deploy. The choice of
library, against arq, saq, taskiq and bullmq, is argued in docs/operations.md ("The job
engine").

streaq talks to Redis through its own client (coredis), built here from the same
``redis`` settings as the gateway's redis-py client: a URL (``redis://``,
``rediss://``, ``unix://``), the master a Sentinel names (``redis+sentinel://``), or a
Cluster (``redis.mode: cluster``), where every key of the queue shares one hash tag
(``Keyspace.engine_queue``). Arguments are JSON, never pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from streaq import StreaqRetry, Worker

from gateway.state.keyspace import Keyspace
from gateway.state.redis_url import SENTINEL_SCHEME, parse_sentinel_url
from gateway.state.settings import RedisSettings
from gateway.state.task_queue import TaskSpec
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.engine")


class _Worker(Worker[Any]):
    """streaq's worker, minus its signal handling.

    streaq 7.2 stores ``handle_signals`` but never reads it: its worker always opens
    a receiver for SIGINT and SIGTERM, which replaces the handlers aiohttp installed,
    so a SIGTERM stopped the worker and never reached aiohttp: the replica neither
    drained nor exited (found by the SIGTERM test in tests/e2e/test_engine_replicas.py).
    The gateway stops the worker itself, after its own drain (``StreaqQueue.close``).
    """

    async def signal_handler(self, scope: Any) -> None:
        return None


#: streaq's priority streams, lowest first ("normal" is its default one).
_NORMAL = "normal"
_URGENT = "urgent"


def build_worker(
    redis: RedisSettings, keys: Keyspace, *, lease_seconds: float, concurrency: int
) -> Worker[Any]:
    """A streaq worker for the engine queue, on the Redis ``redis`` names."""
    assert redis.url is not None
    options: dict[str, Any] = {
        "queue_name": keys.engine_queue(),
        "handle_signals": False,
        "idle_timeout": lease_seconds,
        "concurrency": concurrency,
        # Fetch at most one task beyond those running. A task fetched but not started
        # when the replica stops (or dies) waits out its lease before another replica
        # may take it; engine tasks are short provider calls, so a deeper buffer buys
        # nothing but such waits.
        "prefetch": 1,
        "serializer": json.dumps,
        "deserializer": json.loads,
        # Lowest first: an urgent task (TaskSpec.urgent: a webhook delivery) is read from
        # its own stream before the normal one, so it does not wait behind a backlog of
        # due status checks on a busy replica. "normal" is streaq's default stream.
        "priorities": [_NORMAL, _URGENT],
    }
    kwargs: dict[str, Any] = {"connect_timeout": redis.connect_timeout}
    if redis.url.lower().startswith(SENTINEL_SCHEME + "://"):
        url = parse_sentinel_url(redis.url)
        kwargs.update(db=url.db, username=url.username, password=url.password)
        return _Worker(
            sentinel_nodes=list(url.sentinels),
            sentinel_master=url.service_name,
            redis_kwargs=kwargs,
            **options,
        )
    if redis.mode == "cluster":
        parts = urlsplit(redis.url)
        kwargs.update(username=parts.username or None, password=parts.password or None)
        if parts.scheme == "rediss":
            kwargs["ssl"] = True
        return _Worker(
            cluster_nodes=[(parts.hostname or "127.0.0.1", parts.port or 6379)],
            redis_kwargs=kwargs,
            **options,
        )
    return _Worker(redis_url=redis.url, redis_kwargs=kwargs, **options)


#: Backoff of the worker's restarts after its Redis connection broke (seconds).
_RESTART_FIRST = 0.5
_RESTART_MAX = 10.0
#: How long an enqueue waits for a worker being restarted to hold its connection again:
#: a broken worker's client cannot send, and a job's tracking is worth a short wait.
_ENQUEUE_WAIT = 3.0
#: How long close() waits for the cancelled worker: a Redis client caught connecting may
#: not end at once, and a stopping replica must not hang on it.
_CLOSE_WAIT = 2.0


class StreaqQueue:
    """A ``TaskQueue`` whose tasks any replica may run, and outlive the one that queued them."""

    def __init__(self, make_worker: Callable[[], Worker[Any]]) -> None:
        """make_worker: a new streaq worker (``build_worker``); a worker whose Redis
        connection broke cannot be entered again, so each restart takes a new one."""
        self._make_worker = make_worker
        self._worker = make_worker()
        self._specs: dict[str, tuple[TaskSpec, Any]] = {}
        self._tasks: dict[str, Any] = {}
        self._runner: asyncio.Task[None] | None = None
        #: Set from close() on: tasks that start now are handed back, not run.
        self._stopping = False
        self._hand_back_at = 0.0
        self._active = 0
        #: Tasks this replica gave back to the queue while stopping.
        self.handed_back = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: Set while the current worker holds its Redis connection (streaq said so).
        self._up = asyncio.Event()
        # streaq logs every task at INFO; the engine logs what matters itself.
        logging.getLogger("streaq").setLevel(logging.WARNING)

    def register(self, spec: TaskSpec) -> None:
        handler = spec.handler

        async def run(args: dict[str, Any]) -> None:
            if self._stopping:
                # This replica is going: give the task back to the queue, due just after
                # this worker is gone, so another replica takes it then rather than when
                # its lease lapses. (It costs the task one of its tries.)
                delay = max(0.0, self._hand_back_at - time.monotonic()) + 1.0
                self.handed_back += 1
                raise StreaqRetry("handed back", delay=timedelta(seconds=delay))
            self._active += 1
            self._idle.clear()
            try:
                await handler(args)
            except Exception as exc:
                # streaq tries again only what raises StreaqRetry (after tries² seconds),
                # up to the task's max_tries; anything else would fail it for good.
                _log.warning("engine_task_failed", task=spec.name, error=repr(exc))
                raise StreaqRetry(repr(exc)) from exc
            finally:
                self._active -= 1
                if self._active == 0:
                    self._idle.set()

        self._specs[spec.name] = (spec, run)
        self._bind(spec, run)

    def _bind(self, spec: TaskSpec, run: Any) -> None:
        self._tasks[spec.name] = self._worker.task(
            name=spec.name,
            timeout=timedelta(seconds=spec.timeout_seconds),
            max_tries=spec.max_tries,
            ttl=0,  # nothing reads a task's result: store none
            silent=True,
        )(run)

    def _new_worker(self) -> None:
        self._worker = self._make_worker()
        for spec, run in self._specs.values():
            self._bind(spec, run)

    async def enqueue(
        self, name: str, args: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None
    ) -> None:
        await self._worker_up()
        task = self._tasks[name].enqueue(args)
        priority = _URGENT if self._specs[name][0].urgent else _NORMAL
        if delay > 0:
            task = task.start(delay=timedelta(seconds=delay), priority=priority)
        else:
            task = task.start(priority=priority)
        if task_id is not None:
            task.id = task_id
        await task

    async def _worker_up(self) -> None:
        """Wait (a little) for a worker being restarted; then enqueue through the new one."""
        if self._runner is None or self._up.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), _ENQUEUE_WAIT)

    async def start(self) -> None:
        status = _Started(self._up)

        async def run() -> None:
            # streaq's worker ends when its Redis connection breaks (Redis restarted,
            # failed over, unreachable): run it again, with backoff, until the gateway
            # stops. Tasks wait in Redis meanwhile; the claims it held lapse and are
            # taken again (by this worker or another) after ``lease_seconds``.
            delay = _RESTART_FIRST
            while True:
                began = time.monotonic()
                try:
                    await self._worker.run_async(task_status=status)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if time.monotonic() - began > _RESTART_MAX:
                        delay = _RESTART_FIRST  # it had been running fine
                    _log.error("engine_worker_stopped", error=repr(exc), restart_in=delay)
                else:
                    return
                finally:
                    self._up.clear()
                    status.event.set()  # start() returns: a Redis down does not hold it up
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RESTART_MAX)
                self._new_worker()

        self._runner = spawn(run(), name="engine-worker")
        # Tasks can be enqueued once the worker holds its Redis connection (a Redis that
        # is down at start does not hold the gateway up: the worker keeps trying).
        await status.event.wait()

    async def close(self, grace_seconds: float = 0.0) -> None:
        if self._runner is None:
            return
        # Tasks running now get the grace to finish; a task that starts meanwhile is
        # handed back. (streaq stops fetching gracefully only from its own signal
        # handler, which would take SIGTERM from aiohttp's.)
        self._stopping = True
        self._hand_back_at = time.monotonic() + grace_seconds
        if grace_seconds > 0 and not self._runner.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_seconds)
        # What still runs is cancelled; unacknowledged, it runs again on another replica
        # once its claim lapses (``lease_seconds``), as does the one task at most that
        # was fetched but not started (``prefetch``).
        running = self._active
        self._runner.cancel()
        done, _ = await asyncio.wait({self._runner}, timeout=_CLOSE_WAIT)
        if not done:
            _log.warning("engine_worker_not_stopped", waited_seconds=_CLOSE_WAIT)
        _log.info("engine_worker_closed", handed_back=self.handed_back, cut_off=running)


class _Started:
    """The ``task_status`` streaq's ``run_async`` reports to once its worker runs."""

    def __init__(self, up: asyncio.Event) -> None:
        self.event = asyncio.Event()
        self._up = up

    def started(self, value: object = None) -> None:
        self._up.set()
        self.event.set()
