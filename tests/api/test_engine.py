"""The job engine over HTTP: jobs finish, cache their results and free their slots with no
client reading them; reads answer from state; ``Prefer: wait`` wakes on the change.

In one process (the engine in memory) and on a real Redis (two apps sharing it, as two
replicas would).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.base import JobStatus
from adapters.modzy.simulator import fast_simulator
from adapters.registry import provider_type
from adapters.simulation import SIM_CONTROL
from gateway.http.app import create_app
from gateway.http.keys import STORE
from gateway.jobs.settings import EngineSettings
from gateway.limits.settings import RateLimitSettings
from gateway.state.settings import RedisSettings
from tests.conftest import (
    AUTH,
    OTHER_AUTH,
    Harness,
    fresh_redis,
    make_settings,
    provider_settings,
)

#: Checks every 0.1 s at first, never more than 0.4 s apart: a fast simulator's job
#: (about 0.2 s) is seen finished within a few checks.
FAST_POLL: dict[str, Any] = {"poll": {"initial_seconds": 0.1, "max_seconds": 0.4, "factor": 2}}
BODY = {
    "model": "sentiment",
    "inputs": [{"name": "a", "text": "good"}, {"name": "b", "text": "bad"}],
}


async def engine_gateway(make_gateway, **over: Any) -> Harness:
    over.setdefault("engine", EngineSettings(max_staleness_seconds=5, sweep_seconds=1))
    over.setdefault("provider_over", {"modzy": FAST_POLL})
    h: Harness = await make_gateway(["modzy"], **over)
    return h


async def stored(h: Harness, tenant: str, job_id: str) -> Any:
    return await h.app[STORE].get(tenant, job_id)


async def until_done(h: Harness, job_id: str, tenant: str = "acme", seconds: float = 10) -> Any:
    """The stored record once the engine finished it: read from the store, never over HTTP."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record = await stored(h, tenant, job_id)
        if record is not None and record.done:
            return record
        await asyncio.sleep(0.02)
    pytest.fail(f"job {job_id} did not finish on its own within {seconds} s")


def status_reads(h: Harness) -> int:
    return h.sim.count("GET", "/api/jobs/")


def result_reads(h: Harness) -> int:
    return h.sim.count("GET", "/api/results/")


