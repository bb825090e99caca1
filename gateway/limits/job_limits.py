"""Limits on jobs rather than requests: unfinished jobs per credential, jobs per day,
and open event streams per credential.

* **Concurrent jobs** (Stripe's second limiter): each credential may hold
  ``concurrent_jobs`` unfinished jobs. A submit takes a slot named by the job id
  before the provider is asked, under the submit's short lease (``gateway.jobs.leases``:
  a replica that dies mid-submit gives it back within seconds), held for
  ``slot_ttl_seconds`` once the job is recorded; the slot is given back when the
  submit fails, when the job is cancelled, and when any replica sees the job finish. A
  job nobody reads again keeps its slot until ``slot_ttl_seconds``, so nothing leaks for ever.
* **Daily jobs** (the spend guard): jobs per tenant and provider per UTC day, taken
  before the provider is asked and given back if the submit fails, so an exhausted
  quota means the provider sees no new job.

* **Open event streams**: each credential may hold ``events.max_per_credential``
  streams (``GET /v1/jobs/{id}/events``) open at once, across replicas. A stream holds
  a lease in the same kind of sorted set as the slots, renewed while it runs, so a
  replica that dies gives its streams' places back when their leases run out.

All live in Redis (one small script each, timed by Redis's clock) or in this
process, and fall back like the rate limits do (``gateway.limits.ratelimit.SharedLimits``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from gateway.auth.principals import Principal
from gateway.errors import ConcurrencyLimited, QuotaExceeded
from gateway.limits.ratelimit import LimitObserver, SharedLimits, hashed
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher, run_script

DAY = 86_400

_SLOTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[1] == 'count' then return {1, redis.call('ZCARD', KEYS[1])} end
local limit, member, ttl = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], member) then
  if n >= limit then return {0, n} end
  n = n + 1
end
redis.call('ZADD', KEYS[1], now + ttl, member)
-- Never shorten the set's life: a short lease must not expire longer-lived members.
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, n}
"""

_DAILY = """
local secs = tonumber(redis.call('TIME')[1])
local day = math.floor(secs / 86400)
if ARGV[1] == 'give_back' then
  if tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
  end
  return {1, 0, 0, 0}
end
local limit = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[1], day) or '0')
local reset = 86400 - (secs % 86400)
if used >= limit then return {0, used, reset, day} end
redis.call('HINCRBY', KEYS[1], day, 1)
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(field) < day then redis.call('HDEL', KEYS[1], field) end
end
redis.call('EXPIRE', KEYS[1], 2 * 86400)
return {1, used + 1, reset, day}
"""


@dataclass(frozen=True, slots=True)
class Taken:
    admitted: bool
    used: int
    #: Seconds until the quota starts over (daily jobs only).
    reset: int = 0
    #: The UTC day number the job was counted on (daily jobs only).
    day: int = 0


class JobCounters(Protocol):
    async def take_slot(self, key: str, member: str, limit: int, ttl: float) -> Taken: ...

    async def give_slot(self, key: str, member: str) -> None: ...

    async def slots_in_use(self, key: str) -> int: ...

    async def take_daily(self, key: str, limit: int) -> Taken: ...

    async def give_daily(self, key: str, day: int) -> None: ...


class MemoryJobCounters:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._slots: dict[str, dict[str, float]] = {}
        self._daily: dict[str, tuple[int, int]] = {}

    def _live(self, key: str) -> dict[str, float]:
        now = self._monotonic()
        held = {m: t for m, t in self._slots.get(key, {}).items() if t > now}
        if held:
            self._slots[key] = held
        else:
            self._slots.pop(key, None)
        return held

    async def take_slot(self, key: str, member: str, limit: int, ttl: float) -> Taken:
        held = self._live(key)
        if member not in held and len(held) >= limit:
            return Taken(False, len(held))
        held[member] = self._monotonic() + ttl
        self._slots[key] = held
        return Taken(True, len(held))

    async def give_slot(self, key: str, member: str) -> None:
        held = self._slots.get(key)
        if held is not None:
            held.pop(member, None)
            if not held:
                del self._slots[key]

    async def slots_in_use(self, key: str) -> int:
        return len(self._live(key))

    async def take_daily(self, key: str, limit: int) -> Taken:
        secs = int(self._wall())
        day = secs // DAY
        counted_day, used = self._daily.get(key, (day, 0))
        if counted_day != day:
            used = 0
        reset = DAY - secs % DAY
        if used >= limit:
            return Taken(False, used, reset, day)
        self._daily[key] = (day, used + 1)
        return Taken(True, used + 1, reset, day)

    async def give_daily(self, key: str, day: int) -> None:
        counted_day, used = self._daily.get(key, (day, 0))
        if counted_day == day and used > 0:
            self._daily[key] = (day, used - 1)


