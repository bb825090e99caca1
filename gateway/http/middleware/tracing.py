"""The server span of each request, when tracing is on (``create_app`` adds it then only).

Written with the OpenTelemetry API rather than ``opentelemetry-instrumentation-aiohttp-server``:
that package installs its middleware first in the chain, so its span would close before
our request id, tenant and job id are known, and the attributes it records (the raw
path and query) are ones we must not record. Here the span sits right inside the
request-context middleware: the request id and deadline are already set, and every
other middleware (errors, body limit, auth, caller limits) and the handler run inside it.

The span is named ``METHOD /route/{template}`` (never the raw path). It continues a
caller's W3C ``traceparent``/``tracestate``; its trace id goes into the request's facts,
so the canonical log line and the request-duration exemplar carry it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway.http.middleware.context import job_in_path, route_template
from gateway.observability.context import FACTS, RequestFacts
from gateway.observability.metrics import Metrics, method_label
from gateway.observability.tracing import PROPAGATOR, Tracing, trace_id_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def tracing_middleware(tracing: Tracing, metrics: Metrics) -> Middleware:
    tracer = tracing.tracer

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        method = method_label(request.method)
        name = method if route == "unmatched" else f"{method} {route}"
        parent = PROPAGATOR.extract(request.headers)
        with tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
            # An exception's text may quote a provider's answer: its code only, below.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            facts = FACTS.get()
            trace_id, sampled = trace_id_of(span)
            if facts is not None and trace_id is not None:
                facts.trace_id, facts.trace_sampled = trace_id, sampled
                structlog.contextvars.bind_contextvars(trace_id=trace_id)
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                if span.is_recording():
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    if facts is not None:
                        _describe(span, facts, metrics)
                        if facts.job_id is None and (job_id := job_in_path(request)):
                            span.set_attribute("job.id", job_id)

    return middleware


def _describe(span: Span, facts: RequestFacts, metrics: Metrics) -> None:
    """What the request's facts add to its span: ids, provider, cache, limit, tenant."""
    span.set_attribute("gateway.request_id", facts.request_id)
    if facts.job_id is not None:
        span.set_attribute("job.id", facts.job_id)
    if facts.provider is not None:
        span.set_attribute("gateway.provider", facts.provider)
    if facts.cache is not None:
        span.set_attribute("gateway.cache", facts.cache)
    if facts.ratelimit is not None:
        span.set_attribute("gateway.ratelimit", facts.ratelimit)
    if facts.tenant is not None:
        # As metrics name it: the tenant only where metrics.tenant_labels allows, else "other".
        span.set_attribute("gateway.tenant", metrics.tenant_label(facts.tenant))
