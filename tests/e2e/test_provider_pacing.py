"""Provider pacing across three gateway processes sharing one Redis (T-U1, T-U2).

The simulated provider (``gateway simulate``, its own process) keeps a log of every
request with its arrival time and the status it answered; the provider-observed rate
is counted there, in every 1 s window. Each test prints what it measured.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from tests.e2e.client import Api
from tests.e2e.replicas import REPLICAS, Cluster, RedisServer, Simulators

pytestmark = pytest.mark.redis

PROVIDER_RATE = 10  # requests per second, the simulated provider's own limit


@pytest.fixture
def start_cluster(
    redis_server: RedisServer, simulators: Simulators, tmp_path: Any
) -> Iterator[Callable[..., Cluster]]:
    """Start three replicas with the given provider settings (cleaned up after the test)."""
    started: list[Cluster] = []

    def start(providers: Mapping[str, Mapping[str, Any]]) -> Cluster:
        redis_server.ensure_running()
        simulators.clear_faults()
        simulators.reset_requests()
        prefix = f"t{uuid.uuid4().hex[:12]}"
        c = Cluster(redis_server, simulators, tmp_path, prefix=prefix, providers=providers)
        started.append(c)
        c.start(REPLICAS)
        return c

    yield start
    for c in started:
        c.close()
    simulators.clear_faults()
    simulators.set_rate_limit(None)


@dataclass(frozen=True)
class Sent:
    at: float
    status: int
    retry_after: str | None


async def drive(api: Api, rate: float, seconds: float) -> list[Sent]:
    """Submits at ``rate`` per second for ``seconds``, round robin over the replicas."""

    async def one(i: int) -> Sent:
        await asyncio.sleep(i / rate)
        at = time.monotonic()
        answer = await api.submit(i)
        return Sent(at, answer.status, answer.headers.get("Retry-After"))

    return list(await asyncio.gather(*(one(i) for i in range(int(rate * seconds)))))


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals in any window of ``window`` seconds (each starting at one)."""
    times = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


def provider_log(sims: Simulators) -> list[dict[str, Any]]:
    return [r for r in sims.requests() if r["method"] == "POST"]


async def session_api(cluster: Cluster) -> tuple[aiohttp.ClientSession, Api]:
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(limit=300)
    )
    return session, Api(session, cluster.urls)


DRIVE_SECONDS = 10


async def test_three_replicas_never_push_the_provider_past_its_rate(start_cluster, measured):
    """T-U1: ~50 submits/s over 3 replicas for 10 s; the provider allows 10/s."""
    pacing = {"requests": PROVIDER_RATE, "per_seconds": 1, "burst": 0, "max_wait_seconds": 2}
    cluster = start_cluster({"modzy": {"pacing": pacing}})
    cluster.sims.set_rate_limit(PROVIDER_RATE, burst=2)
    session, api = await session_api(cluster)
    try:
        sent = await drive(api, rate=50, seconds=DRIVE_SECONDS)
    finally:
        await session.close()
    log = provider_log(cluster.sims)
    arrivals = [r["at"] for r in log]
    peak = max_in_window(arrivals)
    throttled = sum(1 for r in log if r["status"] == 429)
    answered = {s: sum(1 for x in sent if x.status == s) for s in sorted({x.status for x in sent})}
    span = max(arrivals) - min(arrivals)
    measured(
        f"T-U1 pacing over {REPLICAS} replicas: {len(sent)} submits in {DRIVE_SECONDS} s "
        f"({len(sent) / DRIVE_SECONDS:.0f}/s); provider saw {len(log)} "
        f"({len(log) / span:.1f}/s average), "
        f"max {peak} in any 1 s window (configured {PROVIDER_RATE}/s, pass <= "
        f"{PROVIDER_RATE * 1.1:.0f}), {throttled} provider 429s; gateway answers {answered}"
    )
    assert peak <= PROVIDER_RATE * 1.1
    assert throttled == 0
    assert set(answered) <= {202, 503}, answered
    # The rate was used, not wasted.
    assert answered.get(202, 0) >= PROVIDER_RATE * DRIVE_SECONDS * 0.8
    assert all(x.retry_after is not None for x in sent if x.status == 503)


#: What two processes' clocks may disagree by over a 2 s pause (seconds): see _pause_window.
CLOCK_SKEW = 0.005