class RedisJobCounters:
    """With a ``batcher``, each command shares its trip with other requests'
    (``gateway.state.redis_batch``); each script is still one atomic step."""

    def __init__(self, client: aioredis.Redis, *, batcher: Batcher | None = None) -> None:
        self._client = client
        self._slots = client.register_script(_SLOTS)
        self._daily = client.register_script(_DAILY)
        self._batch = batcher

    async def take_slot(self, key: str, member: str, limit: int, ttl: float) -> Taken:
        args = ["take", limit, member, int(ttl * 1000)]
        ok, used = await run_script(self._slots, self._batch, [key], args)
        return Taken(bool(ok), int(used))

    async def give_slot(self, key: str, member: str) -> None:
        if self._batch is not None:
            await self._batch.execute("ZREM", key, member)
        else:
            await self._client.zrem(key, member)

    async def slots_in_use(self, key: str) -> int:
        _, used = await run_script(self._slots, self._batch, [key], ["count"])
        return int(used)

    async def take_daily(self, key: str, limit: int) -> Taken:
        ok, used, reset, day = await run_script(self._daily, self._batch, [key], ["take", limit])
        return Taken(bool(ok), int(used), int(reset), int(day))

    async def give_daily(self, key: str, day: int) -> None:
        await run_script(self._daily, self._batch, [key], ["give_back", day])


@dataclass(frozen=True, slots=True)
class Held:
    """One thing a submit took: a slot (``item`` = job id) or a day's job (``item`` = day)."""

    key: str
    item: str | int
    #: Taken from this process's counters (Redis was down), so given back there.
    local: bool


@dataclass(frozen=True, slots=True)
class Admission:
    """What a submit took, to give back if it fails."""

    slot: Held | None = None
    daily: Held | None = None


TakeOp = Callable[[JobCounters, int], Awaitable[Taken]]


