"""GCRA, the generic cell rate algorithm: one rate-limit decision, in Python and in Lua.

Both the caller limits (``gateway.limits.ratelimit``) and the provider pacing
(``gateway.limits.pacing``) are GCRA buckets. The semantics are redis-cell's: a quota of
``rate`` per ``period`` with ``burst`` extra units lets ``burst + 1`` units through at
once, then one every ``period / rate`` seconds. A bucket is one number, its
*theoretical arrival time* (TAT); a decision reads it, computes, and writes it back.

Two implementations, one algorithm:

* ``gcra_step`` — the pure function, used by the in-memory backend and by tests
  (golden cases from redis-cell, and property tests over random arrivals);
* ``GCRA_LUA`` — the same arithmetic inside one Redis script, so the read, the
  decision and the write are one atomic operation for every replica, timed by
  Redis's own clock (``TIME``) so replicas with skewed clocks agree. A test runs
  both on the same random sequences and requires identical answers.

The script has three modes:

``check``    all-or-nothing over several buckets (a key's and its tenant's limit):
             admitted only if every bucket admits it, and then every bucket is charged.
``reserve``  pacing: charge one bucket now and answer how long to wait before sending
             (nothing is charged if that wait is longer than the caller can wait).
             A *pause* key (a provider's ``Retry-After``) pushes the schedule past
             its end, so the paused-for requests are released one interval apart.
``pause``    set (or extend) a pause key to ``now + delay``.

Keys expire a second after their TAT (a stale TAT counts as a full bucket anyway), so a
bucket key never outlives its meaning by more than that. All times inside are integer
microseconds; Lua numbers are doubles, exact to 2^53 µs
(285 years), so epoch microseconds fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Quota:
    """``rate`` units per ``period`` seconds, with ``burst`` extra units at once."""

    rate: float
    period: float = 1.0
    burst: int = 0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.period <= 0 or self.burst < 0:
            raise ValueError("rate and period must be positive and burst non-negative")

    @property
    def emission_us(self) -> int:
        """Microseconds between two units at the steady rate."""
        return max(1, round(self.period * MICROS / self.rate))

    @property
    def tolerance_us(self) -> int:
        """How far ahead of the steady schedule the bucket may run (its size in time)."""
        return self.emission_us * (self.burst + 1)

    @property
    def limit(self) -> int:
        """Units a full bucket lets through at once."""
        return self.burst + 1

    def scaled(self, divisor: int) -> Quota:
        """This quota split over ``divisor`` replicas (the ``local`` fallback)."""
        if divisor <= 1:
            return self
        return Quota(
            rate=self.rate / divisor, period=self.period, burst=max(0, self.limit // divisor - 1)
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """One bucket's answer, in redis-cell's terms (microseconds)."""

    allowed: bool
    limit: int
    remaining: int
    #: Microseconds until this request would be admitted; -1 when admitted, or when it
    #: never can be (a quantity larger than the bucket).
    retry_after_us: int
    #: Microseconds until the bucket is full again.
    reset_after_us: int

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` as an HTTP integer: at least 1 when limited."""
        return max(1, math.ceil(self.retry_after_us / MICROS)) if not self.allowed else 0

    @property
    def reset_seconds(self) -> int:
        return math.ceil(max(0, self.reset_after_us) / MICROS)


def gcra_step(
    tat_us: int | None, now_us: int, quota: Quota, quantity: int = 1
) -> tuple[Decision, int | None]:
    """One GCRA decision: the answer and the bucket's new TAT (None: unchanged).

    ``tat_us`` None is a bucket never used (or expired): it starts full.
    """
    emission = quota.emission_us
    tolerance = quota.tolerance_us
    increment = emission * quantity
    tat = now_us if tat_us is None else tat_us
    new_tat = max(tat, now_us) + increment
    diff = now_us - (new_tat - tolerance)
    if diff < 0:
        retry_after = -diff if increment <= tolerance else -1
        ttl = tat - now_us
        allowed = False
        written = None
    else:
        retry_after = -1
        ttl = new_tat - now_us
        allowed = True
        written = new_tat
    nxt = tolerance - ttl
    remaining = nxt // emission if nxt > -emission else 0
    decision = Decision(
        allowed=allowed,
        limit=quota.limit,
        remaining=max(0, remaining),
        retry_after_us=retry_after,
        reset_after_us=ttl,
    )
    return decision, written


