"""The compose stack's exemplars, through a real Prometheus: scraped, stored, and named as
Grafana's exemplar link expects.

A real Prometheus (Debian's binary) runs with the feature flags docker-compose.yaml gives its
``prometheus`` service and the scrape job of ``deploy/compose/prometheus.yml`` (its targets
replaced by a gateway on loopback, with tracing on). After a few requests, Prometheus's
exemplar API must return the gateway's trace ids under the label that the Grafana
provisioning's ``exemplarTraceIdDestinations`` names. That proves what the compose stack
needs and nothing checks otherwise: the exemplar storage flag is there, the scrape negotiates
OpenMetrics with no setting of its own, and the label names agree end to end. Debian's
Prometheus is 2.42, the compose's image 2.53: both ask for OpenMetrics first.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_trace_id

from gateway.observability.settings import TracingSettings
from tests.conftest import AUTH
from tests.docs.test_local_stack import compose, datasources
from tests.e2e.processes import REPO, free_port
from tests.observability.support import tool

pytestmark = pytest.mark.timeout(60)

#: The histogram whose buckets carry the exemplars the dashboard's latency panels show.
HISTOGRAM = "gateway_http_request_duration_seconds_bucket"
REQUESTS = 3
DEADLINE_SECONDS = 20

Start = Callable[[str], Awaitable[str]]


@pytest.fixture
async def compose_prometheus(tmp_path: Path) -> AsyncIterator[Start]:
    """``start(target)``: the compose's Prometheus (its flags, its scrape job) on loopback,
    scraping ``target`` every second; returns its base URL."""
    procs: list[asyncio.subprocess.Process] = []
    log_path = tmp_path / "prometheus.log"

    async def start(target: str) -> str:
        flags = [f for f in compose()["services"]["prometheus"]["command"] if "feature" in f]
        config = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
        (job,) = config["scrape_configs"]
        job["static_configs"] = [{"targets": [target]}]
        local = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [job],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(local))
        port = free_port()
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = await asyncio.create_subprocess_exec(
                tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *flags,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                assert proc.returncode is None, log_path.read_text()
                try:
                    async with s.get(f"{base}/-/ready") as r:
                        if r.status == 200:
                            return base
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        pytest.fail("Prometheus did not become ready in 10 s")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def stored_exemplars(base: str, since: float) -> list[tuple[str, dict[str, Any]]]:
    """(the series' route, the exemplar) of every exemplar Prometheus holds."""
    params = {"query": HISTOGRAM, "start": str(since), "end": str(time.time() + 60)}
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{base}/api/v1/query_exemplars", params=params) as r,
    ):
        body = await r.json()
    assert body["status"] == "success", body
    return [(d["seriesLabels"]["route"], e) for d in body["data"] for e in d["exemplars"]]


async def test_prometheus_stores_the_gateways_trace_ids_under_grafanas_label(
    make_gateway: Any, span_exporter: InMemorySpanExporter, compose_prometheus: Start
):
    since = time.time() - 1
    h = await make_gateway(
        tracing=TracingSettings(enabled=True), app_over={"span_exporter": span_exporter}
    )
    base = await compose_prometheus(f"{h.client.host}:{h.client.port}")
    for _ in range(REQUESTS):
        assert (await h.client.get("/v1/models", headers=AUTH)).status == 200
    traces = {
        format_trace_id(s.context.trace_id)
        for s in span_exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.name == "GET /v1/models"
    }
    assert len(traces) == REQUESTS

    exemplars: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not any(route == "/v1/models" for route, _ in exemplars):
        assert time.monotonic() < deadline, f"no exemplar stored in {DEADLINE_SECONDS} s"
        await asyncio.sleep(0.5)
        exemplars = await stored_exemplars(base, since)

    (prometheus_source,) = [s for s in datasources().values() if s["type"] == "prometheus"]
    links = prometheus_source["jsonData"]["exemplarTraceIdDestinations"]
    for route, exemplar in exemplars:
        assert set(exemplar["labels"]) == {link["name"] for link in links}, exemplar
        if route == "/v1/models":  # (Prometheus's scrapes of /metrics are traced too)
            (label,) = exemplar["labels"]
            assert exemplar["labels"][label] in traces, exemplar
