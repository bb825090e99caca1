"""Upstream: the one object per provider that talks HTTP to it.

It owns the provider's ``aiohttp.ClientSession`` (one per provider, never one per
request), explicit timeouts, the response size cap, redirects (never followed: a
provider that redirects us somewhere is a provider we do not trust), the request id
forwarded to the provider, pacing, retries, the circuit breaker, and the mapping of
every transport failure and provider answer to the gateway's error codes. Adapters
call ``request()`` and ``raise_for_status()`` and never catch an aiohttp exception.

Every attempt, first or retry, passes three gates in this order:

1. the circuit breaker (``adapters.breaker``): open, the call fails in microseconds
   with 503 + Retry-After and touches neither Redis nor the provider (a breaker shared
   through Redis asks it only when the open time is over, for the one probe);
2. pacing (``gateway.limits.pacing``): a turn in the provider account's schedule, shared by
   every replica, which also holds back every request while a provider's Retry-After
   pause lasts; a turn further away than the caller can wait fails fast (503);
3. one deadline: the earlier of this call's ``total_timeout`` and the caller's own
   deadline (``DEADLINE``, set per client request), covering every attempt and wait.

Retries: reads (``idempotent=True``) are retried on timeouts, broken connections,
502/503/504 and 429, with full-jitter exponential backoff, while the provider's retry
budget (``adapters.retry_budget``) allows. A submit is retried only when the
connection was never established (only then can we prove the provider did not
create a job), or when the adapter sends a provider idempotency key, which then
stays the same on every attempt. A 429/503 with Retry-After pauses the provider for
every replica; a garbage Retry-After is ignored and the backoff applies.

Under a send trace (``adapters.send_trace``), each request notes whether the provider
may have taken it, so a fallback never resends a submit that may have been accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import structlog
from opentelemetry.trace import Status, StatusCode, Tracer
from yarl import URL

from adapters.breaker import Breaker, BreakerState
from adapters.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from adapters.responses import (
    UpstreamResponse,
    error_for_status,
    map_client_errors,
    message_from_body,
    parse_retry_after,
    read_capped,
    retry_after_header,
    same_origin,
)
from adapters.retry_budget import RetryBudget
from adapters.send_trace import current as current_trace
from adapters.upstream_ports import NullObserver, Pacing, UpstreamObserver, UpstreamSettings

__all__ = [
    "DEADLINE",
    "REQUEST_ID",
    "Pacing",
    "ProviderState",
    "Upstream",
    "UpstreamObserver",
    "UpstreamResponse",
    "UpstreamSettings",
    "map_client_errors",
    "message_from_body",
    "parse_retry_after",
]

#: The caller's request id, set by the gateway's request middleware and forwarded
#: to the provider as ``X-Request-ID`` so one id follows a job through both systems.
REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)
#: When the caller's request must be answered (``time.monotonic()``), set by the
#: gateway's request middleware: every provider call of that request, with its
#: retries and waits, ends by then.
DEADLINE: ContextVar[float | None] = ContextVar("gateway_request_deadline", default=None)

# Each attempt at debug level (an off level costs one no-op call). The URL stays out: a
# signed download link carries its signature, and a path may carry the caller's ids.
_log = structlog.get_logger("adapters.upstream")

#: What ``GET /v1/providers`` says of a provider (the API contract's ``state``).
ProviderState = Literal["available", "backing_off", "circuit_open"]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Transport failures after which a read may be retried (the answer was lost).
_LOST_ANSWER = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
#: Transport failures that prove the request never left: nothing to duplicate.
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@dataclass(slots=True)
class _Call:
    """What one traced provider call noted for its span."""

    retries: int = 0
    pacing_wait: float = 0.0


class Upstream:
    """One provider's HTTP client: session, timeouts, caps, pacing, retries, breaker."""

    def __init__(
        self,
        settings: UpstreamSettings,
        *,
        observer: UpstreamObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        pacer: Pacing | None = None,
        breaker: Breaker | None = None,
        budget: RetryBudget | None = None,
        tracer: Tracer | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        """``tracer``: where each provider call's span goes (None: no spans at all);
        ``trace_configs``: the session's, e.g. one per attempt span that also sends the
        W3C ``traceparent`` to the provider."""
        self.settings = settings
        self.provider = settings.provider
        self._base = settings.base_url.rstrip("/")
        self._observer: UpstreamObserver = observer or NullObserver()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._pacer = pacer
        self._breaker = breaker
        self._budget = budget
        self._tracer = tracer
        self._trace_configs = list(trace_configs)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        s = self.settings
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None, connect=s.connect_timeout, sock_read=s.read_timeout
            ),
            connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
            # The credential (settings.headers) goes on each request instead, so a
            # signed link on another host never receives it.
            headers={"Accept": "application/json", "User-Agent": "inference-gateway"},
            trust_env=False,
            raise_for_status=False,
            trace_configs=self._trace_configs or None,
        )

    async def close(self) -> None:
        if self._breaker is not None:
            await self._breaker.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"Upstream {self.provider!r} used before start()")
        return self._session

    def url(self, path: str) -> str:
        """An absolute URL under this provider's base URL (``path`` starts with /)."""
        return self._base + path

    async def state(self) -> ProviderState:
        """``available``, ``backing_off`` (a Retry-After pause) or ``circuit_open``."""
        if self._breaker is not None and self._breaker.state is not BreakerState.CLOSED:
            return "circuit_open"
        if self._pacer is not None and await self._pacer.paused_for() > 0:
            return "backing_off"
        return "available"

    async def passed_over(self) -> str | None:
        """Why a fallback should try another provider first: ``circuit_open`` (a call
        would be refused; once the probe is due this is None, so the probe still goes),
        ``paused`` (a Retry-After pause), or None."""
        if self._breaker is not None and self._breaker.open_for > 0:
            return "circuit_open"
        if self._pacer is not None and await self._pacer.paused_for() > 0:
            return "paused"
        return None

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        idempotency_header: str | None = None,
        absolute_url: str | None = None,
        signed_url: str | None = None,
    ) -> UpstreamResponse:
        """Send one logical request (with its retries); return the provider's answer.

        Raises for transport failures, an over-size body, a call refused fast (breaker
        open, no pacing turn in time) or retries exhausted on a retryable status;
        every other status comes back for the adapter to judge.

        Args:
            operation: a bounded name for metrics (``submit``, ``status``, ``results``).
            data: a body that is not JSON (``aiohttp.FormData`` or bytes). Pass a
                zero-argument callable to rebuild it for each attempt.
            idempotent: whether a retry is safe; defaults to True for GET/HEAD.
            idempotency_header: the header in which the provider accepts an
                idempotency key; the key is made once and sent on every attempt,
                which makes the request safe to retry.
            absolute_url: a URL the provider gave us (must share the base URL's origin).
            signed_url: a link the provider signed for us (a file in cloud storage):
                https on any host, or the provider's own origin; sent without the
                provider's credential, since the signature is the link's credential.
        """
        if self._tracer is None:
            return await self._request(
                method, path, operation, json_body, data, params, headers, idempotent,
                idempotency_header, absolute_url, signed_url, None,
            )  # fmt: skip
        with self._tracer.start_as_current_span(
            f"provider {operation}",
            attributes={"gateway.provider": self.provider, "gateway.operation": operation},
            # An exception's text may quote the provider's answer: its code only, below.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = _Call()
            try:
                resp = await self._request(
                    method, path, operation, json_body, data, params, headers, idempotent,
                    idempotency_header, absolute_url, signed_url, call,
                )  # fmt: skip
            except ProviderError as exc:
                span.set_attribute("error.type", exc.code)
                span.set_status(Status(StatusCode.ERROR))
                raise
            finally:
                span.set_attribute("gateway.retries", call.retries)
                span.set_attribute("gateway.pacing_wait_ms", round(call.pacing_wait * 1000, 1))
            span.set_attribute("http.response.status_code", resp.status)
            if resp.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return resp

    async def _request(
        self,
        method: str,
        path: str,
        operation: str,
        json_body: Any,
        data: Any,
        params: Mapping[str, str] | list[tuple[str, str]] | None,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
        idempotency_header: str | None,
        absolute_url: str | None,
        signed_url: str | None,
        call: _Call | None,
    ) -> UpstreamResponse:
        s = self.settings
        safe = method in ("GET", "HEAD") if idempotent is None else idempotent
        url = absolute_url if absolute_url is not None else self.url(path)
        if absolute_url is not None and not same_origin(absolute_url, self._base):
            raise ProviderBadResponse(
                self.provider, "The provider pointed the gateway at another host."
            )
        if signed_url is not None and not signed_url_allowed(signed_url, self._base):
            raise ProviderBadResponse(
                self.provider,
                "The provider's download link is not https to a public host.",
            )
        url = signed_url if signed_url is not None else url
        out_headers = {**(s.headers if signed_url is None else {}), **(headers or {})}
        if idempotency_header is not None:
            out_headers[idempotency_header] = uuid.uuid4().hex
            safe = True
        rid = REQUEST_ID.get()
        if rid:
            out_headers["X-Request-ID"] = rid
        deadline = time.monotonic() + s.total_timeout
        caller_deadline = DEADLINE.get()
        if caller_deadline is not None:
            deadline = min(deadline, caller_deadline)
        if self._budget is not None:
            self._budget.request()
        attempt = 0
        while True:
            await self._admit(deadline, call)
            started = time.monotonic()
            body = data() if callable(data) else data
            try:
                with map_client_errors(self.provider):
                    resp = await asyncio.wait_for(
                        self._send(method, url, json_body, body, params, out_headers),
                        timeout=max(0.0, deadline - started),
                    )
            except ProviderError as exc:
                seconds = time.monotonic() - started
                self._observer.attempt(self.provider, operation, exc.code, seconds)
                _log.debug(
                    "provider_call",
                    provider=self.provider,
                    operation=operation,
                    method=method,
                    outcome=exc.code,
                    ms=round(seconds * 1000, 1),
                    attempt=attempt + 1,
                )
                if (trace := current_trace()) is not None:
                    if isinstance(exc.__cause__, _NEVER_SENT):
                        trace.refused("unreachable")
                    else:
                        trace.sent(method, None)
                # A transport failure or timeout counts against the provider; an answer we
                # refused (too large) does not.
                self._verdict(failed=exc.__cause__ is not None)
                if _may_resend(exc, safe) and self._may_retry(attempt, exc.code):
                    attempt += 1
                    if call is not None:
                        call.retries = attempt
                    await self._backoff(attempt, None, deadline)
                    continue
                raise
            except BaseException:
                # Cancelled mid-attempt: no verdict on the provider either way.
                if self._breaker is not None:
                    self._breaker.abandon()
                raise
            seconds = time.monotonic() - started
            self._observer.attempt(self.provider, operation, f"{resp.status // 100}xx", seconds)
            _log.debug(
                "provider_call",
                provider=self.provider,
                operation=operation,
                method=method,
                status=resp.status,
                ms=round(seconds * 1000, 1),
                attempt=attempt + 1,
            )
            self._verdict(failed=resp.status >= 500)
            if (trace := current_trace()) is not None:
                trace.sent(method, resp.status)
            hinted = await self._honour_retry_after(resp)
            if (
                resp.status in RETRYABLE_STATUSES
                and safe
                and self._worth_waiting(hinted, deadline)
                and self._may_retry(attempt, str(resp.status))
            ):
                attempt += 1
                if call is not None:
                    call.retries = attempt
                await self._backoff(attempt, hinted, deadline)
                continue
            return resp

    async def _admit(self, deadline: float, call: _Call | None = None) -> None:
        """The breaker, then a pacing turn, then the deadline: or fail without sending."""
        trace = current_trace()
        if time.monotonic() >= deadline:
            if trace is not None:
                trace.refused("deadline")
            raise ProviderTimeout(self.provider, "The provider did not answer in time.")
        breaker = self._breaker
        if breaker is not None:
            wait = await breaker.admit()
            if wait is not None:
                if trace is not None:
                    trace.refused("circuit_open")
                self._observer.shed(self.provider, "circuit_open")
                headers = retry_after_header(wait)
                raise ProviderUnavailable(
                    self.provider,
                    "The provider is failing; the gateway stopped calling it for "
                    f"{headers['Retry-After']} s.",
                    headers=headers,
                )
        try:
            if self._pacer is not None:
                waited_from = time.monotonic()
                await self._pacer.wait_turn(deadline - waited_from)
                if call is not None:
                    call.pacing_wait += time.monotonic() - waited_from
            if time.monotonic() >= deadline:
                raise ProviderTimeout(self.provider, "The provider did not answer in time.")
        except BaseException as exc:
            if breaker is not None:
                breaker.abandon()
            if trace is not None and isinstance(exc, ProviderError):
                trace.refused("deadline" if isinstance(exc, ProviderTimeout) else "busy")
            raise

    def _verdict(self, *, failed: bool) -> None:
        if self._breaker is None:
            return
        if failed:
            self._breaker.failure()
        else:
            self._breaker.success()

    async def _honour_retry_after(self, resp: UpstreamResponse) -> float | None:
        """Pause the provider for every replica as its 429/503 Retry-After asks."""
        if resp.status == 429:
            self._observer.throttled(self.provider)
        if resp.status not in (429, 503):
            return None
        wait = parse_retry_after(
            resp.headers.get("Retry-After"),
            maximum=self.settings.retry_after_max,
            now=time.time(),
        )
        if wait is None or wait <= 0:
            return None  # garbage or "now": the ordinary backoff applies
        self._observer.paused(self.provider, wait)
        if self._pacer is not None:
            await self._pacer.pause(wait)
        return wait

    def _worth_waiting(self, hinted: float | None, deadline: float) -> bool:
        # A pause longer than we would wait for a turn is the caller's to wait out:
        # answer now (503 + Retry-After) rather than spend a retry on a refusal.
        if hinted is None:
            return True
        patience = self._pacer.max_wait if self._pacer is not None else self.settings.backoff_cap
        return hinted <= min(patience, deadline - time.monotonic())

    def _may_retry(self, attempt: int, reason: str) -> bool:
        if attempt >= self.settings.retries:
            return False
        if self._budget is not None and not self._budget.try_retry():
            self._observer.retry_refused(self.provider)
            return False
        self._observer.retry(self.provider, reason)
        return True

    async def _send(
        self,
        method: str,
        url: str,
        json_body: Any,
        data: Any,
        params: Any,
        headers: Mapping[str, str],
    ) -> UpstreamResponse:
        async with self.session.request(
            method,
            url,
            json=json_body,
            data=data,
            params=params,
            headers=headers,
            allow_redirects=False,
        ) as resp:
            return await read_capped(resp, self.settings.max_response_bytes, self.provider)

    async def _backoff(self, attempt: int, hinted: float | None, deadline: float) -> None:
        s = self.settings
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^n)).
        delay = self._rng.uniform(0, min(s.backoff_cap, s.backoff_base * 2**attempt))
        if hinted is not None and self._pacer is None:
            # Without pacing nobody else holds the pause: this retry waits it out itself.
            delay = max(delay, hinted)
        delay = min(delay, max(0.0, deadline - time.monotonic()))
        if delay > 0:
            await self._sleep(delay)

    def raise_for_status(
        self,
        resp: UpstreamResponse,
        *,
        message: Callable[[UpstreamResponse], str | None] = message_from_body,
        not_found: str = "The provider does not know this job.",
    ) -> None:
        """Raise the gateway's error for a provider's non-2xx answer (see ``responses``)."""
        error = error_for_status(
            resp,
            retry_after_max=self.settings.retry_after_max,
            now=time.time(),
            message=message,
            not_found=not_found,
        )
        if error is not None:
            raise error


