"""Every Prometheus metric the gateway exports, on a registry the app owns.

Names follow Prometheus practice: one ``gateway_`` prefix, base units, ``_total`` on
counters, ``_seconds`` on durations. Labels stay bounded: route templates (never raw
paths), methods from a fixed list, status codes, provider names from configuration,
outcome classes. No key or job id is ever a label, and a tenant only where
``metrics.tenant_labels`` allows it (capped; the rest count as ``other``). The process and
Python runtime collectors (``process_*``, ``python_*``) keep their standard names, which
dashboards everywhere already know.

Metrics for features that do not exist are not defined here: a metric nothing
feeds is a dashboard lie. The provider metrics get every label set of every
configured provider up front (``init_provider``), so a panel or an alert on a rare
event (a breaker trip, a Redis fallback) reads 0 rather than "no data".
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from adapters.base import Counts
from adapters.breaker import BreakerState
from gateway.observability.engine_metrics import EngineMetrics
from gateway.observability.settings import OVERFLOW, MetricsSettings

# Around the gateway's own overhead (sub-millisecond) up to slow provider calls.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)  # fmt: skip
# A pacing wait: none, a turn in a busy schedule, or a Retry-After pause.
#: The most (route, method, status) series ``request_done`` keeps bound.
_MAX_BOUND_SERIES = 1024
_RequestSeries = tuple[Counter, Histogram, Histogram]

_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_JOB_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

#: Methods counted by name; any other token a client sends is counted as "other",
#: because aiohttp accepts arbitrary method names and a label must stay bounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The ``*_created`` gauges prometheus-client adds to every counter and histogram
        # double the series count and no dashboard reads them (process-wide switch).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._request_series: dict[tuple[str, str, int], _RequestSeries] = {}
        self._cache_series: dict[str, Counter] = {}
        # Standard runtime metrics: CPU, RSS, open fds, start time, GC, Python version.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)  # registers itself only where the interpreter has gc stats

        self.http_requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "code"],
            registry=r,
        )
        self.http_duration = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_overhead = Histogram(
            "gateway_http_request_overhead_seconds",
            "The gateway's own time in a request: total minus time waiting on providers. "
            "Requests that asked to wait (Prefer: wait) are left out: their pauses are "
            "the caller's choice, not overhead.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "gateway_http_requests_in_flight", "HTTP requests being answered.", registry=r
        )
        self.cache_requests = Counter(
            "gateway_cache_requests_total",
            "Job reads answered from what the gateway holds (hit) or by asking the "
            "provider (miss), once per request.",
            ["result"],
            registry=r,
        )
        self.upstream_requests = Counter(
            "gateway_upstream_requests_total",
            "Requests sent to providers, by provider, operation and outcome.",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time for one provider request attempt.",
            ["provider", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_retries = Counter(
            "gateway_upstream_retries_total",
            "Provider requests retried, by provider and reason.",
            ["provider", "reason"],
            registry=r,
        )
        self.upstream_throttled = Counter(
            "gateway_upstream_throttled_total",
            "Provider answers with HTTP 429 (the provider rate limited the gateway).",
            ["provider"],
            registry=r,
        )
        self.upstream_retry_after = Counter(
            "gateway_upstream_retry_after_wait_seconds_total",
            "Seconds of provider pause set from providers' Retry-After (429/503) by this "
            "replica; every replica holds its calls to the provider until the pause ends.",
            ["provider"],
            registry=r,
        )
        self.upstream_retries_refused = Counter(
            "gateway_upstream_retries_refused_total",
            "Retries not made because the provider's retry budget was spent.",
            ["provider"],
            registry=r,
        )
        self.upstream_pacing_wait = Histogram(
            "gateway_upstream_pacing_wait_seconds",
            "Time a provider call waited for its turn in the provider account's shared "
            "schedule (its rate, or a Retry-After pause).",
            ["provider"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.upstream_pacing_fallback = Counter(
            "gateway_upstream_pacing_fallback_total",
            "Pacing decisions this replica made alone (local bucket) because Redis failed.",
            ["provider"],
            registry=r,
        )
        self.upstream_shed = Counter(
            "gateway_upstream_shed_total",
            "Provider calls failed fast with 503 without reaching the provider, by reason: "
            "circuit_open, or pacing (no turn within the wait the caller allows).",
            ["provider", "reason"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "gateway_circuit_state",
            "The provider's circuit breaker as this process follows it (shared by the replicas "
            "through Redis when configured): 0 closed, 1 half-open (this process probes), 2 open.",
            ["provider"],
            registry=r,
        )
        self.circuit_fallbacks = Counter(
            "gateway_circuit_fallback_total",
            "Times Redis failed the shared circuit breaker and this replica's own breaker "
            "decided alone for a while.",
            ["provider"],
            registry=r,
        )
        self.circuit_transitions = Counter(
            "gateway_circuit_transitions_total",
            "Circuit breaker moves, by provider and the state moved to.",
            ["provider", "state"],
            registry=r,
        )
        self.jobs_submitted = Counter(
            "gateway_jobs_submitted_total", "Jobs accepted, by provider.", ["provider"], registry=r
        )
        self.submits_unreadable = Counter(
            "gateway_submits_unreadable_total",
            "Submits the provider accepted (2xx) with an answer the gateway could not read: "
            "the provider may be running, and billing, a job the gateway has no record of.",
            ["provider"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "gateway_jobs_finished_total",
            "Jobs seen reaching a terminal status, by provider and status.",
            ["provider", "status"],
            registry=r,
        )
        self.jobs_unfinished = Gauge(
            "gateway_jobs_unfinished",
            "Jobs this process accepted minus jobs it saw finish, by provider. Sum over "
            "replicas: a job accepted on one and seen finished on another nets out.",
            ["provider"],
            registry=r,
        )
        self.job_duration = Histogram(
            "gateway_job_duration_seconds",
            "Time from submit to the terminal status the gateway observed.",
            ["provider"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.job_first_result = Histogram(
            "gateway_job_first_result_seconds",
            "Time from submit until the gateway first saw an item of the job finished.",
            ["provider"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.job_items = Counter(
            "gateway_job_items_total",
            "Items of finished jobs, by provider and item status.",
            ["provider", "status"],
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "gateway_event_loop_lag_seconds",
            "How late the event loop last woke a timer: time other work held the loop.",
            registry=r,
        )
        self.coalesced_requests = Counter(
            "gateway_coalesced_requests_total",
            "Job reads that shared another read's provider call instead of making their own.",
            registry=r,
        )
        self.ratelimit_decisions = Counter(
            "gateway_ratelimit_decisions_total",
            "Caller limit decisions, by policy (submit, read, tenant-submit, tenant-read, "
            "concurrent_jobs, daily_jobs) and outcome (allowed, limited, shadow_limited: "
            "would have been limited, admitted in shadow mode or failure_mode open).",
            ["policy", "outcome"],
            registry=r,
        )
        self.ratelimit_fallbacks = Counter(
            "gateway_ratelimit_fallback_total",
            "Limit decisions made without Redis, by the failure mode applied.",
            ["mode"],
            registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "gateway_ratelimit_backend_errors_total",
            "Redis failures and timeouts met by the caller limits.",
            registry=r,
        )
        self.shared_state_errors = Counter(
            "gateway_cache_errors_total",
            "Failures of the shared cache (Redis) that were absorbed by reading through.",
            registry=r,
        )
        self.redis_errors = Counter(
            "gateway_redis_errors_total",
            "Redis failures and timeouts met by the shared state, by component: job_store, "
            "idempotency, cache (results, status freshness, coalescing leases). The caller "
            "limits count theirs in gateway_ratelimit_backend_errors_total.",
            ["component"],
            registry=r,
        )
        self.item_cache_requests = Counter(
            "gateway_item_cache_requests_total",
            "Inputs of submits to a model with an item cache, by what the cache did: hit "
            "(answered from it: one provider item saved), miss (sent to the provider), "
            "bypass (options.cache: bypass), repeat (the same input earlier in the same "
            "submit: sent once, answered for both; one provider item saved).",
            ["provider", "result"],
            registry=r,
        )
        self.item_cache_writes = Counter(
            "gateway_item_cache_writes_total",
            "Succeeded provider answers kept in the item cache when their job finished.",
            ["provider"],
            registry=r,
        )
        self.redis_unavailable = Gauge(
            "gateway_redis_unavailable",
            "1 from a command that found this process's Redis hung or gone until a background "
            "PING answers again; meanwhile every Redis call fails at once "
            "(gateway.state.redis_gate). Always 0 without Redis and in cluster mode.",
            registry=r,
        )
        # From a loopback round trip up to past the socket timeout (0.5 s by default).
        redis_buckets = (
            0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
        )  # fmt: skip
        self.redis_duration = Histogram(
            "gateway_redis_operation_duration_seconds",
            "Time of one shared-state call to Redis (a command, pipeline or script; a job "
            "listing may take a few round trips), by component, failures included.",
            ["component"],
            buckets=redis_buckets,
            registry=r,
        )
        self.tenant_requests = Counter(
            "gateway_tenant_requests_total",
            "Authenticated requests by tenant: only tenants allowed a label of their own "
            "(metrics.tenant_labels, at most metrics.max_tenant_labels); all others as "
            "'other'.",
            ["tenant"],
            registry=r,
        )
        self.configure_tenants(MetricsSettings())
        self.fallbacks = Counter(
            "gateway_fallbacks_total",
            "Submits to an alias that passed a target over for the next one in its chain, "
            "by alias, target passed over (from), target tried next (to; 'none' when none "
            "was left) and reason (gateway.jobs.fallback.REASONS). Every label is a "
            "configured name.",
            ["alias", "from", "to", "reason"],
            registry=r,
        )
        #: The job engine's metrics (``gateway_engine_*``).
        self.engine = EngineMetrics(r)
        #: Set by create_app when tracing is on: /metrics then answers a scraper that asks
        #: for OpenMetrics in it, exemplars included; off, the answer is as it always was.
        self.exemplars = False

    def init_provider(self, provider: str) -> None:
        """Create every provider series at 0, so dashboards and alerts see them at once."""
        for reason in ("circuit_open", "pacing"):
            self.upstream_shed.labels(provider, reason)
        for state in BreakerState:
            self.circuit_transitions.labels(provider, state.name.lower())
        self.circuit_state.labels(provider).set(BreakerState.CLOSED)
        self.circuit_fallbacks.labels(provider)
        self.upstream_retries_refused.labels(provider)
        self.upstream_pacing_wait.labels(provider)
        self.upstream_pacing_fallback.labels(provider)
        self.upstream_retry_after.labels(provider)
        self.upstream_throttled.labels(provider)
        self.submits_unreadable.labels(provider)

    # UpstreamObserver
    def attempt(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        self.upstream_requests.labels(provider, operation, outcome).inc()
        self.upstream_duration.labels(provider, operation).observe(seconds)

    def retry(self, provider: str, reason: str) -> None:
        self.upstream_retries.labels(provider, reason).inc()

    def throttled(self, provider: str) -> None:
        self.upstream_throttled.labels(provider).inc()

    def paused(self, provider: str, seconds: float) -> None:
        self.upstream_retry_after.labels(provider).inc(seconds)

    def retry_refused(self, provider: str) -> None:
        self.upstream_retries_refused.labels(provider).inc()

    def shed(self, provider: str, reason: str) -> None:
        self.upstream_shed.labels(provider, reason).inc()

    # FallbackObserver
    def fallback(self, alias: str, source: str, target: str, reason: str) -> None:
        self.fallbacks.labels(alias, source, target, reason).inc()

    def circuit(self, provider: str, state: BreakerState) -> None:
        self.circuit_state.labels(provider).set(state)
        self.circuit_transitions.labels(provider, state.name.lower()).inc()

    # BreakerObserver
    def circuit_fallback(self, provider: str) -> None:
        self.circuit_fallbacks.labels(provider).inc()

    # PacingObserver
    def pacing_wait(self, provider: str, seconds: float) -> None:
        self.upstream_pacing_wait.labels(provider).observe(seconds)

    def pacing_fallback(self, provider: str) -> None:
        self.upstream_pacing_fallback.labels(provider).inc()

    # JobObserver
    def submitted(self, provider: str) -> None:
        self.jobs_submitted.labels(provider).inc()
        self.jobs_unfinished.labels(provider).inc()

    def finished(self, provider: str, status: str, seconds: float) -> None:
        self.jobs_finished.labels(provider, status).inc()
        self.jobs_unfinished.labels(provider).dec()
        self.job_duration.labels(provider).observe(seconds)

    def unreadable_submit(self, provider: str) -> None:
        self.submits_unreadable.labels(provider).inc()

    def first_result(self, provider: str, seconds: float) -> None:
        self.job_first_result.labels(provider).observe(seconds)

    def items_finished(self, provider: str, status: str, counts: Counts) -> None:
        # Items still pending when the job ended were cancelled with it, or are
        # reported failed ("missing_result") by the job service.
        leftover = "cancelled" if status == "cancelled" else "failed"
        for label, n in (
            ("succeeded", counts.succeeded),
            ("failed", counts.failed),
            (leftover, counts.pending),
        ):
            if n:
                self.job_items.labels(provider, label).inc(n)

    # The request middleware
    def request_done(
        self,
        *,
        route: str,
        method: str,
        status: int,
        seconds: float,
        upstream_seconds: float,
        waited: bool,
        cache: str | None,
        trace_id: str | None = None,
    ) -> None:
        # The series of one route, method and status, bound once: ``labels()`` on every
        # request (a lock, tuple building, a dict) was most of what metrics cost. Routes
        # are templates and methods are folded, so the bound children are few.
        bound = self._request_series.get((route, method, status))
        if bound is None:
            bound = self._bind_request_series(route, method, status)
        requests, duration, overhead = bound
        requests.inc()
        # The trace as an exemplar (exposed in the OpenMetrics format only): a latency
        # panel links from a slow bucket to one request's trace.
        exemplar = {"trace_id": trace_id} if trace_id is not None else None
        duration.observe(seconds, exemplar)
        if not waited:
            overhead.observe(max(0.0, seconds - upstream_seconds), exemplar)
        if cache is not None:
            child = self._cache_series.get(cache)
            if child is None:
                child = self._cache_series[cache] = self.cache_requests.labels(cache)
            child.inc()

    def _bind_request_series(self, route: str, method: str, status: int) -> _RequestSeries:
        folded = method_label(method)
        bound = (
            self.http_requests.labels(route, folded, str(status)),
            self.http_duration.labels(route, folded),
            self.http_overhead.labels(route, folded),
        )
        # Bounded all the same: an unforeseen spread of statuses costs lookups, not memory.
        if len(self._request_series) < _MAX_BOUND_SERIES:
            self._request_series[(route, method, status)] = bound
        return bound

    # Shared state (gateway.state.backends)
    def coalesced(self) -> None:
        self.coalesced_requests.inc()

    def cache_error(self) -> None:
        self.shared_state_errors.inc()

    def init_ratelimit(self, failure_mode: str | None) -> None:
        """Label sets a dashboard or an alert reads before the first such decision."""
        for policy in ("submit", "read"):
            for outcome in ("allowed", "limited"):
                self.ratelimit_decisions.labels(policy, outcome)
        if failure_mode is not None:
            self.ratelimit_fallbacks.labels(failure_mode)

    # LimitObserver (gateway.limits.ratelimit, gateway.limits.job_limits)
    def ratelimit_decision(self, policy: str, outcome: str) -> None:
        self.ratelimit_decisions.labels(policy, outcome).inc()

    def ratelimit_fallback(self, mode: str) -> None:
        self.ratelimit_fallbacks.labels(mode).inc()

    def ratelimit_backend_error(self) -> None:
        self.ratelimit_backend_errors.inc()

    def render(self, *, openmetrics: bool = False) -> bytes:
        """The text format, or OpenMetrics (which alone carries exemplars)."""
        if openmetrics:
            # prometheus-client's OpenMetrics module has no type hints.
            body: bytes = openmetrics_latest(self.registry)  # type: ignore[no-untyped-call]
            return body
        return generate_latest(self.registry)

    # RedisObserver (gateway.state.redis_observed)
    def track_redis(self, components: tuple[str, ...]) -> None:
        """Export every component's series from the start (0 until something happens)."""
        for component in components:
            self.redis_errors.labels(component)
            self.redis_duration.labels(component)

    def redis_operation(self, component: str, seconds: float) -> None:
        self.redis_duration.labels(component).observe(seconds)

    def redis_error(self, component: str) -> None:
        self.redis_errors.labels(component).inc()

    # ReuseObserver (gateway.jobs.reuse)
    def item_cache_lookups(self, provider: str, hits: int, misses: int) -> None:
        self.item_cache_requests.labels(provider, "hit").inc(hits)
        self.item_cache_requests.labels(provider, "miss").inc(misses)

    def item_cache_bypassed(self, provider: str, items: int) -> None:
        self.item_cache_requests.labels(provider, "bypass").inc(items)

    def item_cache_repeats(self, provider: str, items: int) -> None:
        self.item_cache_requests.labels(provider, "repeat").inc(items)

    def item_cache_written(self, provider: str, items: int) -> None:
        self.item_cache_writes.labels(provider).inc(items)

    def redis_available(self, up: bool) -> None:
        self.redis_unavailable.set(0 if up else 1)

    # Tenants (the request middleware); configured from settings.metrics by create_app
    def configure_tenants(self, settings: MetricsSettings) -> None:
        """Which tenants get a label of their own; each listed one is exported from the start."""
        self._tenant_any = settings.any_tenant
        self._tenant_cap = settings.max_tenant_labels
        self._tenant_other = self.tenant_requests.labels(OVERFLOW)
        self._tenants = {t: self.tenant_requests.labels(t) for t in settings.listed}

    def tenant_request(self, tenant: str) -> None:
        # The hot path is one dict lookup; only a tenant without a label goes further.
        child = self._tenants.get(tenant)
        if child is None:
            child = self._tenants.get(self.tenant_label(tenant), self._tenant_other)
        child.inc()

    def tenant_label(self, tenant: str) -> str:
        """The tenant's label (its name, or ``other``): what a span may name it by too."""
        if tenant in self._tenants:
            return tenant
        if self._tenant_any and len(self._tenants) < self._tenant_cap:
            self._tenants[tenant] = self.tenant_requests.labels(tenant)
            return tenant
        return OVERFLOW
