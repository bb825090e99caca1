"""Idempotency keys: the same key and body return the same job; a different body is refused.

A key is remembered per tenant with a fingerprint of the request. While the first
request is in flight the entry is *pending*, owned by that request (named by the job id
it plans) under a short lease (``lease_seconds``) the request renews while it works; a
replay meanwhile gets 409. Once the job is accepted the entry names the job (a replay
gets 200 and that job) for the retention time; if the request fails the entry is
dropped, so a retry can succeed.

A replica that dies mid-submit stops renewing: once its lease lapses, the next request
with the key takes the entry over (``Claim.taken_over`` names the job the dead owner
planned, so the caller can look for its record and replay it if it was recorded). Every
write after the claim is fenced by the owner: a request that was taken over (a replica
that only stalled) can neither complete nor drop the entry of the one that took over.
An entry whose owner never completes or drops it disappears after ``pending_seconds``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis

from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher, run_script
from gateway.state.redis_store import store_errors

Outcome = Literal["new", "replay", "in_flight", "mismatch"]

#: How long a submit in flight holds its key without renewing it (the default).
LEASE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    #: ``replay``: the job the key names.
    job_id: str | None = None
    #: ``new`` after a lapsed lease: the job the previous owner planned (it may exist).
    taken_over: str | None = None


class IdempotencyStore(Protocol):
    #: Seconds a pending entry is held without a renewal.
    lease_seconds: float

    async def claim(
        self, tenant: str, key: str, fingerprint: str, owner: str, *, replacing: str | None = None
    ) -> Claim:
        """Judge the key for a request planning job ``owner``; ``new`` makes it the owner.

        ``replacing``: the job a replay named but whose record is gone; an entry still
        naming it is taken over as if pending, so exactly one retry submits again.
        """
        ...

    async def renew(self, tenant: str, key: str, owner: str) -> bool:
        """Extend ``owner``'s lease; False if the entry is no longer its pending one."""
        ...

    async def complete(
        self, tenant: str, key: str, fingerprint: str, job_id: str, owner: str
    ) -> bool:
        """Name ``job_id`` in the entry ``owner`` holds; False if another took it over."""
        ...

    async def release(self, tenant: str, key: str, owner: str) -> None:
        """Drop ``owner``'s pending entry (its request failed), so a retry can submit."""
        ...


def _judge(
    stored: dict[str, Any], fingerprint: str, now: float, replacing: str | None
) -> Claim | None:
    """The answer to a claim of an existing entry, or None if the claim takes it over."""
    if stored.get("fp") != fingerprint:
        return Claim("mismatch")
    job = stored.get("job")
    if isinstance(job, str):
        return None if job == replacing else Claim("replay", job)
    lease = stored.get("lease")
    # An entry without a lease (written before leases) is pending until its TTL ends.
    if lease is None or float(lease) > now:
        return Claim("in_flight")
    return None


class MemoryIdempotencyStore:
    def __init__(
        self,
        *,
        ttl_seconds: float,
        lease_seconds: float = LEASE_SECONDS,
        pending_seconds: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[dict[str, Any], float]] = OrderedDict()
        self._ttl = ttl_seconds
        self.lease_seconds = lease_seconds
        self._pending = pending_seconds
        self._clock = clock
        self._max = max_entries

    def _live(self, tenant: str, key: str) -> dict[str, Any] | None:
        found = self._entries.get((tenant, key))
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    def _put(self, tenant: str, key: str, entry: dict[str, Any], ttl: float) -> None:
        self._entries[(tenant, key)] = (entry, self._clock() + ttl)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def claim(
        self, tenant: str, key: str, fingerprint: str, owner: str, *, replacing: str | None = None
    ) -> Claim:
        now = self._clock()
        stored = self._live(tenant, key)
        previous = None
        if stored is not None:
            judged = _judge(stored, fingerprint, now, replacing)
            if judged is not None:
                return judged
            previous = None if isinstance(stored.get("job"), str) else stored.get("owner")
        entry = {"fp": fingerprint, "job": None, "owner": owner, "lease": now + self.lease_seconds}
        self._put(tenant, key, entry, self._pending)
        return Claim("new", taken_over=previous)

    async def renew(self, tenant: str, key: str, owner: str) -> bool:
        stored = self._live(tenant, key)
        if stored is None or stored.get("owner") != owner or isinstance(stored.get("job"), str):
            return False
        renewed = {**stored, "lease": self._clock() + self.lease_seconds}
        self._put(tenant, key, renewed, self._pending)
        return True

    async def complete(
        self, tenant: str, key: str, fingerprint: str, job_id: str, owner: str
    ) -> bool:
        stored = self._live(tenant, key)
        if stored is not None and stored.get("owner") != owner:
            return False
        self._put(tenant, key, {"fp": fingerprint, "job": job_id, "owner": owner}, self._ttl)
        return True

    async def release(self, tenant: str, key: str, owner: str) -> None:
        stored = self._live(tenant, key)
        if stored is not None and stored.get("owner") == owner and stored.get("job") is None:
            self._entries.pop((tenant, key), None)


