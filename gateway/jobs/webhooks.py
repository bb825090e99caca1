"""Webhooks: when a job submitted with ``webhook_url`` finishes, its receiver is told.

As ``../shared/API.md`` and Standard Webhooks say: a ``POST`` of
``{"type": "job.<status>", "timestamp", "data": <the Job, as GET answers it>}`` with
``webhook-id`` (the same on every attempt, so a receiver can drop duplicates),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with each of the tenant's ``whsec_`` secrets, made by the
``standardwebhooks`` package, whose verifier is the receiver's). The URL passes the URL
guard at submit and again at every attempt (no private, loopback or link-local target
unless the configuration allows it; the connection goes to the checked address; no
redirect is followed), an attempt has a short timeout and reads only a few KiB.

Delivery is a task on the engine's queue, so it outlives the replica that started it
(at least once). A 2xx ends it; a 410 stops it; anything else (another status, a
timeout, a refused connection) is tried again after a backoff that doubles from
``initial_backoff_seconds`` with jitter, up to ``max_attempts`` attempts or
``max_age_seconds`` after the job finished; then the delivery is dead-lettered: the job's
``notification`` says ``failed`` with the last error, a metric counts it, and the log says
which job. The job's ``notification`` follows every attempt.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import structlog
from opentelemetry.context import Context
from opentelemetry.trace import Tracer
from standardwebhooks import Webhook

from gateway.api.views import job_data
from gateway.auth.urlguard import UnsafeUrl, UrlGuard
from gateway.errors import FieldError, ValidationFailed
from gateway.jobs.settings import WebhookSettings
from gateway.observability.tracing import carrier, links_from
from gateway.state.store import JobRecord, JobStore, Notification
from gateway.state.task_queue import TaskQueue, TaskSpec

_log = structlog.get_logger("gateway.webhooks")

DELIVER = "webhook"
_USER_AGENT = "inference-gateway-webhooks"


class WebhookObserver(Protocol):
    """Where deliveries are counted (``observability.engine_metrics`` implements it)."""

    def webhook_attempt(self, outcome: str) -> None: ...

    def webhook_delivered(self, delay_seconds: float) -> None: ...


class _NoObserver:
    def webhook_attempt(self, outcome: str) -> None:
        return None

    def webhook_delivered(self, delay_seconds: float) -> None:
        return None


def message_id(job_id: str) -> str:
    """The ``webhook-id`` of a job's notification: the same on every attempt."""
    return f"msg_{job_id}"


def signatures(secrets: list[str], msg_id: str, at: datetime, body: str) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


