"""What an ``Upstream`` is configured with, reports to, and paces itself by.

``UpstreamSettings`` is one provider's transport configuration; ``UpstreamObserver``
is where every attempt, retry, pause and breaker move is reported (the gateway's
metrics implement it); ``Pacing`` is the provider account's shared send schedule
(``gateway.limits.pacing.Pacer`` implements it, with Redis behind it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    provider: str
    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_response_bytes: int = 10 * 1024 * 1024
    #: Extra attempts for a safe request; 0 disables retries.
    retries: int = 2
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    #: A provider's Retry-After is clamped to this, so it cannot park us for a day.
    retry_after_max: float = 60.0
    headers: Mapping[str, str] = field(default_factory=dict)


class UpstreamObserver(Protocol):
    """Where Upstream reports each attempt (the gateway's metrics implement it)."""

    def attempt(self, provider: str, operation: str, outcome: str, seconds: float) -> None: ...

    def retry(self, provider: str, reason: str) -> None: ...

    def retry_refused(self, provider: str) -> None:
        """A retry was not made because the provider's retry budget was spent."""
        ...

    def throttled(self, provider: str) -> None:
        """The provider answered 429: it is rate limiting the gateway."""
        ...

    def paused(self, provider: str, seconds: float) -> None:
        """The provider's Retry-After paused it for ``seconds`` (for every replica)."""
        ...

    def shed(self, provider: str, reason: str) -> None:
        """A call failed fast without reaching the provider (``circuit_open``, ``pacing``)."""
        ...


class NullObserver:
    """Reports nowhere (an Upstream built without metrics, in tests)."""

    def attempt(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        return None

    def retry(self, provider: str, reason: str) -> None:
        return None

    def retry_refused(self, provider: str) -> None:
        return None

    def throttled(self, provider: str) -> None:
        return None

    def paused(self, provider: str, seconds: float) -> None:
        return None

    def shed(self, provider: str, reason: str) -> None:
        return None


class Pacing(Protocol):
    """A provider account's send schedule (``gateway.limits.pacing.Pacer`` implements it)."""

    @property
    def max_wait(self) -> float:
        """The longest wait for a turn before a call fails fast instead."""
        ...

    async def wait_turn(self, budget: float) -> None:
        """Wait for the next turn; raise ProviderUnavailable if it is beyond ``budget``."""
        ...

    async def pause(self, seconds: float) -> None:
        """No turn for anyone (every replica) for ``seconds``."""
        ...

    async def paused_for(self) -> float:
        """Seconds left of the current pause (0: none)."""
        ...