class JobLimits:
    def __init__(
        self,
        guard: SharedLimits,
        *,
        shared: JobCounters | None,
        local: JobCounters,
        keys: Keyspace,
        observer: LimitObserver,
    ) -> None:
        self._guard = guard
        self._settings = guard.settings
        self._shared = shared
        self._local = local
        self._keys = keys
        self._observer = observer

    def slot_key(self, tenant: str, key_id: str) -> str:
        return self._keys.job_slots(tenant, f"k{hashed(key_id)}")

    async def admit(
        self,
        principal: Principal,
        provider: str,
        job_id: str,
        *,
        lease_seconds: float | None = None,
    ) -> Admission:
        """Take a slot and a day's job for this submit, or raise 429. The slot is held
        for ``lease_seconds`` if given (``keep_slot`` renews it, ``hold`` makes it last)."""
        s = self._settings
        slot_limit = s.for_key(principal.key_id).concurrent_jobs
        daily_limit = s.daily_jobs.limit(principal.tenant, provider)
        slot = daily = None
        if slot_limit is not None:
            key = self.slot_key(principal.tenant, principal.key_id)
            ttl = lease_seconds if lease_seconds is not None else s.slot_ttl_seconds
            taken, local, enforce = await self._take(
                lambda c, div: c.take_slot(key, job_id, max(1, slot_limit // div), ttl)
            )
            if taken.admitted:
                slot = Held(key, job_id, local)
            self._count("concurrent_jobs", taken.admitted, enforce)
            if not taken.admitted and enforce:
                raise ConcurrencyLimited(
                    f"This credential may have {slot_limit} unfinished jobs at a time.",
                    headers={"Retry-After": "1"},
                )
        if daily_limit is not None:
            key = self._keys.daily_jobs(principal.tenant, provider)
            taken, local, enforce = await self._take(
                lambda c, div: c.take_daily(key, daily_limit // div)
            )
            if taken.admitted:
                daily = Held(key, taken.day, local)
            self._count("daily_jobs", taken.admitted, enforce)
            if not taken.admitted and enforce:
                await self.undo(Admission(slot=slot))
                raise QuotaExceeded(
                    f"Tenant {principal.tenant!r} has used its {daily_limit} jobs for today "
                    f"on provider {provider!r}.",
                    headers={"Retry-After": str(max(1, taken.reset))},
                )
        return Admission(slot=slot, daily=daily)

    async def undo(self, admission: Admission) -> None:
        """Give back what a failed submit took."""
        if admission.slot is not None:
            held = admission.slot
            await self._give(held, lambda c: c.give_slot(held.key, str(held.item)))
        if admission.daily is not None:
            held = admission.daily
            await self._give(held, lambda c: c.give_daily(held.key, int(held.item)))

    async def keep_slot(
        self, principal: Principal, admission: Admission, seconds: float | None = None
    ) -> None:
        """Hold the submit's slot ``seconds`` more (default: ``slot_ttl_seconds``, for a
        job now recorded). Soft: if Redis is away the slot keeps the time it had."""
        held = admission.slot
        limit = self._settings.for_key(principal.key_id).concurrent_jobs
        if held is None or limit is None:
            return
        ttl = seconds if seconds is not None else self._settings.slot_ttl_seconds
        if held.local:
            limit = max(1, limit // self._settings.replicas)

        async def renew(counters: JobCounters) -> None:
            await counters.take_slot(held.key, str(held.item), limit, ttl)

        await self._give(held, renew)

    async def finished(self, tenant: str, key_id: str, job_id: str) -> None:
        """A job is done: its credential's slot is free again, on every replica."""
        if self._settings.for_key(key_id).concurrent_jobs is None:
            return
        key = self.slot_key(tenant, key_id)
        await self._local.give_slot(key, job_id)
        if self._shared is not None:
            await self._give(Held(key, job_id, False), lambda c: c.give_slot(key, job_id))

    async def open_stream(
        self, principal: Principal, stream_id: str, limit: int, ttl: float
    ) -> Held:
        """A place for one more open event stream of this credential, or raise 429."""
        key = self._keys.event_streams(principal.tenant, f"k{hashed(principal.key_id)}")
        taken, local, enforce = await self._take(
            lambda c, div: c.take_slot(key, stream_id, max(1, limit // div), ttl)
        )
        self._count("event_streams", taken.admitted, enforce)
        if not taken.admitted and enforce:
            raise ConcurrencyLimited(
                f"This credential may hold {limit} event streams open at a time.",
                headers={"Retry-After": "5"},
            )
        return Held(key, stream_id, local)

    async def renew_stream(self, held: Held, limit: int, ttl: float) -> None:
        """Keep a stream's place for ``ttl`` more seconds (it is still open)."""

        async def renew(counters: JobCounters) -> None:
            await counters.take_slot(held.key, str(held.item), limit, ttl)

        # Where it was taken, softly: if Redis is away the lease runs out by itself.
        await self._give(held, renew)

    async def close_stream(self, held: Held) -> None:
        await self._give(held, lambda c: c.give_slot(held.key, str(held.item)))

    async def slots_in_use(self, tenant: str, key_id: str) -> int:
        counters = self._shared or self._local
        return await counters.slots_in_use(self.slot_key(tenant, key_id))

    async def _take(self, op: TakeOp) -> tuple[Taken, bool, bool]:
        """The counters' answer, whether it came from this process, whether it is enforced."""
        enforce = not self._settings.shadow
        if self._shared is None:
            return await op(self._local, 1), False, enforce
        shared = self._shared
        taken = await self._guard.ask(lambda: op(shared, 1), "jobs")
        if taken is not None:
            return taken, False, enforce
        mode = self._guard.fallback()
        taken = await op(self._local, self._settings.replicas)
        return taken, True, enforce and mode == "local"

    async def _give(self, held: Held, op: Callable[[JobCounters], Awaitable[None]]) -> None:
        if held.local or self._shared is None:
            await op(self._local)
            return
        shared = self._shared
        # Soft: if Redis is down the slot or count comes back by itself when its key expires.
        await self._guard.ask(lambda: op(shared), "jobs")

    def _count(self, policy: str, admitted: bool, enforce: bool) -> None:
        outcome = "allowed" if admitted else "limited" if enforce else "shadow_limited"
        self._observer.ratelimit_decision(policy, outcome)
