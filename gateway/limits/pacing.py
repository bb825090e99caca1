"""Provider pacing: every replica's calls to one provider account share one schedule.

A provider's quota belongs to the account (the credential at a base URL), not to a
replica, so the schedule lives in Redis: ``RedisBuckets.reserve`` charges the
account's GCRA bucket and answers how long to wait for the turn, timed by Redis's
clock. A provider's Retry-After is a *pause* on the same account (``pause``), which
``reserve`` honours, so no replica sends inside it; once it ends, the waiting calls
are released one emission interval apart. With no rate configured, pauses still
apply, and each waiting call adds a random delay of up to ``release_jitter`` so the
calls held by a pause do not all fire the moment it ends.

A turn further away than the caller can wait (its deadline, or ``max_wait``) is not
taken: nothing is charged and the call fails at once with 503 + Retry-After.

When Redis fails, this replica paces alone with an in-memory bucket at the rate
divided by ``local_divisor`` (the expected replica count), so the sum over replicas
stays near the account's rate. Each such decision is counted, and logged at most once
per ``log_interval``. Pauses are also kept in memory, so a pause this replica learned
still holds when Redis is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
import structlog

from adapters.errors import ProviderUnavailable
from adapters.responses import retry_after_header
from gateway.config.settings import ProviderSettings
from gateway.limits.buckets import Buckets, MemoryBuckets, RedisBuckets
from gateway.limits.gcra import Quota
from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.redis_store import REDIS_ERRORS

_log = structlog.get_logger("gateway.pacing")
#: What a failing Redis raises through redis-py (its own errors, the socket's, a cluster's).
_BACKEND_ERRORS = REDIS_ERRORS


class PacingObserver(Protocol):
    def pacing_wait(self, provider: str, seconds: float) -> None:
        """A call waited ``seconds`` for its turn (0 when it went at once)."""
        ...

    def pacing_fallback(self, provider: str) -> None:
        """Redis failed; this replica's own bucket made the decision."""
        ...

    def shed(self, provider: str, reason: str) -> None: ...


def account_id(provider_type: str, base_url: str, credential: str) -> str:
    """The provider account a credential stands for, as a hash: never the credential."""
    material = "\0".join((provider_type, base_url.rstrip("/"), credential))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class Pacer:
    def __init__(
        self,
        provider: str,
        *,
        bucket_key: str,
        pause_key: str,
        quota: Quota | None,
        max_wait: float,
        release_jitter: float = 2.0,
        shared: Buckets | None = None,
        local: Buckets | None = None,
        local_divisor: int = 1,
        observer: PacingObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.monotonic,
        log_interval: float = 30.0,
    ) -> None:
        """Args beyond the obvious:
        shared: the buckets every replica shares (None: this process is alone).
        local: this process's buckets, for when ``shared`` fails or is None.
        local_divisor: the rate share of one replica when it paces alone.
        """
        self.provider = provider
        self._bucket = bucket_key
        self._pause = pause_key
        self._quota = quota
        self._max_wait = max_wait
        self._jitter = release_jitter
        self._shared = shared
        self._local: Buckets = local if local is not None else MemoryBuckets()
        # Alone only when Redis fails: with no Redis at all this is the only process.
        self._local_quota = quota.scaled(local_divisor) if quota and shared else quota
        self._observer = observer
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now = now
        self._log_interval = log_interval
        self._logged_at: float | None = None

    @property
    def max_wait(self) -> float:
        return self._max_wait

    async def wait_turn(self, budget: float) -> None:
        limit = max(0.0, min(self._max_wait, budget))
        wait = await self._reserve(limit)
        if wait < 0:
            if self._observer is not None:
                self._observer.shed(self.provider, "pacing")
            headers = retry_after_header(-wait)
            raise ProviderUnavailable(
                self.provider,
                f"The provider is busy; try again in {headers['Retry-After']} s.",
                headers=headers,
            )
        if wait > 0 and self._quota is None and self._jitter > 0:
            # No schedule spreads the calls a pause held back: spread them at random.
            wait += self._rng.uniform(0, max(0.0, min(self._jitter, limit - wait)))
        if self._observer is not None:
            self._observer.pacing_wait(self.provider, wait)
        if wait > 0:
            await self._sleep(wait)

    async def pause(self, seconds: float) -> None:
        await self._local.pause(self._pause, seconds)
        if self._shared is None:
            return
        try:
            await self._shared.pause(self._pause, seconds)
        except _BACKEND_ERRORS as exc:
            self._fell_back(exc)

    async def paused_for(self) -> float:
        left = await self._local.paused_for(self._pause)
        if self._shared is None:
            return left
        try:
            return max(left, await self._shared.paused_for(self._pause))
        except _BACKEND_ERRORS as exc:
            self._fell_back(exc)
            return left

    async def _reserve(self, limit: float) -> float:
        if self._shared is not None:
            try:
                return await self._shared.reserve(self._bucket, self._pause, self._quota, limit)
            except _BACKEND_ERRORS as exc:
                self._fell_back(exc)
        return await self._local.reserve(self._bucket, self._pause, self._local_quota, limit)

    def _fell_back(self, exc: BaseException) -> None:
        if self._observer is not None:
            self._observer.pacing_fallback(self.provider)
        now = self._now()
        if self._logged_at is None or now - self._logged_at >= self._log_interval:
            self._logged_at = now
            _log.warning(
                "provider_pacing_fallback",
                provider=self.provider,
                error=type(exc).__name__,
                detail="Redis failed: this replica paces the provider on its own",
            )


def build_pacer(
    p: ProviderSettings,
    *,
    redis: aioredis.Redis | None,
    keys: Keyspace,
    observer: PacingObserver | None = None,
    local_divisor: int = 1,
    batcher: Batcher | None = None,
) -> Pacer:
    """The pacer of provider ``p``: shared through ``redis`` when there is one."""
    secret = p.secret.get_secret_value() if p.secret is not None else ""
    account = account_id(p.type, p.base_url, secret)
    pacing = p.pacing
    quota = (
        Quota(rate=pacing.requests, period=pacing.per_seconds, burst=pacing.burst)
        if pacing.requests is not None
        else None
    )
    return Pacer(
        p.name,
        bucket_key=keys.pacing(account),
        pause_key=keys.pause(account),
        quota=quota,
        max_wait=pacing.max_wait_seconds,
        release_jitter=pacing.release_jitter_seconds,
        shared=RedisBuckets(redis, batcher=batcher) if redis is not None else None,
        local_divisor=local_divisor,
        observer=observer,
    )
