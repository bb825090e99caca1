"""Live events (``GET /v1/jobs/{id}/events``, Server-Sent Events) over real HTTP.

One event per change of status or counts, then the terminal one and the end of the
stream; ``Last-Event-ID`` resumes; a change one replica sees reaches a stream held by
another (through Redis); another tenant gets the same 404 as an unknown job; a
credential's open streams are capped across replicas.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.registry import provider_type
from adapters.simulation import SIM_CONTROL
from gateway.http.app import create_app
from gateway.jobs.settings import EngineSettings, EventStreamSettings
from gateway.state.settings import RedisSettings
from tests.conftest import (
    AUTH,
    OTHER_AUTH,
    Harness,
    fresh_redis,
    make_settings,
    provider_settings,
)

FAST_POLL: dict[str, Any] = {"poll": {"initial_seconds": 0.05, "max_seconds": 0.2, "factor": 2}}
BODY = {
    "model": "sentiment",
    "inputs": [{"name": f"r{i}", "text": "good"} for i in range(3)],
}
#: Heartbeats and re-reads far apart: a stream that moves within a test's time was
#: woken by the job's change events, not by its own timer.
QUIET = EventStreamSettings(heartbeat_seconds=60)


@dataclass
class Event:
    id: str | None
    event: str | None
    data: str
    retry: int | None = None

    @property
    def job(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.data)
        return loaded


async def read_events(resp: aiohttp.ClientResponse) -> AsyncIterator[Event | str]:
    """The stream as it comes: each event, and each comment line (as a string)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data or fields:
                retry = fields.get("retry")
                yield Event(
                    fields.get("id"),
                    fields.get("event"),
                    "\n".join(data),
                    int(retry) if retry else None,
                )
            fields, data = {}, []
        elif line.startswith(":"):
            yield line
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def all_events(resp: aiohttp.ClientResponse, seconds: float = 10) -> list[Event]:
    """Every event until the server ends the stream (which must happen within ``seconds``)."""

    async def collect() -> list[Event]:
        return [e async for e in read_events(resp) if isinstance(e, Event)]

    return await asyncio.wait_for(collect(), seconds)


async def engine_gateway(make_gateway, **over: Any) -> Harness:
    over.setdefault("engine", EngineSettings(max_staleness_seconds=30, sweep_seconds=1))
    over.setdefault("provider_over", {"modzy": FAST_POLL})
    over.setdefault("events", QUIET)
    h: Harness = await make_gateway(["modzy"], **over)
    return h


def slow_sim() -> Any:
    """A Modzy simulator whose items take a while, so a job is seen moving."""
    return create_simulator(None, SimSettings(queue_seconds=0.2, item_seconds=0.3))


def stuck_sim() -> Any:
    """A Modzy simulator whose jobs stay queued for an hour."""
    return create_simulator(None, SimSettings(queue_seconds=3600))


async def test_a_stream_sends_each_change_then_the_terminal_event_and_ends(make_gateway):
    h = await engine_gateway(make_gateway, sim_apps={"modzy": slow_sim()})
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    started = time.monotonic()
    resp = await h.client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["X-Accel-Buffering"] == "no"
    events = await all_events(resp)
    # The stream ended by itself after the terminal state, long before any heartbeat.
    assert time.monotonic() - started < 10
    assert all(e.event == "job" for e in events)
    jobs = [e.job for e in events]
    assert jobs[0]["id"] == job["id"]
    assert jobs[-1]["done"] is True and jobs[-1]["status"] == "succeeded"
    assert [j["done"] for j in jobs[:-1]] == [False] * (len(jobs) - 1)
    # Every event is a change: the ids grow, and no two events show the same progress.
    ids = [int(e.id or "") for e in events]
    assert ids == sorted(set(ids))
    progress = [(j["status"], j["counts"]["succeeded"], j["counts"]["pending"]) for j in jobs]
    assert len(set(progress)) == len(progress)
    # The job was seen moving, not only at its start and end.
    assert len(events) >= 3, progress
    # The first event tells a browser how long to wait before it reconnects.
    assert events[0].retry == 2000 and all(e.retry is None for e in events[1:])


