"""OpenTelemetry traces over real HTTP: the gateway before the Modzy simulator, spans in memory."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from adapters.simulation import Fault
from gateway.jobs.settings import EngineSettings
from gateway.limits.settings import RateLimitSettings
from gateway.observability.settings import TracingSettings
from gateway.observability.tracing import MAX_SPANS_PER_TRACE, build_tracing
from tests.api.test_engine import FAST_POLL, until_done
from tests.api.test_item_cache import models
from tests.api.test_jobs_api import TEXTS, submit, wait_done
from tests.api.test_webhooks import (
    LOOPBACK,
    SECRET,
    Receiver,
    body,
    job_when,
    start,
    webhook_settings,
)
from tests.conftest import AUTH, Harness, spans_text

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
ON = TracingSettings(enabled=True)
LIMITED = RateLimitSettings.model_validate({"per_key": {"submit": {"requests": 100}}})


async def traced(make_gateway: Any, exporter: InMemorySpanExporter, **over: Any) -> Harness:
    over.setdefault("tracing", ON)
    return await make_gateway(app_over={"span_exporter": exporter}, **over)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[str]:
    pid = parent.context.span_id
    return sorted(s.name for s in spans if s.parent is not None and s.parent.span_id == pid)


def server_span(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind is SpanKind.SERVER and s.name == name]
    return span


class TestSpanTrees:
    async def test_a_submit(self, make_gateway, span_exporter):
        """Server span by route template; limit, store and provider call under it; the
        HTTP attempt under the provider call."""
        h = await traced(make_gateway, span_exporter, ratelimit=LIMITED)
        resp = await submit(h)
        assert resp.status == 202
        spans = span_exporter.get_finished_spans()
        root = server_span(spans, "POST /v1/jobs")
        assert root.parent is None
        assert root.attributes is not None
        assert root.attributes["http.route"] == "/v1/jobs"
        assert root.attributes["http.response.status_code"] == 202
        assert root.attributes["job.id"] == (await resp.json())["id"]
        assert root.attributes["gateway.request_id"] == resp.headers["X-Request-ID"]
        under = children(spans, root)
        assert {"ratelimit", "provider submit", "store create"} <= set(under), under
        (call,) = by_name(spans, "provider submit")
        assert call.attributes is not None
        assert call.attributes["gateway.provider"] == "modzy"
        assert call.attributes["gateway.retries"] == 0
        assert call.attributes["http.response.status_code"] in (200, 201, 202)
        assert "gateway.pacing_wait_ms" in call.attributes
        assert children(spans, call) == ["POST"]  # the one HTTP attempt
        (limit,) = by_name(spans, "ratelimit")
        assert limit.attributes == {
            "gateway.ratelimit.policy": "submit",
            "gateway.ratelimit.outcome": "allowed",
        }
        assert len({s.context.trace_id for s in spans}) == 1

    async def test_a_cached_read(self, make_gateway, span_exporter):
        """A finished job read again: no provider call (at most a store read; this
        replica's own memory of the record needs none)."""
        h = await traced(make_gateway, span_exporter)
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        span_exporter.clear()
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert resp.headers["Cache-Status"] == "gateway; hit"
        spans = span_exporter.get_finished_spans()
        root = server_span(spans, "GET /v1/jobs/{job_id}")
        assert root.attributes is not None and root.attributes["gateway.cache"] == "hit"
        assert root.attributes["job.id"] == job["id"]
        assert set(children(spans, root)) <= {"store get"}
        assert not [s for s in spans if s.name.startswith("provider")]

    async def test_the_shared_state_a_submit_and_a_results_read_wait_on(
        self, make_gateway, span_exporter
    ):
        """An idempotent submit's key claimed and completed, the item cache asked and
        written, the results cache read: each a span, with counts and the job id only
        (never the idempotency key, an item key or the input)."""
        h = await traced(make_gateway, span_exporter, provider_over={"modzy": {"models": models()}})
        key = "order-7731-idem"
        resp = await submit(h, extra={"Idempotency-Key": key})
        job = await resp.json()
        assert resp.status == 202, job
        spans = span_exporter.get_finished_spans()
        root = server_span(spans, "POST /v1/jobs")
        under = children(spans, root)
        assert {"idempotency claim", "idempotency complete", "item cache get"} <= set(under)
        (claim,) = by_name(spans, "idempotency claim")
        assert claim.attributes is not None
        assert claim.attributes["gateway.idempotency.outcome"] == "new"
        (lookup,) = by_name(spans, "item cache get")
        assert lookup.attributes == {"gateway.items": len(TEXTS), "gateway.items.found": 0}
        await wait_done(h, job["id"])  # the read that sees the finish writes the entries
        (written,) = by_name(span_exporter.get_finished_spans(), "item cache put")
        assert written.attributes == {"gateway.items": len(TEXTS)}
        text = spans_text(span_exporter)
        span_exporter.clear()
        assert (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).status == 200
        assert by_name(span_exporter.get_finished_spans(), "cache get")
        text += spans_text(span_exporter)
        assert key not in text and not [t for t in TEXTS.values() if t in text]

    async def test_a_provider_503_with_retries(self, make_gateway, span_exporter):
        """One provider-call span, its retry count, and one client span per attempt."""
        h = await traced(make_gateway, span_exporter)
        h.sim.set_faults([Fault(kind="latency", seconds=0.3, match="POST")])
        job = await (await submit(h)).json()
        h.sim.set_faults([Fault(kind="status", status=503, match="GET", times=2)])
        span_exporter.clear()
        resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert resp.status == 200
        spans = span_exporter.get_finished_spans()
        (call,) = by_name(spans, "provider status")
        assert call.attributes is not None
        assert call.attributes["gateway.retries"] == 2
        assert call.attributes["http.response.status_code"] == 200
        attempts = [
            s
            for s in spans
            if s.kind is SpanKind.CLIENT
            and s.parent is not None
            and s.parent.span_id == call.context.span_id
        ]
        # The client instrumentation's default (older) semantic conventions name it so.
        statuses = [s.attributes.get("http.status_code") for s in attempts if s.attributes]
        assert statuses == [503, 503, 200]


class TestPropagation:
    async def test_a_callers_traceparent_reaches_the_provider(self, make_gateway, span_exporter):
        """caller → gateway → provider in one trace, the provider's parent one of ours."""
        h = await traced(make_gateway, span_exporter)
        resp = await submit(h, extra={"traceparent": TRACEPARENT, "X-Request-ID": "req-77"})
        assert resp.status == 202
        assert resp.headers["X-Request-ID"] == "req-77"
        spans = span_exporter.get_finished_spans()
        root = server_span(spans, "POST /v1/jobs")
        assert format_trace_id(root.context.trace_id) == CALLER_TRACE
        assert root.parent is not None and format_span_id(root.parent.span_id) == CALLER_SPAN
        assert root.attributes is not None and root.attributes["gateway.request_id"] == "req-77"
        (seen,) = [r for r in h.sim.requests if r.method == "POST"]
        sent = {k.lower(): v for k, v in seen.headers.items()}
        _, trace_id, parent_id, flags = sent["traceparent"].split("-")
        assert trace_id == CALLER_TRACE and flags == "01"
        (attempt,) = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]
        assert parent_id == format_span_id(attempt.context.span_id)
        assert sent["x-request-id"] == "req-77"
        # The gateway's own time is the server span less the provider call.
        (call,) = by_name(spans, "provider submit")
        assert root.end_time is not None and call.end_time is not None
        assert root.start_time is not None and call.start_time is not None
        assert root.end_time - root.start_time > call.end_time - call.start_time

    async def test_the_trace_id_is_in_the_log_line(
        self, make_gateway, span_exporter, captured_logs
    ):
        h = await traced(make_gateway, span_exporter)
        await submit(h, extra={"traceparent": TRACEPARENT})
        (line,) = [e for e in captured_logs if e.get("event") == "request"]
        assert line["trace_id"] == CALLER_TRACE


