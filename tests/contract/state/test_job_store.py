"""One contract suite for every JobStore implementation: in memory and in a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import Counts, ErrorInfo, JobStatus
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.redis_store import RedisJobStore
from gateway.state.store import JobRecord, JobStore, MemoryJobStore
from tests.conftest import REDIS_BACKENDS, backend_url, fresh_redis


class FakeNow:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture(params=["memory", *REDIS_BACKENDS, "redis-batched"])
async def store_and_clock(request) -> AsyncIterator[tuple[JobStore, FakeNow]]:
    now = FakeNow()
    if request.param == "memory":
        yield MemoryJobStore(retention_seconds=3600, now=now), now
        return
    # "redis-batched": one server, the commands going out through the per-turn batcher.
    batched = request.param == "redis-batched"
    url = backend_url(request, "redis" if batched else request.param)
    async with fresh_redis(url, cluster=request.param == "cluster") as client:
        batcher = Batcher(client) if batched else None
        keys = Keyspace(client.test_prefix)
        yield (
            RedisJobStore(client, keys, retention_seconds=3600, now=now, batcher=batcher),
            now,
        )


def record(job_id: str, tenant: str, at: datetime, **over) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        key_id="k",
        model="modzy/m@1",
        provider=over.pop("provider", "modzy"),
        input_names=("a",),
        created_at=at,
        updated_at=at,
        **over,
    )


class TestJobStoreContract:
    async def test_get_is_scoped_to_the_tenant(self, store_and_clock):
        store, now = store_and_clock
        await store.create(record("j1", "acme", now()))
        assert (await store.get("acme", "j1")) is not None
        assert (await store.get("other", "j1")) is None
        assert (await store.get("acme", "nope")) is None

    async def test_update_replaces_but_never_across_tenants(self, store_and_clock):
        store, now = store_and_clock
        r = record("j1", "acme", now())
        await store.create(r)
        await store.update(r.evolve(status=JobStatus.RUNNING))
        await store.update(r.evolve(tenant="other", status=JobStatus.FAILED))
        got = await store.get("acme", "j1")
        assert got is not None and got.status is JobStatus.RUNNING

    @pytest.mark.parametrize(
        "final",
        [JobStatus.SUCCEEDED, JobStatus.PARTIALLY_SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED],
    )
    async def test_a_finished_record_is_never_sent_back_to_running(self, store_and_clock, final):
        """A late writer (another replica, or a read racing the engine) cannot undo a finish."""
        store, now = store_and_clock
        r = record("j1", "acme", now())
        await store.create(r)
        await store.update(r.evolve(status=final))
        await store.update(r.evolve(status=JobStatus.RUNNING))
        assert (await store.get("acme", "j1")).status is final
        # A finished record may still be corrected by another finished one.
        await store.update(r.evolve(status=JobStatus.CANCELLED, metadata={"x": "y"}))
        got = await store.get("acme", "j1")
        assert got.status is JobStatus.CANCELLED and got.metadata == {"x": "y"}

    async def test_list_newest_first_with_filters_and_pages(self, store_and_clock):
        store, now = store_and_clock
        for i in range(7):
            at = now() + timedelta(seconds=i)
            status = JobStatus.SUCCEEDED if i % 2 else JobStatus.RUNNING
            await store.create(record(f"j{i}", "acme", at, status=status))
        await store.create(record("x", "other", now() + timedelta(seconds=99)))
        first = await store.list("acme", page_size=3)
        assert [r.id for r in first.records] == ["j6", "j5", "j4"]
        second = await store.list("acme", page_size=3, cursor=first.next_cursor)
        assert [r.id for r in second.records] == ["j3", "j2", "j1"]
        third = await store.list("acme", page_size=3, cursor=second.next_cursor)
        assert [r.id for r in third.records] == ["j0"] and third.next_cursor is None
        done = await store.list("acme", status=JobStatus.SUCCEEDED, page_size=10)
        assert [r.id for r in done.records] == ["j5", "j3", "j1"]

    async def test_paging_lists_every_record_when_times_tie_or_the_clock_steps_back(
        self, store_and_clock
    ):
        """Pages follow (created_at, id), whatever order the records were written in."""
        store, now = store_and_clock
        written = ["jd", "ja", "jf", "jb", "je", "jc"]
        for i, job_id in enumerate(written):
            # Three share one instant; the last three are stamped earlier than the first.
            at = now() - timedelta(seconds=0 if i < 3 else 6 - i)
            await store.create(record(job_id, "acme", at))
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list("acme", page_size=1, cursor=cursor)
            seen += [r.id for r in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["jf", "jd", "ja", "jc", "je", "jb"]

    async def test_every_record_expires_after_retention(self, store_and_clock):
        store, now = store_and_clock
        await store.create(record("old", "acme", now()))
        if isinstance(store, RedisJobStore):
            # Redis expires keys on its own clock: check the TTL it was given.
            r = store._r
            ttl = await r.ttl(store._keys.job("old"))
            assert 3590 <= ttl <= 3600
            assert 3590 <= await r.ttl(store._keys.tenant_index("acme")) <= 3600
            return
        now.t += timedelta(seconds=3601)
        assert (await store.get("acme", "old")) is None

    async def test_a_record_round_trips_whole(self, store_and_clock):
        store, now = store_and_clock
        full = record(
            "full",
            "acme",
            now(),
            status=JobStatus.PARTIALLY_SUCCEEDED,
            upstream_id="u-1",
            upstream_status="COMPLETED",
            upstream_state={"files": {"a": "f1"}, "n": 3},
            counts=Counts(total=2, succeeded=1, failed=1, pending=0),
            error=ErrorInfo("x", "y"),
            finished_at=now() + timedelta(seconds=5),
            metadata={"team": "search"},
        )
        await store.create(full)
        assert await store.get("acme", "full") == full

    async def test_list_skips_records_that_have_expired(self, store_and_clock):
        store, now = store_and_clock
        for i in range(3):
            await store.create(record(f"j{i}", "acme", now() + timedelta(seconds=i)))
        if isinstance(store, RedisJobStore):
            await store._r.delete(store._keys.job("j1"))
            page = await store.list("acme", page_size=10)
            assert [r.id for r in page.records] == ["j2", "j0"]
