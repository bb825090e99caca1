"""create_app: the one composition root. Every concrete class is chosen here.

Tests call the same factory with fakes injected (an adapter, a store, a clock, a
registry) instead of patching modules. Resources with a lifetime (each provider's
HTTP session) are owned by cleanup contexts, so they close when the app does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry

from adapters.base import ProviderAdapter, ProviderConfig
from adapters.breaker import Breaker
from adapters.registry import provider_type
from adapters.upstream import Pacing, Upstream, UpstreamSettings
from gateway.auth.urlguard import UrlGuard
from gateway.clock import Clock, SystemClock
from gateway.config.settings import ProviderSettings, Settings
from gateway.errors import NotFound
from gateway.http.auth_setup import install_auth
from gateway.http.keys import (
    ADAPTERS,
    CALLER_LIMITER,
    CATALOG,
    CLOCK,
    JOBS,
    LIFECYCLE,
    LIVE,
    METRICS,
    REDIS_WATCH,
    RENDERED,
    SETTINGS,
    STORE,
    UPSTREAMS,
)
from gateway.http.lifecycle import Lifecycle, lifecycle_middleware
from gateway.http.middleware.auth import auth_middleware
from gateway.http.middleware.body import body_limit_middleware
from gateway.http.middleware.context import context_middleware
from gateway.http.middleware.errors import error_middleware
from gateway.http.middleware.hardening import harden_framework_answers
from gateway.http.middleware.ratelimit import ratelimit_middleware
from gateway.http.middleware.tracing import tracing_middleware
from gateway.http.rendered import RenderedAnswers
from gateway.http.routes import add_routes
from gateway.http.tracing_setup import provider_trace_configs, tracing_ctx
from gateway.jobs.catalog import ModelCatalog
from gateway.jobs.coalesce import Coalescer
from gateway.jobs.engine import JobEngine
from gateway.jobs.fallback import Fallback
from gateway.jobs.live import LiveJobs
from gateway.jobs.reuse import ItemReuse
from gateway.jobs.service import JobService
from gateway.jobs.webhooks import Webhooks
from gateway.limits.buckets import Buckets, MemoryBuckets, RedisBuckets
from gateway.limits.gcra import MICROS
from gateway.limits.job_limits import JobLimits, MemoryJobCounters, RedisJobCounters
from gateway.limits.pacing import build_pacer
from gateway.limits.provider_resilience import build_breaker, build_retry_budget
from gateway.limits.ratelimit import CallerLimiter, SharedLimits
from gateway.limits.shared_breaker import share_breaker
from gateway.observability.loop_lag import measure_lag
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing, build_tracing
from gateway.state.backends import Backends, build_backends, close_redis
from gateway.state.cache import ResultCache
from gateway.state.events import JobEvents, MemoryEvents
from gateway.state.idempotency import IdempotencyStore
from gateway.state.item_cache import ItemCache, MemoryItemCache, RedisItemCache
from gateway.state.redis_events import RedisEvents
from gateway.state.redis_tracking import RedisTracking
from gateway.state.redis_watch import RedisWatch
from gateway.state.store import JobStore
from gateway.state.task_queue import MemoryTaskQueue, TaskQueue
from gateway.state.traced import (
    TracedIdempotencyStore,
    TracedItemCache,
    TracedJobStore,
    TracedResultCache,
)
from gateway.state.tracking import MemoryTracking, Tracking
from gateway.tasks import spawn


def build_upstream(
    p: ProviderSettings,
    metrics: Metrics,
    *,
    pacer: Pacing | None = None,
    backends: Backends | None = None,
    now: Callable[[], float] = time.monotonic,
    tracing: Tracing | None = None,
) -> Upstream:
    """Provider ``p``'s Upstream, with its breaker (shared through ``backends``' Redis
    when there is one) and its retry budget (per process)."""
    ptype = provider_type(p.type)
    secret = p.secret.get_secret_value() if p.secret is not None else ""
    local = build_breaker(p.name, p.circuit_breaker, now=now, report=metrics.circuit)
    breaker: Breaker | None = local
    if backends is not None:
        breaker = share_breaker(
            p,
            local,
            redis=backends.redis,
            keys=backends.keys,
            batcher=backends.batcher,
            observer=metrics,
            now=now,
        )
    return Upstream(
        UpstreamSettings(
            provider=p.name,
            base_url=p.base_url,
            connect_timeout=p.timeouts.connect,
            read_timeout=p.timeouts.read,
            total_timeout=p.timeouts.total,
            max_response_bytes=p.max_response_bytes,
            retries=p.retries,
            retry_after_max=p.retry_after_max,
            headers=ptype.auth_headers(secret),
        ),
        observer=metrics,
        pacer=pacer,
        breaker=breaker,
        budget=build_retry_budget(p.retry_budget, now=now),
        tracer=tracing.tracer if tracing is not None else None,
        trace_configs=provider_trace_configs(tracing),
    )


_log = structlog.get_logger("gateway")


def create_app(
    settings: Settings,
    *,
    adapters: Mapping[str, ProviderAdapter] | None = None,
    store: JobStore | None = None,
    cache: ResultCache | None = None,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    redis: aioredis.Redis | None = None,
    buckets: Buckets | None = None,
    span_exporter: SpanExporter | None = None,
) -> web.Application:
    """The gateway as an aiohttp application.

    Args:
        settings: the frozen configuration.
        adapters: adapters to use instead of building them, by provider name.
        store: the job store (default: in memory).
        cache: the result cache (default: in memory).
        clock: the clock (default: the system's).
        registry: the Prometheus registry the app's metrics live on.
        redis: a Redis client to share state through (default: from ``redis.url``).
        buckets: the caller limits' buckets (default: Redis's, or this process's);
            tests pass one on a fake clock.
        span_exporter: with tracing on, where spans go instead of OTLP (tests).
    """
    clock = clock or SystemClock()
    metrics = Metrics(registry)
    metrics.configure_tenants(settings.metrics)
    # Decided once, here: with tracing off nothing below gets a tracer, so no span
    # object is ever made.
    tracing = build_tracing(settings.tracing, exporter=span_exporter)
    metrics.exemplars = tracing is not None
    backends = build_backends(settings, clock, metrics, client=redis)
    store = store or backends.store
    own_store = store is backends.store
    if tracing is not None:
        store = TracedJobStore(store, tracing.tracer)
    upstreams: list[Upstream] = []
    built: dict[str, ProviderAdapter] = dict(adapters or {})
    for p in settings.providers:
        metrics.init_provider(p.name)
        if p.name in built:
            continue
        # The pacer is shared by every replica through Redis when there is one.
        pacer = build_pacer(
            p,
            redis=backends.redis,
            keys=backends.keys,
            observer=metrics,
            local_divisor=settings.ratelimit.replicas,
            batcher=backends.batcher,
        )
        upstream = build_upstream(
            p, metrics, pacer=pacer, backends=backends, now=clock.monotonic, tracing=tracing
        )
        upstreams.append(upstream)
        built[p.name] = provider_type(p.type).create_adapter(
            ProviderConfig(name=p.name, type=p.type, defaults=p.defaults), upstream
        )
    catalog = ModelCatalog(settings)
    if buckets is None and backends.redis is not None:
        buckets = RedisBuckets(backends.redis, batcher=backends.batcher)
    caller_limiter, job_limits = _caller_limits(
        settings, backends, buckets, clock, metrics, tracing
    )

    events: JobEvents = (
        RedisEvents(backends.redis, backends.keys) if backends.redis is not None else MemoryEvents()
    )
    lifecycle = Lifecycle()
    app = web.Application(
        middlewares=[
            # Outermost: every request counts as in flight until its answer is written.
            lifecycle_middleware(lifecycle),
            context_middleware,
            # The server span (tracing on only): inside the request id, around the rest.
            *([tracing_middleware(tracing, metrics)] if tracing is not None else []),
            error_middleware,
            body_limit_middleware,
            auth_middleware,
            ratelimit_middleware,
        ],
        client_max_size=settings.max_body_bytes,
        handler_args={"max_line_size": 8190, "max_field_size": 8190},
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[STORE] = store
    app[CATALOG] = catalog
    install_auth(app, settings, clock, backends, caller_limiter.guard)
    app[ADAPTERS] = built
    app[UPSTREAMS] = upstreams
    app[LIFECYCLE] = lifecycle
    app[CALLER_LIMITER] = caller_limiter
    app[RENDERED] = RenderedAnswers(settings.server.rendered_cache_bytes)
    shared_cache: ResultCache = cache or backends.cache
    idempotency: IdempotencyStore = backends.idempotency
    if tracing is not None:
        # The shared state a request waits on; this process's own copies are not spans.
        shared_cache = TracedResultCache(shared_cache, tracing.tracer)
        idempotency = TracedIdempotencyStore(idempotency, tracing.tracer)
    app[JOBS] = JobService(
        reuse=_item_reuse(settings, backends, catalog, metrics, tracing),
        store=store,
        adapters=built,
        catalog=catalog,
        cache=shared_cache,
        local_cache=backends.local_cache,
        freshness=backends.freshness,
        idempotency=idempotency,
        coalescer=Coalescer(
            client=backends.redis,
            keys=backends.keys,
            lease_seconds=settings.redis.lease_seconds,
            errors=backends.errors,
            on_coalesced=metrics.coalesced,
        ),
        status_cache_seconds=settings.status_cache_seconds,
        unknown_status_grace_seconds=settings.unknown_status_grace_seconds,
        clock=clock,
        max_inputs=settings.max_inputs_per_job,
        poll_interval=settings.wait_poll_interval,
        observer=metrics,
        limits=job_limits,
        events=events,
        # Records Redis lost are written back from this process's memory (not with a
        # store a test injected: there is nothing below it to write back to).
        recall=backends.recall if own_store else None,
        fallback=Fallback(built, passed_over=_passed_over(upstreams), observer=metrics),
    )
    app[LIVE] = LiveJobs(
        app[JOBS],
        events,
        job_limits,
        settings.events,
        # With the engine on, changes arrive as events and a re-read is only a safety
        # net; with it off nothing else moves the job, so a stream polls like a long poll.
        recheck_seconds=(
            settings.events.heartbeat_seconds
            if settings.engine.enabled
            else settings.wait_poll_interval
        ),
        clock=clock,
    )
    metrics.engine.event_streams_open.set_function(lambda: app[LIVE].open_count)
    # When the drain begins: long polls answer now with the job as it stands, and event
    # streams end (they never end by themselves before their job; their clients resume
    # with Last-Event-ID on another replica).
    lifecycle.on_drain.append(app[JOBS].stop_waiting)
    lifecycle.on_drain.append(app[LIVE].close_all)
    add_routes(app)
    app.cleanup_ctx.append(_upstreams_ctx)
    app.cleanup_ctx.append(_events_ctx(events))
    if tracing is not None:
        app.cleanup_ctx.append(tracing_ctx(tracing))
    if settings.engine.enabled:
        engine = _engine(settings, backends, app[JOBS], metrics, tracing)
        app.cleanup_ctx.append(_engine_ctx(engine))
        if backends.recall is not None:
            # A lost record's tracking entry was lost with it: the engine takes it again.
            backends.recall.on_restored.append(engine.track)
    if backends.watch is not None:
        app[REDIS_WATCH] = backends.watch
        app.cleanup_ctx.append(_redis_watch_ctx(backends.watch))
    app.cleanup_ctx.append(loop_lag_ctx)
    app.on_response_prepare.append(_server_header)
    harden_framework_answers()
    app.on_shutdown.append(_drain)

    async def _close_redis(app: web.Application) -> None:
        await close_redis(backends)

    app.on_cleanup.append(_close_redis)
    return app


def _passed_over(upstreams: list[Upstream]) -> Callable[[str], Awaitable[str | None]]:
    """Why a fallback should try another provider first (circuit open, paused by a
    Retry-After, as its breaker and pacer know, shared through Redis where there is one)."""
    by_name = {u.provider: u for u in upstreams}

    async def passed_over(provider: str) -> str | None:
        upstream = by_name.get(provider)
        return await upstream.passed_over() if upstream is not None else None

    return passed_over


def _caller_limits(
    settings: Settings,
    backends: Backends,
    shared: Buckets | None,
    clock: Clock,
    metrics: Metrics,
    tracing: Tracing | None,
) -> tuple[CallerLimiter, JobLimits]:
    """The request limiter and the job limits, sharing one view of Redis's health."""
    limits = settings.ratelimit
    guard = SharedLimits(limits, metrics, shared=shared is not None)
    metrics.init_ratelimit(limits.failure_mode if shared is not None else None)
    caller = CallerLimiter(
        limits,
        shared=shared,
        local=MemoryBuckets(now_us=lambda: int(clock.monotonic() * MICROS)),
        keys=backends.keys,
        observer=metrics,
        guard=guard,
        tracer=tracing.tracer if tracing is not None else None,
    )
    jobs = JobLimits(
        guard,
        shared=(
            RedisJobCounters(backends.redis, batcher=backends.batcher)
            if backends.redis is not None
            else None
        ),
        local=MemoryJobCounters(clock.monotonic),
        keys=backends.keys,
        observer=metrics,
    )
    return caller, jobs


def _engine(
    settings: Settings,
    backends: Backends,
    jobs: JobService,
    metrics: Metrics,
    tracing: Tracing | None,
) -> JobEngine:
    """The job engine: on the Redis every replica shares, or in this process."""
    config = settings.engine
    queue: TaskQueue
    tracking: Tracking
    if backends.redis is not None:
        # Imported here: streaq and its Redis client (coredis) are half a second of a
        # replica's start, spent only where the engine runs on Redis.
        from gateway.state.streaq_queue import StreaqQueue, build_worker

        redis, keys = settings.redis, backends.keys
        queue = StreaqQueue(
            lambda: build_worker(
                redis, keys, lease_seconds=config.lease_seconds, concurrency=config.concurrency
            )
        )
        tracking = RedisTracking(
            backends.redis, backends.keys, retention_seconds=settings.job_retention_seconds
        )
    else:
        queue = MemoryTaskQueue(concurrency=config.concurrency)
        tracking = MemoryTracking()
    for p in settings.providers:
        metrics.engine.init_provider(p.name)
    webhooks = Webhooks(
        settings.webhooks,
        guard=UrlGuard(settings.url_guard),
        store=jobs.store,
        queue=queue,
        observer=metrics.engine,
        tracer=tracing.tracer if tracing is not None else None,
    )
    engine = JobEngine(
        service=jobs,
        queue=queue,
        tracking=tracking,
        settings=config,
        polls={p.name: p.poll for p in settings.providers},
        observer=metrics.engine,
        notifier=webhooks,
        tracer=tracing.tracer if tracing is not None else None,
    )
    jobs.use_tracker(engine, webhooks)
    return engine


def _engine_ctx(engine: JobEngine) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with engine.running():
            yield

    return ctx


def _item_reuse(
    settings: Settings,
    backends: Backends,
    catalog: ModelCatalog,
    metrics: Metrics,
    tracing: Tracing | None,
) -> ItemReuse | None:
    """The item cache, where a model or an alias has one: in Redis (every replica
    reuses every replica's answers), else in this process."""
    providers = {p.name for p in settings.providers if any(m.cache.items for m in p.models)}
    for alias, cache_settings in settings.alias_caches().items():
        # An alias naming an unknown model answers 404 to its submits (and fails
        # `gateway check-config`); it has no provider to keep answers for.
        with contextlib.suppress(NotFound):
            if cache_settings.items:
                providers.update(t.ref.provider for t in catalog.resolve(alias).targets)
    if not providers:
        return None
    cache: ItemCache = (
        RedisItemCache(backends.redis, backends.keys, backends.errors)
        if backends.redis is not None
        else MemoryItemCache()
    )
    if tracing is not None:
        cache = TracedItemCache(cache, tracing.tracer)
    for name in sorted(providers):
        metrics.item_cache_lookups(name, 0, 0)
        metrics.item_cache_bypassed(name, 0)
        metrics.item_cache_repeats(name, 0)
        metrics.item_cache_written(name, 0)
    return ItemReuse(cache, catalog, metrics)


def _redis_watch_ctx(watch: RedisWatch) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # Says once whether Redis is durable (bounded: never holds start-up for long).
        await watch.start()
        try:
            yield
        finally:
            await watch.close()

    return ctx


def _events_ctx(events: JobEvents) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if isinstance(events, RedisEvents):
            await events.start()
        try:
            yield
        finally:
            if isinstance(events, RedisEvents):
                await events.close()

    return ctx


async def _upstreams_ctx(app: web.Application) -> AsyncIterator[None]:
    for upstream in app[UPSTREAMS]:
        await upstream.start()
    yield
    for upstream in app[UPSTREAMS]:
        await upstream.close()
    await app[STORE].close()


async def loop_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the event-loop lag probe for as long as the app runs."""
    task = spawn(measure_lag(app[METRICS].event_loop_lag), name="event-loop-lag")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    # No framework or version in the Server header: it only helps an attacker.
    response.headers["Server"] = "inference-gateway"


async def _drain(app: web.Application) -> None:
    """on_shutdown (the listener is closed): the requests in flight get what is left of
    ``server.shutdown_timeout``, counted from the signal that began the drain."""
    lifecycle = app[LIFECYCLE]
    lifecycle.begin_drain()  # a shutdown without a signal (tests, an embedding app)
    started = lifecycle.drain_started_at or time.monotonic()
    if not await lifecycle.wait_idle(started + app[SETTINGS].server.shutdown_timeout):
        _log.warning("drain_timed_out", in_flight=lifecycle.in_flight)