def signed_url_allowed(url: str, base: str) -> bool:
    """A signed link may be fetched: https on a public host, or the provider's own origin.

    Plain http elsewhere could be read or rewritten on the way (and is how a hostile
    answer would aim us at an internal service), as could an address that is not a
    public one (loopback, private, link-local such as a cloud's metadata service,
    reserved) written as an IP literal; the provider's origin is trusted as its base URL
    is (its simulator in tests). A name is not resolved here: a name that resolves to a
    private address is the deployment's egress policy to stop, as for the base URL.
    """
    try:
        u = URL(url)
    except (TypeError, ValueError):
        return False
    if not u.absolute or not u.host:
        return False
    if same_origin(url, base):
        return True
    return u.scheme == "https" and _public_or_named(u.host)


def _public_or_named(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True  # a name
    return address.is_global


def _lost(exc: ProviderError) -> bool:
    """The connection broke mid-request: a provider failure, and the answer is lost."""
    return isinstance(exc.__cause__, _LOST_ANSWER)


def _may_resend(exc: ProviderError, safe: bool) -> bool:
    if isinstance(exc.__cause__, _NEVER_SENT):
        return True  # nothing reached the provider: even a submit is safe to resend
    return safe and (isinstance(exc, ProviderTimeout | ProviderUnavailable) or _lost(exc))
