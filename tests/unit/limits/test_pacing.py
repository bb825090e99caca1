"""The pacer: turns, pauses, fail-fast, jitter, and the local fallback when Redis fails."""

from __future__ import annotations

import random

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from adapters.errors import ProviderUnavailable
from gateway.limits.buckets import MemoryBuckets, RedisBuckets
from gateway.limits.gcra import MICROS, Quota
from gateway.limits.pacing import Pacer, account_id, build_pacer
from gateway.limits.provider_resilience import PacingSettings
from gateway.observability.metrics import Metrics
from gateway.state.keyspace import Keyspace
from tests.conftest import provider_settings


class Micros:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * MICROS

    def __call__(self) -> int:
        return self.now


class Sleeps:
    """Records each sleep and moves the fake clock by it."""

    def __init__(self, clock: Micros) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.now += int(seconds * MICROS)


def pacer(quota: Quota | None, *, max_wait: float = 10.0, **over) -> tuple[Pacer, Sleeps, Metrics]:
    clock = Micros()
    sleeps = Sleeps(clock)
    metrics = Metrics(CollectorRegistry())
    p = Pacer(
        "p",
        bucket_key="pace",
        pause_key="pause",
        quota=quota,
        max_wait=max_wait,
        local=MemoryBuckets(now_us=clock),
        observer=metrics,
        sleep=sleeps,
        rng=random.Random(3),
        **over,
    )
    return p, sleeps, metrics


class TestPacer:
    async def test_turns_are_spaced_at_the_rate(self):
        p, sleeps, _ = pacer(Quota(rate=10, burst=0))
        for _ in range(5):
            await p.wait_turn(10)
        assert sleeps.waits == pytest.approx([0.1] * 4)

    async def test_a_turn_beyond_the_budget_fails_fast_and_charges_nothing(self):
        p, sleeps, metrics = pacer(Quota(rate=1, burst=0), max_wait=0.5)
        await p.wait_turn(10)  # the bucket's one immediate turn
        with pytest.raises(ProviderUnavailable) as info:
            await p.wait_turn(10)
        assert info.value.headers["Retry-After"] == "1"
        assert sleeps.waits == []
        sleeps.clock.now += MICROS  # one interval later the turn is free again: not charged
        await p.wait_turn(10)
        assert sleeps.waits == []
        assert metrics.registry.get_sample_value(
            "gateway_upstream_shed_total", {"provider": "p", "reason": "pacing"}
        )

    async def test_a_pause_holds_every_turn_until_it_ends(self):
        p, sleeps, _ = pacer(Quota(rate=10, burst=5))
        await p.pause(2.0)
        assert await p.paused_for() == pytest.approx(2.0)
        await p.wait_turn(10)
        await p.wait_turn(10)
        # After the pause the bucket starts empty: one interval apart, no burst.
        assert sleeps.waits == pytest.approx([2.0, 0.1])

    async def test_a_pause_longer_than_the_wait_fails_fast_with_its_retry_after(self):
        p, _, _ = pacer(None, max_wait=5)
        await p.pause(60)
        with pytest.raises(ProviderUnavailable) as info:
            await p.wait_turn(30)
        assert info.value.headers["Retry-After"] == "60"

    async def test_without_a_rate_a_pause_releases_with_jitter(self):
        p, sleeps, _ = pacer(None, release_jitter=2.0)
        await p.pause(1.0)
        for _ in range(50):
            sleeps.clock.now = 1_700_000_000 * MICROS  # every caller arrives during the pause
            await p.wait_turn(10)
        extra = [w - 1.0 for w in sleeps.waits]
        assert all(0 <= e <= 2.0 for e in extra)
        assert max(extra) - min(extra) > 1.0
        await p.wait_turn(10)  # no pause any more: no wait, no jitter
        assert len(sleeps.waits) == 50

    async def test_jitter_never_exceeds_the_callers_budget(self):
        p, sleeps, _ = pacer(None, release_jitter=5.0)
        await p.pause(1.0)
        await p.wait_turn(1.2)
        assert 1.0 <= sleeps.waits[0] <= 1.2


class TestPacerWhenRedisFails:
    async def test_falls_back_to_a_local_share_counted_and_logged_once(self, captured_logs):
        # from_url, like gateway.state.backends: redis-py then does not retry on its own.
        dead = aioredis.from_url(
            "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
        )
        clock = Micros()
        sleeps = Sleeps(clock)
        metrics = Metrics(CollectorRegistry())
        p = Pacer(
            "p",
            bucket_key="pace",
            pause_key="pause",
            quota=Quota(rate=30, burst=2),
            max_wait=10,
            shared=RedisBuckets(dead),
            local=MemoryBuckets(now_us=clock),
            local_divisor=3,
            observer=metrics,
            sleep=sleeps,
        )
        try:
            for _ in range(4):
                await p.wait_turn(10)
            await p.pause(1)  # kept locally although Redis is gone
            assert await p.paused_for() == pytest.approx(1.0)
        finally:
            await dead.aclose()
        # A third of 30/s with a third of the burst: 1 at once, then 0.1 s apart.
        assert sleeps.waits == pytest.approx([0.1, 0.1, 0.1])
        fallbacks = metrics.registry.get_sample_value(
            "gateway_upstream_pacing_fallback_total", {"provider": "p"}
        )
        assert fallbacks == 6
        logged = [e for e in captured_logs if e["event"] == "provider_pacing_fallback"]
        assert len(logged) == 1 and logged[0]["provider"] == "p"


class TestPacerInRedis:
    async def test_a_pause_set_by_one_replica_holds_for_another(self, redis_client):
        keys = Keyspace(redis_client.test_prefix)
        settings = provider_settings(
            "modzy", "modzy", "http://127.0.0.1:1/api", pacing=PacingSettings(requests=100)
        )
        one = build_pacer(settings, redis=redis_client, keys=keys)
        two = build_pacer(settings, redis=redis_client, keys=keys)
        await one.pause(0.3)
        assert 0.2 < await two.paused_for() <= 0.3
        with pytest.raises(ProviderUnavailable):
            await two.wait_turn(0.1)

    def test_keys_name_the_account_by_a_hash_never_the_credential(self):
        secret = "sk-very-secret-credential"
        ident = account_id("modzy", "https://app.modzy.com/api/", secret)
        assert secret not in ident and len(ident) == 32
        assert ident == account_id("modzy", "https://app.modzy.com/api", secret)
        assert ident != account_id("modzy", "https://app.modzy.com/api", secret + "x")
        assert Keyspace("gw").pacing(ident) == f"gw:pace:{{{ident}}}"
