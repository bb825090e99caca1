"""Request context: request id, timing headers, metrics and the canonical log line.

Outermost middleware. It gives every request an id (the caller's ``X-Request-ID`` if
it is sane, else a new one), binds it for logs and for the provider call, sets the
request's one deadline for every provider call it makes (``request_deadline_seconds``
plus what ``Prefer: wait`` asks for), and on the way out adds ``X-Request-ID``,
``Server-Timing``, ``Cache-Status`` and the security headers, counts the request by
route template, and writes one log line (with the trace id when tracing is on).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from adapters.upstream import DEADLINE, REQUEST_ID
from gateway.http.keys import METRICS, SETTINGS
from gateway.http.parsing import prefer_wait
from gateway.observability.context import FACTS, RequestFacts
from gateway.observability.logging import log_request

#: New request ids: this process's random 16 hex digits, then a count (32 hex digits in
#: all, as a uuid4's hex was). Unique across processes and restarts without a system
#: call per request; a request id names a request, it guards nothing.
_ID_PREFIX = secrets.token_hex(8)
_id_count = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_count) & 0xFFFFFFFFFFFFFFFF:016x}"


_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_template(request: web.Request) -> str:
    """The matched route's template (never the raw path, which is unbounded)."""
    info = request.match_info
    route = info.route if info is not None else None
    if route is None or route.resource is None or info.http_exception is not None:
        return "unmatched"
    return route.resource.canonical


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _SANE_ID.match(incoming) else _new_request_id()
    facts = RequestFacts(request_id=request_id, started=started)
    facts_token = FACTS.set(facts)
    rid_token = REQUEST_ID.set(request_id)
    settings = request.app[SETTINGS]
    # One deadline for all the provider work of this request, retries and waits
    # included; a long poll (Prefer: wait) is granted its wait on top.
    budget = settings.request_deadline_seconds + (
        prefer_wait(request, settings.max_wait_seconds) or 0.0
    )
    deadline_token = DEADLINE.set(time.monotonic() + budget)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    metrics = request.app[METRICS]
    metrics.http_in_flight.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        _decorate(response, facts)
        return response
    except web.HTTPException as exc:
        # Only reached for exceptions raised after the error middleware (none today).
        status = exc.status
        raise
    finally:
        metrics.http_in_flight.dec()
        elapsed = time.perf_counter() - started
        route = route_template(request)
        metrics.request_done(
            route=route,
            method=request.method,
            status=status,
            seconds=elapsed,
            upstream_seconds=facts.upstream_seconds,
            # Long polls and event streams: their time is mostly the caller's wait.
            waited=facts.wait_seconds > 0 or "wait" in request.headers.get("Prefer", "").lower(),
            cache=facts.cache,
            # An exemplar only for a kept trace: a link to one no one stored helps no one.
            trace_id=facts.trace_id if facts.trace_sampled else None,
        )
        if facts.tenant is not None:
            metrics.tenant_request(facts.tenant)
        fields = {
            "method": request.method,
            "route": route,
            # The path without its query string: a query may carry anything.
            "path": request.path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "upstream_ms": round(facts.upstream_seconds * 1000, 2),
            "wait_ms": round(facts.wait_seconds * 1000, 2),
            "provider": facts.provider,
            "job_id": facts.job_id or job_in_path(request),
            "cache": facts.cache,
            "tenant": facts.tenant,
            "key_id": facts.key_id,
            "ratelimit": facts.ratelimit,
            "request_id": request_id,
        }
        if facts.trace_id is not None:
            # Only with tracing on (gateway.http.middleware.tracing): logs and traces join on it.
            fields["trace_id"] = facts.trace_id
        log_request(fields)
        DEADLINE.reset(deadline_token)
        REQUEST_ID.reset(rid_token)
        FACTS.reset(facts_token)


def job_in_path(request: web.Request) -> str | None:
    """The ``{job_id}`` of a matched job route (reads, cancel, results, events), if it
    looks like an id at all: the path is the caller's text."""
    job_id = request.match_info.get("job_id") if request.match_info is not None else None
    return job_id if job_id is not None and _SANE_ID.match(job_id) else None


def _decorate(response: web.StreamResponse, facts: RequestFacts) -> None:
    if response.prepared:  # streamed answers set their headers before the first byte
        return
    apply_headers(response, facts)


def apply_headers(response: web.StreamResponse, facts: RequestFacts) -> None:
    """The headers every answer carries; streaming handlers call it before prepare()."""
    total = time.perf_counter() - facts.started
    upstream, wait = facts.upstream_seconds, facts.wait_seconds
    response.headers["X-Request-ID"] = facts.request_id
    # gateway;dur is the gateway's own overhead: neither the provider's time nor a
    # Prefer: wait the caller asked for (which gets its own entry).
    timing = [f"upstream;dur={upstream * 1000:.1f}"]
    if wait > 0:
        timing.append(f"wait;dur={wait * 1000:.1f}")
    timing.append(f"gateway;dur={max(0.0, total - upstream - wait) * 1000:.1f}")
    response.headers["Server-Timing"] = ", ".join(timing)
    if facts.cache is not None:
        response.headers["Cache-Status"] = (
            "gateway; hit" if facts.cache == "hit" else "gateway; fwd=miss"
        )
    if facts.ratelimit_headers:
        response.headers.update(facts.ratelimit_headers)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if facts.tenant is not None:
        response.headers["Cache-Control"] = "no-store"
