"""Every typed key for app and request state (no string keys anywhere)."""

from __future__ import annotations

from aiohttp import web

from adapters.base import ProviderAdapter
from adapters.upstream import Upstream
from gateway.auth.failed_auth import FailedAuthLimiter
from gateway.auth.principals import Authenticator, Principal
from gateway.clock import Clock
from gateway.config.settings import Settings
from gateway.http.lifecycle import Lifecycle
from gateway.http.rendered import RenderedAnswers
from gateway.jobs.catalog import ModelCatalog
from gateway.jobs.live import LiveJobs
from gateway.jobs.service import JobService
from gateway.limits.ratelimit import CallerLimiter
from gateway.observability.metrics import Metrics
from gateway.state.redis_watch import RedisWatch
from gateway.state.store import JobStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", JobStore)
CATALOG = web.AppKey("catalog", ModelCatalog)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
ADAPTERS = web.AppKey("adapters", dict[str, ProviderAdapter])
UPSTREAMS = web.AppKey("upstreams", list[Upstream])
JOBS = web.AppKey("jobs", JobService)
LIVE = web.AppKey("live", LiveJobs)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
CALLER_LIMITER = web.AppKey("caller_limiter", CallerLimiter)
#: Finished jobs' answers as rendered bytes (``gateway.http.rendered``).
RENDERED = web.AppKey("rendered", RenderedAnswers)
#: Set only with Redis: its persistence (for /readyz) and its restarts.
REDIS_WATCH = web.AppKey("redis_watch", RedisWatch)

PRINCIPAL = web.RequestKey("principal", Principal)
