"""One circuit breaker per provider account, shared by every replica through Redis.

Each replica keeps its own ``adapters.breaker.CircuitBreaker``, and that local breaker
still makes every fast-fail decision: closed, a call costs one attribute read and no
Redis round trip; open, a refusal is answered from memory. Redis carries what the
replicas must agree on (``gateway.limits.breaker_record``): that the account's breaker
is open and until when, who holds the one probe, and the probe's verdict.

- Failures are counted per replica (``failures`` in a row on one replica trip it):
  sharing the count would put a Redis write on every failed call, and a replica whose
  own calls succeed has no reason to stop. The trip is shared: the tripping replica
  writes it, and the open time in Redis is everyone's. A closed replica that sees a
  failure reads the shared state (at most every ``recheck_seconds``) and follows an
  open breaker there at once.
- When the open time ends, a replica with a call in hand claims the probe in Redis
  (one round trip; one claim at a time per replica, other calls meanwhile refused).
  Only one replica across all gets it; the others keep refusing, and re-ask every
  ``recheck_seconds`` until the probe's verdict is in Redis.
- While its breaker is not closed, each replica reads the shared state every
  ``recheck_seconds`` in the background, so a probe's success elsewhere closes every
  replica within that interval, calls or no calls (and the ``gateway_circuit_state``
  gauge of an idle replica follows too).

When Redis fails (``REDIS_ERRORS``), the replica falls back to its local breaker alone
for ``rest_seconds`` (it probes by itself, as before sharing existed) and asks Redis
again after that; each failure is counted and logged at most once per ``log_interval``.
A trip made while Redis was away is written once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis
import structlog

from adapters.breaker import PROBE_RETRY_AFTER, Breaker, BreakerState, CircuitBreaker
from gateway.config.settings import ProviderSettings
from gateway.limits.breaker_record import BreakerRecord, SharedState
from gateway.limits.pacing import account_id
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.redis_store import REDIS_ERRORS
from gateway.tasks import spawn

_log = structlog.get_logger("gateway.breaker")


class BreakerObserver(Protocol):
    def circuit_fallback(self, provider: str) -> None:
        """Redis failed the shared breaker; this replica's breaker decides alone a while."""
        ...


