"""The circuit breaker three replicas share through one real Redis, over real HTTP.

Three gateway apps (three replicas, one event loop) and one Modzy simulator replay the
chaos run of issue 19: the provider answers 500s, then hangs, then recovers. The
breaker's times are short (open 1 s, then 2 s; a replica looks at Redis every 0.25 s),
so the run takes a few seconds of real time: Redis times the shared open time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.registry import provider_type
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from gateway.config.settings import TimeoutSettings
from gateway.http.app import create_app
from gateway.limits.provider_resilience import CircuitBreakerSettings
from gateway.state.settings import RedisSettings
from tests.conftest import AUTH, make_settings, provider_settings

SUBMIT = {"model": "sentiment", "inputs": [{"name": "a", "text": "Great"}]}
RECHECK = 0.25
#: Time the shared test runner may add to a bound (two busy cores, three apps, one loop).
SLACK = 0.35


@dataclass
class Answer:
    replica: int
    sent: float
    done: float
    status: int
    code: str | None


@dataclass
class Replicas:
    clients: list[TestClient[Any, Any]]
    registries: list[CollectorRegistry]
    sim: SimulatorControl

    async def submit(self, i: int) -> Answer:
        sent = time.monotonic()
        resp = await self.clients[i].post("/v1/jobs", json=SUBMIT, headers=AUTH)
        body = await resp.json(content_type=None)
        return Answer(i, sent, time.monotonic(), resp.status, body.get("code"))

    def gauge(self, i: int) -> float | None:
        return self.registries[i].get_sample_value("gateway_circuit_state", {"provider": "modzy"})

    def posts(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for r in self.sim.requests if r.method == "POST" and since <= r.at < until)


@pytest.fixture
async def replicas(redis_url) -> AsyncIterator[Any]:
    started: list[Any] = []

    async def make(n: int = 3, **breaker: Any) -> Replicas:
        sim_app = provider_type("modzy").fast_simulator(None)
        sim = TestServer(sim_app, host="127.0.0.1")
        await sim.start_server()
        started.append(sim)
        base = str(sim.make_url("/api")).rstrip("/")
        options = {"failures": 3, "open_seconds": 1.0, "max_open_seconds": 8.0, "jitter": 0}
        provider = provider_settings(
            "modzy",
            "modzy",
            base,
            retries=0,
            timeouts=TimeoutSettings(connect=1, read=0.5, total=2),
            circuit_breaker=CircuitBreakerSettings(
                **{**options, "recheck_seconds": RECHECK, **breaker}
            ),
        )
        settings = make_settings(
            [provider],
            # Three apps share this test's one event loop: on two busy cores a Redis
            # reply can take longer than the production 0.5 s.
            redis=RedisSettings(
                url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}", socket_timeout=3.0
            ),
        )
        clients, registries = [], []
        for _ in range(n):
            registry = CollectorRegistry()
            client: TestClient[Any, Any] = TestClient(
                TestServer(create_app(settings, registry=registry))
            )
            await client.start_server()
            started.append(client)
            clients.append(client)
            registries.append(registry)
        return Replicas(clients, registries, sim_app[SIM_CONTROL])

    yield make
    for thing in reversed(started):
        await thing.close()


async def until(check: Any, within: float = 2.0) -> float:
    """Seconds until ``check()`` held (polled every 10 ms); fails after ``within``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, "did not happen in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def trip_all(r: Replicas) -> float:
    """Replica 0 trips on 500s; the others follow on their first failure. When it tripped."""
    r.sim.set_faults([Fault(kind="status", status=500, match="POST")])
    for _ in range(3):
        assert (await r.submit(0)).status == 502
    tripped = time.monotonic()
    for i in (1, 2):
        assert (await r.submit(i)).status == 502  # one failure: the shared state is read
    await until(lambda: r.gauge(1) == 2 and r.gauge(2) == 2)
    return tripped


async def test_one_replicas_trip_opens_the_others_on_their_first_failure(replicas):
    r = await replicas(3)
    await trip_all(r)
    for i in range(3):
        answer = await r.submit(i)
        assert (answer.status, answer.code) == (503, "provider_unavailable")
    assert r.posts() == 5  # not 3 failures on every replica


async def test_a_provider_recovering_costs_at_most_one_recheck_of_503s(replicas, measured):
    """Issue 19's chaos run: 500s, a hang, recovery. One probe per open time across all
    replicas; after the probe that succeeds, every replica closes within a recheck."""
    r = await replicas(3)
    tripped = await trip_all(r)
    r.sim.set_faults([Fault(kind="hang", match="POST")])  # the provider's later hang
    hang_from = time.monotonic()

    answers: list[Answer] = []
    stop = asyncio.Event()

    async def drive(i: int) -> None:
        while not stop.is_set():
            answers.append(await r.submit(i))
            await asyncio.sleep(0.02)

    # Replicas 0 and 1 take traffic; replica 2 stays idle and must follow all the same.
    drivers = [asyncio.ensure_future(drive(i)) for i in (0, 1)]
    try:
        # Open 1 s; the probe hangs 0.5 s and fails; open 2 s more: recover inside those.
        await asyncio.sleep(max(0.0, tripped + 2.2 - time.monotonic()))
        r.sim.clear_faults()
        recovered = time.monotonic()
        await until(lambda: any(a.status == 202 for a in answers), within=4.0)
        # The successful probe's answer: from here on the provider is known to be up.
        ok_at = min(a.done for a in answers if a.status == 202)
        idle_closed = await until(lambda: r.gauge(2) == 0, within=2.0)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*drivers)

    probes_into_hang = r.posts(hang_from, recovered)
    probes_to_recovery = r.posts(recovered, ok_at)
    needless = [a for a in answers if a.status == 503 and a.sent > ok_at]
    late = max((a.sent - ok_at for a in needless), default=0.0)
    measured(
        f"shared breaker over 3 replicas: {probes_into_hang} probe into the hang, "
        f"{probes_to_recovery} probe to recovery; {len(needless)} needless 503s after the "
        f"successful probe, the last {late * 1000:.0f} ms after it (recheck "
        f"{RECHECK * 1000:.0f} ms); the idle replica closed {idle_closed * 1000:.0f} ms after "
        f"the probe's answer was seen"
    )
    assert probes_into_hang == 1  # one probe met the hang, for every replica
    assert probes_to_recovery == 1
    assert late <= RECHECK + SLACK, [(a.replica, round(a.sent - ok_at, 3)) for a in needless]
    assert idle_closed <= RECHECK + SLACK
    assert all(r.gauge(i) == 0 for i in range(3))
    after = [a for a in answers if a.sent > ok_at + RECHECK + SLACK]
    assert after and all(a.status == 202 for a in after)
