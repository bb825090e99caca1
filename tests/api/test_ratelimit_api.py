"""Caller limits over real HTTP, on the in-memory buckets and on the Lua script in Redis.

The limiter's clock is a fake one the test moves (T-L1's "computed from the fake-clock
model"); the Redis variant runs the very script production runs, with that clock
passed in place of Redis's ``TIME``. The numbers each test measured are printed
(``pytest -s`` or ``-rA`` shows them).
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.simulation import Fault
from gateway.http.keys import JOBS
from gateway.limits.buckets import MemoryBuckets, RedisBuckets
from gateway.limits.gcra import MICROS, Quota, gcra_step
from gateway.limits.settings import RateLimitSettings
from tests.conftest import AUTH, OTHER_AUTH, READ_AUTH, SECRETS, Harness, fresh_redis

READ_LIMIT = {"requests": 100, "per_seconds": 60, "burst": 10}  # T-L1's L and B


class FakeMicros:
    def __init__(self) -> None:
        self.now = 1_800_000_000 * MICROS

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def limiter_store(
    request, redis_url
) -> AsyncIterator[tuple[Any, FakeMicros, dict[str, Any]]]:
    """Buckets on a fake clock, a clock, and the gateway settings that go with them."""
    clock = FakeMicros()
    if request.param == "memory":
        yield MemoryBuckets(now_us=clock), clock, {}
        return
    async with fresh_redis(redis_url) as client:
        yield RedisBuckets(client, now_us=clock), clock, {"redis": {"prefix": client.test_prefix}}


def ratelimit(**over: Any) -> RateLimitSettings:
    return RateLimitSettings.model_validate(over)


def sample(h: Harness, name: str, **labels: str) -> float:
    return h.registry.get_sample_value(name, labels) or 0.0


def model_admissions(quota: Quota, times_us: list[int]) -> int:
    tat = None
    admitted = 0
    for t in times_us:
        decision, new_tat = gcra_step(tat, t, quota)
        if decision.allowed:
            admitted += 1
            tat = new_tat
    return admitted


async def fire(h: Harness, clock: FakeMicros, n: int, span: float, headers=AUTH) -> list[Any]:
    """``n`` reads spread evenly over ``span`` seconds of the limiter's clock."""
    answers = []
    start = clock.now
    for i in range(n):
        clock.now = start + int(i * span * MICROS / n)
        resp = await h.client.get("/v1/models", headers=headers)
        await resp.read()
        answers.append(resp)
    return answers


async def test_exactness_on_one_replica(make_gateway, limiter_store, measured):
    """T-L1: 300 reads within 1 s against 100/60 s, burst 10: exactly the model's count."""
    store, clock, over = limiter_store
    h = await make_gateway(
        app_over={"buckets": store}, ratelimit=ratelimit(per_key={"read": READ_LIMIT}), **over
    )
    start = clock.now
    answers = await fire(h, clock, 300, 1.0)
    allowed = sum(r.status == 200 for r in answers)
    times = [start + int(i * MICROS / 300) for i in range(300)]
    expected = model_admissions(Quota(rate=100, period=60, burst=10), times)
    measured(f"T-L1 [{type(store).__name__}]: admitted {allowed} of 300, model {expected}")
    assert expected == 12  # B + 1 = 11 at once, one more earned at 0.6 s
    assert allowed == expected
    for resp in answers:
        assert resp.headers["RateLimit-Policy"] == '"read";q=100;w=60'
        state = re.fullmatch(r'"read";r=(\d+);t=(\d+)', resp.headers["RateLimit"])
        assert state is not None, resp.headers["RateLimit"]
        if resp.status == 429:
            assert int(resp.headers["Retry-After"]) >= 1
            assert state[1] == "0" and int(state[2]) >= 1
            assert resp.content_type == "application/problem+json"
        else:
            assert resp.status == 200 and "Retry-After" not in resp.headers
    assert sample(h, "gateway_ratelimit_decisions_total", policy="read", outcome="limited") == 288


