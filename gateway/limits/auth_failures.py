"""The failed-authentication log in Redis, shared by every replica.

``gateway.auth.failed_auth`` decides what a failed authentication costs; this is its
shared storage. Per client address, two sorted sets under one hash tag (one script uses
both): the recent failures (member: the attempt's token, score: when, in ms) and the
credentials known good from the address (member: a digest, score: when it stops being
known good). Each decision is one atomic script timed by Redis's ``TIME``, so two
replicas charging the same address at once cannot both take its last failure.

Redis failures go through the caller limits' ``SharedLimits`` (one view of Redis's
health per replica): an unanswered call is None, and the limiter decides in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from gateway.auth.failed_auth import KNOWN_GOOD_SECONDS, Charge
from gateway.limits.ratelimit import SharedLimits
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher, run_script

#: Credentials remembered per address at most (a busy shared egress): the soonest to
#: expire go first.
MAX_KNOWN_PER_ADDRESS = 1000

_LUA = """
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local mode, token, digest = ARGV[1], ARGV[3], ARGV[4]
local limit, window, keep = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if mode == 'charge' then
  local good = redis.call('ZSCORE', KEYS[2], digest)
  if good and tonumber(good) > now then return {1, 0, 1} end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
    return {0, tonumber(oldest[2]) + window - now, 0}
  end
  redis.call('ZADD', KEYS[1], now, token)
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0, 0}
end
if mode == 'settle' then
  if token ~= '' then redis.call('ZREM', KEYS[1], token) end
  if digest ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    redis.call('ZADD', KEYS[2], now + keep, digest)
    local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
    if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
    redis.call('PEXPIRE', KEYS[2], keep)
  end
  return {1, 0, 0}
end
-- 'fail': a known-good credential did not verify: forget it, and count the failure.
redis.call('ZREM', KEYS[2], digest)
redis.call('ZADD', KEYS[1], now, token)
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0, 0}
"""


class RedisFailureLog:
    """A ``gateway.auth.failed_auth.FailureLog`` in Redis.

    ``now_ms`` exists for tests that run it on a fake clock; in service it returns None
    and Redis's own clock is used.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        guard: SharedLimits,
        *,
        limit: int,
        window: float,
        batcher: Batcher | None = None,
        known_seconds: float = KNOWN_GOOD_SECONDS,
        now_ms: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._script = client.register_script(_LUA)
        self._keys = keys
        self._guard = guard
        self._limit = limit
        self._window_ms = max(1, round(window * 1000))
        self._keep_ms = max(1, round(known_seconds * 1000))
        self._batch = batcher
        self._now = now_ms

    async def _run(self, address: str, mode: str, token: str, digest: str) -> Any:
        now = self._now()
        keys = [self._keys.auth_failures(address), self._keys.auth_known(address)]
        args: list[str | int] = [
            mode,
            "" if now is None else str(now),
            token,
            digest,
            self._limit,
            self._window_ms,
            self._keep_ms,
            MAX_KNOWN_PER_ADDRESS,
        ]
        return await self._guard.ask(
            lambda: run_script(self._script, self._batch, keys, args), "failed_auth"
        )

    async def charge(self, address: str, digest: str, token: str) -> Charge | None:
        reply = await self._run(address, "charge", token, digest)
        if reply is None:
            return None
        admitted, wait_ms, known = (int(n) for n in reply)
        if not admitted:
            return Charge(admitted=False, retry_after=wait_ms / 1000)
        return Charge(admitted=True, reserved=not known, known=bool(known))

    async def settle(self, address: str, token: str | None, good: str | None) -> bool:
        return await self._run(address, "settle", token or "", good or "") is not None

    async def fail(self, address: str, digest: str, token: str) -> bool:
        return await self._run(address, "fail", token, digest) is not None
