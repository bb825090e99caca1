"""The engine's tracking entries in Redis, shared by every replica (``gateway.state.tracking``).

Each tracked job is a hash (tenant, seq, due, delay, polls) and a member of one sorted
set scored by its next check's due time; both carry the ``{engine}`` hash tag, so each
step below is one script on one cluster slot. Entries expire with the job's
retention; a sweep that meets the index member of an expired entry drops it. Failures
surface as redis-py's errors: the engine's task then fails and its queue retries it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from gateway.state.keyspace import Keyspace
from gateway.state.tracking import Tracked

_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'seq', 0, 'due', ARGV[2], 'delay', ARGV[3],
           'polls', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""

_ADVANCE = """
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq or tonumber(seq) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', tonumber(seq) + 1, 'due', ARGV[2], 'delay', ARGV[3])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'polls', 1) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""

_FINISH = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS[1] the due index; ARGV: before (ms), limit, the entries' key prefix.
_OVERDUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local e = redis.call('HMGET', ARGV[3] .. id, 'tenant', 'seq', 'due', 'delay', 'polls')
  if e[1] then
    table.insert(out, {id, e[1], e[2], e[3], e[4], e[5]})
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisTracking:
    def __init__(self, client: aioredis.Redis, keys: Keyspace, *, retention_seconds: int):
        self._r = client
        self._keys = keys
        self._retention_ms = retention_seconds * 1000
        self._start = client.register_script(_START)
        self._advance = client.register_script(_ADVANCE)
        self._finish = client.register_script(_FINISH)
        self._overdue = client.register_script(_OVERDUE)

    def _pair(self, job_id: str) -> list[str]:
        return [self._keys.tracked(job_id), self._keys.tracked_due()]

    async def start(self, tenant: str, job_id: str, *, due: float, delay: float) -> None:
        args: list[str | int | float] = [tenant, _ms(due), delay, self._retention_ms, job_id]
        await self._start(keys=self._pair(job_id), args=args)

    async def get(self, job_id: str) -> Tracked | None:
        raw: list[Any] = await self._r.hmget(
            self._keys.tracked(job_id), ["tenant", "seq", "due", "delay", "polls"]
        )
        return _entry(job_id, raw)

    async def advance(
        self, job_id: str, seq: int, *, due: float, delay: float, polled: bool
    ) -> bool:
        args = [seq, _ms(due), delay, "1" if polled else "0", job_id]
        return bool(await self._advance(keys=self._pair(job_id), args=args))

    async def finish(self, job_id: str) -> None:
        await self._finish(keys=self._pair(job_id), args=[job_id])

    async def overdue(self, before: float, limit: int) -> list[Tracked]:
        prefix = self._keys.tracked("")
        rows = await self._overdue(
            keys=[self._keys.tracked_due()], args=[_ms(before), limit, prefix]
        )
        found = (_entry(_text(row[0]), list(row[1:])) for row in rows)
        return [t for t in found if t is not None]

    async def count(self) -> int:
        return int(await self._r.zcard(self._keys.tracked_due()))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(job_id: str, raw: list[Any]) -> Tracked | None:
    tenant, seq, due, delay, polls = raw
    if tenant is None or seq is None:
        return None
    return Tracked(
        tenant=_text(tenant),
        job_id=job_id,
        seq=int(seq),
        due=int(due) / 1000,
        delay=float(delay),
        polls=int(polls or 0),
    )