async def test_last_event_id_resumes_where_the_client_left_off(make_gateway):
    h = await engine_gateway(make_gateway, sim_apps={"modzy": slow_sim()})
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    url = f"/v1/jobs/{job['id']}/events"
    first = await all_events(await h.client.get(url, headers=AUTH))
    assert len(first) >= 3
    # Resumed after the first event: everything after it, nothing before.
    resumed = await all_events(
        await h.client.get(url, headers={**AUTH, "Last-Event-ID": first[0].id or ""})
    )
    assert resumed and int(resumed[0].id or "") > int(first[0].id or "")
    assert resumed[-1].job["done"] is True
    # Resumed after the terminal event: nothing more to say; the stream ends at once.
    resp = await h.client.get(url, headers={**AUTH, "Last-Event-ID": first[-1].id or ""})
    assert resp.status == 200
    assert await all_events(resp, seconds=2) == []


async def test_a_stream_of_a_finished_job_sends_it_once_and_ends(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    await h.client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"})
    events = await all_events(await h.client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH))
    assert len(events) == 1 and events[0].job["status"] == "succeeded"


async def test_an_idle_stream_carries_heartbeats(make_gateway):
    h = await engine_gateway(
        make_gateway,
        sim_apps={"modzy": stuck_sim()},
        events=EventStreamSettings(heartbeat_seconds=1),
    )
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    resp = await h.client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH)
    seen: list[Event | str] = []

    async def until_two_pings() -> None:
        async for item in read_events(resp):
            seen.append(item)
            if sum(1 for s in seen if isinstance(s, str)) == 2:
                return

    await asyncio.wait_for(until_two_pings(), 5)
    assert isinstance(seen[0], Event) and seen[0].job["status"] == "queued"
    assert [s for s in seen if isinstance(s, str)] == [": ping", ": ping"]
    resp.close()


