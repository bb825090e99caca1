"""Records Redis lost are written back from this process's memory (``gateway.state.recall``).

A real Redis (one server, and a Cluster); a loss is a DEL of the record and its index
entry, which is what a restart of a Redis without persistence does to every key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.base import JobStatus
from gateway.state.keyspace import Keyspace
from gateway.state.recall import RecallingJobStore
from gateway.state.redis_store import RedisJobStore
from gateway.state.store import JobRecord
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis

RETENTION = 3600


class FakeNow:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


@dataclass
class Setup:
    store: RecallingJobStore
    below: RedisJobStore
    client: Any
    keys: Keyspace
    now: FakeNow

    async def lose(self, *records: JobRecord) -> None:
        """What a restart of a Redis without persistence does to these records."""
        for r in records:
            await self.client.delete(self.keys.job(r.id))
            await self.client.zrem(self.keys.tenant_index(r.tenant), r.id)

    async def stored(self, job_id: str) -> str | None:
        raw = await self.client.get(self.keys.job(job_id))
        return raw.decode() if raw is not None else None


@pytest.fixture(params=REDIS_BACKENDS)
async def setup(request) -> AsyncIterator[Setup]:
    now = FakeNow()
    url = backend_url(request, request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        keys = Keyspace(client.test_prefix)
        below = RedisJobStore(client, keys, retention_seconds=RETENTION, now=now)
        store = RecallingJobStore(below, below, max_records=5)
        yield Setup(store, below, client, keys, now)
        await store.close()


def record(job_id: str, at: datetime, tenant: str = "acme", **over: Any) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        key_id="k",
        model="modzy/m@1",
        provider="modzy",
        input_names=("a",),
        created_at=at,
        updated_at=at,
        **over,
    )


class TestRecallingJobStore:
    async def test_a_read_of_a_lost_record_writes_it_back_with_what_is_left_of_its_retention(
        self, setup
    ):
        job = record("job_1", setup.now())
        await setup.store.create(job)
        setup.now.t += timedelta(seconds=600)
        await setup.lose(job)

        assert await setup.store.get("acme", "job_1") == job
        # Back in Redis for every replica, in the listing too, expiring when it would have.
        assert await setup.below.get("acme", "job_1") == job
        ttl = await setup.client.ttl(setup.keys.job("job_1"))
        assert RETENTION - 600 - 2 <= ttl <= RETENTION - 600
        listed = await setup.below.list("acme")
        assert [r.id for r in listed.records] == ["job_1"]

    async def test_a_read_that_finds_one_lost_record_writes_back_every_held_one(self, setup):
        jobs = [record(f"job_{i}", setup.now()) for i in range(3)]
        for job in jobs:
            await setup.store.create(job)
        await setup.lose(*jobs)

        assert await setup.store.get("acme", "job_0") == jobs[0]
        await setup.store.settled()  # the others are written back in the background
        assert setup.store.pending == 0 and setup.store.restored_total == 3
        assert [await setup.below.get("acme", j.id) for j in jobs] == jobs

    async def test_a_write_back_never_replaces_a_record_in_redis(self, setup):
        """Another replica wrote the job back first, or moved it on: its record stays."""
        job = record("job_1", setup.now())
        await setup.store.create(job)
        await setup.client.set(setup.keys.job("job_1"), "not-this-process-s-record")
        setup.store.lost("test")
        await setup.store.settled()
        assert setup.store.restored_total == 0 and setup.store.pending == 0
        assert await setup.stored("job_1") == "not-this-process-s-record"
        newer = job.evolve(status=JobStatus.SUCCEEDED, updated_at=setup.now())
        await setup.below.create(newer)
        assert await setup.store.get("acme", "job_1") == newer

    async def test_a_record_past_its_retention_is_dropped_not_written(self, setup):
        job = record("job_1", setup.now())
        await setup.store.create(job)
        await setup.lose(job)
        setup.now.t += timedelta(seconds=RETENTION + 1)
        assert await setup.store.get("acme", "job_1") is None
        assert await setup.stored("job_1") is None
        assert setup.store.held == 0

    async def test_another_tenants_read_writes_nothing_back(self, setup):
        job = record("job_1", setup.now())
        await setup.store.create(job)
        await setup.lose(job)
        assert await setup.store.get("other", "job_1") is None
        assert await setup.stored("job_1") is None

    async def test_a_read_from_memory_writes_back_only_after_a_loss(self, setup):
        """``confirm`` costs no Redis round trip until a loss was seen; then it writes back."""
        done = record("job_1", setup.now(), status=JobStatus.SUCCEEDED)
        await setup.store.create(done)
        await setup.lose(done)
        await setup.store.confirm(done)
        assert await setup.stored("job_1") is None  # no loss seen: nothing asked
        setup.store.lost("test")
        await setup.store.confirm(done)  # before the background pass has run
        assert await setup.below.get("acme", "job_1") == done
        await setup.store.settled()
        assert setup.store.restored_total == 1

    async def test_a_finished_record_held_is_never_replaced_by_an_unfinished_one(self, setup):
        running = record("job_1", setup.now())
        await setup.store.create(running)
        done = running.evolve(status=JobStatus.SUCCEEDED)
        await setup.store.update(done)
        setup.store.hold(running)  # a late read of the old version
        await setup.lose(running)
        assert await setup.store.get("acme", "job_1") == done

    async def test_memory_is_bounded_by_max_records(self, setup):
        jobs = [record(f"job_{i}", setup.now()) for i in range(7)]
        for job in jobs:
            await setup.store.create(job)
        assert setup.store.held == 5
        await setup.lose(*jobs)
        setup.store.lost("test")
        await setup.store.settled()
        assert setup.store.restored_total == 5
        # The two written first are the ones forgotten.
        assert await setup.stored("job_0") is None and await setup.stored("job_1") is None
        assert await setup.below.get("acme", "job_6") == jobs[6]

    async def test_unfinished_records_written_back_are_handed_to_the_hooks(self, setup):
        """The engine takes a written-back unfinished job again (its tracking was lost too)."""
        seen: list[str] = []

        async def track(r: JobRecord) -> None:
            seen.append(r.id)

        setup.store.on_restored.append(track)
        running = record("job_1", setup.now())
        done = record("job_2", setup.now(), status=JobStatus.FAILED)
        for job in (running, done):
            await setup.store.create(job)
        await setup.lose(running, done)
        setup.store.lost("test")
        await setup.store.settled()
        assert setup.store.restored_total == 2
        assert seen == ["job_1"]
