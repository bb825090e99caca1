"""A provider account's circuit breaker as every replica sees it: one Redis hash.

Fields: ``state`` (``open`` or ``closed``; absent: closed), ``probe_at`` (when the open
time ends), ``level`` (trips in a row), ``closed_at``, ``owner`` and ``lease_until``
(the one probe out, and until when it may take), ``version`` (when the state last
changed; it only grows, so a replica can tell a close it has not seen from one it has).
Times are Redis's clock in milliseconds: replicas' monotonic clocks cannot be compared,
so every answer says how long is *left* and each replica counts that on its own clock.

One Lua script, one atomic step per call:

``trip``
    a replica's breaker opened. Already open: the replica follows the open time there is
    (a trip does not extend another's). Closed: open for ``open_seconds`` x 2^level,
    level + 1 when the last close was less than ``max_open_seconds`` ago (a flapping
    provider keeps its long open time), as ``adapters.breaker`` does in one process,
    and never below the tripping replica's own level (its probe failed while Redis had
    lost the record).
``claim``
    the open time is over for a replica with a call in hand: it gets the probe (a lease
    of ``lease_seconds``, the probe call's longest) unless another replica holds it.
``settle``
    the probe's owner reports: ``success`` closes, ``failure`` opens again (level + 1),
    ``abandon`` (the call was never sent) gives the probe back. From anyone but the
    owner it changes nothing: a lease that ran out was taken over, and the new probe
    decides.
``peek``
    the state, changing nothing.

Every write renews the key's TTL (twice the longest open time plus the lease), which
outlives anything the hash says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from gateway.state.redis_batch import Batcher, run_script

Verdict = Literal["closed", "open", "busy", "won"]

_LUA = """
local key = KEYS[1]
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local op, ttl = ARGV[2], tonumber(ARGV[3])
local h = redis.call('HMGET', key, 'state', 'probe_at', 'level', 'closed_at', 'owner',
                     'lease_until', 'version')
local state = h[1] or 'closed'
local probe_at = tonumber(h[2]) or 0
local level = tonumber(h[3]) or 0
local closed_at = tonumber(h[4])
local owner = h[5] or ''
local lease_until = tonumber(h[6]) or 0
local version = tonumber(h[7]) or 0

local function answer()
  if state ~= 'open' then
    return {'closed', version, 0, level, 0}
  end
  local left = math.max(0, probe_at - now)
  if left == 0 and owner ~= '' and lease_until > now then
    return {'busy', version, 0, level, lease_until - now}
  end
  return {'open', version, left, level, 0}
end

local function open_for(base, cap, spread)
  local ms = math.min(cap, base * 2 ^ level)
  return math.floor(math.min(cap, ms * (1 + spread)))
end

local function save()
  version = math.max(now, version + 1)
  redis.call('HSET', key, 'state', state, 'probe_at', probe_at, 'level', level,
             'owner', owner, 'lease_until', lease_until, 'version', version)
  if closed_at then redis.call('HSET', key, 'closed_at', closed_at) end
  redis.call('PEXPIRE', key, ttl)
end

if op == 'peek' then
  return answer()
elseif op == 'trip' then
  if state == 'open' then return answer() end
  local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
  if closed_at and now - closed_at < cap then level = math.min(level + 1, 16) else level = 0 end
  level = math.max(level, tonumber(ARGV[7]))
  state, owner, lease_until = 'open', '', 0
  probe_at = now + open_for(base, cap, tonumber(ARGV[6]))
  save()
  return answer()
elseif op == 'claim' then
  local reply = answer()
  if reply[1] ~= 'open' or reply[3] > 0 then return reply end
  owner, lease_until = ARGV[4], now + tonumber(ARGV[5])
  redis.call('HSET', key, 'owner', owner, 'lease_until', lease_until)
  redis.call('PEXPIRE', key, ttl)
  return {'won', version, 0, level, lease_until - now}
elseif op == 'settle' then
  if state ~= 'open' or owner ~= ARGV[4] then return answer() end
  local outcome = ARGV[5]
  owner, lease_until = '', 0
  if outcome == 'success' then
    state, closed_at = 'closed', now
  elseif outcome == 'failure' then
    local base, cap = tonumber(ARGV[6]), tonumber(ARGV[7])
    level = math.min(level + 1, 16)
    probe_at = now + open_for(base, cap, tonumber(ARGV[8]))
  else
    redis.call('HSET', key, 'owner', '', 'lease_until', 0)
    return answer()
  end
  save()
  return answer()
end
return redis.error_reply('unknown op ' .. op)
"""


@dataclass(frozen=True, slots=True)
class SharedState:
    """One answer of the script. Seconds are counted from the moment Redis answered."""

    #: ``closed``; ``open`` (``probe_left`` to go); ``busy`` (a probe is out elsewhere,
    #: for at most ``lease_left``); ``won`` (the probe is the caller's).
    verdict: Verdict
    version: int
    probe_left: float
    level: int
    lease_left: float

    @classmethod
    def parse(cls, reply: Any) -> SharedState:
        verdict, version, probe_left, level, lease_left = reply
        text = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if text not in ("closed", "open", "busy", "won"):
            raise ValueError(f"unexpected breaker verdict {text!r}")
        return cls(
            verdict=text,  # type: ignore[arg-type]  # checked just above
            version=int(version),
            probe_left=int(probe_left) / 1000,
            level=int(level),
            lease_left=int(lease_left) / 1000,
        )


class BreakerRecord:
    """One provider account's shared breaker state: the calls its replicas make."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        *,
        open_seconds: float,
        max_open_seconds: float,
        lease_seconds: float,
        batcher: Batcher | None = None,
        now_ms: Callable[[], int | None] = lambda: None,
    ) -> None:
        """``now_ms`` exists for tests on a fake clock; in service Redis's ``TIME`` is used."""
        self._script = client.register_script(_LUA)
        self._key = key
        self._base = int(open_seconds * 1000)
        self._cap = int(max_open_seconds * 1000)
        self._lease = int(lease_seconds * 1000)
        self._ttl = 2 * self._cap + self._lease + 60_000
        self._batch = batcher
        self._now = now_ms

    async def peek(self) -> SharedState:
        return await self._run("peek")

    async def trip(self, spread: float, level: int = 0) -> SharedState:
        """``spread``: this trip's jitter, a fraction of the open time either way;
        ``level``: the tripping replica's own count of trips in a row, a floor."""
        return await self._run("trip", self._base, self._cap, repr(spread), level)

    async def claim(self, token: str) -> SharedState:
        return await self._run("claim", token, self._lease)

    async def settle(
        self, token: str, outcome: Literal["success", "failure", "abandon"], spread: float
    ) -> SharedState:
        return await self._run("settle", token, outcome, self._base, self._cap, repr(spread))

    async def _run(self, op: str, *args: str | int) -> SharedState:
        now = self._now()
        argv: list[str | int] = ["" if now is None else str(now), op, self._ttl, *args]
        return SharedState.parse(await run_script(self._script, self._batch, [self._key], argv))