class TestWhatSpansHold:
    async def test_no_input_text_or_credential(self, make_gateway, span_exporter):
        """No input, body or credential in any span (credentials: checked by conftest too)."""
        h = await traced(make_gateway, span_exporter, ratelimit=LIMITED)
        job = await (await submit(h)).json()
        await wait_done(h, job["id"])
        await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        text = spans_text(span_exporter)
        assert "provider results" in text or "provider status" in text
        for value in TEXTS.values():
            assert value not in text
        assert AUTH["Authorization"].split()[-1] not in text

    async def test_a_tenant_is_named_only_where_metrics_may(self, make_gateway, span_exporter):
        h = await traced(make_gateway, span_exporter)
        await submit(h)
        root = server_span(span_exporter.get_finished_spans(), "POST /v1/jobs")
        assert root.attributes is not None and root.attributes["gateway.tenant"] == "other"

    def test_spans_per_trace_are_capped(self, span_exporter):
        """However many calls a request makes (a long wait polls again and again), its
        trace stops growing at the cap, and the count is forgotten when the request ends."""
        tracing = build_tracing(ON, exporter=span_exporter)
        assert tracing is not None
        with tracing.tracer.start_as_current_span("GET /v1/jobs/{job_id}"):
            for _ in range(3 * MAX_SPANS_PER_TRACE):
                with tracing.tracer.start_as_current_span("provider status"):
                    pass
        assert len(span_exporter.get_finished_spans()) == MAX_SPANS_PER_TRACE
        with tracing.tracer.start_as_current_span("next request"):
            pass
        assert span_exporter.get_finished_spans()[-1].name == "next request"
        tracing.shutdown()


