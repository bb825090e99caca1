"""OpenTelemetry traces: the tracer the gateway's spans come from, when tracing is on.

``build_tracing`` runs once, in ``create_app``: with ``tracing.enabled`` false it returns
None, and every component built with None creates no span object at all (each checks
its tracer once per call, or was given none). With it on, one ``TracerProvider`` is
made for the app (never the process-global one, so two apps in one test process keep
their traces apart), exporting OTLP through a batch processor.

What may go in a span: route templates, configured names (provider, operation, model
alias), gateway ids (request, job), statuses, counts and durations. Never a
credential, a request body, an input or a provider's message: exceptions are not
recorded (their text may quote a provider's answer), only their error code.

Spans per trace are capped (``MAX_SPANS_PER_TRACE``): a long ``Prefer: wait`` polls the
provider again and again, and past the cap the sampler drops the rest, so one request's
trace stays bounded whatever it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from gateway.observability.settings import TracingSettings

#: Spans one trace may hold in this process; the sampler drops the ones past it.
MAX_SPANS_PER_TRACE: Final = 64
#: The service name when neither the settings nor ``OTEL_SERVICE_NAME`` give one.
DEFAULT_SERVICE: Final = "inference-gateway"

#: ``traceparent`` and ``tracestate`` only, in and out. Not the SDK's default composite,
#: which also carries ``baggage``: a caller's baggage is the caller's data, and the
#: gateway forwards none of it to a provider.
PROPAGATOR: Final = TraceContextTextMapPropagator()


class _CappedSampler(Sampler):
    """The configured sampler, then at most ``cap`` recorded spans per trace."""

    def __init__(self, inner: Sampler, cap: int) -> None:
        self._inner = inner
        self._cap = cap
        #: Spans recorded so far per trace id, while its local root span is open.
        self.counts: dict[int, int] = {}

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        result = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is not Decision.RECORD_AND_SAMPLE:
            return result
        n = self.counts.get(trace_id, 0)
        if n >= self._cap:
            return SamplingResult(Decision.DROP, None, result.trace_state)
        self.counts[trace_id] = n + 1
        return result

    def get_description(self) -> str:
        return f"Capped{{{self._cap},{self._inner.get_description()}}}"


class _ForgetFinished(SpanProcessor):
    """Forgets a trace's span count when its local root ends (no leak per trace)."""

    def __init__(self, sampler: _CappedSampler) -> None:
        self._counts = sampler.counts

    def on_end(self, span: ReadableSpan) -> None:
        if (span.parent is None or span.parent.is_remote) and span.context is not None:
            self._counts.pop(span.context.trace_id, None)


class Tracing:
    """The app's tracer provider and tracer (built by ``build_tracing``)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("gateway")

    def shutdown(self) -> None:
        """Export what is left and stop (blocking: call it off the event loop)."""
        self.provider.shutdown()


def build_tracing(
    settings: TracingSettings, *, exporter: SpanExporter | None = None
) -> Tracing | None:
    """The app's tracing, or None when ``settings.enabled`` is false.

    ``exporter``: where spans go instead of OTLP, each as it ends (tests pass an
    in-memory one).
    """
    if not settings.enabled:
        return None
    # Resource.create also reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    resource = Resource.create(
        {SERVICE_NAME: settings.service_name} if settings.service_name else {}
    )
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    # Unset, the sampler is the SDK's from OTEL_TRACES_SAMPLER (parent-based always-on).
    inner: Sampler = (
        ParentBased(TraceIdRatioBased(settings.sample_ratio))
        if settings.sample_ratio is not None
        else _get_from_env_or_default()
    )
    sampler = _CappedSampler(inner, MAX_SPANS_PER_TRACE)
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(_ForgetFinished(sampler))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(settings)))
    return Tracing(provider)


def otlp_exporter(settings: TracingSettings) -> SpanExporter:
    """The OTLP exporter for ``settings.protocol``; unset fields are left to ``OTEL_*``."""
    headers = _headers(settings.headers.get_secret_value()) if settings.headers else None
    kwargs: dict[str, Any] = {"endpoint": settings.endpoint, "headers": headers}
    if settings.protocol == "http/json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**kwargs)
    try:
        if settings.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter(**kwargs)  # type: ignore[no-any-return]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter as ProtobufExporter,
        )

        return ProtobufExporter(**kwargs)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise RuntimeError(
            f"tracing.protocol {settings.protocol!r} needs the gateway's 'tracing-protobuf' "
            "extra installed (docs/tracing.md)"
        ) from exc


def _headers(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (the ``OTEL_EXPORTER_OTLP_HEADERS`` format) as a dict."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def trace_id_of(span: trace.Span) -> tuple[str | None, bool]:
    """The span's trace id in hex (None if it has none) and whether it is sampled."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, False
    return format_trace_id(ctx.trace_id), ctx.trace_flags.sampled


def carrier() -> dict[str, str]:
    """The current span's ``traceparent``/``tracestate``, to link later work to it."""
    out: dict[str, str] = {}
    PROPAGATOR.inject(out)
    return out


def links_from(carried: Mapping[str, str] | None) -> list[Link]:
    """A link to the span a ``carrier()`` was taken in (none if there was none)."""
    if not carried:
        return []
    ctx = trace.get_current_span(PROPAGATOR.extract(carried)).get_span_context()
    return [Link(ctx)] if ctx.is_valid else []
