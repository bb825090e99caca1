"""Upstream: the one object per provider that talks HTTP to it.

It owns the provider's ``aiohttp.ClientSession`` (one per provider, never one per
request), explicit timeouts, the response size cap, redirects (never followed: a
provider that redirects us somewhere is a provider we do not trust), the request id
forwarded to the provider, bounded retries where a retry is safe, and the mapping of
every transport failure and provider answer to the gateway's error codes. Adapters
call ``request()`` and ``raise_for_status()`` and never catch an aiohttp exception.

Retries: reads (``idempotent=True``) are retried on connection failures, timeouts,
502/503/504 and 429 with a short ``Retry-After``, with full-jitter exponential
backoff, inside one deadline that covers every attempt. A submit is retried only
when the connection was never established, because only then can we prove the
provider did not create a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
from yarl import URL

from adapters.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamJobNotFound,
)

#: The caller's request id, set by the gateway's request middleware and forwarded
#: to the provider as ``X-Request-ID`` so one id follows a job through both systems.
REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


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


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    provider: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is the provider's fault (502)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ProviderBadResponse(
                self.provider, "The provider answered with a body that is not JSON."
            ) from None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class UpstreamObserver(Protocol):
    """Where Upstream reports each attempt (the gateway's metrics implement it)."""

    def attempt(self, provider: str, operation: str, outcome: str, seconds: float) -> None: ...

    def retry(self, provider: str, reason: str) -> None: ...

    def throttled(self, provider: str) -> None:
        """The provider answered 429: it is rate limiting the gateway."""
        ...

    def paused(self, provider: str, seconds: float) -> None:
        """Upstream is about to wait ``seconds`` because the provider sent Retry-After."""
        ...


class _NullObserver:
    def attempt(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        return None

    def retry(self, provider: str, reason: str) -> None:
        return None

    def throttled(self, provider: str) -> None:
        return None

    def paused(self, provider: str, seconds: float) -> None:
        return None


def parse_retry_after(value: str | None, *, maximum: float, now: float) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date, clamped to ``[0, maximum]``.

    Returns None for a missing or unparseable value, so the caller falls back to
    its own backoff instead of trusting garbage.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), maximum)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min(when.timestamp() - now, maximum))


