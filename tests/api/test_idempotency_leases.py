"""A submit in flight holds its Idempotency-Key and job slot under a lease (issue 19 point 4).

Over real HTTP and a real Redis. What a replica that died mid-submit leaves behind is
written into Redis as that replica would have left it; the e2e suite
(``tests/e2e/test_idempotency_crash.py``) SIGKILLs a real one.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from adapters.simulation import Fault
from gateway.limits.ratelimit import hashed
from gateway.state.keyspace import Keyspace
from tests.api.test_jobs_api import problem, submit, text_inputs
from tests.conftest import Harness

pytestmark = pytest.mark.redis

BODY = {"model": "sentiment", "inputs": text_inputs()}
LEASE = 0.6


async def gateway(make_gateway: Any, redis_url: str, prefix: str, **over: Any) -> Harness:
    h: Harness = await make_gateway(
        ["modzy"],
        redis={"url": redis_url, "prefix": prefix},
        submit_lease_seconds=LEASE,
        **over,
    )
    return h


async def test_a_retry_after_the_owner_died_having_recorded_its_job_replays_it(
    make_gateway, redis_url, redis_client
):
    """The owner recorded its job and died before naming it in the key: once its lease
    lapses, a retry finds the record and answers it (200), submitting nothing."""
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix)
    first = await submit(h, BODY, extra={"Idempotency-Key": "order-1"})
    job = await first.json()
    assert first.status == 202
    # Back to what a replica that died between recording and completing leaves behind.
    name = Keyspace(redis_client.test_prefix).idempotency("acme", "order-1")
    entry = json.loads(await redis_client.get(name))
    assert entry["job"] == entry["owner"] == job["id"]
    await redis_client.set(name, json.dumps({**entry, "job": None, "lease": 0}), ex=60)

    again = await submit(h, BODY, extra={"Idempotency-Key": "order-1"})
    assert again.status == 200
    assert (await again.json())["id"] == job["id"]
    assert h.sim.count("POST") == 1
    assert json.loads(await redis_client.get(name))["job"] == job["id"]


async def test_a_retry_while_the_owner_renews_its_lease_is_a_conflict(
    make_gateway, redis_url, redis_client
):
    """A slow provider submit outlives several leases: the key stays the owner's."""
    h = await gateway(make_gateway, redis_url, redis_client.test_prefix)
    h.sim.set_faults([Fault(kind="latency", seconds=LEASE * 4, match="POST", times=1)])
    first = asyncio.ensure_future(submit(h, BODY, extra={"Idempotency-Key": "slow"}))
    await asyncio.sleep(LEASE * 2)
    await problem(await submit(h, BODY, extra={"Idempotency-Key": "slow"}), 409, "conflict")
    assert (await first).status == 202
    assert h.sim.count("POST") == 1


async def test_a_submits_slot_is_leased_until_its_job_is_recorded(
    make_gateway, redis_url, redis_client
):
    """While the provider answers, the slot is held a lease at a time (renewed); once
    the job is recorded it is held for slot_ttl_seconds."""
    h = await gateway(
        make_gateway,
        redis_url,
        redis_client.test_prefix,
        ratelimit={"per_key": {"concurrent_jobs": 1}},
    )
    h.sim.set_faults([Fault(kind="latency", seconds=LEASE * 3, match="POST", times=1)])
    first = asyncio.ensure_future(submit(h, BODY))
    slots = Keyspace(redis_client.test_prefix).job_slots("acme", f"k{hashed('acme-svc')}")

    async def held_for() -> float:
        members = await redis_client.zrange(slots, 0, -1, withscores=True)
        assert len(members) == 1, members
        now_ms = time.time() * 1000
        return (members[0][1] - now_ms) / 1000

    await asyncio.sleep(LEASE * 2)  # past the first lease: renewed, still held
    assert 0 < await held_for() <= LEASE
    await problem(await submit(h, BODY), 429, "concurrency_limited")
    assert (await first).status == 202
    assert await held_for() > 3600  # slot_ttl_seconds: 6 h by default