async def test_a_refusal_is_a_problem_with_retry_after_and_no_key(make_gateway):
    one_per_30s = {"read": {"requests": 1, "per_seconds": 30}}
    h = await make_gateway(ratelimit=ratelimit(per_key=one_per_30s))
    assert (await h.client.get("/v1/models", headers=AUTH)).status == 200
    resp = await h.client.get("/v1/models", headers=AUTH)
    body = await resp.json(content_type=None)
    assert resp.status == 429 and body["code"] == "rate_limited" and body["type"] == "about:blank"
    assert 29 <= int(resp.headers["Retry-After"]) <= 30
    assert resp.headers["RateLimit"] == '"read";r=0;t=30'
    shown = " ".join([str(body), resp.headers["RateLimit"], resp.headers["RateLimit-Policy"]])
    assert "acme-svc" not in shown and not any(s in shown for s in SECRETS)


async def test_every_v1_answer_carries_the_fields_errors_included(make_gateway):
    h = await make_gateway(
        ratelimit=ratelimit(per_key={"read": READ_LIMIT, "submit": {"requests": 5, "burst": 4}})
    )
    answers = {
        "list": await h.client.get("/v1/jobs", headers=AUTH),
        "unknown job": await h.client.get("/v1/jobs/job_nope", headers=AUTH),
        "bad page size": await h.client.get("/v1/jobs?page_size=x", headers=AUTH),
        "submit 422": await h.client.post("/v1/jobs", json={"model": "x"}, headers=AUTH),
    }
    for what, resp in answers.items():
        policy = "submit" if what.startswith("submit") else "read"
        assert resp.headers["RateLimit-Policy"].startswith(f'"{policy}";'), what
        assert resp.headers["RateLimit"].startswith(f'"{policy}";r='), what
    # Unauthenticated requests are not charged to anyone (the failed-auth limit guards them).
    assert "RateLimit" not in (await h.client.get("/v1/jobs")).headers
    assert "RateLimit" not in (await h.client.get("/healthz")).headers


async def test_submits_and_reads_have_separate_buckets(make_gateway):
    h = await make_gateway(
        ratelimit=ratelimit(
            per_key={"read": {"requests": 1, "per_seconds": 60}, "submit": {"requests": 100}}
        )
    )
    assert (await h.client.get("/v1/models", headers=AUTH)).status == 200
    assert (await h.client.get("/v1/models", headers=AUTH)).status == 429
    body = {"model": "sentiment", "inputs": [{"name": "a", "text": "fine"}]}
    assert (await h.client.post("/v1/jobs", json=body, headers=AUTH)).status == 202


async def test_keys_are_isolated(make_gateway, limiter_store, measured):
    """T-L3: key A's exhaustion leaves key B's allowed count unchanged (difference 0)."""
    store, clock, over = limiter_store
    h = await make_gateway(
        app_over={"buckets": store}, ratelimit=ratelimit(per_key={"read": READ_LIMIT}), **over
    )
    alone = sum(r.status == 200 for r in await fire(h, clock, 50, 0.0, headers=OTHER_AUTH))
    clock.now += 3600 * MICROS  # both buckets full again
    answers = []
    for _ in range(50):  # interleaved: A, B, A, B, ...
        for headers in (AUTH, OTHER_AUTH):
            resp = await h.client.get("/v1/models", headers=headers)
            answers.append((headers is AUTH, resp.status))
    a = sum(1 for is_a, status in answers if is_a and status == 200)
    b = sum(1 for is_a, status in answers if not is_a and status == 200)
    measured(f"T-L3 [{type(store).__name__}]: B alone {alone}, B beside A {b}, A {a}")
    assert alone == b == a == 11


async def test_a_tenant_limit_is_shared_by_its_keys(make_gateway):
    h = await make_gateway(
        ratelimit=ratelimit(
            per_key={"read": {"requests": 100, "burst": 99}},
            tenants={"acme": {"read": {"requests": 3, "per_seconds": 60, "burst": 2}}},
        )
    )
    statuses = [
        (await h.client.get("/v1/models", headers=hdrs)).status
        for hdrs in (AUTH, READ_AUTH, AUTH, READ_AUTH)
    ]
    assert statuses == [200, 200, 200, 429]
    # Another tenant is not touched; the refusal names the tenant policy.
    assert (await h.client.get("/v1/models", headers=OTHER_AUTH)).status == 200
    resp = await h.client.get("/v1/models", headers=AUTH)
    assert resp.headers["RateLimit-Policy"] == '"read";q=100;w=1, "tenant-read";q=3;w=60'
    assert re.fullmatch(r'"read";r=\d+;t=\d+, "tenant-read";r=0;t=\d+', resp.headers["RateLimit"])
    assert "tenant-read" in (await resp.json(content_type=None))["detail"]


