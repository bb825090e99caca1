"""The gateway's OTLP export in each ``tracing.protocol``, into real receivers.

Not a test module: ``test_otlp_protocols.py`` runs this file as a script under a second
venv that has the ``tracing-protobuf`` extra, which cannot be installed beside the ``dev``
extra the suite runs in (protobuf 5 and later there, 4 for the dev extra's modzy-sdk). So
it imports nothing from ``tests`` and no test library: only the gateway, aiohttp, grpc and
the OTLP message types the extra brings.

For each protocol it starts a receiver on loopback that decodes what it is sent with
the OTLP message types (a ``grpc.aio`` TraceService; an aiohttp ``/v1/traces`` that
parses ``ExportTraceServiceRequest`` from the body, in protobuf or in OTLP/JSON), then
runs the demo
configuration's gateway, with its simulated providers, with tracing on and pointed at
that receiver, submits one job, and stops the gateway, which flushes the batch
processor. It writes what each receiver decoded, as JSON, to the file named by its one
argument (stdout has the gateway's log lines).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc  # type: ignore[import-untyped]
from aiohttp import web
from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import (  # type: ignore[import-not-found]
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.trace.v1 import trace_pb2  # type: ignore[import-not-found]
from prometheus_client import CollectorRegistry
from yarl import URL

from gateway.config.loading import load_settings
from gateway.config.settings import Settings
from gateway.demo import DEMO_CONFIG, DEMO_KEY
from gateway.http.app import create_app
from gateway.simulators import simulators_app

PROTOCOLS = ("http/json", "http/protobuf", "grpc")
#: OTLP/JSON's one departure from protobuf's JSON mapping: these ids are hex, not base64.
_HEX_IDS = frozenset({"traceId", "spanId", "parentSpanId"})
#: The whole run's bound: the caller's test has its own, this one reports which step hung.
STEP_SECONDS = 20.0


class Received:
    """What one receiver decoded: the export calls, their resources and spans."""

    def __init__(self) -> None:
        self.calls = 0
        self.content_types: set[str] = set()
        self.user_agents: set[str] = set()
        self.resources: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []

    def add(self, request: Any) -> None:
        self.calls += 1
        for resource_spans in request.resource_spans:
            self.resources.append(_attributes(resource_spans.resource.attributes))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "kind": trace_pb2.Span.SpanKind.Name(span.kind),
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": _attributes(span.attributes),
                        }
                    )

    def report(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "content_types": sorted(self.content_types),
            "user_agents": sorted(self.user_agents),
            "resources": self.resources,
            "spans": self.spans,
        }


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind in _SCALARS else kind
    return out


_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value"})


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self._received = received

    # Named as the RPC is: gRPC looks the method up by that name.
    async def Export(self, request: Any, context: Any) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        self._received.user_agents.add(str(metadata.get("user-agent", "")))
        self._received.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def grpc_receiver(received: Received) -> tuple[str, Any]:
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # http://: the exporter takes the scheme as "no TLS".
    return f"http://127.0.0.1:{port}", server


async def http_receiver(received: Received) -> tuple[str, web.AppRunner]:
    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.content_types.add(request.content_type)
        received.user_agents.add(request.headers.get("User-Agent", ""))
        if request.content_type == "application/json":
            received.add(_from_otlp_json(json.loads(body)))
            return web.json_response({})
        received.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    return f"http://127.0.0.1:{await _serve(runner)}/v1/traces", runner


def _from_otlp_json(data: Any) -> Any:
    """An OTLP/JSON body as the protobuf message: protobuf's own JSON parser, strict about
    unknown fields, once the ids are turned from hex into the base64 it expects."""

    def ids_as_base64(node: Any) -> Any:
        if isinstance(node, list):
            return [ids_as_base64(n) for n in node]
        if not isinstance(node, dict):
            return node
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in _HEX_IDS and isinstance(v, str)
            else ids_as_base64(v)
            for k, v in node.items()
        }

    message = trace_service_pb2.ExportTraceServiceRequest()
    return json_format.ParseDict(ids_as_base64(data), message)


async def _serve(runner: web.AppRunner) -> int:
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port: int = runner.addresses[0][1]
    return port


def demo_settings(sim_base: str, protocol: str, endpoint: str) -> Settings:
    """The demo configuration, its providers on these simulators, tracing into ``endpoint``."""
    tracing = {
        "enabled": True,
        "protocol": protocol,
        "endpoint": endpoint,
        "service_name": f"otlp-check-{protocol.replace('/', '-')}",
    }
    settings = load_settings(DEMO_CONFIG, tracing=tracing)
    providers = [
        p.model_copy(update={"base_url": sim_base + URL(p.base_url).path})
        for p in settings.providers
    ]
    return settings.model_copy(update={"providers": providers})


async def one_protocol(protocol: str, sim_base: str) -> dict[str, Any]:
    received = Received()
    if protocol == "grpc":
        endpoint, server = await grpc_receiver(received)
    else:
        endpoint, runner = await http_receiver(received)
    gateway = web.AppRunner(
        create_app(demo_settings(sim_base, protocol, endpoint), registry=CollectorRegistry()),
        access_log=None,
    )
    base = f"http://127.0.0.1:{await _serve(gateway)}"
    try:
        async with aiohttp.ClientSession() as client:
            answer = await client.post(
                f"{base}/v1/jobs",
                headers={"Authorization": f"Bearer {DEMO_KEY}"},
                json={"model": "sentiment", "inputs": [{"name": "a", "text": "Lovely"}]},
            )
            job = await answer.json()
    finally:
        # Stopping the app shuts the tracer provider down: the batch processor exports
        # what it holds (in a thread, so this loop keeps serving the receiver meanwhile).
        await asyncio.wait_for(gateway.cleanup(), STEP_SECONDS)
    if protocol == "grpc":
        await server.stop(None)
    else:
        await runner.cleanup()
    return {"submit": {"status": answer.status, "job_id": job.get("id")}, **received.report()}


async def main() -> dict[str, Any]:
    sims = web.AppRunner(simulators_app(), access_log=None)
    sim_base = f"http://127.0.0.1:{await _serve(sims)}"
    report: dict[str, Any] = {}
    try:
        for protocol in PROTOCOLS:
            report[protocol] = await asyncio.wait_for(
                one_protocol(protocol, sim_base), STEP_SECONDS
            )
    finally:
        await sims.cleanup()
    return report


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(asyncio.run(main()), indent=1))
