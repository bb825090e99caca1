"""An idempotent submit cut by its replica's death (issue 19 point 4), over real processes.

Replica 1 takes an ``Idempotency-Key`` and a concurrent-jobs slot, and is SIGKILLed
while the provider is still answering its submit. The caller retries on replica 2: it
is told 409 while the dead replica's lease runs, then its retry is submitted afresh,
within seconds (before leases, 409 for two minutes). The credential may hold one
unfinished job only, so the retry's 202 also proves the dead submit's slot came back
(before, it stayed taken for ``slot_ttl_seconds``, six hours).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.client import Answer, Api, job_body
from tests.e2e.replicas import Cluster, RedisServer, Simulators

pytestmark = pytest.mark.redis

LEASE = 2.0


@pytest.fixture
def leased(redis_server: RedisServer, simulators: Simulators, tmp_path: Path) -> Iterator[Cluster]:
    redis_server.ensure_running()
    simulators.clear_faults()
    simulators.reset_requests()
    c = Cluster(
        redis_server,
        simulators,
        tmp_path,
        prefix=f"t{uuid.uuid4().hex[:12]}",
        env={
            "GATEWAY_SUBMIT_LEASE_SECONDS": str(LEASE),
            "GATEWAY_RATELIMIT__PER_KEY__CONCURRENT_JOBS": "1",
        },
    )
    try:
        c.start(2)
        yield c
    finally:
        c.close()
        simulators.clear_faults()


@pytest.fixture
async def api(leased: Cluster) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, leased.urls)


async def test_a_retry_after_the_replica_died_mid_submit_is_answered_within_seconds(
    leased: Cluster, api: Api, measured
):
    key = {"Idempotency-Key": f"crash-{uuid.uuid4().hex[:8]}"}
    body = job_body(1, tag="crash-")
    # The provider takes 8 s over the first submit it gets: replica 1 dies meanwhile.
    leased.sims.set_faults([{"kind": "latency", "seconds": 8, "match": "POST", "times": 1}])
    cut = asyncio.ensure_future(api.call("POST", 0, "/v1/jobs", body=body, headers=key))
    deadline = time.monotonic() + 10
    while not any(r["method"] == "POST" for r in leased.sims.requests()):
        assert time.monotonic() < deadline, "the first submit never reached the provider"
        await asyncio.sleep(0.05)
    await asyncio.sleep(LEASE)  # long enough for a renewal or two of its lease
    leased.gateways[0].kill()
    killed = time.monotonic()
    with pytest.raises(aiohttp.ClientError):
        await cut

    answers: list[Answer] = []
    while True:
        answer = await api.call("POST", 1, "/v1/jobs", body=body, headers=key)
        answers.append(answer)
        if answer.status not in (409, 429):
            break
        assert time.monotonic() - killed < 10, [a.status for a in answers]
        await asyncio.sleep(0.2)
    waited = time.monotonic() - killed
    measured(
        f"idempotent retry after SIGKILL mid-submit: answered {answer.status} "
        f"{waited:.1f} s after the kill (lease {LEASE} s); earlier answers "
        f"{sorted({a.status for a in answers[:-1]})}"
    )
    assert answer.status == 202, answer
    assert waited < 10
    # Until the lease lapsed the key was still the dead request's.
    assert answers[0].status == 409, answers[0]
    # The key now names the retry's job: a replay on either replica answers it.
    replay = await api.call("POST", 1, "/v1/jobs", body=body, headers=key)
    assert (replay.status, replay.body["id"]) == (200, answer.body["id"])
