"""The engine's shared state, one suite each over memory and real Redis (one server and a
three-master cluster): tracking entries, job change events, and the task queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.state.events import MemoryEvents
from gateway.state.keyspace import Keyspace
from gateway.state.redis_events import RedisEvents
from gateway.state.redis_tracking import RedisTracking
from gateway.state.settings import RedisSettings
from gateway.state.streaq_queue import StreaqQueue, build_worker
from gateway.state.task_queue import MemoryTaskQueue, TaskSpec
from gateway.state.tracking import MemoryTracking
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis
from tests.e2e.replicas import RedisServer


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def tracking(request) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryTracking()
        return
    url = backend_url(request, request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        yield RedisTracking(client, Keyspace(client.test_prefix), retention_seconds=60)


class TestTracking:
    async def test_a_started_job_waits_at_sequence_zero(self, tracking):
        await tracking.start("t1", "job_a", due=1000.0, delay=1.0)
        entry = await tracking.get("job_a")
        assert (entry.tenant, entry.job_id, entry.seq, entry.due, entry.delay, entry.polls) == (
            "t1",
            "job_a",
            0,
            1000.0,
            1.0,
            0,
        )
        assert await tracking.get("job_other") is None

    async def test_starting_again_keeps_the_chain_where_it_is(self, tracking):
        await tracking.start("t1", "job_a", due=1000.0, delay=1.0)
        assert await tracking.advance("job_a", 0, due=1002.0, delay=2.0, polled=True)
        await tracking.start("t1", "job_a", due=5.0, delay=1.0)
        assert (await tracking.get("job_a")).seq == 1

    async def test_only_the_current_check_moves_the_chain(self, tracking):
        await tracking.start("t1", "job_a", due=1000.0, delay=1.0)
        assert await tracking.advance("job_a", 0, due=1002.0, delay=2.0, polled=True)
        # A duplicate of check 0, and a check from the future, both change nothing.
        assert not await tracking.advance("job_a", 0, due=9999.0, delay=9.0, polled=True)
        assert not await tracking.advance("job_a", 5, due=9999.0, delay=9.0, polled=True)
        entry = await tracking.get("job_a")
        assert (entry.seq, entry.due, entry.delay, entry.polls) == (1, 1002.0, 2.0, 1)
        assert await tracking.advance("job_a", 1, due=1006.0, delay=4.0, polled=False)
        assert (await tracking.get("job_a")).polls == 1  # no provider call that time

    async def test_concurrent_advances_of_one_check_let_exactly_one_through(self, tracking):
        await tracking.start("t1", "job_a", due=1000.0, delay=1.0)
        moved = await asyncio.gather(
            *(tracking.advance("job_a", 0, due=1001.0, delay=1.0, polled=True) for _ in range(20))
        )
        assert moved.count(True) == 1

    async def test_finish_forgets_the_job(self, tracking):
        await tracking.start("t1", "job_a", due=1000.0, delay=1.0)
        await tracking.finish("job_a")
        assert await tracking.get("job_a") is None
        assert not await tracking.advance("job_a", 0, due=1.0, delay=1.0, polled=True)
        assert await tracking.count() == 0

    async def test_overdue_lists_the_late_ones_most_late_first(self, tracking):
        for i, due in enumerate([30.0, 10.0, 50.0, 20.0]):
            await tracking.start("t1", f"job_{i}", due=due, delay=1.0)
        late = await tracking.overdue(before=35.0, limit=10)
        assert [t.job_id for t in late] == ["job_1", "job_3", "job_0"]
        assert [t.job_id for t in await tracking.overdue(before=35.0, limit=2)] == [
            "job_1",
            "job_3",
        ]
        assert await tracking.count() == 4


async def test_redis_tracking_drops_index_entries_whose_job_expired(redis_client):
    keys = Keyspace(redis_client.test_prefix)
    tracking = RedisTracking(redis_client, keys, retention_seconds=60)
    await tracking.start("t1", "job_gone", due=10.0, delay=1.0)
    await tracking.start("t1", "job_here", due=20.0, delay=1.0)
    await redis_client.delete(keys.tracked("job_gone"))  # as its TTL would
    assert [t.job_id for t in await tracking.overdue(before=100.0, limit=10)] == ["job_here"]
    assert await tracking.count() == 1


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def event_pair(request) -> AsyncIterator[tuple[Any, Any]]:
    """Two replicas' event hubs (one shared hub in memory)."""
    if request.param == "memory":
        hub = MemoryEvents()
        yield hub, hub
        return
    url = backend_url(request, request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        keys = Keyspace(client.test_prefix)
        a, b = RedisEvents(client, keys), RedisEvents(client, keys)
        await a.start()
        await b.start()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


class TestEvents:
    async def test_a_change_wakes_watchers_of_that_job_on_every_replica(self, event_pair):
        a, b = event_pair
        async with b.watch("job_x") as on_b, a.watch("job_x") as on_a, b.watch("job_y") as other:
            started = time.monotonic()
            await a.publish("job_x")
            await asyncio.wait_for(on_b.wait(), 2)
            await asyncio.wait_for(on_a.wait(), 2)
            assert time.monotonic() - started < 0.5
            await asyncio.sleep(0.05)
            assert not other.is_set()

    async def test_watchers_are_forgotten_when_they_stop_watching(self, event_pair):
        a, _ = event_pair
        async with a.watch("job_x"):
            assert len(a) == 1
        assert len(a) == 0


async def test_redis_events_wake_every_watcher_when_the_subscription_breaks(redis_client):
    events = RedisEvents(redis_client, Keyspace(redis_client.test_prefix))
    await events.start()
    try:
        async with events.watch("job_x") as changed:
            # A subscription that fails (as when Redis restarts) wakes everyone to re-read.
            await redis_client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await asyncio.wait_for(changed.wait(), 5)
    finally:
        await events.close()


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def queue_factory(request) -> AsyncIterator[Any]:
    """Builds task queues (replicas) on one backend; all are closed at the end."""
    made: list[Any] = []
    if request.param == "memory":

        def memory() -> Any:
            made.append(MemoryTaskQueue(concurrency=4))
            return made[-1]

        yield memory
    else:
        url = backend_url(request, request.param)
        redis = RedisSettings(
            url=url, mode="cluster" if request.param == "cluster" else "standalone"
        )
        keys = Keyspace(f"t{uuid.uuid4().hex[:12]}")

        def streaq() -> Any:
            made.append(
                StreaqQueue(lambda: build_worker(redis, keys, lease_seconds=2, concurrency=4))
            )
            return made[-1]

        yield streaq
    for queue in made:
        await queue.close()


class TestTaskQueue:
    async def test_a_task_runs_once_after_its_delay(self, queue_factory):
        queue = queue_factory()
        ran: list[tuple[dict[str, Any], float]] = []
        done = asyncio.Event()

        async def handler(args: dict[str, Any]) -> None:
            ran.append((args, time.monotonic()))
            done.set()

        queue.register(TaskSpec("t", handler))
        await queue.start()
        queued = time.monotonic()
        await queue.enqueue("t", {"job": "a", "seq": 1}, delay=0.6, task_id="t:a")
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0.3)
        assert [args for args, _ in ran] == [{"job": "a", "seq": 1}]
        assert ran[0][1] - queued >= 0.55

    async def test_enqueueing_a_waiting_task_again_does_nothing(self, queue_factory):
        queue = queue_factory()
        ran: list[dict[str, Any]] = []

        async def handler(args: dict[str, Any]) -> None:
            ran.append(args)

        queue.register(TaskSpec("t", handler))
        await queue.start()
        for n in range(3):
            await queue.enqueue("t", {"n": n}, delay=0.3, task_id="t:same")
        await queue.enqueue("t", {"n": 9}, delay=0.3, task_id="t:other")
        await asyncio.sleep(1.5)
        assert sorted(a["n"] for a in ran) == [0, 9]

    async def test_a_failing_task_is_tried_again(self, queue_factory):
        queue = queue_factory()
        tries: list[float] = []
        done = asyncio.Event()

        async def handler(args: dict[str, Any]) -> None:
            tries.append(time.monotonic())
            if len(tries) < 2:
                raise RuntimeError("first try fails")
            done.set()

        queue.register(TaskSpec("t", handler, max_tries=3))
        await queue.start()
        await queue.enqueue("t", {}, task_id="t:flaky")
        await asyncio.wait_for(done.wait(), 10)
        assert len(tries) == 2

    async def test_an_urgent_task_does_not_wait_behind_a_backlog(self, queue_factory):
        """Every place taken by slow tasks and more waiting: a delivery (urgent) runs
        as soon as a place frees, before the backlog queued ahead of it."""
        queue = queue_factory()
        order: list[str] = []
        release = asyncio.Event()

        async def slow(args: dict[str, Any]) -> None:
            order.append(args["n"])
            await release.wait()

        async def urgent(args: dict[str, Any]) -> None:
            order.append("urgent")

        queue.register(TaskSpec("slow", slow))
        queue.register(TaskSpec("urgent", urgent, urgent=True))
        await queue.start()
        for n in range(12):  # 4 run (concurrency 4), 8 wait
            await queue.enqueue("slow", {"n": str(n)}, task_id=f"slow:{n}")
        await asyncio.sleep(0.5)
        await queue.enqueue("urgent", {}, task_id="urgent:1")
        await asyncio.sleep(0.5)
        release.set()
        deadline = time.monotonic() + 10
        while len(order) < 13:
            assert time.monotonic() < deadline, order
            await asyncio.sleep(0.05)
        # At most the places freed at once may start a slow task alongside it.
        assert order.index("urgent") <= 4 + 4, order