# One script per step, each on the entry's one key (so it runs on Redis Cluster too),
# timed by Redis's clock so every replica judges a lease alike. ``cjson`` decodes a
# JSON null as ``cjson.null``, never a string: ``type(e.job) == 'string'`` means done.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: fingerprint, owner, lease ms, pending seconds, replacing ('' for none)
_CLAIM = (
    _NOW
    + """
local raw = redis.call('GET', KEYS[1])
local previous = ''
if raw then
  local e = cjson.decode(raw)
  if e.fp ~= ARGV[1] then return {'mismatch', ''} end
  if type(e.job) == 'string' then
    if e.job ~= ARGV[5] then return {'replay', e.job} end
  elseif type(e.lease) ~= 'number' or e.lease > now then
    return {'in_flight', ''}
  elseif type(e.owner) == 'string' then
    previous = e.owner
  end
end
local entry = cjson.encode({fp = ARGV[1], owner = ARGV[2], lease = now + tonumber(ARGV[3])})
redis.call('SET', KEYS[1], entry, 'EX', ARGV[4])
return {'new', previous}
"""
)

# ARGV: owner, lease ms, pending seconds
_RENEW = (
    _NOW
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.owner ~= ARGV[1] or type(e.job) == 'string' then return 0 end
e.lease = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(e), 'EX', ARGV[3])
return 1
"""
)

# ARGV: owner, the finished entry, its TTL in seconds
_COMPLETE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

# ARGV: owner
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.owner ~= ARGV[1] or type(e.job) == 'string' then return 0 end
return redis.call('DEL', KEYS[1])
"""


class RedisIdempotencyStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        *,
        ttl_seconds: int,
        lease_seconds: float = LEASE_SECONDS,
        pending_seconds: int = 120,
        batcher: Batcher | None = None,
    ) -> None:
        self._keys = keys
        self._ttl = ttl_seconds
        self.lease_seconds = lease_seconds
        self._lease_ms = int(lease_seconds * 1000)
        self._pending = pending_seconds
        self._batch = batcher
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    async def claim(
        self, tenant: str, key: str, fingerprint: str, owner: str, *, replacing: str | None = None
    ) -> Claim:
        name = self._keys.idempotency(tenant, key)
        args = [fingerprint, owner, self._lease_ms, self._pending, replacing or ""]
        with store_errors():
            outcome, job = await run_script(self._claim, self._batch, [name], args)
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        job = (job.decode() if isinstance(job, bytes) else str(job)) or None
        if outcome == "new":
            return Claim("new", taken_over=job)
        if outcome == "replay":
            return Claim("replay", job)
        return Claim("mismatch" if outcome == "mismatch" else "in_flight")

    async def renew(self, tenant: str, key: str, owner: str) -> bool:
        name = self._keys.idempotency(tenant, key)
        with store_errors():
            args = [owner, self._lease_ms, self._pending]
            return bool(await run_script(self._renew, self._batch, [name], args))

    async def complete(
        self, tenant: str, key: str, fingerprint: str, job_id: str, owner: str
    ) -> bool:
        entry = json.dumps({"fp": fingerprint, "job": job_id, "owner": owner})
        name = self._keys.idempotency(tenant, key)
        with store_errors():
            args = [owner, entry, self._ttl]
            return bool(await run_script(self._complete, self._batch, [name], args))

    async def release(self, tenant: str, key: str, owner: str) -> None:
        name = self._keys.idempotency(tenant, key)
        with store_errors():
            await run_script(self._release, self._batch, [name], [owner])
