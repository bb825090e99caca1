"""A hung Redis costs a request at most one socket timeout, on every path (issue 19 point 3).

Each test owns a redis-server and pauses it with ``CLIENT PAUSE ... ALL``: connections
stay open and nothing is answered, as with a Redis stuck in a long command or a
stalled network. Reads of a running job, submits (with and without an idempotency
key), listings and reads of finished results are timed over real HTTP while it is
paused; each takes one socket timeout at most, the later ones none, and all of them
work again once Redis answers. Times are the gateway's own (``Server-Timing``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.modzy.simulator import SimSettings, create_simulator
from tests.api.test_jobs_api import text_inputs
from tests.conftest import AUTH, Harness
from tests.e2e.replicas import RedisServer

pytestmark = pytest.mark.redis

SOCKET_TIMEOUT = 0.5
BODY = {"model": "sentiment", "inputs": text_inputs()}


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def gateway(make_gateway: Any, server: RedisServer, **over: Any) -> Harness:
    # Jobs stay running for a minute, so reads of them need the store.
    sim = create_simulator(None, SimSettings(queue_seconds=60, item_seconds=1))
    h: Harness = await make_gateway(
        ["modzy"],
        sim_apps={"modzy": sim},
        redis={
            "url": server.url(),
            "prefix": "hung",
            "socket_timeout": SOCKET_TIMEOUT,
            "connect_timeout": SOCKET_TIMEOUT,
        },
        ratelimit={
            "per_key": {
                "read": {"requests": 1000, "per_seconds": 1, "burst": 100},
                "submit": {"requests": 1000, "per_seconds": 1, "burst": 100},
                "concurrent_jobs": 100,
            },
            "daily_jobs": {"default": 1000},
        },
        **over,
    )
    return h


def pause(server: RedisServer, seconds: float) -> None:
    with server.client() as c:
        c.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")


async def timed(h: Harness, method: str, path: str, **kw: Any) -> tuple[int, float]:
    """The answer's status, and how long the gateway took over it (``Server-Timing``: its
    own time plus the provider's; on a loaded box the time a request waits before the
    gateway reads it is the machine's, not the gateway's)."""
    resp = await h.client.request(method, path, headers={**AUTH, **kw.pop("headers", {})}, **kw)
    await resp.read()
    durations = re.findall(r"dur=([0-9.]+)", resp.headers["Server-Timing"])
    return resp.status, sum(float(d) for d in durations) / 1000


def sample(h: Harness, name: str) -> float:
    return h.registry.get_sample_value(name) or 0.0


async def test_every_path_waits_at_most_one_socket_timeout(make_gateway, redis_server, measured):
    h = await gateway(make_gateway, redis_server)
    resp = await h.client.post("/v1/jobs", json=BODY, headers=AUTH)
    assert resp.status == 202
    running = (await resp.json())["id"]

    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/v1/jobs/{running}", {}),
        ("GET", "/v1/jobs", {}),
        ("POST", "/v1/jobs", {"json": BODY}),
        ("POST", "/v1/jobs", {"json": BODY, "headers": {"Idempotency-Key": "hung-1"}}),
        ("GET", f"/v1/jobs/{running}/results", {}),
    ]
    pause(redis_server, 3)
    # All at once, as when Redis hangs under traffic: each is in flight while it hangs.
    first = await asyncio.gather(*(timed(h, m, p, **dict(kw)) for m, p, kw in requests))
    # Then one after another while it is still paused: none of them waits any more.
    later = [await timed(h, m, p, **dict(kw)) for m, p, kw in requests]
    slowest_first = max(t for _, t in first)
    slowest_later = max(t for _, t in later)
    measured(
        f"Redis paused: slowest of 5 concurrent requests {slowest_first * 1000:.0f} ms, of 5 "
        f"later ones {slowest_later * 1000:.0f} ms (socket timeout {SOCKET_TIMEOUT * 1000:.0f} ms)"
    )
    assert slowest_first <= SOCKET_TIMEOUT + 0.100
    # Well under one timeout: the gate answers them without asking Redis.
    assert slowest_later < SOCKET_TIMEOUT / 2
    statuses = [s for s, _ in first + later]
    assert 500 not in statuses
    # A read of a running job and a submit need the store: 503, never a guess.
    assert set(statuses) <= {200, 202, 409, 503}, statuses
    assert sample(h, "gateway_redis_unavailable") == 1

    # Redis answers again (the pause ends): within moments every path works again.
    deadline = time.monotonic() + 5
    while sample(h, "gateway_redis_unavailable") == 1:
        assert time.monotonic() < deadline, "the gate did not open after Redis came back"
        await asyncio.sleep(0.05)
    status, _ = await timed(h, "GET", f"/v1/jobs/{running}")
    assert status == 200
    status, _ = await timed(h, "POST", "/v1/jobs", json=BODY)
    assert status == 202
    status, _ = await timed(h, "GET", "/v1/jobs")
    assert status == 200


async def test_a_request_that_met_the_hang_pays_no_second_timeout(make_gateway, redis_server):
    """A submit: a limit decision, a job slot, an idempotency key, a store check, a
    record; with Redis hung from the start, it pays for the first and no other."""
    h = await gateway(make_gateway, redis_server)
    assert (await timed(h, "GET", "/v1/models"))[0] == 200  # the pool is warm
    pause(redis_server, 2)
    status, seconds = await timed(
        h, "POST", "/v1/jobs", json=BODY, headers={"Idempotency-Key": "hung-2"}
    )
    assert status == 503
    assert seconds <= SOCKET_TIMEOUT + 0.100


async def test_a_slow_answer_closes_the_gate_only_for_a_moment(make_gateway, redis_server):
    """A timeout that was only a slow command: the background PING answers at once,
    and the next request uses Redis again."""
    h = await gateway(make_gateway, redis_server)
    resp = await h.client.post("/v1/jobs", json=BODY, headers=AUTH)
    running = (await resp.json())["id"]
    pause(redis_server, SOCKET_TIMEOUT + 0.2)
    status, _ = await timed(h, "GET", f"/v1/jobs/{running}")
    assert status == 503
    await asyncio.sleep(0.5)  # the pause is over; the PING has its answer
    assert sample(h, "gateway_redis_unavailable") == 0
    assert (await timed(h, "GET", f"/v1/jobs/{running}"))[0] == 200