@pytest.mark.parametrize("backend", REDIS_BACKENDS)
async def test_a_task_a_stopped_replica_queued_runs_on_another(request, backend):
    """Replica A queues a delayed task and stops; B, on the same Redis, runs it."""
    url = backend_url(request, backend)
    redis = RedisSettings(url=url, mode="cluster" if backend == "cluster" else "standalone")
    keys = Keyspace(f"t{uuid.uuid4().hex[:12]}")
    a = StreaqQueue(lambda: build_worker(redis, keys, lease_seconds=2, concurrency=4))
    b = StreaqQueue(lambda: build_worker(redis, keys, lease_seconds=2, concurrency=4))
    where: list[str] = []
    ran = asyncio.Event()

    def handler_for(name: str) -> Any:
        async def handler(args: dict[str, Any]) -> None:
            where.append(name)
            ran.set()

        return handler

    a.register(TaskSpec("t", handler_for("a")))
    b.register(TaskSpec("t", handler_for("b")))
    try:
        await a.start()
        await a.enqueue("t", {}, delay=0.5, task_id="t:handed-over")
        await a.close()
        await b.start()
        await asyncio.wait_for(ran.wait(), 5)
        assert where == ["b"]
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("backend", REDIS_BACKENDS)
async def test_a_stopping_replica_finishes_what_runs_and_hands_back_what_starts(request, backend):
    """SIGTERM: A's running task finishes on A (not cancelled, not run twice); a task A
    fetches while stopping goes back to the queue and runs on B long before a lease."""
    url = backend_url(request, backend)
    redis = RedisSettings(url=url, mode="cluster" if backend == "cluster" else "standalone")
    keys = Keyspace(f"t{uuid.uuid4().hex[:12]}")
    # A lease far longer than the test: anything B runs was handed back, not reclaimed.
    a = StreaqQueue(lambda: build_worker(redis, keys, lease_seconds=60, concurrency=4))
    b = StreaqQueue(lambda: build_worker(redis, keys, lease_seconds=60, concurrency=4))
    where: list[tuple[str, int]] = []
    release = asyncio.Event()
    second_ran = asyncio.Event()

    def handler_for(name: str) -> Any:
        async def handler(args: dict[str, Any]) -> None:
            if args["n"] == 1:
                await release.wait()
            where.append((name, args["n"]))
            if args["n"] == 2:
                second_ran.set()

        return handler

    a.register(TaskSpec("t", handler_for("a")))
    b.register(TaskSpec("t", handler_for("b")))
    try:
        await a.start()
        await a.enqueue("t", {"n": 1}, task_id="t:running")
        await asyncio.sleep(0.3)  # A runs it, blocked
        started = time.monotonic()
        closing = asyncio.ensure_future(a.close(grace_seconds=3))
        await a.enqueue("t", {"n": 2}, task_id="t:late")
        for _ in range(100):
            if a.handed_back:
                break
            await asyncio.sleep(0.02)
        assert a.handed_back == 1
        await b.start()
        release.set()
        await asyncio.wait_for(closing, 5)
        await asyncio.wait_for(second_ran.wait(), 10)
        assert time.monotonic() - started < 10
        await asyncio.sleep(0.5)
        assert where == [("a", 1), ("b", 2)]
    finally:
        await a.close()
        await b.close()


