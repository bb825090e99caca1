"""Caller rate limits: one GCRA decision per request, shared by every replica.

Each ``/v1/`` request is a ``submit`` (``POST /v1/jobs``) or a ``read`` (everything
else). Its credential's bucket for that class, and its tenant's where configured, are
charged in one atomic script (``gateway.limits.buckets``), so across any number of replicas
the admitted count never exceeds the quota, and Redis's clock times every decision.

When Redis cannot answer (within ``redis.socket_timeout``), ``failure_mode`` decides:
``open`` admits, ``closed`` refuses with 503, ``local`` decides in this process with
every quota divided by ``replicas``. After a failure the limiter decides locally for
``retry_redis_after_seconds`` before it asks Redis again (one probe at a time), so a
dead or hung Redis costs one request a timeout, not every request. Every fallback is
counted, and logged at most once per interval.

In ``shadow`` mode decisions are made and counted, and nothing is refused.

The answer's ``RateLimit-Policy`` and ``RateLimit`` fields (IETF draft
``ratelimit-headers``) name the policy (``submit``, ``tenant-read``, ...), never the
key: ``"submit";q=10;w=1`` and ``"submit";r=4;t=1``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from opentelemetry.trace import Tracer

from gateway.auth.principals import Principal
from gateway.errors import StoreUnavailable
from gateway.limits.buckets import Buckets
from gateway.limits.gcra import Decision, Quota
from gateway.limits.settings import Policy, RateLimitSettings, RateSettings
from gateway.state.cache import CacheErrors
from gateway.state.keyspace import Keyspace
from gateway.state.redis_store import REDIS_ERRORS

T = TypeVar("T")

#: Callers whose plans are kept (``CallerLimiter.plan``): a few hundred bytes each.
_MAX_PLANS = 10_000


class LimitObserver(Protocol):
    """Where decisions are counted (``gateway.observability.metrics.Metrics`` implements it)."""

    def ratelimit_decision(self, policy: str, outcome: str) -> None: ...

    def ratelimit_fallback(self, mode: str) -> None: ...

    def ratelimit_backend_error(self) -> None: ...


class SharedLimits:
    """Redis for limit decisions, with the configured way out when it fails."""

    def __init__(
        self,
        settings: RateLimitSettings,
        observer: LimitObserver,
        *,
        shared: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self._observer = observer
        self._monotonic = monotonic
        self._rest_until = float("-inf")
        self._probing = False
        self._errors = CacheErrors(
            on_error=observer.ratelimit_backend_error, event="ratelimit_store_unavailable"
        )

    async def ask(self, call: Callable[[], Awaitable[T]], where: str) -> T | None:
        """Redis's answer, or None when it failed or is resting after a failure."""
        if not self.shared:
            return None
        if self._monotonic() < self._rest_until or self._probing:
            return None
        resting = self._rest_until != float("-inf")
        if resting:
            self._probing = True  # one request at a time finds out whether Redis is back
        try:
            # Bounded by the Redis client's own connect and socket timeouts (redis.*):
            # a timer around the whole call would also fire when this process is merely
            # busy (the answer is there, the loop has not read it yet), and a busy
            # replica deciding locally is a replica over-admitting.
            answer = await call()
        except (*REDIS_ERRORS, TimeoutError) as exc:
            self._rest_until = self._monotonic() + self.settings.retry_redis_after_seconds
            self._errors.record(where, exc)
            return None
        finally:
            self._probing = False
        self._rest_until = float("-inf")
        return answer

    def fallback(self) -> str:
        """Count a decision made without Redis; refuse it if the mode is ``closed``."""
        mode = self.settings.failure_mode
        self._observer.ratelimit_fallback(mode)
        if mode == "closed":
            wait = max(1, math.ceil(self.settings.retry_redis_after_seconds))
            raise StoreUnavailable(
                "The rate limiter cannot decide right now; try again shortly.",
                headers={"Retry-After": str(wait)},
            )
        return mode


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str  # the policy's public name, for headers and metrics
    key: str  # the Redis key (hashed ids, never the credential)
    rate: RateSettings
    quota: Quota


