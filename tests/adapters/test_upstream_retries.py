"""Retries through a real Upstream over loopback HTTP: T-U3 shape, T-U4 budget, T-U7 submits.

Each test prints what it measured (attempts per request, delays, retry ratio), so the
numbers show with ``pytest -s`` or ``-rA``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import JobRequest, ModelRef
from adapters.breaker import BreakerState, CircuitBreaker
from adapters.errors import ProviderBadResponse, ProviderError, ProviderTimeout
from adapters.modzy import EXAMPLES
from adapters.registry import provider_type
from adapters.retry_budget import RetryBudget
from adapters.simulation import Fault
from adapters.upstream import Upstream, UpstreamSettings
from gateway.observability.metrics import Metrics
from tests.support import wired_adapter

MODZY = provider_type("modzy")
SUBMIT = JobRequest(
    model=ModelRef("modzy", EXAMPLES.model_id, EXAMPLES.version), inputs=EXAMPLES.good_inputs
)


@dataclass
class Provider:
    """A provider that answers ``status`` to everything and logs when each request came."""

    status: int = 503
    hits: list[float] = field(default_factory=list)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(time.monotonic())
        return web.json_response({"message": "busy"}, status=self.status)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    p = Provider()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", p.handle)
    p.server = TestServer(app, host="127.0.0.1")
    await p.server.start_server()
    yield p
    await p.server.close()


class Delays:
    """A real sleep that records each backoff delay with its retry number."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(seconds)


async def test_backoff_is_full_jitter_and_attempts_are_bounded(provider: Provider, measured):
    """T-U3: 503 for every attempt: <= 3 attempts per request; delay n in [0, min(cap, b*2^n))."""
    base, cap, requests = 0.02, 0.05, 40
    delays = Delays()
    up = Upstream(
        UpstreamSettings(
            provider="p", base_url=provider.url, retries=2, backoff_base=base, backoff_cap=cap
        ),
        sleep=delays,
    )
    await up.start()
    try:
        for _ in range(requests):
            resp = await up.request("GET", "/status", operation="status")
            assert resp.status == 503
    finally:
        await up.close()
    per_request = len(provider.hits) / requests
    assert len(provider.hits) == 3 * requests  # every request tried 3 times, never more
    firsts, seconds = delays.seen[0::2], delays.seen[1::2]
    assert all(0 <= d < min(cap, base * 2) for d in firsts)
    assert all(0 <= d < min(cap, base * 4) for d in seconds)
    # Full jitter, not a fixed step: the delays spread over their range.
    assert max(seconds) - min(seconds) > cap / 2
    measured(
        f"T-U3 backoff: {per_request:.1f} attempts/request (max 3); "
        f"retry 1 delays {min(firsts) * 1000:.1f}-{max(firsts) * 1000:.1f} ms "
        f"(range [0, {min(cap, base * 2) * 1000:.0f}) ms), "
        f"retry 2 delays {min(seconds) * 1000:.1f}-{max(seconds) * 1000:.1f} ms "
        f"(range [0, {min(cap, base * 4) * 1000:.0f}) ms)"
    )


async def test_the_retry_budget_holds_retries_to_a_fifth_of_the_traffic(
    provider: Provider, measured
):
    """T-U4: the provider fails 100 % at 200 requests/s: attempts <= 1.2 x requests (+ floor)."""
    budget = RetryBudget(ratio=0.2, min_retries=3, window_seconds=10, now=time.monotonic)
    metrics = Metrics()
    up = Upstream(
        UpstreamSettings(
            provider="p", base_url=provider.url, retries=2, backoff_base=0.001, backoff_cap=0.005
        ),
        budget=budget,
        observer=metrics,
    )
    await up.start()
    rate, seconds = 200, 2.0
    sent: list[float] = []

    async def one(i: int) -> None:
        await asyncio.sleep(i / rate)
        sent.append(time.monotonic())
        await up.request("GET", "/status", operation="status")

    try:
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(int(rate * seconds)))), 30)
    finally:
        await up.close()
    requests, attempts = len(sent), len(provider.hits)
    after_1s = started + 1.0
    late_requests = sum(1 for t in sent if t >= after_1s)
    late_attempts = sum(1 for t in provider.hits if t >= after_1s)
    ratio = attempts / requests - 1
    measured(
        f"T-U4 retry budget: {requests} requests, {attempts} attempts, retry ratio "
        f"{ratio:.1%} (budget 20 % + floor 3); after 1 s: {late_requests} requests, "
        f"{late_attempts} attempts ({late_attempts / late_requests - 1:.1%} retries)"
    )
    assert attempts <= 1.2 * requests + 3
    assert late_attempts <= 1.2 * late_requests + 3
    assert budget.totals()[1] >= 0.19 * requests  # the budget was used, not just refused
    refused = metrics.registry.get_sample_value(
        "gateway_upstream_retries_refused_total", {"provider": "p"}
    )
    # Every request wanted two retries; the budget granted about a fifth of them.
    assert refused is not None and refused >= 2 * requests - 1.2 * attempts