def reserve_step(
    tat_us: int | None,
    now_us: int,
    quota: Quota | None,
    *,
    paused_until_us: int = 0,
    max_wait_us: int,
) -> tuple[int, int | None]:
    """Pacing: microseconds to wait before sending, and the bucket's new TAT.

    A negative wait means "longer than ``max_wait_us``": nothing was charged, and
    ``-wait`` is how long the caller would have had to wait.
    """
    if quota is None:
        wait = max(0, paused_until_us - now_us)
        return (wait if wait <= max_wait_us else -wait), None
    emission = quota.emission_us
    tolerance = quota.tolerance_us
    tat = now_us if tat_us is None else tat_us
    # During a pause nothing may go before its end; after it, the bucket starts empty,
    # so what piled up is released one emission interval apart, not all at once.
    if paused_until_us > now_us:
        tat = max(tat, paused_until_us + tolerance - emission)
    new_tat = max(tat, now_us) + emission
    wait = max(0, new_tat - tolerance - now_us)
    if wait > max_wait_us:
        return -wait, None
    return wait, new_tat


# KEYS: the bucket keys (check), or [bucket, pause] (reserve), or [pause] (pause).
# ARGV[1]: now in µs, or "" for Redis's own TIME.   ARGV[2]: mode.
# check:   ARGV[3] quantity, then (emission_us, tolerance_us) per key.
#          -> "admitted now" then per key " allowed remaining retry_after reset_after": one
#             string of integers (admitted and allowed 0/1). Every request reads this reply,
#             and a string is one read for the client where an array is one per element.
# reserve: ARGV[3] max_wait_us, ARGV[4] emission_us (0: no rate, only the pause), ARGV[5] tolerance
#          -> {wait_us (negative: too long, nothing charged), now}
# pause:   ARGV[3] delay_us -> {paused_until, now}
GCRA_LUA = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local mode = ARGV[2]

-- Keep a time under a key until `linger_ms` after that time.
local function keep(key, at, linger_ms)
  local ms = math.max(1, math.ceil((at - now) / 1000) + linger_ms)
  redis.call('SET', key, string.format('%d', at), 'PX', ms)
end

if mode == 'pause' then
  local untl = now + tonumber(ARGV[3])
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  if cur > untl then untl = cur end
  keep(KEYS[1], untl, 0)
  return {untl, now}
end

if mode == 'reserve' then
  local max_wait = tonumber(ARGV[3])
  local emission = tonumber(ARGV[4])
  local tolerance = tonumber(ARGV[5])
  local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
  if emission == 0 then
    local wait = math.max(0, paused - now)
    if wait > max_wait then return {-wait, now} end
    return {wait, now}
  end
  local stored = redis.call('GET', KEYS[1])
  local tat = now
  if stored then tat = tonumber(stored) end
  if paused > now then tat = math.max(tat, paused + tolerance - emission) end
  local new_tat = math.max(tat, now) + emission
  local wait = math.max(0, new_tat - tolerance - now)
  if wait > max_wait then return {-wait, now} end
  keep(KEYS[1], new_tat, 1000)
  return {wait, now}
end

local qty = tonumber(ARGV[3])
local out = {1, now}
local writes = {}
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 + 2 * i])
  local tolerance = tonumber(ARGV[3 + 2 * i])
  local increment = emission * qty
  local stored = redis.call('GET', key)
  local tat = now
  -- A TAT in the past is a full bucket, whether or not its key has expired yet.
  if stored and tonumber(stored) > now then tat = tonumber(stored) end
  local new_tat = math.max(tat, now) + increment
  local diff = now - (new_tat - tolerance)
  local allowed, retry_after, ttl
  if diff < 0 then
    allowed = 0
    retry_after = -1
    if increment <= tolerance then retry_after = -diff end
    ttl = tat - now
    out[1] = 0
  else
    allowed = 1
    retry_after = -1
    ttl = new_tat - now
    writes[#writes + 1] = {key, new_tat}
  end
  local nxt = tolerance - ttl
  local remaining = 0
  if nxt > -emission then remaining = math.max(0, math.floor(nxt / emission)) end
  out[#out + 1] = allowed
  out[#out + 1] = remaining
  out[#out + 1] = retry_after
  out[#out + 1] = ttl
end
if out[1] == 1 then
  for _, w in ipairs(writes) do
    keep(w[1], w[2], 1000)
  end
end
for i, v in ipairs(out) do out[i] = string.format('%d', v) end
return table.concat(out, ' ')
"""