@dataclass(frozen=True, slots=True)
class Plan:
    """What one caller's requests of one policy are charged to: the same every time,
    so it is worked out once (settings are frozen) and reused."""

    buckets: tuple[Bucket, ...]
    pairs: tuple[tuple[str, Quota], ...]
    #: ``RateLimit-Policy``: it names the quotas only, never a decision.
    policy_header: str


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    buckets: tuple[Bucket, ...]
    decisions: tuple[Decision, ...]
    policy_header: str = ""

    @property
    def refused_by(self) -> list[str]:
        """The policies that would not admit the request."""
        pairs = zip(self.buckets, self.decisions, strict=True)
        return [b.name for b, d in pairs if not d.allowed]

    @property
    def outcome(self) -> str:
        """For the log line: allowed, limited, or shadow_limited (limited, not enforced)."""
        if not self.refused_by:
            return "allowed"
        return "limited" if not self.admitted else "shadow_limited"

    @property
    def retry_after(self) -> int:
        waits = [d.retry_after_seconds for d in self.decisions if not d.allowed]
        return max(waits, default=1)

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit``, one list member per policy."""
        if not self.buckets:
            return {}
        policy = self.policy_header or policy_header(self.buckets)
        # r is capped at q: a burst larger than the rate lets more through at once than
        # the policy's q, and a header whose r exceeds its q reads as a broken policy. A
        # caller told "r=q" may spend its whole quota now, which is still true.
        state = ", ".join(
            f'"{b.name}";r={min(d.remaining, b.rate.requests)};t={d.reset_seconds}'
            for b, d in zip(self.buckets, self.decisions, strict=True)
        )
        return {"RateLimit-Policy": policy, "RateLimit": state}


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def policy_header(buckets: tuple[Bucket, ...]) -> str:
    return ", ".join(
        f'"{b.name}";q={b.rate.requests};w={_seconds(b.rate.per_seconds)}' for b in buckets
    )


def hashed(value: str) -> str:
    # Ids may be long or odd (a JWT subject): a fixed-size digest keeps keys tidy.
    return hashlib.sha256(value.encode()).hexdigest()[:20]


class CallerLimiter:
    def __init__(
        self,
        settings: RateLimitSettings,
        *,
        shared: Buckets | None,
        local: Buckets,
        keys: Keyspace,
        observer: LimitObserver,
        guard: SharedLimits,
        tracer: Tracer | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer
        self._shared = shared
        self._local = local
        self._keys = keys
        self._observer = observer
        self._guard = guard
        self._plans: dict[tuple[str, str, Policy], Plan] = {}

    @property
    def guard(self) -> SharedLimits:
        """This replica's view of Redis's health, for other limits to share."""
        return self._guard

    def buckets(self, principal: Principal, policy: Policy) -> tuple[Bucket, ...]:
        return self.plan(principal, policy).buckets

    def plan(self, principal: Principal, policy: Policy) -> Plan:
        """The caller's buckets for ``policy``: worked out once per caller, then reused
        (bounded: the memo starts over past ``_MAX_PLANS`` callers)."""
        memo = (principal.tenant, principal.key_id, policy)
        found = self._plans.get(memo)
        if found is None:
            buckets = self._buckets(principal, policy)
            found = Plan(buckets, tuple((b.key, b.quota) for b in buckets), policy_header(buckets))
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[memo] = found
        return found

    def _buckets(self, principal: Principal, policy: Policy) -> tuple[Bucket, ...]:
        s = self._settings
        tenant = principal.tenant
        out = []
        key_rate = s.for_key(principal.key_id).rate(policy)
        if key_rate is not None:
            key = self._keys.rate_bucket(tenant, f"k{hashed(principal.key_id)}", policy)
            out.append(Bucket(policy, key, key_rate, key_rate.quota()))
        tenant_rate = s.for_tenant(tenant).rate(policy)
        if tenant_rate is not None:
            key = self._keys.rate_bucket(tenant, "tenant", policy)
            out.append(Bucket(f"tenant-{policy}", key, tenant_rate, tenant_rate.quota()))
        return tuple(out)

    async def check(self, principal: Principal, policy: Policy) -> Verdict:
        """Charge the request to its buckets; ``admitted`` False means answer 429."""
        plan = self.plan(principal, policy)
        if not plan.buckets:
            return Verdict(True, (), ())
        if self._tracer is None:
            return await self._decide(plan)
        with self._tracer.start_as_current_span(
            "ratelimit", attributes={"gateway.ratelimit.policy": policy}
        ) as span:
            verdict = await self._decide(plan)
            span.set_attribute("gateway.ratelimit.outcome", verdict.outcome)
            return verdict

    async def _decide(self, plan: Plan) -> Verdict:
        buckets = plan.buckets
        pairs = plan.pairs
        enforce = not self._settings.shadow
        answer = None
        if self._shared is not None:
            shared = self._shared
            answer = await self._guard.ask(lambda: shared.check(pairs), "ratelimit")
        if answer is None:
            if self._shared is not None:
                mode = self._guard.fallback()
                enforce = enforce and mode == "local"
                divisor = self._settings.replicas
                pairs = tuple((key, quota.scaled(divisor)) for key, quota in pairs)
            answer = await self._local.check(pairs)
        admitted, decisions = answer
        verdict = Verdict(admitted or not enforce, buckets, tuple(decisions), plan.policy_header)
        for bucket, decision in zip(buckets, decisions, strict=True):
            if not admitted and not decision.allowed:
                outcome = "limited" if enforce else "shadow_limited"
            else:
                outcome = "allowed"
            self._observer.ratelimit_decision(bucket.name, outcome)
        return verdict
