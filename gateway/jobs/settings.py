"""Configuration of the job engine (``engine``), of how often it asks a provider (``poll``),
of webhooks (``webhooks``), of live event streams (``events``) and of a model's item
cache (``cache``).

``gateway.config.settings`` embeds ``EngineSettings`` as the ``engine`` section,
``WebhookSettings`` as ``webhooks``, ``EventStreamSettings`` as ``events``, and
``PollSettings`` under each ``providers[]`` entry as ``poll``, ``ItemCacheSettings`` under
each model as ``cache``; ``gateway.config.loading``
reads the webhook secrets named by ``env`` or ``file``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Frozen):
    """The job engine: every replica tracks unfinished jobs until they finish."""

    #: Off: a job moves only when a client reads it (one process, the behaviour before
    #: the engine). On: with ``redis.url`` the jobs are shared by every replica through a
    #: durable task queue in Redis; without it they are tracked in this process.
    enabled: bool = True
    #: A read asks the provider itself only when the engine has not refreshed the job's
    #: status for this long (the engine fell behind); otherwise it answers from state.
    max_staleness_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: A task held by a replica that stopped answering (killed, hung) runs again on
    #: another replica after this long.
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    #: Engine tasks one replica runs at once (each waits mostly on a provider).
    concurrency: int = Field(default=32, ge=1, le=1000)
    #: How often a replica looks for tracked jobs whose next check is overdue by more
    #: than ``max_staleness_seconds`` and schedules it again (a safety net: a check is
    #: never lost, but a Redis that lost data can drop one).
    sweep_seconds: float = Field(default=60.0, ge=1, le=3600)
    #: On SIGTERM (after the HTTP drain), the engine tasks running on this replica get
    #: this long to finish; a task that would start meanwhile is handed back to the
    #: queue for another replica. What is still running then is cancelled and runs again
    #: elsewhere after ``lease_seconds``. Keep shutdown_timeout + this under the pod's
    #: termination grace period.
    shutdown_grace_seconds: float = Field(default=5.0, ge=0, le=60)


class ItemCacheSettings(_Frozen):
    """A model's item cache (``providers[].models[].cache``): opt-in, because only a
    deterministic model may answer an input it has seen from what it answered before."""

    #: On: an input already answered for this model, version and options (and, by
    #: default, this tenant) is answered from the cache; only the others are sent.
    items: bool = False
    #: How long an answer is reused.
    ttl_seconds: int = Field(default=86_400, ge=1, le=90 * 86_400)
    #: ``tenant``: each tenant's entries are its own. ``global``: every tenant shares
    #: them (for public models whose answers reveal nothing of who asked).
    scope: Literal["tenant", "global"] = "tenant"


class PollSettings(_Frozen):
    """How often the engine asks a provider about one unfinished job."""

    #: The first check after submit, and the interval again whenever progress is seen.
    initial_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: The interval grows by ``factor`` at every check that sees no progress, up to this.
    max_seconds: float = Field(default=30.0, gt=0, le=86_400)
    factor: float = Field(default=2.0, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> PollSettings:
        if self.max_seconds < self.initial_seconds:
            raise ValueError("max_seconds must be at least initial_seconds")
        return self

    def next_delay(self, previous: float | None, progressed: bool) -> float:
        """The wait before the next check, after one that waited ``previous``."""
        if previous is None or progressed:
            return self.initial_seconds
        return min(self.max_seconds, previous * self.factor)


class WebhookSecret(_Frozen):
    """One tenant's signing secret (``whsec_`` + base64, as Standard Webhooks write it).

    From an environment variable or a file (read once when the configuration loads), or
    inline in ``value`` for published development secrets only (the demo's). A tenant
    with several entries signs with each (a ``webhook-signature`` of several ``v1,``
    values) while receivers move from the old secret to the new one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    tenant: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WebhookSecret:
        given = [s for s in (self.env, self.file) if s is not None]
        if len(given) + (self.value is not None) != 1:
            raise ValueError("give exactly one of 'env', 'file' or 'value'")
        if self.value is not None and (problem := whsec_problem(self.value.get_secret_value())):
            raise ValueError(problem)
        return self


class WebhookSettings(_Frozen):
    """Webhooks (``webhook_url`` on submit): signing, and how long delivery is tried."""

    secrets: list[WebhookSecret] = Field(default_factory=list)
    #: Deliveries tried at most this often (the first included), then dead-lettered.
    max_attempts: int = Field(default=8, ge=1, le=50)
    #: ... or for at most this long after the job finished, whichever ends first.
    max_age_seconds: float = Field(default=86_400.0, gt=0, le=7 * 86_400)
    #: The wait after the first failure; it doubles after each (with jitter) up to the max.
    initial_backoff_seconds: float = Field(default=5.0, gt=0, le=3600)
    max_backoff_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    #: One delivery attempt, connection and answer, at most this long.
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: Of the receiver's answer only this much is read (the status is what counts).
    max_response_bytes: int = Field(default=4096, ge=0, le=1024 * 1024)

    def tenant_secrets(self, tenant: str) -> list[str]:
        """The tenant's signing secrets, as loaded (empty: webhooks are refused)."""
        return [s.value.get_secret_value() for s in self.secrets if s.tenant == tenant and s.value]


class EventStreamSettings(_Frozen):
    """Live events (``GET /v1/jobs/{id}/events``, Server-Sent Events)."""

    #: A comment line this often keeps proxies and load balancers from cutting an idle
    #: stream (most cut after 60 s of silence).
    heartbeat_seconds: float = Field(default=15.0, ge=1, le=300)
    #: Streams one credential may hold open at once, on every replica together
    #: (429 ``concurrency_limited`` beyond it).
    max_per_credential: int = Field(default=20, ge=1, le=10_000)
    #: A stream is closed after this long; the client reconnects with ``Last-Event-ID``
    #: and misses nothing. Bounds how long one connection pins one replica.
    max_stream_seconds: float = Field(default=1800.0, ge=10, le=86_400)
    #: A client that takes no data for this long (a write, or a heartbeat, unacknowledged)
    #: is cut off, so a stalled reader holds no buffers.
    send_timeout_seconds: float = Field(default=30.0, ge=1, le=600)
    #: What the stream tells a browser's EventSource to wait before reconnecting.
    retry_ms: int = Field(default=2000, ge=0, le=600_000)


def whsec_problem(secret: str) -> str | None:
    """Why ``secret`` is not a usable Standard Webhooks secret, or None."""
    if not secret.startswith("whsec_"):
        return "a webhook secret starts with 'whsec_' (Standard Webhooks)"
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return "a webhook secret is 'whsec_' followed by base64"
    if len(key) < 24:
        return "a webhook secret needs at least 24 random bytes"
    return None