async def test_key_overrides_replace_defaults_field_by_field(make_gateway):
    h = await make_gateway(
        ratelimit=ratelimit(
            per_key={"read": {"requests": 1, "per_seconds": 60}, "submit": {"requests": 1}},
            keys={"other-svc": {"read": {"requests": 50, "burst": 49}}},
        )
    )
    other = [(await h.client.get("/v1/models", headers=OTHER_AUTH)).status for _ in range(5)]
    acme = [(await h.client.get("/v1/models", headers=AUTH)).status for _ in range(2)]
    assert other == [200] * 5 and acme == [200, 429]
    resp = await h.client.get("/v1/jobs", headers=OTHER_AUTH)
    assert resp.headers["RateLimit-Policy"] == '"read";q=50;w=1'


async def test_shadow_mode_refuses_nothing_and_counts_what_it_would_have(
    make_gateway, limiter_store, measured
):
    """T-L8: with shadow on, 0 refusals; the would-be count equals T-L1's refusals (288)."""
    store, clock, over = limiter_store
    h = await make_gateway(
        app_over={"buckets": store},
        ratelimit=ratelimit(per_key={"read": READ_LIMIT}, shadow=True),
        **over,
    )
    answers = await fire(h, clock, 300, 1.0)
    shadowed = sample(
        h, "gateway_ratelimit_decisions_total", policy="read", outcome="shadow_limited"
    )
    measured(
        f"T-L8 [{type(store).__name__}]: refused {sum(r.status == 429 for r in answers)}, "
        f"would have refused {shadowed:g}"
    )
    assert all(r.status == 200 for r in answers)
    assert shadowed == 288
    assert sample(h, "gateway_ratelimit_decisions_total", policy="read", outcome="limited") == 0


# -- concurrent jobs (T-L9) and the daily spend guard (T-R7) ----------------------------------


def slow_modzy() -> Any:
    """Jobs that run until cancelled (an hour of queue) or until their own timeout."""
    return create_simulator(None, SimSettings(queue_seconds=3600, item_seconds=0.01))


def job(name: str = "a", timeout_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "sentiment", "inputs": [{"name": name, "text": "fine"}]}
    if timeout_ms is not None:  # Modzy ends the job as TIMEDOUT: it fails
        body["options"] = {"provider": {"timeout": timeout_ms}}
    return body


async def test_the_sixth_unfinished_job_is_refused_until_one_finishes(make_gateway):
    h = await make_gateway(
        sim_apps={"modzy": slow_modzy()}, ratelimit=ratelimit(per_key={"concurrent_jobs": 5})
    )
    ids = []
    for i in range(5):
        resp = await h.client.post("/v1/jobs", json=job(f"i{i}"), headers=AUTH)
        assert resp.status == 202
        ids.append((await resp.json())["id"])
    resp = await h.client.post("/v1/jobs", json=job("i5"), headers=AUTH)
    body = await resp.json(content_type=None)
    assert resp.status == 429 and body["code"] == "concurrency_limited", body
    assert body["type"] != "about:blank" and int(resp.headers["Retry-After"]) >= 1
    # Another credential of the same tenant has slots of its own.
    assert (await h.client.post("/v1/jobs", json=job(), headers=OTHER_AUTH)).status == 202
    # A job that finishes (here: is cancelled) gives its slot back.
    assert (await h.client.delete(f"/v1/jobs/{ids[0]}", headers=AUTH)).status == 200
    assert (await h.client.post("/v1/jobs", json=job("i6"), headers=AUTH)).status == 202
    assert (await h.client.post("/v1/jobs", json=job("i7"), headers=AUTH)).status == 429


async def test_a_job_seen_finished_by_a_read_gives_its_slot_back(make_gateway):
    h = await make_gateway(ratelimit=ratelimit(per_key={"concurrent_jobs": 1}))
    first = await (await h.client.post("/v1/jobs", json=job(), headers=AUTH)).json()
    assert (await h.client.post("/v1/jobs", json=job(), headers=AUTH)).status == 429
    done = await h.client.get(f"/v1/jobs/{first['id']}", headers={**AUTH, "Prefer": "wait=5"})
    assert (await done.json())["done"]
    assert (await h.client.post("/v1/jobs", json=job(), headers=AUTH)).status == 202