async def test_a_quiet_provider_still_gets_the_floor_of_retries(provider: Provider):
    """T-U4 floor: with one request in the window, its retries come from the floor of 3."""
    budget = RetryBudget(ratio=0.2, min_retries=3, window_seconds=10, now=time.monotonic)
    up = Upstream(
        UpstreamSettings(provider="p", base_url=provider.url, retries=2, backoff_cap=0.01),
        budget=budget,
    )
    await up.start()
    try:
        await up.request("GET", "/status", operation="status")
        await up.request("GET", "/status", operation="status")
    finally:
        await up.close()
    assert len(provider.hits) == 3 + 2  # 2 retries, then only 1 left of the floor


class TestNonIdempotentSubmit:
    async def test_a_submit_lost_after_its_body_was_sent_is_not_resent(self, measured):
        """T-U7: the provider creates the job, then the connection dies: no resubmit."""
        async with wired_adapter(MODZY) as w:
            w.control.set_faults([Fault(kind="lost", match="POST", times=1)])
            with pytest.raises(ProviderBadResponse) as info:
                await w.adapter.submit(SUBMIT)
            posts = w.control.count("POST")
        assert info.value.status == 502
        assert posts == 1, "the gateway resubmitted a job the provider may have created"
        measured(f"T-U7 lost submit without idempotency keys: {posts} provider POST (resubmits 0)")

    async def test_with_a_provider_idempotency_key_the_resubmit_carries_the_same_key(
        self, measured
    ):
        """T-U7: an adapter that sends an idempotency key may resubmit, with the same key."""
        async with wired_adapter(MODZY) as w:
            w.control.set_faults([Fault(kind="lost", match="POST", times=1)])
            resp = await w.upstream.request(
                "POST",
                "/jobs",
                operation="submit",
                json_body={"model": {"identifier": "ed542963de", "version": "1.0.1"}},
                idempotency_header="Idempotency-Key",
            )
            posts = [r for r in w.control.requests if r.method == "POST"]
        keys = [r.headers.get("Idempotency-Key") for r in posts]
        assert len(posts) == 2 and resp.status < 500
        assert keys[0] is not None and keys[0] == keys[1]
        measured(f"T-U7 lost submit with an idempotency key: {len(posts)} POSTs, same key")

    async def test_a_submit_that_never_connected_is_retried(self):
        """Nothing reached the provider (connection refused): resending is safe."""
        retries: list[str] = []

        class Seen:
            def __getattr__(self, name):
                if name == "retry":
                    return lambda provider, reason: retries.append(reason)
                return lambda *a, **k: None

        up = Upstream(
            UpstreamSettings(
                provider="p", base_url="http://127.0.0.1:9", retries=2, backoff_cap=0.01
            ),
            observer=Seen(),
        )
        await up.start()
        try:
            with pytest.raises(ProviderError) as info:
                await up.request("POST", "/jobs", operation="submit", json_body={})
        finally:
            await up.close()
        assert info.value.status == 503 and len(retries) == 2


class TestBreakerVerdicts:
    async def test_timeouts_count_and_rejections_do_not(self):
        """Five timeouts open the breaker; any number of 404s and 422s do not."""
        clock = time.monotonic
        breaker = CircuitBreaker(failures=5, now=clock)
        async with wired_adapter(
            MODZY, upstream_settings=lambda s: _with(s, read_timeout=0.1, retries=0)
        ) as w:
            up = Upstream(w.upstream.settings, breaker=breaker)
            await up.start()
            try:
                for _ in range(8):
                    resp = await up.request("GET", "/jobs/nope", operation="status")
                    assert resp.status == 404
                assert breaker.state.name == "CLOSED"
                w.control.set_faults([Fault(kind="hang", match="GET")])
                for _ in range(5):
                    with pytest.raises(ProviderTimeout):
                        await up.request("GET", "/jobs/nope", operation="status")
                assert breaker.state is BreakerState.OPEN
            finally:
                await up.close()


def _with(s: UpstreamSettings, **over: float) -> UpstreamSettings:
    from dataclasses import replace

    return replace(s, **over)  # type: ignore[arg-type]
