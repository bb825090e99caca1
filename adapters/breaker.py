"""A circuit breaker for one provider: stop calling a provider that keeps failing.

States and moves::

    CLOSED --(``failures`` consecutive failures or timeouts)--> OPEN
    OPEN ---(open time over: the next call is the probe)------> HALF_OPEN
    HALF_OPEN --(the probe succeeds)--> CLOSED
    HALF_OPEN --(the probe fails)-----> OPEN, for twice as long

While OPEN (and while the one probe is out) ``acquire`` refuses at once, so the
caller answers 503 in microseconds and the provider sees nothing. The open time is
``open_seconds`` x 2^(trips in a row), ± ``jitter`` so replicas that tripped together
do not probe together, capped at ``max_open_seconds``. A trip counts as "in a row"
when the probe failed, or when the breaker had been closed for less than
``max_open_seconds`` (a provider that flaps keeps its long open time).

Only the provider's own failures count: 5xx answers, timeouts and transport errors.
A 4xx (a rejected input, an unknown job, a 429) proves the provider is up.

This breaker lives in one process, and its decision is the fast-fail path: a closed
breaker costs a call one attribute read and never waits on anything. ``Upstream``
holds any ``Breaker``; the gateway shares one breaker per provider account between its
replicas (``gateway.limits.shared_breaker``) by keeping a ``CircuitBreaker`` in each
process and moving it to the shared state with ``hold`` and ``reset``, so the same
local decision stays the fallback when Redis is unreachable. Time comes from an
injected monotonic clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import IntEnum
from typing import Protocol

#: What a caller is told to wait while the probe is out (it answers within seconds).
PROBE_RETRY_AFTER = 1.0


class BreakerState(IntEnum):
    """The values are the ``gateway_circuit_state`` gauge's."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Breaker(Protocol):
    """What ``Upstream`` asks before each attempt and tells after it.

    ``admit`` is awaited so that a shared breaker may ask Redis for the one probe;
    every other answer, and every verdict, is taken without waiting.
    """

    @property
    def state(self) -> BreakerState: ...

    @property
    def open_for(self) -> float:
        """Seconds until the next probe may go (0 unless open), without moving the breaker."""
        ...

    async def admit(self) -> float | None:
        """None: go ahead (perhaps as the probe). Else: seconds the caller should wait."""
        ...

    def success(self) -> None: ...

    def failure(self) -> None: ...

    def abandon(self) -> None: ...

    async def close(self) -> None:
        """Finish any work in the background (the app is shutting down)."""
        ...


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int = 5,
        open_seconds: float = 30.0,
        max_open_seconds: float = 300.0,
        jitter: float = 0.1,
        now: Callable[[], float],
        rng: random.Random | None = None,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1 or open_seconds <= 0 or max_open_seconds < open_seconds:
            raise ValueError("need failures >= 1 and 0 < open_seconds <= max_open_seconds")
        self._threshold = failures
        self._base = open_seconds
        self._cap = max_open_seconds
        self._jitter = jitter
        self._now = now
        self._rng = rng or random.Random()
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._probing = False
        self._probe_at = 0.0
        self._level = 0
        self._closed_at: float | None = None  # None: never tripped

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def open_for(self) -> float:
        """Seconds until the next probe may go (0 unless open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._probe_at - self._now())

    def acquire(self) -> float | None:
        """None: go ahead (in HALF_OPEN: this call is the probe). Else: seconds to wait."""
        if self._state is BreakerState.CLOSED:
            return None
        if self._state is BreakerState.OPEN:
            left = self._probe_at - self._now()
            if left > 0:
                return left
            self._set(BreakerState.HALF_OPEN)
        if self._probing:
            return PROBE_RETRY_AFTER
        self._probing = True
        return None

    async def admit(self) -> float | None:
        """``acquire``, as the ``Breaker`` port asks for it."""
        return self.acquire()

    async def close(self) -> None:
        return None

    @property
    def level(self) -> int:
        """Trips in a row (the open time is ``open_seconds`` x 2^level)."""
        return self._level

    def hold(self, seconds: float, *, level: int | None = None) -> None:
        """Open for ``seconds`` more, on another breaker's word (another replica's trip,
        or a probe that is out elsewhere); a probe of our own is forgotten."""
        if level is not None:
            self._level = level
        self._probe_at = self._now() + max(0.0, seconds)
        self._consecutive = 0
        self._probing = False
        self._set(BreakerState.OPEN)

    def reset(self) -> None:
        """Closed, on another breaker's word (a probe elsewhere succeeded)."""
        if self._state is not BreakerState.CLOSED:
            self._closed_at = self._now()
        self._consecutive = 0
        self._probing = False
        self._set(BreakerState.CLOSED)

    def success(self) -> None:
        """The provider answered (any status below 500)."""
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False
            self._closed_at = self._now()
            self._set(BreakerState.CLOSED)
        if self._state is BreakerState.CLOSED:
            self._consecutive = 0

    def failure(self) -> None:
        """The provider failed: a 5xx, a timeout or a broken connection."""
        if self._state is BreakerState.HALF_OPEN:
            self._trip(repeated=True)
        elif self._state is BreakerState.CLOSED:
            self._consecutive += 1
            if self._consecutive >= self._threshold:
                closed_at = self._closed_at
                self._trip(repeated=closed_at is not None and self._now() - closed_at < self._cap)
        # OPEN: a call let through before the trip ended late; it changes nothing.

    def abandon(self) -> None:
        """An admitted call never reached the provider (refused by pacing, cancelled)."""
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False

    def _trip(self, *, repeated: bool) -> None:
        self._level = min(self._level + 1, 16) if repeated else 0  # 2^16 x base > any cap
        base = min(self._cap, self._base * 2**self._level)
        spread = self._rng.uniform(-self._jitter, self._jitter)
        self._probe_at = self._now() + min(self._cap, base * (1 + spread))
        self._consecutive = 0
        self._probing = False
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