class TestOffByDefault:
    async def test_no_span_no_traceparent_no_trace_id(
        self, make_gateway, span_exporter, captured_logs
    ):
        h = await make_gateway(app_over={"span_exporter": span_exporter})
        assert h.settings.tracing.enabled is False
        await submit(h, extra={"traceparent": TRACEPARENT})
        assert span_exporter.get_finished_spans() == ()
        (seen,) = [r for r in h.sim.requests if r.method == "POST"]
        assert "traceparent" not in {k.lower() for k in seen.headers}
        (line,) = [e for e in captured_logs if e.get("event") == "request"]
        assert "trace_id" not in line
        resp = await h.client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert resp.headers["Content-Type"].startswith("text/plain")


class TestExemplars:
    async def test_the_duration_histogram_links_to_the_trace(self, make_gateway, span_exporter):
        h = await traced(make_gateway, span_exporter)
        await submit(h, extra={"traceparent": TRACEPARENT})
        resp = await h.client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("gateway_http_request_duration_seconds_bucket")
            and 'route="/v1/jobs"' in line
            and "# {" in line
        ]
        assert lines and f'trace_id="{CALLER_TRACE}"' in lines[0]


class TestEngine:
    async def test_each_check_links_back_to_the_submit(self, make_gateway, span_exporter):
        """The engine's checks are traces of their own, each with the job's id and a
        link to the submit's trace."""
        h = await traced(
            make_gateway,
            span_exporter,
            engine=EngineSettings(max_staleness_seconds=5, sweep_seconds=1),
            provider_over={"modzy": FAST_POLL},
        )
        job = await (await submit(h, extra={"traceparent": TRACEPARENT})).json()
        await until_done(h, job["id"])
        checks = by_name(span_exporter.get_finished_spans(), "engine check")
        assert checks
        for check in checks:
            assert check.attributes is not None and check.attributes["job.id"] == job["id"]
            assert check.parent is None
            assert format_trace_id(check.context.trace_id) != CALLER_TRACE
            links = [format_trace_id(link.context.trace_id) for link in check.links]
            assert links == [CALLER_TRACE]

    async def test_a_webhook_delivery_is_a_span_of_its_own_linked_to_the_finish(
        self, make_gateway, span_exporter
    ):
        """The delivery of a finished job's webhook is a trace of its own (the submit
        ended long ago), with the job's id, its attempt and outcome, linked to the work
        that finished the job."""
        receiver = Receiver()
        server = await start(receiver)
        try:
            h = await traced(
                make_gateway,
                span_exporter,
                engine=EngineSettings(max_staleness_seconds=5),
                webhooks=webhook_settings(),
                url_guard=LOOPBACK,
                provider_over={"modzy": FAST_POLL},
            )
            sent = body(str(server.make_url("/hook")))
            job = await (
                await h.client.post(
                    "/v1/jobs", json=sent, headers={**AUTH, "traceparent": TRACEPARENT}
                )
            ).json()
            await job_when(h, job["id"], lambda j: j["notification"]["status"] == "delivered")
            spans = span_exporter.get_finished_spans()
            (delivery,) = by_name(spans, "webhook delivery")
            attributes = delivery.attributes or {}
            assert attributes["job.id"] == job["id"] and attributes["gateway.attempt"] == 1
            assert attributes["gateway.webhook.outcome"] == "delivered"
            assert delivery.parent is None
            trace = format_trace_id(delivery.context.trace_id)
            assert trace != CALLER_TRACE
            # Linked to the engine check that saw the finish (itself linked to the submit).
            checks = {c.context.span_id: c for c in by_name(spans, "engine check")}
            assert [link.context.span_id in checks for link in delivery.links] == [True]
            assert len(receiver.got) == 1
            assert SECRET not in spans_text(span_exporter)  # the signing secret
        finally:
            await server.close()