class SharedBreaker:
    """The ``adapters.breaker.Breaker`` port over a local breaker and a shared record."""

    def __init__(
        self,
        provider: str,
        local: CircuitBreaker,
        record: BreakerRecord,
        *,
        jitter: float = 0.1,
        recheck_seconds: float = 0.5,
        rest_seconds: float = 1.0,
        observer: BreakerObserver | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        log_interval: float = 30.0,
    ) -> None:
        self.provider = provider
        self._local = local
        self._record = record
        self._jitter = jitter
        self._recheck = recheck_seconds
        self._rest = rest_seconds
        self._observer = observer
        self._now = now
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._log_interval = log_interval
        self._logged_at: float | None = None
        self._rest_until = float("-inf")
        #: The newest shared version followed: a close newer than it is news.
        self._version = 0
        #: The probe lease this replica holds in Redis, while its probe is out.
        self._token: str | None = None
        self._claiming = False
        #: The local breaker tripped and Redis has not been told (it was away).
        self._unpublished = False
        self._peeked_at = float("-inf")
        self._watcher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    @property
    def state(self) -> BreakerState:
        return self._local.state

    @property
    def open_for(self) -> float:
        return self._local.open_for

    async def admit(self) -> float | None:
        local = self._local
        if local.state is BreakerState.CLOSED:
            return None  # the hot path: no Redis
        self._watch()
        if self._resting() or local.state is BreakerState.HALF_OPEN:
            return local.acquire()  # alone, or this replica's own probe is out
        left = local.open_for
        if left > 0:
            return left
        if self._claiming:
            return PROBE_RETRY_AFTER
        self._claiming = True
        token = uuid.uuid4().hex
        try:
            shared = await self._record.claim(token)
        except REDIS_ERRORS as exc:
            self._fell_back(exc)
            return local.acquire()
        finally:
            self._claiming = False
        return self._after_claim(shared, token)

    def success(self) -> None:
        probing = self._local.state is BreakerState.HALF_OPEN
        self._local.success()
        if probing and self._token is not None:
            self._settle("success")
        elif probing:
            self._unpublished = False  # its own probe closed it: no trip left to tell

    def failure(self) -> None:
        local = self._local
        before = local.state
        local.failure()
        if before is BreakerState.HALF_OPEN and self._token is not None:
            self._unpublished = True
            self._settle("failure")
        elif before is not BreakerState.OPEN and local.state is BreakerState.OPEN:
            # Tripped, or a probe of its own (Redis did not know the trip) failed.
            self._unpublished = True
            self._background(self._publish_trip(), "breaker-trip")
        elif local.state is BreakerState.CLOSED and self._due():
            # One failure here may be the provider another replica already gave up on.
            self._background(self._follow_open(), "breaker-peek")
        if local.state is not BreakerState.CLOSED:
            self._watch()

    def abandon(self) -> None:
        if self._local.state is BreakerState.HALF_OPEN and self._token is not None:
            # The probe never went: give it back, so whoever has the next call sends it.
            self._local.hold(0.0)
            self._settle("abandon")
        else:
            self._local.abandon()

    async def close(self) -> None:
        if self._pending:
            # A verdict on its way is worth a moment: the other replicas act on it.
            await asyncio.wait(set(self._pending), timeout=2.0)
        for task in list(self._pending):
            task.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def settled(self) -> None:
        """Wait for the verdicts on their way to Redis (tests, and ``close``)."""
        while self._pending:
            await asyncio.wait(set(self._pending))

    # -- following the shared state ---------------------------------------------------

    def _after_claim(self, shared: SharedState, token: str) -> float | None:
        local = self._local
        if shared.verdict == "won":
            self._version = max(self._version, shared.version)
            wait = local.acquire()  # OPEN with its time over: HALF_OPEN, this call probes
            if wait is None and local.state is BreakerState.HALF_OPEN:
                self._token = token
                return None
            self._token = token
            self._settle("abandon")  # something else moved the breaker meanwhile
            return wait
        if shared.verdict == "closed" and (shared.version <= self._version or self._unpublished):
            # Redis does not know this trip (restarted, flushed, or away when it happened):
            # decide alone, and tell Redis if this probe fails.
            return local.acquire()
        self._follow(shared)
        if local.state is BreakerState.CLOSED:
            return None
        return max(local.open_for, PROBE_RETRY_AFTER if shared.verdict == "busy" else 0.0)

    def _follow(self, shared: SharedState) -> None:
        """Move the local breaker to what Redis says (its own probe is left alone)."""
        local = self._local
        if local.state is BreakerState.HALF_OPEN and self._token is not None:
            return
        if shared.verdict == "closed":
            if shared.version > self._version:
                self._version = shared.version
                local.reset()
            return
        self._version = max(self._version, shared.version)
        if shared.verdict == "busy":
            # Another replica's probe is out: ask again after a recheck, not its lease.
            local.hold(min(shared.lease_left, self._recheck), level=shared.level)
        else:
            local.hold(shared.probe_left, level=shared.level)
        self._watch()  # from now on, follow Redis even without calls

    async def _publish_trip(self) -> None:
        try:
            shared = await self._record.trip(self._spread(), self._local.level)
        except REDIS_ERRORS as exc:
            self._fell_back(exc)
            return
        self._unpublished = False
        if self._local.state is BreakerState.OPEN:
            self._follow(shared)

    async def _follow_open(self) -> None:
        self._peeked_at = self._now()
        try:
            shared = await self._record.peek()
        except REDIS_ERRORS as exc:
            self._fell_back(exc)
            return
        if self._local.state is BreakerState.CLOSED and (
            shared.verdict == "busy" or (shared.verdict == "open" and shared.probe_left > 0)
        ):
            self._follow(shared)

    def _settle(self, outcome: Literal["success", "failure", "abandon"]) -> None:
        token, self._token = self._token, None
        assert token is not None
        self._background(self._publish_settle(token, outcome), "breaker-settle")

    async def _publish_settle(
        self, token: str, outcome: Literal["success", "failure", "abandon"]
    ) -> None:
        try:
            shared = await self._record.settle(token, outcome, self._spread())
        except REDIS_ERRORS as exc:
            self._fell_back(exc)
            return
        if outcome == "failure":
            self._unpublished = False
        if outcome == "success":
            if shared.verdict == "closed":
                self._version = max(self._version, shared.version)
            return  # open: another probe took over and decides; this replica saw success
        if self._local.state is BreakerState.OPEN:
            self._follow(shared)

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = spawn(self._watch_loop(), name=f"breaker-watch-{self.provider}")

    async def _watch_loop(self) -> None:
        while self._local.state is not BreakerState.CLOSED:
            await self._sleep(self._recheck)
            await self.sync()

    async def sync(self) -> None:
        """One look at Redis while this replica's breaker is open (the watcher's step,
        every ``recheck_seconds``): follow its state, or write a trip it has not seen."""
        if self._resting() or self._local.state is not BreakerState.OPEN:
            return
        if self._unpublished:
            await self._publish_trip()
            return
        try:
            shared = await self._record.peek()
        except REDIS_ERRORS as exc:
            self._fell_back(exc)
            return
        if self._local.state is BreakerState.OPEN:
            self._after_peek(shared)

    def _after_peek(self, shared: SharedState) -> None:
        if self._unpublished:
            return  # this replica's trip is not in Redis yet: what Redis says predates it
        if shared.verdict == "closed" and shared.version <= self._version:
            return  # Redis lost the trip: the local open time runs out, then a probe
        if shared.verdict == "open" and shared.probe_left == 0:
            return  # nobody probes yet: this replica's next call will claim it
        self._follow(shared)

    # -- plumbing ---------------------------------------------------------------------

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._resting():
            # Alone for now: the watcher writes an unsent trip once Redis answers.
            coro.close()
            return
        task = spawn(coro, name=f"{name}-{self.provider}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _due(self) -> bool:
        return self._now() - self._peeked_at >= self._recheck

    def _spread(self) -> float:
        return self._rng.uniform(-self._jitter, self._jitter)

    def _resting(self) -> bool:
        return self._now() < self._rest_until

    def _fell_back(self, exc: BaseException) -> None:
        now = self._now()
        self._rest_until = now + self._rest
        if self._observer is not None:
            self._observer.circuit_fallback(self.provider)
        if self._logged_at is None or now - self._logged_at >= self._log_interval:
            self._logged_at = now
            _log.warning(
                "circuit_breaker_fallback",
                provider=self.provider,
                error=type(exc).__name__,
                detail="Redis failed: this replica's breaker decides alone for a while",
            )


def share_breaker(
    p: ProviderSettings,
    local: CircuitBreaker | None,
    *,
    redis: aioredis.Redis | None,
    keys: Keyspace,
    batcher: Batcher | None = None,
    observer: BreakerObserver | None = None,
    now: Callable[[], float] = time.monotonic,
) -> Breaker | None:
    """Provider ``p``'s breaker: ``local`` shared through ``redis`` when there is one and
    ``circuit_breaker.shared`` is on (keyed by the account, as pacing is); else ``local``."""
    settings = p.circuit_breaker
    if local is None or redis is None or not settings.shared:
        return local
    secret = p.secret.get_secret_value() if p.secret is not None else ""
    record = BreakerRecord(
        redis,
        keys.breaker(account_id(p.type, p.base_url, secret)),
        open_seconds=settings.open_seconds,
        max_open_seconds=settings.max_open_seconds,
        # The probe holds its lease for as long as its call may take.
        lease_seconds=p.timeouts.total + 1.0,
        batcher=batcher,
    )
    return SharedBreaker(
        p.name,
        local,
        record,
        jitter=settings.jitter,
        recheck_seconds=settings.recheck_seconds,
        observer=observer,
        now=now,
    )