async def test_the_memory_queue_lets_a_running_task_finish_within_the_grace():
    queue = MemoryTaskQueue()
    finished = asyncio.Event()

    async def handler(args: dict[str, Any]) -> None:
        await asyncio.sleep(0.2)
        finished.set()

    queue.register(TaskSpec("t", handler))
    await queue.start()
    await queue.enqueue("t", {})
    await asyncio.sleep(0.05)
    await queue.close(grace_seconds=2)
    assert finished.is_set()


async def test_an_enqueue_while_the_worker_restarts_waits_for_the_new_one(tmp_path):
    """Redis down when the replica starts: start() does not wait for it, the worker is
    restarted with backoff, and an enqueue made meanwhile waits (a little) for the new
    worker rather than fail on the broken one's client; close() never hangs."""
    server = RedisServer(tmp_path)  # its port is chosen; nothing listens there yet
    queue = StreaqQueue(
        lambda: build_worker(
            RedisSettings(url=server.url()), Keyspace("down"), lease_seconds=5, concurrency=2
        )
    )
    ran = asyncio.Event()

    async def handler(args: dict[str, Any]) -> None:
        ran.set()

    queue.register(TaskSpec("t", handler))
    try:
        await asyncio.wait_for(queue.start(), 5)  # returns though Redis is down
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        await queue.enqueue("t", {})
        await asyncio.wait_for(ran.wait(), 10)
    finally:
        started = time.monotonic()
        await queue.close()
        assert time.monotonic() - started < 5
        server.stop()
