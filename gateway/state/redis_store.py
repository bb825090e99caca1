"""The job store in Redis, shared by every replica.

Each record is one JSON string (``job:{id}``) with the retention as its TTL; each
tenant has a sorted set of its job ids scored by creation time (microseconds), which
is the listing index. Inserts trim the index by age and by count, so nothing grows
without bound; ids whose record has expired are dropped from the index as they are
met. Any Redis failure is a ``StoreUnavailable`` (503) for the caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis
import redis.exceptions

from adapters.base import JobStatus
from gateway.errors import StoreUnavailable
from gateway.state.codec import record_from_json, record_to_json
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.store import JobPage, JobRecord, decode_cursor, encode_cursor

#: What a failing Redis raises through redis-py: its own errors, the socket's, and on a
#: cluster ``RedisClusterException`` (not a ``RedisError``), which is what redis-py raises
#: when no node answers or a slot has no live master.
REDIS_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)

# Replace a record only if it exists and belongs to the same tenant, keeping its TTL; a
# finished record is never replaced by an unfinished one (ARGV[3]: '1' if the new one is).
_UPDATE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local old = cjson.decode(current)
if old['tenant'] ~= ARGV[2] then return 0 end
if ARGV[3] ~= '1' and (old['status'] == 'succeeded' or old['status'] == 'partially_succeeded'
    or old['status'] == 'failed' or old['status'] == 'cancelled') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return 1
"""


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise StoreUnavailable("The job store is unavailable; try again shortly.") from exc


def _score(when: datetime) -> float:
    # Microseconds since the epoch fit a double exactly for the next few centuries.
    return float(int(when.timestamp() * 1_000_000))


class RedisJobStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        *,
        retention_seconds: int,
        now: Callable[[], datetime],
        index_max: int = 100_000,
        batcher: Batcher | None = None,
    ) -> None:
        self._r = client
        self._batch = batcher
        self._keys = keys
        self._retention = retention_seconds
        self._now = now
        self._index_max = index_max

    async def create(self, record: JobRecord) -> None:
        index = self._keys.tenant_index(record.tenant)
        oldest = _score(self._now()) - self._retention * 1_000_000
        with store_errors():
            # Not a MULTI: the record and the index may live in different cluster slots.
            pipe = self._r.pipeline(transaction=False)
            pipe.set(self._keys.job(record.id), record_to_json(record), ex=self._retention)
            pipe.zadd(index, {record.id: _score(record.created_at)})
            pipe.zremrangebyscore(index, "-inf", f"({oldest}")
            pipe.zremrangebyrank(index, 0, -(self._index_max + 1))
            pipe.expire(index, self._retention)
            await pipe.execute()

    async def restore(self, records: Sequence[JobRecord]) -> list[bool | None]:
        """Write back records Redis lost, each only where its key is absent (SET NX).

        A record that exists (another replica wrote it back first, or moved the job on)
        is never replaced. Each keeps what is left of its retention, counted from its
        creation as ``create`` counts it; one past it is not written (None). Returns,
        per record, whether it was written.
        """
        now = self._now()
        out: list[bool | None] = [None] * len(records)
        written: list[int] = []
        with store_errors():
            pipe = self._r.pipeline(transaction=False)
            for i, record in enumerate(records):
                left = self._retention - int((now - record.created_at).total_seconds())
                if left <= 0:
                    continue
                index = self._keys.tenant_index(record.tenant)
                pipe.set(self._keys.job(record.id), record_to_json(record), ex=left, nx=True)
                # The listing finds it again; NX keeps the score of an entry that survived.
                pipe.zadd(index, {record.id: _score(record.created_at)}, nx=True)
                pipe.expire(index, self._retention)
                written.append(i)
            if not written:
                return out
            answers = await pipe.execute()
        for n, i in enumerate(written):
            out[i] = bool(answers[3 * n])
        return out

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        key = self._keys.job(job_id)
        with store_errors():
            # Every read of an unfinished job comes here: it shares its trip with
            # other requests' commands when there is a batcher.
            raw = await (self._batch.execute("GET", key) if self._batch else self._r.get(key))
        if raw is None:
            return None
        record = record_from_json(raw)
        return record if record.tenant == tenant else None

    async def update(self, record: JobRecord) -> None:
        with store_errors():
            await self._r.eval(
                _UPDATE,
                1,
                self._keys.job(record.id),
                record_to_json(record),
                record.tenant,
                "1" if record.done else "0",
            )

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        provider: str | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        index = self._keys.tenant_index(tenant)
        decoded = decode_cursor(cursor) if cursor else None
        # The scan position: (score, member) of the last entry already served.
        after = (_score(decoded[0]), decoded[1]) if decoded else None
        top: float | str = after[0] if after else "+inf"
        out: list[JobRecord] = []
        scanned = 0
        # A filter may skip many ids: scan in batches, but never without bound.
        budget = max(1000, page_size * 20)
        with store_errors():
            while len(out) <= page_size and scanned < budget:
                batch = cast(list[tuple[bytes, float]], await self._r.zrange(
                    index, top, "-inf", byscore=True, desc=True, offset=0,
                    num=page_size * 2 + 10, withscores=True,
                ))  # fmt: skip
                fresh = [
                    (m.decode() if isinstance(m, bytes) else str(m), s)
                    for m, s in batch
                    if not _before_or_at_cursor(m, s, after)
                ]
                if not fresh:
                    break
                raws = await _get_many(self._r, [self._keys.job(m) for m, _ in fresh])
                gone = []
                for (member, score), raw in zip(fresh, raws, strict=True):
                    scanned += 1
                    after = (score, member)
                    if raw is None:
                        gone.append(member)
                        continue
                    record = record_from_json(raw)
                    if record.tenant != tenant:
                        continue
                    if status is not None and record.status != status:
                        continue
                    if provider is not None and record.provider != provider:
                        continue
                    out.append(record)
                    if len(out) > page_size:
                        break
                if gone:
                    await self._r.zrem(index, *gone)
                top = fresh[-1][1]
                if len(batch) < page_size * 2 + 10:
                    break
        more = len(out) > page_size
        page = out[:page_size]
        if more and page:
            return JobPage(page, encode_cursor(page[-1].created_at, page[-1].id))
        return JobPage(page, None)

    async def ping(self) -> None:
        with store_errors():
            await (self._batch.execute("PING") if self._batch else self._r.ping())

    async def close(self) -> None:
        return None


async def _get_many(client: aioredis.Redis, keys: list[str]) -> list[bytes | None]:
    """Several keys in one round trip: GETs in a pipeline, not an MGET, because on a
    cluster job records live in many slots (redis-py splits a pipeline by node; it
    refuses an MGET across slots)."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    raws: list[bytes | None] = await pipe.execute()
    return raws


def _before_or_at_cursor(
    member: bytes | str, score: float, after: tuple[float, str] | None
) -> bool:
    """Whether an index entry is at or newer than the scan position (already served)."""
    if after is None:
        return False
    name = member.decode() if isinstance(member, bytes) else member
    return score > after[0] or (score == after[0] and name >= after[1])