async def test_another_tenants_job_is_the_same_404_as_an_unknown_one(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    theirs = await h.client.get(f"/v1/jobs/{job['id']}/events", headers=OTHER_AUTH)
    unknown = await h.client.get("/v1/jobs/job_unknown/events", headers=OTHER_AUTH)
    assert theirs.status == unknown.status == 404
    assert theirs.content_type == "application/problem+json"
    body = await theirs.json()
    assert body["code"] == "not_found" and job["id"] in body["detail"]


async def test_a_malformed_last_event_id_is_a_422(make_gateway):
    h = await engine_gateway(make_gateway)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    resp = await h.client.get(
        f"/v1/jobs/{job['id']}/events", headers={**AUTH, "Last-Event-ID": "12; drop"}
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["errors"][0]["pointer"] == "/headers/Last-Event-ID"


async def test_with_the_engine_off_a_stream_moves_the_job_itself(make_gateway):
    h = await make_gateway(["modzy"], sim_apps={"modzy": slow_sim()}, events=QUIET)
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    events = await all_events(await h.client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH))
    assert events[-1].job["status"] == "succeeded" and len(events) >= 2


def open_streams(h: Harness) -> float:
    value = h.registry.get_sample_value("gateway_event_streams_open")
    assert value is not None
    return value


async def test_open_streams_are_capped_per_credential_and_counted(make_gateway):
    h = await engine_gateway(
        make_gateway,
        sim_apps={"modzy": stuck_sim()},
        events=EventStreamSettings(heartbeat_seconds=60, max_per_credential=2),
    )
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    url = f"/v1/jobs/{job['id']}/events"
    held = [await h.client.get(url, headers=AUTH) for _ in range(2)]
    assert [r.status for r in held] == [200, 200]
    assert open_streams(h) == 2
    refused = await h.client.get(url, headers=AUTH)
    assert refused.status == 429 and refused.headers["Retry-After"]
    assert (await refused.json())["code"] == "concurrency_limited"
    # Another credential has places of its own.
    theirs = await h.client.post("/v1/jobs", json=BODY, headers=OTHER_AUTH)
    other = await h.client.get(f"/v1/jobs/{(await theirs.json())['id']}/events", headers=OTHER_AUTH)
    assert other.status == 200
    other.close()
    # A client that goes away gives its place back (seen at the stream's next write).
    held[0].close()
    for _ in range(100):
        if open_streams(h) == 1:
            break
        await asyncio.sleep(0.05)
    again = await h.client.get(url, headers=AUTH)
    assert again.status == 200
    again.close()
    held[1].close()


@asynccontextmanager
async def two_replicas(redis_url: str, **over: Any) -> AsyncIterator[tuple[Any, ...]]:
    """Replica A (engine off, its provider unreachable: it can move no job itself) and
    replica B (the engine), on one Redis; and the simulator only B can reach."""
    sim_app = over.get("sim") or slow_sim()
    sim = TestServer(sim_app, host="127.0.0.1")
    await sim.start_server()
    base = str(sim.make_url(provider_type("modzy").base_path)).rstrip("/")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    redis = RedisSettings(url=redis_url, prefix=prefix, socket_timeout=3.0)
    a_settings = make_settings(
        [provider_settings("modzy", "modzy", "http://127.0.0.1:9/api")],
        redis=redis,
        events=over.get("events", QUIET),
        wait_poll_interval=10,
    )
    b_settings = make_settings(
        [provider_settings("modzy", "modzy", base, **FAST_POLL)],
        redis=redis,
        engine=EngineSettings(max_staleness_seconds=30, sweep_seconds=1),
        events=over.get("events", QUIET),
    )
    clients = []
    try:
        for settings in (a_settings, b_settings):
            client = TestClient(TestServer(create_app(settings, registry=CollectorRegistry())))
            await client.start_server()
            clients.append(client)
        yield clients[0], clients[1], sim_app[SIM_CONTROL]
    finally:
        for client in clients:
            await client.close()
        await sim.close()
        async with fresh_redis(redis_url) as r:
            keys = [k async for k in r.scan_iter(match=f"*{prefix}*", count=1000)]
            if keys:
                await r.delete(*keys)


async def test_a_stream_on_one_replica_sees_what_another_replica_polled(redis_url):
    async with two_replicas(redis_url) as (a, b, _):
        job = await (await b.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        started = time.monotonic()
        events = await all_events(await a.get(f"/v1/jobs/{job['id']}/events", headers=AUTH))
        # A re-reads only every 10 s and cannot reach the provider: every change it sent
        # came from B's engine, through Redis, within a few seconds.
        assert time.monotonic() - started < 8
        assert events[-1].job["status"] == "succeeded" and len(events) >= 3
        ids = [int(e.id or "") for e in events]
        assert ids == sorted(set(ids))
        # The same job resumed on B from A's first event id: B continues A's numbering.
        resumed = await all_events(
            await b.get(
                f"/v1/jobs/{job['id']}/events", headers={**AUTH, "Last-Event-ID": events[0].id}
            )
        )
        assert [e.id for e in resumed] == [e.id for e in events[1:]][-len(resumed) :]
        assert resumed[-1].job["done"] is True


async def test_prefer_wait_on_one_replica_wakes_on_another_replicas_change(redis_url):
    async with two_replicas(redis_url) as (a, b, _):
        job = await (await b.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        started = time.monotonic()
        resp = await a.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=9"})
        # A re-reads only every 10 s: it answered when B's change reached it.
        assert resp.status == 200 and (await resp.json())["done"] is True
        assert time.monotonic() - started < 8


async def test_the_cap_on_open_streams_holds_across_replicas(redis_url):
    capped = EventStreamSettings(heartbeat_seconds=60, max_per_credential=2)
    async with two_replicas(redis_url, events=capped, sim=stuck_sim()) as (a, b, _):
        job = await (await b.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        url = f"/v1/jobs/{job['id']}/events"
        one = await a.get(url, headers=AUTH)
        two = await b.get(url, headers=AUTH)
        assert (one.status, two.status) == (200, 200)
        for replica in (a, b):
            refused = await replica.get(url, headers=AUTH)
            assert refused.status == 429
        one.close()
        two.close()


@pytest.mark.parametrize("engine", [True, False])
async def test_shutdown_ends_open_streams(make_gateway, engine):
    over: dict[str, Any] = {"sim_apps": {"modzy": stuck_sim()}, "events": QUIET}
    h = await (engine_gateway(make_gateway, **over) if engine else make_gateway(["modzy"], **over))
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    resp = await h.client.get(f"/v1/jobs/{job['id']}/events", headers=AUTH)
    assert resp.status == 200
    reading = asyncio.ensure_future(all_events(resp, seconds=10))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await h.app.shutdown()
    events = await reading
    # The stream ended with the shutdown (its client would resume on another replica).
    assert time.monotonic() - started < 5
    assert [e.job["status"] for e in events] == ["queued"]
