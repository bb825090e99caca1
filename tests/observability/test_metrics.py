"""T-O1: metric names follow Prometheus practice; each metric counts what it says."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families

from adapters.modzy import EXAMPLES
from adapters.simulation import Fault
from gateway.observability.loop_lag import measure_lag
from gateway.observability.metrics import KNOWN_METHODS
from gateway.tasks import spawn
from tests.conftest import AUTH, Harness

#: Labels that would make a series per caller, job or URL.
FORBIDDEN_LABELS = {"key", "key_id", "api_key", "tenant", "job", "job_id", "id", "path", "url"}
#: The one metric allowed a tenant label, behind the metrics.tenant_labels allow-list
#: (tests/observability/test_cardinality.py); with nothing listed, every tenant is "other".
TENANT_LABELLED = {"gateway_tenant_requests_total"}
#: Standard collectors keep their conventional names.
STANDARD_PREFIXES = ("process_", "python_")
UNIT_SUFFIXES = ("_seconds", "_bytes")


async def traffic(h: Harness) -> str:
    """A little of everything, then the /metrics text."""
    good = [{"name": "a", "text": "Great"}, {"name": "b", "text": "Awful"}]
    r = await h.client.post("/v1/jobs", json={"model": "sentiment", "inputs": good}, headers=AUTH)
    job = (await r.json())["id"]
    await h.client.get(f"/v1/jobs/{job}", headers={**AUTH, "Prefer": "wait=5"})
    await h.client.get(f"/v1/jobs/{job}/results", headers=AUTH)
    await h.client.get("/v1/jobs/job_missing", headers=AUTH)
    await h.client.get("/nowhere")
    return await (await h.client.get("/metrics")).text()


class TestNaming:
    async def test_every_exported_metric_follows_the_naming_rules(self, make_gateway):
        """Prefix, unit suffixes, _total on counters, help text, bounded labels (T-O1)."""
        h = await make_gateway(["modzy"])
        text = await traffic(h)
        families = list(text_string_to_metric_families(text))
        names = {f.name for f in families}
        assert {"gateway_http_requests", "gateway_http_request_duration_seconds"} <= names

        for fam in families:
            assert fam.name.startswith(("gateway_", *STANDARD_PREFIXES)), fam.name
            assert fam.documentation.strip(), f"{fam.name} has no help text"
            assert re.fullmatch(r"[a-z][a-z0-9_]*", fam.name), fam.name
            assert not re.search(r"_(ms|milliseconds|second|byte|microseconds)(_|$)", fam.name)
            if fam.type == "counter":
                assert all(s.name.endswith("_total") for s in fam.samples), fam.name
            elif fam.name.endswith("_total"):
                pytest.fail(f"{fam.name} is a {fam.type} named like a counter")
            if fam.type == "histogram":
                assert fam.name.endswith(UNIT_SUFFIXES), f"histogram {fam.name} has no unit"
            if re.search(r"duration|latency|lag|wait|time", fam.name):
                assert re.search(r"_seconds(_total)?$", fam.name), f"{fam.name}: not seconds"
            for sample in fam.samples:
                forbidden = FORBIDDEN_LABELS - (
                    {"tenant"} if sample.name in TENANT_LABELLED else set()
                )
                assert not (set(sample.labels) & forbidden), (sample.name, sample.labels)
                assert sample.labels.get("tenant", "other") == "other", sample
                assert not any(v.startswith("job_") for v in sample.labels.values()), sample

    async def test_routes_are_templates_and_methods_are_bounded(self, make_gateway):
        h = await make_gateway(["modzy"])
        await traffic(h)
        await h.client.request("PROPFIND", "/healthz")  # llhttp knows it; we count it as other
        templates = {r.resource.canonical for r in h.app.router.routes() if r.resource}
        samples = [
            s
            for fam in h.registry.collect()
            if fam.name == "gateway_http_requests"
            for s in fam.samples
        ]
        assert {s.labels["route"] for s in samples} <= templates | {"unmatched"}
        assert "unmatched" in {s.labels["route"] for s in samples}
        assert {s.labels["method"] for s in samples} <= KNOWN_METHODS | {"other"}
        other = h.registry.get_sample_value(
            "gateway_http_requests_total", {"route": "unmatched", "method": "other", "code": "405"}
        )
        assert other == 1

    async def test_process_and_runtime_metrics_are_on_the_apps_registry(self, make_gateway):
        h = await make_gateway(["modzy"])
        text = await (await h.client.get("/metrics")).text()
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"):
            assert re.search(rf"^{name}\b", text, re.M), name
        assert "_created" not in text


class TestRequestMetrics:
    async def test_overhead_leaves_out_requests_that_asked_to_wait(self, make_gateway):
        h = await make_gateway(["modzy"])
        await h.client.get("/v1/jobs", headers=AUTH)
        await h.client.get("/v1/jobs", headers={**AUTH, "Prefer": "wait=1"})
        labels = {"route": "/v1/jobs", "method": "GET"}
        count = "gateway_http_request_overhead_seconds_count"
        assert h.registry.get_sample_value(count, labels) == 1
        assert (
            h.registry.get_sample_value("gateway_http_request_duration_seconds_count", labels) == 2
        )

    async def test_cache_hits_and_misses_are_counted_once_per_request(self, make_gateway):
        h = await make_gateway(["modzy"])
        r = await h.client.post(
            "/v1/jobs",
            json={"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]},
            headers={**AUTH, "Prefer": "wait=5"},
        )
        job = (await r.json())["id"]
        await h.client.get(f"/v1/jobs/{job}/results", headers=AUTH)  # results: a miss
        await h.client.get(f"/v1/jobs/{job}/results", headers=AUTH)  # then a hit
        await h.client.get(f"/v1/jobs/{job}", headers=AUTH)  # finished record: a hit
        value = h.registry.get_sample_value
        assert value("gateway_cache_requests_total", {"result": "hit"}) == 2
        assert value("gateway_cache_requests_total", {"result": "miss"}) >= 2


class TestProviderMetrics:
    async def test_a_429_with_retry_after_is_counted_paused_and_retried(self, make_gateway):
        h = await make_gateway(["modzy"], status_cache_seconds=0)
        r = await h.client.post(
            "/v1/jobs",
            json={"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]},
            headers=AUTH,
        )
        job = (await r.json())["id"]
        h.sim.set_faults([Fault(kind="status", status=429, retry_after="1", match="GET", times=1)])
        r = await h.client.get(f"/v1/jobs/{job}", headers=AUTH)
        assert r.status == 200
        value = h.registry.get_sample_value
        assert value("gateway_upstream_throttled_total", {"provider": "modzy"}) == 1
        assert value("gateway_upstream_retries_total", {"provider": "modzy", "reason": "429"}) == 1
        paused = value("gateway_upstream_retry_after_wait_seconds_total", {"provider": "modzy"})
        assert paused is not None and 0.9 <= paused <= 2.5


class TestJobMetrics:
    async def test_unfinished_first_result_and_items_by_status(self, make_gateway):
        h = await make_gateway(["modzy"])
        inputs = [{"name": i.name, "text": i.text} for i in EXAMPLES.partly_failing_inputs]
        r = await h.client.post(
            "/v1/jobs", json={"model": "sentiment", "inputs": inputs}, headers=AUTH
        )
        job = (await r.json())["id"]
        value = h.registry.get_sample_value
        assert value("gateway_jobs_unfinished", {"provider": "modzy"}) == 1
        r = await h.client.get(f"/v1/jobs/{job}", headers={**AUTH, "Prefer": "wait=5"})
        assert (await r.json())["status"] == "partially_succeeded"
        assert value("gateway_jobs_unfinished", {"provider": "modzy"}) == 0
        assert value("gateway_job_first_result_seconds_count", {"provider": "modzy"}) == 1
        items = {"provider": "modzy", "status": "succeeded"}
        assert value("gateway_job_items_total", items) == 2
        assert value("gateway_job_items_total", {**items, "status": "failed"}) == 1
        finished = {"provider": "modzy", "status": "partially_succeeded"}
        assert value("gateway_jobs_finished_total", finished) == 1


class TestEventLoopLag:
    async def test_a_blocked_loop_shows_as_lag(self):
        registry = CollectorRegistry()
        gauge = Gauge("lag_seconds", "test", registry=registry)
        task = spawn(measure_lag(gauge, interval=0.01), name="test-lag")
        try:
            await asyncio.sleep(0.03)
            before = registry.get_sample_value("lag_seconds")
            assert before is not None and before < 0.05
            # Hold the loop on purpose, as a blocking call in a handler would.
            time.sleep(0.1)  # noqa: ASYNC251
            for _ in range(10):  # let the overdue probe run
                await asyncio.sleep(0)
            after = registry.get_sample_value("lag_seconds")
            assert after is not None and after >= 0.05
        finally:
            task.cancel()

    async def test_the_app_runs_the_probe_for_its_lifetime(self, make_gateway):
        h = await make_gateway(["modzy"])
        tasks = {t.get_name(): t for t in asyncio.all_tasks()}
        assert "event-loop-lag" in tasks
        assert h.registry.get_sample_value("gateway_event_loop_lag_seconds") is not None
        await h.client.close()
        await asyncio.sleep(0)
        assert tasks["event-loop-lag"].done()
