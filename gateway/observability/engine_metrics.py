"""The job engine's metrics (``gateway.jobs.engine``): how many jobs it tracks, how late
its checks run, how many provider calls a job costs; its webhooks' deliveries; and the
live event streams open.

Part of ``Metrics`` (``metrics.engine``), on the same registry; kept apart so each
module stays about one thing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# How late a check ran after it was due: on time is well under a second.
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
OUTCOMES = ("changed", "unchanged", "error")
WEBHOOK_OUTCOMES = ("delivered", "retried", "gone", "dead_lettered")
# A delivery on the first attempt takes well under a second; retries take minutes to hours.
_DELAY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.tracked = Gauge(
            "gateway_engine_jobs_tracked",
            "Unfinished jobs the engine tracks, on every replica together (each replica "
            "reports the shared count: take the max, not the sum).",
            registry=r,
        )
        self.polls = Counter(
            "gateway_engine_polls_total",
            "Provider status checks the engine made, by provider and outcome (changed: "
            "progress seen; unchanged; error: the provider or the store failed).",
            ["provider", "outcome"],
            registry=r,
        )
        self.poll_lag = Histogram(
            "gateway_engine_poll_lag_seconds",
            "How late a check ran after it was due (now minus due time).",
            ["provider"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        # Polls per job is polls_total over jobs_finished_total: two counters, not a
        # histogram of counts (a histogram here would have no unit).
        self.jobs_finished = Counter(
            "gateway_engine_jobs_finished_total",
            "Jobs whose tracking ended because the engine saw them finish, by provider.",
            ["provider"],
            registry=r,
        )
        self.job_polls = Counter(
            "gateway_engine_finished_job_polls_total",
            "Provider status checks made over the lives of the jobs in "
            "gateway_engine_jobs_finished_total (divide one by the other: polls per job).",
            ["provider"],
            registry=r,
        )

        self.webhook_attempts = Counter(
            "gateway_webhook_attempts_total",
            "Webhook delivery attempts, by outcome: delivered (2xx), retried (to be tried "
            "again), gone (410 or a target the URL guard refused: stopped), dead_lettered "
            "(out of attempts or time).",
            ["outcome"],
            registry=r,
        )
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_attempts.labels(outcome)
        self.webhook_delay = Histogram(
            "gateway_webhook_delay_seconds",
            "From the job's finish (as the gateway saw it) to the receiver's 2xx.",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )

        self.event_streams_open = Gauge(
            "gateway_event_streams_open",
            "Event streams (GET /v1/jobs/{id}/events) this replica holds open.",
            registry=r,
        )

    def init_provider(self, provider: str) -> None:
        for outcome in OUTCOMES:
            self.polls.labels(provider, outcome)
        self.poll_lag.labels(provider)
        self.jobs_finished.labels(provider)
        self.job_polls.labels(provider)

    # EngineObserver
    def engine_poll(self, provider: str, outcome: str, lag: float) -> None:
        self.polls.labels(provider, outcome).inc()
        self.poll_lag.labels(provider).observe(lag)

    def engine_job_done(self, provider: str, polls: int) -> None:
        self.jobs_finished.labels(provider).inc()
        self.job_polls.labels(provider).inc(polls)

    def engine_tracked(self, count: int) -> None:
        self.tracked.set(count)

    # WebhookObserver
    def webhook_attempt(self, outcome: str) -> None:
        self.webhook_attempts.labels(outcome).inc()

    def webhook_delivered(self, delay_seconds: float) -> None:
        self.webhook_delay.observe(max(0.0, delay_seconds))