class Webhooks:
    def __init__(
        self,
        settings: WebhookSettings,
        *,
        guard: UrlGuard,
        store: JobStore,
        queue: TaskQueue,
        observer: WebhookObserver | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tracer: Tracer | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer
        self._guard = guard
        self._store = store
        self._queue = queue
        self._observer: WebhookObserver = observer or _NoObserver()
        self._now = now
        queue.register(TaskSpec(DELIVER, self._deliver_task, timeout_seconds=120.0, urgent=True))

    # -- at submit ----------------------------------------------------------------------

    async def check(self, tenant: str, url: str) -> None:
        """Refuse (422 at ``/webhook_url``) a URL the guard refuses or a tenant with no secret."""
        if not self._settings.tenant_secrets(tenant):
            raise ValidationFailed(
                "Webhooks are not configured for this tenant (no signing secret).",
                errors=[FieldError("/webhook_url", "no webhook secret for this tenant")],
            )
        try:
            await self._guard.check(url)
        except UnsafeUrl as exc:
            raise ValidationFailed(
                f"webhook_url cannot be used: {exc.reason}.",
                errors=[FieldError("/webhook_url", exc.reason)],
            ) from None

    # -- when the job finishes ------------------------------------------------------------

    async def job_finished(self, record: JobRecord) -> None:
        """Queue the first delivery (idempotent: a finish seen twice queues it once)."""
        if record.webhook_url is None or record.notification is None:
            return
        if record.notification.status != "pending" or record.notification.attempts > 0:
            return
        args: dict[str, Any] = {"tenant": record.tenant, "job": record.id, "attempt": 1}
        if self._tracer is not None:
            # The delivery links back to the work that finished the job (an engine step).
            args["trace"] = carrier()
        await self._queue.enqueue(DELIVER, args, task_id=f"webhook:{record.id}:1")

    # -- one attempt ----------------------------------------------------------------------

    async def _deliver_task(self, args: dict[str, Any]) -> None:
        if self._tracer is None:
            await self._deliver(args)
            return
        with self._tracer.start_as_current_span(
            "webhook delivery",
            # A root of its own (the job's submit ended long ago), linked to what queued it.
            context=Context(),
            links=links_from(args.get("trace")),
            attributes={"job.id": str(args["job"]), "gateway.attempt": int(args["attempt"])},
        ) as span:
            outcome = await self._deliver(args)
            if outcome is not None:
                span.set_attribute("gateway.webhook.outcome", outcome)

    async def _deliver(self, args: dict[str, Any]) -> str | None:
        """One attempt; what came of it (None: nothing to do)."""
        tenant, job_id, attempt = str(args["tenant"]), str(args["job"]), int(args["attempt"])
        record = await self._store.get(tenant, job_id)
        if record is None or record.webhook_url is None or record.notification is None:
            return None
        n = record.notification
        if n.status != "pending" or n.attempts >= attempt:
            return None  # delivered, given up, or this attempt already made (a re-run task)
        error = await self._attempt(record, tenant, job_id)
        now = self._now()
        if error is None:
            self._observer.webhook_attempt("delivered")
            if record.finished_at is not None:
                self._observer.webhook_delivered((now - record.finished_at).total_seconds())
            await self._save(record, Notification("delivered", attempt, None, now))
            return "delivered"
        message, final = error
        age = (now - (record.finished_at or now)).total_seconds()
        if final or attempt >= self._settings.max_attempts or age >= self._settings.max_age_seconds:
            outcome = "gone" if final else "dead_lettered"
            self._observer.webhook_attempt(outcome)
            _log.warning(
                "webhook_dead_lettered" if not final else "webhook_stopped",
                job_id=job_id,
                tenant=tenant,
                attempts=attempt,
                error=message,
            )
            await self._save(record, Notification("failed", attempt, message, None))
            return outcome
        self._observer.webhook_attempt("retried")
        await self._save(record, Notification("pending", attempt, message, None))
        again: dict[str, Any] = {"tenant": tenant, "job": job_id, "attempt": attempt + 1}
        if "trace" in args:
            again["trace"] = args["trace"]
        await self._queue.enqueue(
            DELIVER, again, delay=self.backoff(attempt), task_id=f"webhook:{job_id}:{attempt + 1}"
        )
        return "retried"

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt``: doubling, half of it random."""
        ceiling = float(
            min(
                self._settings.max_backoff_seconds,
                self._settings.initial_backoff_seconds * 2 ** (attempt - 1),
            )
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _attempt(
        self, record: JobRecord, tenant: str, job_id: str
    ) -> tuple[str, bool] | None:
        """None when delivered; else (the error, whether to stop for good)."""
        assert record.webhook_url is not None
        secrets = self._settings.tenant_secrets(tenant)
        if not secrets:
            return "no webhook secret is configured for the tenant any more", True
        at = self._now()
        body = json.dumps(
            {
                "type": f"job.{record.status.value}",
                "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "data": job_data(record),
            },
            separators=(",", ":"),
        )
        msg_id = message_id(job_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures(secrets, msg_id, at, body),
        }
        started = time.monotonic()
        try:
            answer = await self._guard.fetch(
                record.webhook_url,
                data=body.encode(),
                headers=headers,
                total_seconds=self._settings.timeout_seconds,
                max_bytes=self._settings.max_response_bytes,
            )
        except UnsafeUrl as exc:
            return f"the URL guard refused the target: {exc.reason}", True
        except TimeoutError:
            return f"no answer within {self._settings.timeout_seconds:g} s", False
        except aiohttp.ClientError as exc:
            return f"cannot reach the receiver ({type(exc).__name__})", False
        if 200 <= answer.status < 300:
            return None
        if answer.status == 410:
            return "the receiver answered 410 Gone: not tried again", True
        took = time.monotonic() - started
        if 300 <= answer.status < 400:
            return f"the receiver answered {answer.status} (redirects are not followed)", False
        return f"the receiver answered {answer.status} after {took:.2f} s", False

    async def _save(self, record: JobRecord, notification: Notification) -> None:
        current = await self._store.get(record.tenant, record.id) or record
        await self._store.update(current.evolve(notification=notification))
