"""Two promises of the Redis-backed job service that fail silently when broken.

* A running job's partial results are shared for ``status_cache_seconds``; once the
  job has finished they must never stand in for its results (``ResultSet.final``).
* A submit while the store is down must not reach the provider: the provider would
  run (and bill) a job no gateway can ever find again.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy import PROVIDER_TYPE as MODZY
from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.simulation import Fault, SimulatorControl
from adapters.vody import EXAMPLES as VODY_EXAMPLES
from gateway.http.app import create_app
from gateway.state.settings import RedisSettings
from tests.api.test_jobs_api import problem, text_inputs
from tests.conftest import AUTH, make_settings, provider_settings
from tests.support import FakeClock

pytestmark = pytest.mark.redis

#: Seconds a running job's status and partial results are shared between replicas.
STATUS_TTL = 1.5


@pytest.fixture
async def two_replicas(redis_url) -> AsyncIterator[Any]:
    """Two gateway apps on one Redis prefix, in front of a Modzy simulator on a fake clock."""
    started: list[Any] = []
    clock = FakeClock()
    control = SimulatorControl(clock=clock)
    # Three items of 1 s each on the simulator's clock: the test moves time by hand.
    sim_app = create_simulator(control, SimSettings(queue_seconds=0.0, item_seconds=1.0))
    sim = TestServer(sim_app, host="127.0.0.1")
    await sim.start_server()
    started.append(sim)
    settings = make_settings(
        [provider_settings("modzy", "modzy", str(sim.make_url(MODZY.base_path)).rstrip("/"))],
        redis=RedisSettings(url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}", lease_seconds=5),
        status_cache_seconds=STATUS_TTL,
    )
    clients = []
    for _ in range(2):
        client = TestClient(TestServer(create_app(settings, registry=CollectorRegistry())))
        await client.start_server()
        started.append(client)
        clients.append(client)
    yield clients, control, clock
    for thing in reversed(started):
        await thing.close()


class TestPartialResultsNeverAnswerForAFinishedJob:
    async def test_results_read_while_running_are_replaced_once_the_job_finishes(
        self, two_replicas
    ):
        """Partial results cached on replica A; replica B reads the finished job: all terminal.

        The partial read is made slow at the provider, so its cache entry is written
        when the job's status freshness has already run out and outlives it by the
        whole ``status_cache_seconds``: replica B then learns from the provider that
        the job is done while the partial entry is still in Redis.
        """
        (a, b), control, clock = two_replicas
        body = {"model": "sentiment", "inputs": text_inputs()}
        job = await (await a.post("/v1/jobs", json=body, headers=AUTH)).json()
        path = f"/v1/jobs/{job['id']}/results"

        clock.advance(1.5)  # the first of three items is done, the second is running
        control.set_faults([Fault(kind="latency", seconds=STATUS_TTL, match="GET /api/results/")])
        partial = await (await a.get(path, headers=AUTH)).json()
        control.clear_faults()
        statuses = [i["status"] for i in partial["items"]]
        assert partial["job"]["done"] is False, partial["job"]
        assert "succeeded" in statuses and set(statuses) - {"succeeded"}, statuses

        clock.advance(10)  # the provider finishes the job
        for reader, when in ((b, "on B, partial results still cached"), (a, "on A")):
            done = await (await reader.get(path, headers=AUTH)).json()
            assert done["job"]["status"] == "succeeded", (when, done["job"])
            assert [i["status"] for i in done["items"]] == ["succeeded"] * 3, when
            assert all(i["output"] for i in done["items"]), when

        await asyncio.sleep(STATUS_TTL + 0.2)  # every short-lived entry has expired
        for reader in (a, b):
            resp = await reader.get(path, headers=AUTH)
            again = await resp.json()
            assert [i["status"] for i in again["items"]] == ["succeeded"] * 3
            assert all(i["output"] for i in again["items"])
            assert resp.headers["Cache-Status"] == "gateway; hit"


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released, by this process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class TestSubmitWithTheStoreDown:
    async def test_the_provider_never_sees_the_job(self, make_gateway):
        dead = RedisSettings(url=f"redis://127.0.0.1:{_dead_port()}/0", connect_timeout=0.2)
        h = await make_gateway(["vody"], redis=dead)
        inputs = [
            {"name": i.name, "url": i.url, "fields": dict(i.fields)}
            for i in VODY_EXAMPLES.good_inputs
        ]
        body = {
            "model": f"vody/{VODY_EXAMPLES.model_id}",
            "inputs": inputs,
            "options": {"provider": dict(VODY_EXAMPLES.options)},
        }
        resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
        await problem(resp, 503, "store_unavailable")
        assert h.sims["vody"].count("POST") == 0, "the provider got a job nobody can find"
