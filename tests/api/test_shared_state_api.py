"""Idempotency keys, status reuse, coalescing and the Redis store, over real HTTP.

Two gateway apps sharing one real Redis stand in for two replicas here; the e2e
suite repeats the important cases with separate gateway processes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy import PROVIDER_TYPE as MODZY
from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from gateway.http.app import create_app
from gateway.state.settings import RedisSettings
from tests.api.test_jobs_api import problem, submit, text_inputs
from tests.conftest import AUTH, OTHER_AUTH, make_settings, provider_settings

BODY = {"model": "sentiment", "inputs": text_inputs()}


class TestIdempotencyKeys:
    async def test_replay_returns_the_same_job_with_200(self, make_gateway):
        h = await make_gateway(["modzy"])
        first = await submit(h, BODY, extra={"Idempotency-Key": "order-42"})
        assert first.status == 202
        again = await submit(h, BODY, extra={"Idempotency-Key": "order-42"})
        assert again.status == 200
        assert (await again.json())["id"] == (await first.json())["id"]
        assert h.sim.count("POST") == 1

    async def test_a_replay_answers_the_job_as_it_is_now(self, make_gateway):
        """A job that finished since the first request is replayed finished, not queued."""
        from tests.support import FakeClock

        clock = FakeClock()
        sim = create_simulator(
            SimulatorControl(clock=clock), SimSettings(queue_seconds=1, item_seconds=1)
        )
        h = await make_gateway(["modzy"], sim_apps={"modzy": sim})
        first = await (await submit(h, BODY, extra={"Idempotency-Key": "order-7"})).json()
        assert first["done"] is False
        clock.advance(60)  # the provider finishes; nobody has read the job since
        again = await submit(h, BODY, extra={"Idempotency-Key": "order-7"})
        body = await again.json()
        assert again.status == 200
        assert body["id"] == first["id"]
        assert (body["status"], body["done"]) == ("succeeded", True), body
        assert body["counts"]["succeeded"] == 3
        assert h.sim.count("POST") == 1

    async def test_a_different_body_is_refused(self, make_gateway):
        h = await make_gateway(["modzy"])
        await submit(h, BODY, extra={"Idempotency-Key": "order-42"})
        other = {"model": "sentiment", "inputs": text_inputs({"x": "something else"})}
        resp = await submit(h, other, extra={"Idempotency-Key": "order-42"})
        await problem(resp, 422, "idempotency_key_reused")

    async def test_a_replay_while_the_first_is_in_flight_is_a_conflict(self, make_gateway):
        h = await make_gateway(["modzy"])
        h.sim.set_faults([Fault(kind="latency", seconds=0.5, match="POST")])
        first = asyncio.ensure_future(submit(h, BODY, extra={"Idempotency-Key": "k"}))
        await asyncio.sleep(0.1)
        resp = await submit(h, BODY, extra={"Idempotency-Key": "k"})
        await problem(resp, 409, "conflict")
        assert (await first).status == 202

    async def test_a_failed_submit_frees_the_key(self, make_gateway):
        h = await make_gateway(["modzy"])
        h.sim.set_faults([Fault(kind="status", status=500, times=1)])
        await problem(await submit(h, BODY, extra={"Idempotency-Key": "k"}), 502, "provider_error")
        assert (await submit(h, BODY, extra={"Idempotency-Key": "k"})).status == 202

    async def test_keys_belong_to_a_tenant(self, make_gateway):
        h = await make_gateway(["modzy"])
        a = await (await submit(h, BODY, extra={"Idempotency-Key": "k"})).json()
        resp = await submit(h, BODY, headers=OTHER_AUTH, extra={"Idempotency-Key": "k"})
        assert resp.status == 202
        assert (await resp.json())["id"] != a["id"]

    async def test_a_malformed_key_is_refused(self, make_gateway):
        h = await make_gateway(["modzy"])
        resp = await submit(h, BODY, extra={"Idempotency-Key": "x" * 256})
        await problem(resp, 422, "validation_failed")


@dataclass
class Replicas:
    clients: list[TestClient[Any, Any]]
    sim: SimulatorControl
    registries: list[CollectorRegistry]

    def status_calls(self) -> int:
        return sum(
            1
            for r in self.sim.requests
            if r.method == "GET" and "/api/jobs/" in r.path and "history" not in r.path
        )


@pytest.fixture
async def replicas(redis_url) -> AsyncIterator[Any]:
    started: list[Any] = []

    async def make(
        n: int = 2, *, slow: bool = False, status_cache_seconds: float = 1.0, url: str | None = None
    ) -> Replicas:
        sim_app = create_simulator(
            None, SimSettings(queue_seconds=0.0, item_seconds=2.0 if slow else 0.05)
        )
        sim = TestServer(sim_app, host="127.0.0.1")
        await sim.start_server()
        started.append(sim)
        base = str(sim.make_url(MODZY.base_path)).rstrip("/")
        settings = make_settings(
            [provider_settings("modzy", "modzy", base)],
            # Two apps and 200 concurrent polls share this test's one event loop: on two
            # busy cores a Redis reply can take longer than the production 0.5 s.
            redis=RedisSettings(
                url=url or redis_url, prefix=f"t{uuid.uuid4().hex[:10]}", socket_timeout=3.0
            ),
            status_cache_seconds=status_cache_seconds,
        )
        clients, registries = [], []
        for _ in range(n):
            registry = CollectorRegistry()
            client = TestClient(TestServer(create_app(settings, registry=registry)))
            await client.start_server()
            started.append(client)
            clients.append(client)
            registries.append(registry)
        return Replicas(clients, sim_app[SIM_CONTROL], registries)

    yield make
    for thing in reversed(started):
        await thing.close()


class TestReplicasShareRedis:
    async def test_a_job_submitted_on_one_replica_is_read_on_another(self, replicas):
        r = await replicas(2)
        a, b = r.clients
        job = await (await a.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        resp = await b.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=10"})
        done = await resp.json()
        assert done["id"] == job["id"] and done["status"] == "succeeded"
        results = await (await a.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
        assert [i["status"] for i in results["items"]] == ["succeeded"] * 3
        listed = await (await b.get("/v1/jobs", headers=AUTH)).json()
        assert [j["id"] for j in listed["jobs"]] == [job["id"]]
        resp = await b.get(f"/v1/jobs/{job['id']}", headers=OTHER_AUTH)
        await problem(resp, 404, "not_found")

    async def test_idempotency_holds_across_replicas(self, replicas):
        r = await replicas(2)
        a, b = r.clients
        first = await a.post("/v1/jobs", json=BODY, headers={**AUTH, "Idempotency-Key": "x1"})
        again = await b.post("/v1/jobs", json=BODY, headers={**AUTH, "Idempotency-Key": "x1"})
        assert (first.status, again.status) == (202, 200)
        assert (await first.json())["id"] == (await again.json())["id"]

    async def test_many_polls_on_two_replicas_cost_one_status_call_per_interval(self, replicas):
        r = await replicas(2, slow=True, status_cache_seconds=1.0)
        job = await (await r.clients[0].post("/v1/jobs", json=BODY, headers=AUTH)).json()
        before = r.status_calls()
        started = asyncio.get_running_loop().time()
        for _ in range(3):  # three rounds of 100 concurrent polls, ~0.5 s apart
            polls = [
                r.clients[i % 2].get(f"/v1/jobs/{job['id']}", headers=AUTH) for i in range(100)
            ]
            answers = await asyncio.gather(*polls)
            assert {a.status for a in answers} == {200}
            await asyncio.sleep(0.5)
        elapsed = asyncio.get_running_loop().time() - started
        calls = r.status_calls() - before
        allowed = int(elapsed / 1.0) + 2
        print(f"\n300 polls over 2 replicas in {elapsed:.1f} s: {calls} provider status calls")
        assert calls <= allowed, (calls, allowed)

    async def test_with_the_status_cache_off_replicas_do_not_wait_for_each_other(self, replicas):
        """No replica can reuse another's answer then: no lease to wait on; reads in one
        process still share one call."""
        r = await replicas(2, slow=True, status_cache_seconds=0)
        job = await (await r.clients[0].post("/v1/jobs", json=BODY, headers=AUTH)).json()
        r.sim.set_faults([Fault(kind="latency", seconds=0.5, match="GET /api/jobs/")])
        before = r.status_calls()
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await asyncio.gather(
            *(r.clients[i % 2].get(f"/v1/jobs/{job['id']}", headers=AUTH) for i in range(10))
        )
        elapsed = loop.time() - started
        assert {a.status for a in answers} == {200}
        assert r.status_calls() - before == 2  # one per replica
        # Side by side: one after the other (a lease), they would take over a second.
        assert elapsed < 0.95, elapsed

    async def test_a_finished_jobs_results_are_fetched_once(self, replicas):
        r = await replicas(2)
        a, b = r.clients
        job = await (await a.post("/v1/jobs", json=BODY, headers=AUTH)).json()
        await wait_done_on(b, job["id"])
        reads = [
            r.clients[i % 2].get(f"/v1/jobs/{job['id']}/results", headers=AUTH) for i in range(100)
        ]
        answers = await asyncio.gather(*reads)
        bodies = [await x.json() for x in answers]
        assert all(x == bodies[0] for x in bodies)
        assert r.sim.count("GET", "/api/results/") == 1
        more = await b.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
        assert more.headers["Cache-Status"] == "gateway; hit"
        assert r.sim.count("GET", "/api/results/") == 1

    async def test_a_failing_leader_fails_its_followers_and_is_not_cached(self, replicas):
        r = await replicas(2, slow=True)
        job = await (await r.clients[0].post("/v1/jobs", json=BODY, headers=AUTH)).json()
        r.sim.set_faults([Fault(kind="status", status=500, match="GET /api/jobs/")])
        answers = await asyncio.gather(
            *(r.clients[i % 2].get(f"/v1/jobs/{job['id']}", headers=AUTH) for i in range(20))
        )
        assert {a.status for a in answers} == {502}
        r.sim.clear_faults()
        resp = await r.clients[1].get(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert resp.status == 200


async def wait_done_on(client, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/jobs/{job_id}", headers={**AUTH, "Prefer": "wait=10"})
    body = await resp.json()
    assert body["done"], body
    return body


class TestRedisDown:
    async def test_store_bound_paths_503_and_finished_reads_still_served(self, replicas):
        import shutil
        import socket
        import subprocess

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        binary = shutil.which("redis-server")
        assert binary
        cmd = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL)
        try:
            await asyncio.sleep(0.3)
            r = await replicas(1, url=f"redis://127.0.0.1:{port}/0")
            (c,) = r.clients
            job = await (await c.post("/v1/jobs", json=BODY, headers=AUTH)).json()
            await wait_done_on(c, job["id"])
            await c.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
            proc.kill()
            await proc.wait()
            # finished job and its results: served from this replica's own copy
            assert (await c.get(f"/v1/jobs/{job['id']}", headers=AUTH)).status == 200
            assert (await c.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).status == 200
            # anything that needs the store: 503 store_unavailable, never a 500
            await problem(
                await c.get("/v1/jobs/job_unknown", headers=AUTH), 503, "store_unavailable"
            )
            await problem(await c.get("/v1/jobs", headers=AUTH), 503, "store_unavailable")
            await problem(
                await c.post("/v1/jobs", json=BODY, headers={**AUTH, "Idempotency-Key": "z"}),
                503,
                "store_unavailable",
            )
            ready = await c.get("/readyz")
            assert ready.status == 503
            assert (await ready.json())["components"]["redis"] == "unavailable"
            assert (await c.get("/healthz")).status == 200
            # Redis comes back on the same port: the gateway recovers by itself
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL)
            for _ in range(100):
                if (await c.get("/readyz")).status == 200:
                    break
                await asyncio.sleep(0.05)
            resp = await c.post("/v1/jobs", json=BODY, headers=AUTH)
            assert resp.status == 202
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
