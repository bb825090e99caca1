"""Every dashboard panel shows data from a real Prometheus after a demo traffic run.

A real Prometheus (Debian's binary, temp config and storage, loopback port, 1 s
scrapes) scrapes a real gateway on loopback while it serves demo traffic against
the provider simulators: successful jobs, a job with a failing item, 4xx answers,
a provider fault, a fallback alias passing a provider over, a provider 429 with
Retry-After, concurrent reads of one job; and a second replica with the job engine
on, whose jobs nobody reads, with webhooks to a receiver on loopback and event streams.
Then every query of every panel goes through Prometheus's HTTP API, with the
template variables at "All", and must return at least one finite value, and may
only select metrics the gateway exports.

A zero is not data for a counter-rate panel (a ``rate``/``increase`` of a ``*_total``
counter, or a ``changes``): each must show a value above zero, unless ``MAY_BE_FLAT``
names it with the reason it is legitimately flat in this run. The gateway keeps its
shared state in a real Redis here, and each round plants a fault in it (a result key of
the wrong type), so the cache-error and Redis-error series move too.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.modzy import EXAMPLES
from adapters.simulation import Fault
from gateway.auth.settings import UrlGuardSettings
from gateway.config.settings import ModelSettings
from gateway.jobs.settings import EngineSettings, ItemCacheSettings, WebhookSettings
from gateway.limits.settings import RateLimitSettings
from gateway.observability.settings import MetricsSettings
from gateway.state.keyspace import Keyspace
from gateway.state.settings import RedisSettings
from tests.conftest import AUTH, OTHER_AUTH, READ_AUTH, SIM_MODELS, Harness
from tests.observability.support import (
    PanelQuery,
    expand,
    exported_names,
    label_values_query,
    load_dashboard,
    metric_names,
    panel_queries,
    tool,
)

pytestmark = pytest.mark.timeout(90)

#: A signing secret for the engine replica's webhooks (published: the demo's own).
DEMO_SECRET = "whsec_ZGVtby13ZWJob29rLXNlY3JldC1wdWJsaXNoZWQtaW4tdGhlLVJFQURNRQ=="

SCRAPE_SECONDS = 1
RATE_INTERVAL = "30s"
#: A first round creates every series; later rounds make their rates non-zero.
MIN_ROUNDS = 2
DEADLINE_SECONDS = 35
#: Counter-rate panels that may legitimately show a flat zero after the demo traffic,
#: each with the reason. Every other counter-rate panel must show a rate above zero; a
#: new panel the demo rounds cannot move belongs here only with a reason as good.
MAY_BE_FLAT: dict[str, str] = {
    "Process restarts": "the gateway process never restarts during the test; any value "
    "above zero would mean it crashed",
    # The provider-protection panels count what only an outage or an overload sets off
    # (an open circuit, a wait longer than the caller's deadline, a spent retry budget,
    # Redis failing under the pacer). A healthy demo shows them at zero, which is the
    # point; the series exist from start-up (init_provider), so the panels show 0 and not
    # "no data", and the provider-protection tests (tests/api/test_provider_protection.py,
    # tests/unit/limits/test_pacing.py) drive them above 0.
    "Calls failed fast (never sent)": "only an open circuit or an overlong pacing wait "
    "sheds a call",
    "Retries refused, pacing fallbacks": "only a spent retry budget or a Redis failure "
    "under the pacer moves these",
    "Limit decisions without Redis": "only a Redis failure under the caller limits moves "
    "these (tests/api/test_ratelimit_failures.py drives them)",
    "Webhooks dead-lettered (1 h)": "only a receiver that fails for every attempt is "
    "dead-lettered (tests/api/test_webhooks.py drives it); here every webhook arrives",
}
_COUNTER_RATE = re.compile(
    r"\b(?:(?:rate|irate|increase)\(\s*[A-Za-z_:][A-Za-z0-9_:]*_total\b|changes\()"
)


def counter_rate(expr: str) -> bool:
    """Whether the query plots how fast a counter grows (or how often a value changed),
    rather than a gauge's level or a histogram's quantile."""
    return bool(_COUNTER_RATE.search(expr))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Any]:
    """Start Prometheus; the test then tells it what to scrape via ``start(target)``."""
    procs: list[asyncio.subprocess.Process] = []
    log_path = tmp_path / "prometheus.log"

    async def start(*targets: str) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_SECONDS}s\n"
            f"  scrape_timeout: {SCRAPE_SECONDS}s\n"
            "scrape_configs:\n"
            "  - job_name: gateway\n"
            f"    static_configs: [{{targets: {list(targets)}}}]\n"
        )
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = await asyncio.create_subprocess_exec(
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
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


@dataclass
class SharedState:
    """The Redis the gateway keeps its state in, to plant faults in."""

    client: aioredis.Redis
    keys: Keyspace


async def demo_round(h: Harness, shared: SharedState) -> None:
    """One round of demo traffic touching every panel's metrics."""
    c, sim = h.client, h.sim

    async def wait(job_id: str) -> dict[str, Any]:
        r = await c.get(f"/v1/jobs/{job_id}", headers={**AUTH, "Prefer": "wait=10"})
        body: dict[str, Any] = await r.json()
        assert body["done"], body
        return body

    good = [{"name": f"r{i}", "text": t} for i, t in enumerate(("Great", "Awful", "Fine"))]
    mixed = [{"name": i.name, "text": i.text} for i in EXAMPLES.partly_failing_inputs]
    jobs = []
    for inputs in (good, mixed):
        r = await c.post("/v1/jobs", json={"model": "sentiment", "inputs": inputs}, headers=AUTH)
        assert r.status == 202, await r.text()
        jobs.append((await r.json())["id"])
    # Concurrent reads of a running job share provider calls (coalescing).
    await asyncio.gather(*(c.get(f"/v1/jobs/{jobs[0]}", headers=AUTH) for _ in range(5)))
    finished = [await wait(j) for j in jobs]
    assert finished[1]["status"] == "partially_succeeded", finished[1]
    # A Redis fault the cache meets: the shared result key holds a hash, so reading it
    # fails (WRONGTYPE); the gateway counts the error and reads through to the provider.
    await shared.client.hset(shared.keys.results("acme", jobs[0]), "planted", "fault")
    for _ in range(2):  # a miss (after the cache error), then a hit
        r = await c.get(f"/v1/jobs/{jobs[0]}/results", headers=AUTH)
        assert r.status == 200
    # A caller over its limit: the read-only key may read once a minute.
    statuses = [(await c.get("/v1/models", headers=READ_AUTH)).status for _ in range(2)]
    assert 429 in statuses
    # Caller mistakes.
    assert (await c.get("/v1/jobs/job_nope", headers=AUTH)).status == 404
    assert (await c.get("/v1/jobs")).status == 401
    # A provider fault: the submit fails with a 5xx.
    sim.set_faults([Fault(kind="status", status=500, match="POST", times=1)])
    r = await c.post("/v1/jobs", json={"model": "sentiment", "inputs": good}, headers=AUTH)
    assert r.status == 502, await r.text()
    # The item cache (the image model has one here): the first image is sent and kept when
    # its job finishes, the same image again is answered from the cache.
    image = [{"name": "img", "data": "aW1hZ2UgYnl0ZXM=", "content_type": "image/png"}]
    for _ in range(2):
        r = await c.post(
            "/v1/jobs",
            json={"model": "modzy/c60c8dbd79@0.0.1", "inputs": image},
            headers={**AUTH, "Prefer": "wait=10"},
        )
        assert r.status in (200, 202), await r.text()
        assert (await r.json())["done"]
    # A fallback: the other tenant's daily jobs on modzy are spent (none allowed), so its
    # submits to the alias go to the second account on the same simulator.
    r = await c.post("/v1/jobs", json={"model": "sentiment-ha", "inputs": good}, headers=OTHER_AUTH)
    assert r.status == 202, await r.text()
    assert (await r.json())["provider"] == "modzy-backup"
    # A provider 429 with Retry-After on a status read: paused, retried, answered.
    r = await c.post("/v1/jobs", json={"model": "sentiment", "inputs": good}, headers=AUTH)
    throttled_job = (await r.json())["id"]
    sim.set_faults([Fault(kind="status", status=429, retry_after="1", match="GET", times=1)])
    r = await c.get(f"/v1/jobs/{throttled_job}", headers=AUTH)
    assert r.status == 200, await r.text()
    sim.clear_faults()
    await wait(throttled_job)


