"""SIGTERM on a real ``gateway serve`` with requests in flight (issue 19, point 2).

From the signal on, /readyz answers 503 while the listener still takes requests for
``drain_delay_seconds``; every request in flight is answered (a long poll early, with
the job as it stands); the process exits 0 within ``shutdown_timeout`` + 2 s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.tasks import spawn
from tests.e2e.client import Api
from tests.e2e.replicas import Cluster, RedisServer, Simulators

SHUTDOWN_TIMEOUT = 6.0
DRAIN_DELAY = 1.5


@pytest.fixture
def one_replica(
    redis_server: RedisServer, simulators: Simulators, tmp_path: Path
) -> Iterator[Cluster]:
    redis_server.ensure_running()
    simulators.clear_faults()
    c = Cluster(
        redis_server,
        simulators,
        tmp_path,
        prefix=f"t{uuid.uuid4().hex[:12]}",
        env={
            "GATEWAY_SERVER__SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
            "GATEWAY_SERVER__DRAIN_DELAY_SECONDS": str(DRAIN_DELAY),
        },
    )
    try:
        c.start(1)
        yield c
    finally:
        c.close()
        simulators.clear_faults()


async def test_sigterm_answers_everything_in_flight_and_exits_in_time(one_replica: Cluster):
    gw = one_replica.gateways[0]
    async with aiohttp.ClientSession() as session:
        api = Api(session, one_replica.urls)
        job = (await api.submit(0, 40)).body  # forty items: it runs for a while
        assert job["status"] in ("queued", "running"), job
        # The provider takes 2 s over each status read from now on.
        one_replica.sims.set_faults(
            [{"kind": "latency", "seconds": 2.0, "match": "GET /modzy/api/jobs/"}]
        )
        long_polls = [
            spawn(
                api.call("GET", 0, f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=60"}),
                name="long-poll",
            )
            for _ in range(40)
        ]
        reads = [
            spawn(api.call("GET", 0, f"/v1/jobs/{job['id']}/results"), name="read")
            for _ in range(35)
        ]
        await asyncio.sleep(0.5)  # all 75 are in flight
        signalled = time.monotonic()
        gw.process.terminate()
        # Draining: not ready, but still taking requests until the delay is over.
        async with session.get(gw.url + "/readyz") as resp:
            ready = await resp.json()
            assert resp.status == 503 and ready["status"] == "draining", ready
        async with session.get(gw.url + "/healthz") as resp:
            assert resp.status == 200
        answers = await asyncio.gather(*long_polls, *reads)
        answered = time.monotonic() - signalled
        code = await asyncio.to_thread(gw.process.proc.wait, SHUTDOWN_TIMEOUT + 5)  # type: ignore[union-attr]
        exited = time.monotonic() - signalled
    statuses = sorted({a.status for a in answers})
    # Long polls answer early with the running job; results reads with what there is.
    assert statuses == [200, 202] or statuses == [202] or statuses == [200], statuses
    assert all(a.status == 202 for a in answers[:40]), [a.status for a in answers[:40]]
    assert answered < SHUTDOWN_TIMEOUT, answered
    assert code == 0, gw.process.tail()
    assert exited < SHUTDOWN_TIMEOUT + 2, exited
    drained = [r for r in gw.log_records() if r.get("event") == "draining"]
    assert len(drained) == 1 and drained[0]["signal"] == "SIGTERM"
    assert not [r for r in gw.log_records() if r.get("status") == 500]


async def test_a_second_signal_closes_the_listener_at_once(one_replica: Cluster):
    gw = one_replica.gateways[0]
    signalled = time.monotonic()
    gw.process.terminate()
    await asyncio.sleep(0.2)
    gw.process.terminate()
    code = await asyncio.to_thread(gw.process.proc.wait, SHUTDOWN_TIMEOUT + 5)  # type: ignore[union-attr]
    assert code == 0
    assert time.monotonic() - signalled < DRAIN_DELAY, "the second signal did not cut the delay"
