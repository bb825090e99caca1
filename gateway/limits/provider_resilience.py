"""Per-provider settings for pacing, the circuit breaker and the retry budget.

``gateway.config.settings`` nests these under each ``providers[]`` entry; the builders below turn
them into the objects ``Upstream`` holds (``gateway.limits.pacing`` builds the pacer). Every
model is frozen and rejects unknown fields, like the rest of the configuration.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.breaker import BreakerState, CircuitBreaker
from adapters.retry_budget import RetryBudget

_log = structlog.get_logger("gateway.breaker")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PacingSettings(_Frozen):
    """The provider account's request rate, shared by every replica (through Redis)."""

    #: Requests per ``per_seconds`` the account allows; None: no rate (pauses still apply).
    requests: float | None = Field(default=None, gt=0, le=100_000)
    per_seconds: float = Field(default=1.0, gt=0, le=86_400)
    #: Requests allowed at once above the steady rate (0: strictly even spacing).
    burst: int = Field(default=0, ge=0, le=10_000)
    #: The longest a call waits for its turn (or for a Retry-After pause to end)
    #: before it fails fast with 503 + Retry-After; also capped by the request deadline.
    max_wait_seconds: float = Field(default=10.0, ge=0, le=600)
    #: With no rate set: calls held back by a pause are released over up to this many
    #: seconds at random, not all at once when it ends.
    release_jitter_seconds: float = Field(default=2.0, ge=0, le=60)


class CircuitBreakerSettings(_Frozen):
    """Stop calling a provider that keeps failing (``gateway.limits.shared_breaker``)."""

    enabled: bool = True
    #: Consecutive failures or timeouts (5xx, no answer) that open the breaker.
    failures: int = Field(default=5, ge=1, le=1000)
    #: Open time before the first probe; doubles with each trip in a row.
    open_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_open_seconds: float = Field(default=300.0, gt=0, le=86_400)
    #: The open time varies by this fraction either way, so replicas do not probe together.
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    #: With Redis configured: one breaker per provider account for every replica (one
    #: probe across all, its verdict followed by all). Failures are still counted per
    #: replica. False, or no Redis: each replica's breaker is its own.
    shared: bool = True
    #: How often a replica whose shared breaker is not closed reads it from Redis: a
    #: probe's success elsewhere closes this replica within this time.
    recheck_seconds: float = Field(default=0.5, ge=0.05, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> CircuitBreakerSettings:
        if self.max_open_seconds < self.open_seconds:
            raise ValueError("max_open_seconds must be at least open_seconds")
        return self


class RetryBudgetSettings(_Frozen):
    """Retries stay a fraction of the provider's live traffic (per replica)."""

    #: Retries allowed per request over the window (Envoy's default budget: 20 %).
    ratio: float = Field(default=0.2, ge=0, le=1)
    #: Retries allowed in any window whatever the traffic.
    min_retries: int = Field(default=3, ge=0, le=1000)
    window_seconds: float = Field(default=10.0, gt=0, le=600)


def build_breaker(
    provider: str,
    settings: CircuitBreakerSettings,
    *,
    now: Callable[[], float],
    report: Callable[[str, BreakerState], None],
) -> CircuitBreaker | None:
    """The provider's breaker (None when disabled); every move is reported and logged."""
    if not settings.enabled:
        return None

    def changed(state: BreakerState) -> None:
        report(provider, state)
        log = _log.warning if state is BreakerState.OPEN else _log.info
        log("circuit_breaker", provider=provider, state=state.name.lower())

    return CircuitBreaker(
        failures=settings.failures,
        open_seconds=settings.open_seconds,
        max_open_seconds=settings.max_open_seconds,
        jitter=settings.jitter,
        now=now,
        on_change=changed,
    )


def build_retry_budget(settings: RetryBudgetSettings, *, now: Callable[[], float]) -> RetryBudget:
    return RetryBudget(
        ratio=settings.ratio,
        min_retries=settings.min_retries,
        window_seconds=settings.window_seconds,
        now=now,
    )