async def engine_round(e: Harness, receiver: str) -> None:
    """Traffic for the Engine row, on a gateway with the engine on: a job nobody reads,
    with a webhook, followed by an event stream to its end."""
    body = {
        "model": "sentiment",
        "inputs": [{"name": "a", "text": "Lovely"}, {"name": "b", "text": "Dull"}],
        "webhook_url": receiver,
    }
    r = await e.client.post("/v1/jobs", json=body, headers=AUTH)
    assert r.status == 202, await r.text()
    job_id = (await r.json())["id"]
    async with e.client.get(f"/v1/jobs/{job_id}/events", headers=AUTH) as stream:
        assert stream.status == 200
        text = await asyncio.wait_for(stream.text(), 15)
    assert '"done": true' in text
    for _ in range(100):
        r = await e.client.get(f"/v1/jobs/{job_id}", headers=AUTH)
        if (await r.json())["notification"]["status"] == "delivered":
            return
        await asyncio.sleep(0.05)
    pytest.fail("the webhook was not delivered")


async def query(s: aiohttp.ClientSession, base: str, promql: str) -> list[dict[str, Any]]:
    async with s.get(f"{base}/api/v1/query", params={"query": promql}) as r:
        body = await r.json()
    assert body["status"] == "success", (promql, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def has_value(result: list[dict[str, Any]], *, above_zero: bool = False) -> bool:
    values = [float(series["value"][1]) for series in result]
    return any(math.isfinite(v) and (v > 0 or not above_zero) for v in values)


async def empty_panels(
    s: aiohttp.ClientSession, base: str, queries: list[PanelQuery]
) -> list[PanelQuery]:
    """Queries with no data: no finite value, or a counter rate that is zero everywhere."""
    return [
        q
        for q in queries
        if not has_value(
            await query(s, base, expand(q.expr, rate_interval=RATE_INTERVAL)),
            above_zero=counter_rate(q.expr) and q.panel not in MAY_BE_FLAT,
        )
    ]


@pytest.fixture
async def shared_state(redis_url: str) -> AsyncIterator[SharedState]:
    """A key prefix of its own in the suite's Redis, cleaned up afterwards."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    client = aioredis.from_url(redis_url, socket_timeout=2)
    try:
        yield SharedState(client, Keyspace(prefix))
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[str]:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook"))
    await server.close()


async def test_every_dashboard_panel_has_data_in_a_real_prometheus(
    make_gateway, prometheus, redis_url, shared_state, webhook_receiver
):
    started = time.monotonic()
    dashboard = load_dashboard()
    queries = panel_queries(dashboard)
    cached_image = ModelSettings(
        id="c60c8dbd79",
        version="0.0.1",
        output_type="classification",
        cache=ItemCacheSettings(items=True, ttl_seconds=1),  # a hit, then a miss again
    )
    h = await make_gateway(
        ["modzy"],
        also={"modzy-backup": "modzy"},
        provider_over={"modzy": {"models": [SIM_MODELS["modzy"][0], cached_image]}},
        aliases={
            "sentiment": "modzy/ed542963de@1.0.1",
            "sentiment-ha": ["modzy/ed542963de@1.0.1", "modzy-backup/ed542963de@1.0.1"],
        },
        status_cache_seconds=0,
        redis=RedisSettings(url=redis_url, prefix=shared_state.keys.prefix),
        # The demo's tenant gets a label of its own, as an operator would list theirs.
        metrics=MetricsSettings(tenant_labels=("acme",)),
        ratelimit=RateLimitSettings.model_validate(
            {
                "per_key": {"read": {"requests": 1000, "burst": 1000}},
                "keys": {"acme-reader": {"read": {"requests": 1, "per_seconds": 60}}},
                "daily_jobs": {"tenants": {"other": {"modzy": 0}}},
            }
        ),
    )
    # A second replica on the same Redis with the job engine on (the first keeps it off,
    # so its reads still ask the provider, coalesce and meet its faults), for the Engine row.
    e = await make_gateway(
        ["modzy"],
        redis=RedisSettings(url=redis_url, prefix=shared_state.keys.prefix),
        engine=EngineSettings(),
        provider_over={"modzy": {"poll": {"initial_seconds": 0.1, "max_seconds": 0.4}}},
        webhooks=WebhookSettings.model_validate(
            {"secrets": [{"tenant": "acme", "value": DEMO_SECRET}]}
        ),
        url_guard=UrlGuardSettings(allow_http=True, allowed_networks=["127.0.0.0/8"]),
    )
    base = await prometheus(
        f"127.0.0.1:{h.client.server.port}", f"127.0.0.1:{e.client.server.port}"
    )

    exported = exported_names(await (await h.client.get("/metrics")).text())
    exported |= exported_names(await (await e.client.get("/metrics")).text())
    rounds = 0
    async with aiohttp.ClientSession() as s:
        while True:
            await demo_round(h, shared_state)
            await engine_round(e, webhook_receiver)
            rounds += 1
            for replica in (h, e):
                exported |= exported_names(await (await replica.client.get("/metrics")).text())
            await asyncio.sleep(SCRAPE_SECONDS * 1.5)  # let Prometheus scrape the round
            if rounds < MIN_ROUNDS:
                continue
            missing = await empty_panels(s, base, queries)
            if not missing or time.monotonic() - started > DEADLINE_SECONDS:
                break

        assert not missing, (
            f"panels without data (or a counter rate of zero) after {rounds} rounds: "
            f"{[str(q) for q in missing]}"
        )
        unknown = set(MAY_BE_FLAT) - {q.panel for q in queries}
        assert not unknown, f"MAY_BE_FLAT names panels the dashboard lacks: {unknown}"
        # Panels select only what the gateway exports (no typo, no metric of a feature
        # that does not exist yet, no kube-state-metrics series).
        for q in queries:
            unknown = metric_names(q.expr) - exported
            assert not unknown, f"{q} selects metrics the gateway does not export: {unknown}"
        # The provider and route variables offer the values the traffic produced.
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for name, expected in (("provider", "modzy"), ("route", "/v1/jobs/{job_id}")):
            metric, label = label_values_query(variables[name]["definition"])
            assert metric in exported
            async with s.get(
                f"{base}/api/v1/label/{label}/values", params={"match[]": metric}
            ) as r:
                values = (await r.json())["data"]
            assert expected in values, f"variable {name} offers {values}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(rate(gateway_cache_errors_total[5m]))", True),
        ('sum by (code) (increase(gateway_http_requests_total{code=~"4.."}[1h]))', True),
        ("sum by (pod) (changes(process_start_time_seconds[1h]))", True),
        ("sum by (pod) (gateway_http_requests_in_flight)", False),
        (
            "histogram_quantile(0.5, sum by (le) (rate(gateway_job_duration_seconds_bucket[5m])))",
            False,
        ),
        ("sum by (le) (rate(gateway_http_request_duration_seconds_bucket[5m]))", False),
    ],
    ids=["rate", "increase", "changes", "gauge", "quantile", "heatmap"],
)
def test_counter_rate_panels_are_told_apart(expr, expected):
    assert counter_rate(expr) is expected


def test_every_flat_panel_has_a_reason():
    assert all(len(reason) > 20 for reason in MAY_BE_FLAT.values())
