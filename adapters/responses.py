"""A provider's answer, and how a failed answer becomes the gateway's error.

Code shared by ``Upstream`` and the adapters: the response value, reading it under a
size cap, Retry-After parsing (RFC 9110 §10.2.3), the provider's own message in an
error body, the one choke point that translates aiohttp's and asyncio's exceptions,
and the mapping of a non-2xx status to the gateway's error for it.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from adapters.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UnreadableSubmit,
    UpstreamJobNotFound,
)


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


async def read_capped(resp: aiohttp.ClientResponse, cap: int, provider: str) -> UpstreamResponse:
    """Read a provider's whole answer, refusing (502) one larger than ``cap`` bytes.

    A declared length over the cap is refused before reading; an undeclared one is
    read in chunks and refused as soon as it passes the cap, so a hostile provider
    cannot make the gateway buffer more than ``cap`` bytes.
    """
    too_large = f"The provider's answer is larger than {cap} bytes."
    declared = resp.content_length
    if declared is not None and declared > cap:
        raise ProviderBadResponse(provider, too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise ProviderBadResponse(provider, too_large)
        chunks.append(chunk)
    return UpstreamResponse(
        status=resp.status, headers=dict(resp.headers), body=b"".join(chunks), provider=provider
    )


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


def retry_after_header(seconds: float) -> dict[str, str]:
    """``Retry-After`` for the caller: whole seconds, at least 1 (0 invites a hot loop)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


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
    connection; the original exception is kept as ``__cause__`` for the logs (and for
    ``Upstream`` to tell a request never sent from one that may have arrived).
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


def error_for_status(
    resp: UpstreamResponse,
    *,
    retry_after_max: float,
    now: float,
    message: Callable[[UpstreamResponse], str | None] = message_from_body,
    not_found: str = "The provider does not know this job.",
) -> ProviderError | None:
    """The gateway's error for a provider's non-2xx answer (None for a 2xx).

    A 401/403 means the provider refused *our* credential: that is a 502 for the
    caller, and the detail never repeats what the provider said (it may echo the key).
    """
    status = resp.status
    if 200 <= status < 300:
        return None
    p = resp.provider
    if 300 <= status < 400:
        return ProviderBadResponse(p, "The provider answered with a redirect.")
    if status in (401, 403):
        return ProviderBadResponse(p, "The provider refused the gateway's credentials.")
    if status == 404:
        return UpstreamJobNotFound(p, not_found)
    if status in (408, 504):
        return ProviderTimeout(p, "The provider timed out the request.")
    if status in (429, 503):
        wait = parse_retry_after(resp.headers.get("Retry-After"), maximum=retry_after_max, now=now)
        headers = retry_after_header(wait if wait is not None else 1)
        what = "is rate limiting the gateway" if status == 429 else "is unavailable"
        return ProviderUnavailable(
            p, f"The provider {what}; try again in {headers['Retry-After']} s.", headers=headers
        )
    if 400 <= status < 500:
        said = message(resp)
        return ProviderRejected(
            p,
            f"The provider rejected the request: {said}"
            if said
            else f"The provider rejected the request (HTTP {status}).",
        )
    return ProviderBadResponse(p, f"The provider failed (HTTP {status}).")


def same_origin(url: str, base: str) -> bool:
    a, b = URL(url), URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


#: Keys a submit answer's job id goes by, across the providers (compared lower-cased,
#: without ``_`` and ``-``).
_ID_KEYS = ("id", "jobid", "jobidentifier", "identifier", "inferenceid", "batchid", "requestid")


def maybe_job_id(resp: UpstreamResponse) -> str | None:
    """An id-looking value in a submit answer the adapter could not read, for the log."""
    try:
        payload = json.loads(resp.body)
    except (ValueError, UnicodeDecodeError):
        return None
    layers = [payload]
    for _ in range(3):  # the answer itself, and two levels of nesting
        nested: list[Any] = []
        for layer in layers:
            if not isinstance(layer, dict):
                continue
            for key, value in layer.items():
                folded = str(key).lower().replace("_", "").replace("-", "")
                if folded in _ID_KEYS and isinstance(value, str | int) and value != "":
                    return str(value)[:80]
                if isinstance(value, dict):
                    nested.append(value)
        layers = nested
    return None


@contextlib.contextmanager
def reading_submit(resp: UpstreamResponse) -> Iterator[None]:
    """Around the reading of a 2xx submit answer: whatever fails to read it becomes
    ``UnreadableSubmit`` (the job may exist), not a plain 502."""
    try:
        yield
    except UnreadableSubmit:
        raise
    except (ProviderBadResponse, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableSubmit(resp.provider, maybe_job_id(resp)) from exc
