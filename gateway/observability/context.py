"""Per-request facts gathered while a request runs, for headers and the log line.

The request middleware opens a ``RequestFacts`` in a context variable; the job
service adds what it learns (time spent waiting on the provider, whether it answered
from what it holds), and the middleware turns them into ``Server-Timing``,
``Cache-Status`` and the canonical log line. Context variables carry them through
awaits without threading them through every signature.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestFacts:
    request_id: str
    #: ``time.perf_counter()`` when the request arrived.
    started: float = 0.0
    upstream_seconds: float = 0.0
    #: Time spent sleeping between polls of a ``Prefer: wait`` request: the caller
    #: asked for it, so it is neither the provider's time nor the gateway's overhead.
    wait_seconds: float = 0.0
    #: "hit" when answered from what the gateway holds, "miss" when the provider was asked.
    cache: str | None = None
    provider: str | None = None
    #: The job the request created or addressed (a submit learns it only when answered).
    job_id: str | None = None
    tenant: str | None = None
    key_id: str | None = None
    #: ``RateLimit-Policy`` and ``RateLimit`` for the answer, once a limit was checked.
    ratelimit_headers: dict[str, str] | None = None
    #: The caller limit's decision for the log line: allowed, limited or shadow_limited.
    ratelimit: str | None = None
    #: The request's trace id (hex), when tracing is on; and whether its trace is kept.
    trace_id: str | None = None
    trace_sampled: bool = False


FACTS: ContextVar[RequestFacts | None] = ContextVar("gateway_request_facts", default=None)


def note_cache(result: str) -> None:
    facts = FACTS.get()
    # A miss anywhere in the request wins: the provider was asked.
    if facts is not None and facts.cache != "miss":
        facts.cache = result


def note_provider(provider: str) -> None:
    facts = FACTS.get()
    if facts is not None:
        facts.provider = provider


def note_job(job_id: str) -> None:
    facts = FACTS.get()
    if facts is not None:
        facts.job_id = job_id


@contextmanager
def _timed(field: str) -> Iterator[None]:
    """Add the time inside the block to the request's ``field`` (seconds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        facts = FACTS.get()
        if facts is not None:
            setattr(facts, field, getattr(facts, field) + time.perf_counter() - started)


def upstream_call() -> AbstractContextManager[None]:
    """Count the time inside the block as time spent waiting on a provider."""
    return _timed("upstream_seconds")


def waiting() -> AbstractContextManager[None]:
    """Count the time inside the block as time the caller asked to wait (``Prefer: wait``)."""
    return _timed("wait_seconds")