async def test_random_submit_cancel_fail_cycles_leak_no_slot(make_gateway, redis_url, measured):
    """T-L9: 1,000 random submits, cancels, provider failures and failing jobs on the Redis
    counters; once every job has ended, the slot count is back to 0."""
    async with fresh_redis(redis_url) as client:
        h = await make_gateway(
            sim_apps={"modzy": slow_modzy()},
            app_over={"redis": client},
            redis={"prefix": client.test_prefix},
            ratelimit=ratelimit(per_key={"concurrent_jobs": 5}),
        )
        limits = h.app[JOBS]._limits
        assert limits is not None
        rng = random.Random(9)
        running: list[str] = []
        outcomes: dict[str, int] = {}
        for _ in range(1000):
            op = rng.choice(["submit", "submit", "cancel", "provider_down", "failing_job"])
            if op == "cancel" and not running:
                op = "submit"
            if op == "cancel":
                job_id = running.pop(rng.randrange(len(running)))
                resp = await h.client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
            elif op == "provider_down":
                h.sim.set_faults([Fault(kind="status", status=500, match="POST", times=1)])
                resp = await h.client.post("/v1/jobs", json=job(), headers=AUTH)
                h.sim.clear_faults()
            elif op == "failing_job":
                resp = await h.client.post("/v1/jobs", json=job(timeout_ms=1), headers=AUTH)
                if resp.status == 202:
                    failed = await resp.json()
                    read = await h.client.get(
                        f"/v1/jobs/{failed['id']}", headers={**AUTH, "Prefer": "wait=5"}
                    )
                    assert (await read.json())["status"] == "failed"
            else:
                resp = await h.client.post("/v1/jobs", json=job(), headers=AUTH)
                if resp.status == 202:
                    running.append((await resp.json())["id"])
            outcomes[f"{op} {resp.status}"] = outcomes.get(f"{op} {resp.status}", 0) + 1
            in_use = await limits.slots_in_use("acme", "acme-svc")
            assert in_use == len(running), (op, resp.status, in_use, running)
        for job_id in running:
            assert (await h.client.delete(f"/v1/jobs/{job_id}", headers=AUTH)).status == 200
        left = await limits.slots_in_use("acme", "acme-svc")
        measured(f"T-L9: outcomes {dict(sorted(outcomes.items()))}; slots left {left}")
        assert left == 0
        assert outcomes.get("submit 429", 0) > 0 and outcomes.get("provider_down 502", 0) > 0


async def test_an_exhausted_daily_quota_sends_nothing_to_the_provider(make_gateway):
    """T-R7: past the tenant's jobs for the day, submits get 429 quota_exceeded and the
    provider sees no new job; a submit the provider refused does not use up the quota."""
    h = await make_gateway(
        ratelimit=ratelimit(daily_jobs={"tenants": {"acme": {"modzy": 3}}, "default": 100})
    )
    h.sim.set_faults([Fault(kind="status", status=400, match="POST", times=1)])
    assert (await h.client.post("/v1/jobs", json=job(), headers=AUTH)).status == 422
    statuses = [
        (await h.client.post("/v1/jobs", json=job(), headers=AUTH)).status for _ in range(3)
    ]
    assert statuses == [202] * 3
    submits_before = h.sim.count("POST", "/api/jobs")
    resp = await h.client.post("/v1/jobs", json=job(), headers=AUTH)
    body = await resp.json(content_type=None)
    assert resp.status == 429 and body["code"] == "quota_exceeded", body
    assert body["type"] != "about:blank"
    assert 1 <= int(resp.headers["Retry-After"]) <= 86_400
    assert h.sim.count("POST", "/api/jobs") == submits_before
    # Another tenant has its own (default) quota.
    assert (await h.client.post("/v1/jobs", json=job(), headers=OTHER_AUTH)).status == 202
    assert sample(h, "gateway_ratelimit_decisions_total", policy="daily_jobs", outcome="limited")


async def test_remaining_never_exceeds_the_quota_with_a_burst_larger_than_the_rate(
    make_gateway,
):
    """Issue 15: 1000/s with a burst of 2000 once answered ``q=1000`` with ``r=2000``."""
    h = await make_gateway(
        ratelimit=ratelimit(per_key={"read": {"requests": 1000, "per_seconds": 1, "burst": 2000}})
    )
    resp = await h.client.get("/v1/models", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["RateLimit-Policy"] == '"read";q=1000;w=1'
    state = re.fullmatch(r'"read";r=(\d+);t=\d+', resp.headers["RateLimit"])
    assert state is not None and int(state[1]) == 1000, resp.headers["RateLimit"]
