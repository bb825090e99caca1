"""Configuration of the caller limits: rates per key and tenant, unfinished jobs, daily quotas.

``Settings.ratelimit`` holds one ``RateLimitSettings``. Every credential (an API key,
or a JWT's subject) gets the ``per_key`` limits unless ``keys.<id>`` overrides them
field by field; every tenant may also get limits shared by all its credentials
(``per_tenant``, overridden by ``tenants.<name>``). Nothing configured, nothing limited.

Rates are GCRA quotas (``gateway.limits.gcra``): ``requests`` per ``per_seconds``, plus
``burst`` extra requests at once (redis-cell's semantics: a fresh bucket admits
``burst + 1``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.limits.gcra import Quota

#: The two request classes: ``submit`` is ``POST /v1/jobs``; every other ``/v1/``
#: request (reads, lists, cancels) is a ``read``.
Policy = Literal["submit", "read"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateSettings(_Frozen):
    requests: int = Field(ge=1, le=10_000_000)
    per_seconds: float = Field(default=1.0, gt=0, le=86_400)
    burst: int = Field(default=0, ge=0, le=10_000_000)

    def quota(self) -> Quota:
        return Quota(rate=self.requests, period=self.per_seconds, burst=self.burst)


class LimitSet(_Frozen):
    """Limits of one credential or one tenant; a field left unset is not limited."""

    submit: RateSettings | None = None
    read: RateSettings | None = None
    #: Jobs submitted and not yet seen finished (per credential only).
    concurrent_jobs: int | None = Field(default=None, ge=1, le=1_000_000)

    def over(self, override: LimitSet | None) -> LimitSet:
        """This set with ``override``'s fields laid on top, where they are set."""
        if override is None:
            return self
        merged = {**self.model_dump(), **override.model_dump(exclude_unset=True)}
        return LimitSet.model_validate(merged)

    def rate(self, policy: Policy) -> RateSettings | None:
        return self.submit if policy == "submit" else self.read


class DailyJobs(_Frozen):
    """Spend guard: jobs per tenant and provider per UTC day."""

    #: For every tenant and provider not listed below; None: no quota.
    default: int | None = Field(default=None, ge=0)
    #: ``tenant: {provider: jobs}``; the provider ``"*"`` stands for every other one.
    tenants: dict[str, dict[str, int]] = Field(default_factory=dict)

    def limit(self, tenant: str, provider: str) -> int | None:
        per = self.tenants.get(tenant)
        if per is not None:
            if provider in per:
                return per[provider]
            if "*" in per:
                return per["*"]
        return self.default


class RateLimitSettings(_Frozen):
    #: What a decision does when Redis cannot answer (a decision waits at most
    #: ``redis.socket_timeout`` for it): ``open`` admits, ``closed``
    #: refuses (503 with Retry-After), ``local`` limits in this process with each
    #: quota divided by ``replicas``.
    failure_mode: Literal["open", "closed", "local"] = "local"
    #: Count what would be refused, refuse nothing (to try limits on live traffic).
    shadow: bool = False
    #: How many replicas share the limits: the ``local`` fallback's divisor, for the
    #: caller limits and for the provider pacing alike.
    replicas: int = Field(default=1, ge=1, le=1000)
    #: After a Redis failure, decide locally this long before asking Redis again.
    retry_redis_after_seconds: float = Field(default=1.0, ge=0, le=60)
    per_key: LimitSet = LimitSet()
    keys: dict[str, LimitSet] = Field(default_factory=dict)
    per_tenant: LimitSet = LimitSet()
    tenants: dict[str, LimitSet] = Field(default_factory=dict)
    daily_jobs: DailyJobs = DailyJobs()
    #: An unfinished job's slot is given back when the gateway sees the job finish
    #: (on any replica), and at the latest after this many seconds.
    slot_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=30 * 86_400)

    def for_key(self, key_id: str) -> LimitSet:
        return self.per_key.over(self.keys.get(key_id))

    def for_tenant(self, tenant: str) -> LimitSet:
        return self.per_tenant.over(self.tenants.get(tenant))