async def test_a_job_nobody_reads_finishes_and_its_results_are_cached(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    record = await until_done(h, job["id"])
    assert record.status == "succeeded" and record.counts.succeeded == 2
    # The engine fetched the results once as the job finished ...
    for _ in range(50):
        if result_reads(h) == 1:
            break
        await asyncio.sleep(0.02)
    calls = (status_reads(h), result_reads(h))
    assert calls[1] == 1
    # ... so reads answer from what the gateway holds: no provider call at all.
    got = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
    results = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
    assert (await got.json())["status"] == "succeeded"
    assert [i["status"] for i in (await results.json())["items"]] == ["succeeded"] * 2
    assert results.headers["Cache-Status"].endswith("hit")
    assert (status_reads(h), result_reads(h)) == calls


async def test_the_engine_gives_the_slot_back_without_a_read(make_gateway):
    limits = RateLimitSettings.model_validate({"per_key": {"concurrent_jobs": 1}})
    h = await engine_gateway(make_gateway, ratelimit=limits)
    first = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    assert (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).status == 429
    await until_done(h, first["id"])
    assert (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).status == 202


async def test_prefer_wait_answers_as_soon_as_the_engine_sees_the_job_finish(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    resp = await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"})
    answered = time.time()
    body = await resp.json()
    assert resp.status == 200 and body["done"]
    finished = datetime.fromisoformat(body["finished_at"].replace("Z", "+00:00")).timestamp()
    assert answered - finished < 0.1
    # The wait itself asked the provider nothing: it read state, woken by the change.
    assert resp.headers["Cache-Status"].endswith("hit")


async def test_a_read_asks_the_provider_only_when_the_engine_fell_behind(make_gateway):
    # The engine's first check is a minute away; reads may trust state for 0.3 s only.
    slow = {"modzy": {"poll": {"initial_seconds": 60, "max_seconds": 60}}}
    h = await engine_gateway(
        make_gateway, engine=EngineSettings(max_staleness_seconds=0.3), provider_over=slow
    )
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    before = status_reads(h)
    await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
    assert status_reads(h) == before  # fresh: answered from state
    await asyncio.sleep(0.5)
    resp = await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)
    assert resp.status == 200
    assert status_reads(h) == before + 1  # stale: the read asked, once


async def test_another_tenants_job_stays_a_404_with_the_engine_on(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    await until_done(h, job["id"])
    resp = await h.client.get(f"/v1/jobs/{job['id']}", headers={**OTHER_AUTH, "Prefer": "wait=1"})
    assert resp.status == 404


async def test_two_replicas_on_one_redis_share_the_engine(redis_url):
    """Jobs submitted on A finish with no read; B answers them from state, no provider call;
    each job's checks are spread over both replicas, never two for one check."""
    sim_app = fast_simulator(None)
    sim = TestServer(sim_app, host="127.0.0.1")
    await sim.start_server()
    control = sim_app[SIM_CONTROL]
    base = str(sim.make_url(provider_type("modzy").base_path)).rstrip("/")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        [provider_settings("modzy", "modzy", base, **FAST_POLL)],
        redis=RedisSettings(url=redis_url, prefix=prefix, socket_timeout=3.0),
        engine=EngineSettings(max_staleness_seconds=5, sweep_seconds=1),
    )
    clients = []
    try:
        for _ in range(2):
            client = TestClient(TestServer(create_app(settings, registry=CollectorRegistry())))
            await client.start_server()
            clients.append(client)
        a, b = clients
        ids = []
        for _ in range(10):
            resp = await a.post("/v1/jobs", json=BODY, headers=AUTH)
            ids.append((await resp.json())["id"])
        store = b.app[STORE]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            records = [await store.get("acme", job_id) for job_id in ids]
            if all(r is not None and r.done for r in records):
                break
            await asyncio.sleep(0.05)
        assert all(r is not None and r.status == "succeeded" for r in records)
        await asyncio.sleep(0.3)
        calls = control.count()
        for job_id in ids:
            got = await b.get(f"/v1/jobs/{job_id}/results", headers=AUTH)
            assert got.status == 200
            assert [i["status"] for i in (await got.json())["items"]] == ["succeeded"] * 2
        assert control.count() == calls
        # One results fetch per job, made by the engine as the job finished.
        assert control.count("GET", "/api/results/") == len(ids)
    finally:
        for client in clients:
            await client.close()
        await sim.close()
        async with fresh_redis(redis_url) as r:
            keys = [k async for k in r.scan_iter(match=f"*{prefix}*", count=1000)]
            if keys:
                await r.delete(*keys)


async def test_a_finish_stored_by_a_replica_that_died_still_gives_the_slot_back(make_gateway):
    """The replica that saw the finish stored it and died before giving the slot back:
    the check that runs again elsewhere finds the job done and gives it back."""
    limits = RateLimitSettings.model_validate({"per_key": {"concurrent_jobs": 1}})
    slow = {"modzy": {"poll": {"initial_seconds": 0.3, "max_seconds": 0.3}}}
    h = await engine_gateway(make_gateway, ratelimit=limits, provider_over=slow)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    record = await stored(h, "acme", job["id"])
    # What the dead replica left: the record finished, the slot still taken.
    await h.app[STORE].update(
        record.evolve(status=JobStatus.SUCCEEDED, finished_at=record.created_at)
    )
    assert (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).status == 429
    for _ in range(100):
        resp = await h.client.post("/v1/jobs", json=BODY, headers=AUTH)
        if resp.status == 202:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 202