def message_from_body(resp: UpstreamResponse) -> str | None:
    """The human message in a provider's error body, for the common shapes.

    Knows ``{"message": ...}`` (Modzy, AnnoLab, API Gateway), ``{"detail": "..."}``
    and FastAPI's ``{"detail": [{"loc", "msg"}]}`` (Wood Wide, LlamaCloud).
    """
    try:
        body = json.loads(resp.body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    msg = body.get("message")
    if isinstance(msg, str):
        return msg[:500]
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail[:500]
    if isinstance(detail, list):
        parts = []
        for d in detail[:10]:
            if isinstance(d, dict):
                loc = ".".join(str(p) for p in d.get("loc", []) if p != "body")
                parts.append(f"{loc}: {d.get('msg')}" if loc else str(d.get("msg")))
        return "; ".join(parts)[:500] or None
    return None


@contextlib.contextmanager
def map_client_errors(provider: str) -> Iterator[None]:
    """Translate aiohttp's and asyncio's exceptions into the gateway's, in one place.

    The most specific mapping wins: a connect timeout is a timeout, not a refused
    connection; the original exception is kept as ``__cause__`` for the logs.
    """
    try:
        yield
    except ProviderError:
        raise
    except TimeoutError as exc:  # also aiohttp.ServerTimeoutError and its subclasses
        raise ProviderTimeout(provider, "The provider did not answer in time.") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ProviderUnavailable(provider, "The provider could not be reached.") from exc
    except aiohttp.ClientError as exc:
        raise ProviderBadResponse(provider, "The provider's answer could not be read.") from exc


class Upstream:
    """One provider's HTTP client: session, timeouts, caps, retries, error mapping."""

    def __init__(
        self,
        settings: UpstreamSettings,
        *,
        observer: UpstreamObserver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.provider = settings.provider
        self._base = settings.base_url.rstrip("/")
        self._observer: UpstreamObserver = observer or _NullObserver()
        self._sleep = sleep
        self._rng = rng or random.Random()
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
        )

    async def close(self) -> None:
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
        absolute_url: str | None = None,
        signed_url: str | None = None,
    ) -> UpstreamResponse:
        """Send one logical request (with its retries); return the provider's answer.

        Raises only for transport failures, an over-size body, or retries exhausted on
        a retryable status; every other status comes back for the adapter to judge.

        Args:
            operation: a bounded name for metrics (``submit``, ``status``, ``results``).
            data: a body that is not JSON (``aiohttp.FormData`` or bytes). Pass a
                zero-argument callable to rebuild it for each attempt.
            idempotent: whether a retry is safe; defaults to True for GET/HEAD.
            absolute_url: a URL the provider gave us (must share the base URL's origin).
            signed_url: a link the provider signed for us (a file in cloud storage):
                https on any host, or the provider's own origin; sent without the
                provider's credential, since the signature is the link's credential.
        """
        s = self.settings
        safe = method in ("GET", "HEAD") if idempotent is None else idempotent
        url = absolute_url if absolute_url is not None else self.url(path)
        if absolute_url is not None and not _same_origin(absolute_url, self._base):
            raise ProviderBadResponse(
                self.provider, "The provider pointed the gateway at another host."
            )
        if signed_url is not None and not signed_url_allowed(signed_url, self._base):
            raise ProviderBadResponse(self.provider, "The provider's download link is not https.")
        url = signed_url if signed_url is not None else url
        out_headers = {**(s.headers if signed_url is None else {}), **(headers or {})}
        rid = REQUEST_ID.get()
        if rid:
            out_headers["X-Request-ID"] = rid
        deadline = time.monotonic() + s.total_timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderTimeout(self.provider, "The provider did not answer in time.")
            started = time.monotonic()
            body = data() if callable(data) else data
            try:
                with map_client_errors(self.provider):
                    resp = await asyncio.wait_for(
                        self._send(method, url, json_body, body, params, out_headers),
                        timeout=remaining,
                    )
            except ProviderError as exc:
                outcome = exc.code
                self._observer.attempt(
                    self.provider, operation, outcome, time.monotonic() - started
                )
                never_connected = isinstance(
                    exc.__cause__, aiohttp.ClientConnectorError
                ) and not isinstance(exc.__cause__, TimeoutError)
                retryable = isinstance(exc, ProviderTimeout | ProviderUnavailable)
                if attempt < s.retries and retryable and (safe or never_connected):
                    attempt += 1
                    self._observer.retry(self.provider, outcome)
                    await self._backoff(attempt, None, deadline)
                    continue
                raise
            self._observer.attempt(
                self.provider,
                operation,
                f"{resp.status // 100}xx",
                time.monotonic() - started,
            )
            if resp.status == 429:
                self._observer.throttled(self.provider)
            if resp.status in RETRYABLE_STATUSES and safe and attempt < s.retries:
                wait = parse_retry_after(
                    resp.headers.get("Retry-After"),
                    maximum=s.retry_after_max,
                    now=time.time(),
                )
                # A long pause is the caller's to wait out, not ours to sit in.
                if wait is None or wait <= s.backoff_cap:
                    attempt += 1
                    self._observer.retry(self.provider, str(resp.status))
                    await self._backoff(attempt, wait, deadline)
                    continue
            return resp

    async def _send(
        self,
        method: str,
        url: str,
        json_body: Any,
        data: Any,
        params: Any,
        headers: Mapping[str, str],
    ) -> UpstreamResponse:
        cap = self.settings.max_response_bytes
        async with self.session.request(
            method,
            url,
            json=json_body,
            data=data,
            params=params,
            headers=headers,
            allow_redirects=False,
        ) as resp:
            declared = resp.content_length
            if declared is not None and declared > cap:
                raise ProviderBadResponse(
                    self.provider, f"The provider's answer is larger than {cap} bytes."
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(65536):
                size += len(chunk)
                if size > cap:
                    raise ProviderBadResponse(
                        self.provider,
                        f"The provider's answer is larger than {cap} bytes.",
                    )
                chunks.append(chunk)
            return UpstreamResponse(
                status=resp.status,
                headers=dict(resp.headers),
                body=b"".join(chunks),
                provider=self.provider,
            )

    async def _backoff(self, attempt: int, hinted: float | None, deadline: float) -> None:
        s = self.settings
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^n)).
        delay = self._rng.uniform(0, min(s.backoff_cap, s.backoff_base * 2**attempt))
        if hinted is not None:
            delay = max(delay, hinted)
        delay = min(delay, max(0.0, deadline - time.monotonic()))
        if delay > 0:
            if hinted is not None:
                self._observer.paused(self.provider, delay)
            await self._sleep(delay)

    def raise_for_status(
        self,
        resp: UpstreamResponse,
        *,
        message: Callable[[UpstreamResponse], str | None] = message_from_body,
        not_found: str = "The provider does not know this job.",
    ) -> None:
        """Map a provider's non-2xx answer to the gateway's error for it.

        A 401/403 means the provider refused *our* credential: that is a 502 for the
        caller, and the detail never repeats what the provider said (it may echo
        the key).
        """
        status = resp.status
        if 200 <= status < 300:
            return
        p = self.provider
        if 300 <= status < 400:
            raise ProviderBadResponse(p, "The provider answered with a redirect.")
        if status in (401, 403):
            raise ProviderBadResponse(p, "The provider refused the gateway's credentials.")
        if status == 404:
            raise UpstreamJobNotFound(p, not_found)
        if status == 408:
            raise ProviderTimeout(p, "The provider timed out the request.")
        if status == 429 or status == 503:
            wait = parse_retry_after(
                resp.headers.get("Retry-After"),
                maximum=self.settings.retry_after_max,
                now=time.time(),
            )
            seconds = max(1, int(wait + 0.999)) if wait is not None else 1
            what = "is rate limiting the gateway" if status == 429 else "is unavailable"
            raise ProviderUnavailable(
                p,
                f"The provider {what}; try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )
        if status == 504:
            raise ProviderTimeout(p, "The provider timed out the request.")
        if 400 <= status < 500:
            said = message(resp)
            raise ProviderRejected(
                p,
                f"The provider rejected the request: {said}"
                if said
                else f"The provider rejected the request (HTTP {status}).",
            )
        raise ProviderBadResponse(p, f"The provider failed (HTTP {status}).")


def _same_origin(url: str, base: str) -> bool:
    a, b = URL(url), URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def signed_url_allowed(url: str, base: str) -> bool:
    """A signed link may be fetched: https on a named host, or the provider's own origin.

    Plain http elsewhere could be read or rewritten on the way (and is how a hostile
    answer would aim us at an internal service); the provider's origin is trusted as
    its base URL is (its simulator in tests).
    """
    try:
        u = URL(url)
    except (TypeError, ValueError):
        return False
    if not u.absolute or not u.host:
        return False
    return u.scheme == "https" or _same_origin(url, base)
