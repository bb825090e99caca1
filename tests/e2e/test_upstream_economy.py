"""Upstream economy across gateway processes (issue 17): the item cache and a fallback
alias, with two ``gateway serve`` replicas sharing one Redis and the demo's simulators.

The one-process suites (tests/api/test_item_cache.py, test_fallback.py) cover every
rule; this one proves what must hold between processes: an answer paid for through one
replica is not paid for again through the other, and with the primary provider of a
fallback alias refusing every submit, submits on either replica are served by the
backup, counted at both simulators and in each replica's metrics.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.client import Api
from tests.e2e.replicas import Cluster, RedisServer, Simulators

pytestmark = pytest.mark.redis

WAIT = {"Prefer": "wait=15"}


@pytest.fixture(scope="module")
def pair(
    redis_server: RedisServer, simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two replicas with the demo's item caches kept, shared by this module's tests
    (each counts its own texts and clears its faults: starting replicas is the cost)."""
    redis_server.ensure_running()
    for ptype in ("modzy", "modzy-backup"):
        simulators.clear_faults(ptype)
        simulators.reset_requests(ptype)
    workdir = tmp_path_factory.mktemp("economy")
    c = Cluster(
        redis_server, simulators, workdir, prefix=f"t{uuid.uuid4().hex[:12]}", item_cache=True
    )
    try:
        c.start(2)
        yield c
    finally:
        c.close()
        for ptype in ("modzy", "modzy-backup"):
            simulators.clear_faults(ptype)


@pytest.fixture
async def api(pair: Cluster) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, pair.urls)


def submits(sims: Simulators, ptype: str) -> list[str]:
    """The paths of the submits the simulator received."""
    return [r["path"] for r in sims.requests(ptype) if r["method"] == "POST"]


async def metric(api: Api, replica: int, name: str, **labels: str) -> float:
    answer = await api.call("GET", replica, "/metrics")
    assert answer.status == 200
    total = 0.0
    for family in text_string_to_metric_families(answer.body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def finished(api: Api, replica: int, body: dict[str, object]) -> dict[str, object]:
    answer = await api.call("POST", replica, "/v1/jobs", body=body, headers=WAIT)
    assert answer.status in (200, 202), answer
    job = answer.body
    while not job["done"]:
        answer = await api.call("GET", replica, f"/v1/jobs/{job['id']}", headers=WAIT)
        job = answer.body
    return dict(job)


async def test_an_answer_paid_for_through_one_replica_is_free_through_the_other(
    api: Api, pair: Cluster
):
    text = f"Paid for once {uuid.uuid4().hex}"
    inputs = [{"name": "a", "text": text}, {"name": "b", "text": text}]  # a repeat, too
    first = await finished(api, 0, {"model": "sentiment", "inputs": inputs})
    assert first["status"] == "succeeded", first
    assert len(submits(pair.sims, "modzy")) == 1

    # The other process, the same text under another name: finished at submit.
    answer = await api.call(
        "POST", 1, "/v1/jobs", body={"model": "sentiment", "inputs": [{"name": "z", "text": text}]}
    )
    assert (answer.status, answer.body["status"], answer.body["done"]) == (202, "succeeded", True)
    assert len(submits(pair.sims, "modzy")) == 1  # the provider saw nothing new
    page = await api.call("GET", 1, f"/v1/jobs/{answer.body['id']}/results")
    assert page.body["items"][0]["cached"] is True
    assert await metric(api, 0, "gateway_item_cache_requests_total", result="repeat") == 1
    assert await metric(api, 1, "gateway_item_cache_requests_total", result="hit") == 1


async def test_a_refusing_primary_is_passed_over_on_every_replica(api: Api, pair: Cluster):
    pair.sims.set_faults([{"kind": "status", "status": 503, "match": "POST"}], "modzy")
    pair.sims.reset_requests("modzy-backup")
    jobs = await asyncio.gather(
        *(
            finished(
                api,
                replica,
                {"model": "sentiment-ha", "inputs": [{"name": "a", "text": uuid.uuid4().hex}]},
            )
            for replica in (0, 1, 0, 1)
        )
    )
    for job in jobs:
        assert (job["status"], job["provider"], job["alias"]) == (
            "succeeded",
            "modzy-backup",
            "sentiment-ha",
        ), job
    assert len(submits(pair.sims, "modzy-backup")) == 4
    for replica in (0, 1):
        assert (
            await metric(
                api,
                replica,
                "gateway_fallbacks_total",
                alias="sentiment-ha",
                to="modzy-backup/ed542963de@1.0.1",
            )
            >= 1
        )