async def test_a_retry_after_pauses_every_replica(start_cluster, measured):
    """T-U2: Retry-After in seconds and as an HTTP-date, clamped, and garbage."""
    cluster = start_cluster({"modzy": {"retry_after_max": 60}})
    session, api = await session_api(cluster)
    try:
        windows = {}
        for name, value in (("seconds", lambda: "2"), ("http-date", _date_in(2))):
            windows[name] = await _pause_window(cluster, api, value)
        garbage = await _garbage(cluster, api)
        clamped = await _clamped(cluster, api)
    finally:
        await session.close()
    for name, (pause, inside, in_flight, after) in windows.items():
        measured(
            f"T-U2 Retry-After {name}: pause {pause:.2f} s on every replica; provider saw "
            f"{inside} requests inside it ({in_flight} already in flight when the 429 left), "
            f"{after} after it"
        )
        assert pause >= 2.0 - CLOCK_SKEW
        assert inside == 0
        assert after > 0
    measured(
        f"T-U2 Retry-After 999999: clamped, every replica answers 503 with Retry-After "
        f"{clamped} (max 60) and the provider saw 0; garbage: no pause, next submit reached "
        f"the provider after {garbage * 1000:.0f} ms"
    )


def _date_in(seconds: int) -> Callable[[], str]:
    def value() -> str:
        # HTTP-dates have whole seconds: aim past the next whole second so that the
        # pause lasts at least ``seconds`` from the 429.
        when = datetime.now(UTC) + timedelta(seconds=seconds + 1.2)
        return format_datetime(when.replace(microsecond=0), usegmt=True)

    return value


async def _pause_window(
    cluster: Cluster, api: Api, retry_after: Callable[[], str]
) -> tuple[float, int, int, int]:
    """Submits at 20/s; one answered 429: the provider's log around it."""
    sims = cluster.sims
    sims.reset_requests()

    async def throttle_soon() -> None:
        await asyncio.sleep(0.5)
        sims.set_faults([{"kind": "status", "status": 429, "retry_after": retry_after(),
                          "match": "POST", "times": 1}])  # fmt: skip

    await asyncio.gather(drive(api, rate=20, seconds=4.0), throttle_soon())
    sims.clear_faults()
    log = provider_log(sims)
    (throttled,) = [r for r in log if r["status"] == 429]
    t0 = throttled["at"]
    later = [r["at"] - t0 for r in log if r["at"] > t0]
    # Sent before the replica that got the 429 had written the pause to Redis.
    in_flight = sum(1 for d in later if d < 0.05)
    resumed = min((d for d in later if d >= 0.05), default=math.inf)
    # The pause ends by Redis's clock (wall time); the simulator stamps arrivals with its
    # own monotonic clock. The two may drift apart by a fraction of a millisecond over the
    # pause (NTP slews the wall clock), which is not a request inside it.
    end = 2.0 - CLOCK_SKEW
    inside = sum(1 for d in later if 0.05 <= d < end)
    after = sum(1 for d in later if d >= end)
    return resumed, inside, in_flight, after


async def _garbage(cluster: Cluster, api: Api) -> float:
    sims = cluster.sims
    sims.set_faults([{"kind": "status", "status": 429, "retry_after": "soon",
                      "match": "POST", "times": 1}])  # fmt: skip
    first = await api.submit(0)
    assert first.status == 503, first  # the 429, passed on
    sims.reset_requests()
    started = time.monotonic()
    second = await api.submit(1)
    took = time.monotonic() - started
    assert second.status == 202, second
    assert len(provider_log(sims)) == 1 and took < 1.0
    for replica in range(REPLICAS):
        providers = (await api.call("GET", replica, "/v1/providers")).body["providers"]
        assert {p["name"]: p["state"] for p in providers}["modzy"] == "available"
    return took


async def _clamped(cluster: Cluster, api: Api) -> int:
    sims = cluster.sims
    sims.set_faults([{"kind": "status", "status": 429, "retry_after": "999999",
                      "match": "POST", "times": 1}])  # fmt: skip
    first = await api.submit(0)
    assert first.status == 503 and first.headers["Retry-After"] == "60", first
    sims.reset_requests()
    waits = []
    for replica in range(REPLICAS):
        providers = (await api.call("GET", replica, "/v1/providers")).body["providers"]
        assert {p["name"]: p["state"] for p in providers}["modzy"] == "backing_off"
        answer = await api.submit(replica)
        assert answer.status == 503, answer
        waits.append(int(answer.headers["Retry-After"]))
    assert provider_log(sims) == []
    assert all(55 <= w <= 60 for w in waits), waits
    return max(waits)
