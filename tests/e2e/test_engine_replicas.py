"""The job engine across three ``gateway serve`` replicas sharing one Redis.

Hundreds of jobs are submitted and never read: each must finish, have its results
fetched once into the cache, give its concurrent-jobs slot back and have its webhook
delivered (verified with the official ``standardwebhooks`` package), with no client
reading it, also when one replica is killed with SIGKILL halfway through; and the
provider must never see one job checked twice within one check interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.e2e.client import Api, job_body
from tests.e2e.replicas import REPLICAS, Cluster, RedisServer, Simulators

JOBS = 500
#: Checks at least this far apart: a second check of a job sooner than this would be a
#: second replica checking it in the same interval.
INITIAL_POLL = 0.5
ENGINE_ENV = {
    "GATEWAY_ENGINE__ENABLED": "true",
    "GATEWAY_ENGINE__LEASE_SECONDS": "3",
    "GATEWAY_ENGINE__MAX_STALENESS_SECONDS": "60",
    "GATEWAY_ENGINE__SWEEP_SECONDS": "5",
}
POLL = {"modzy": {"poll": {"initial_seconds": INITIAL_POLL, "max_seconds": 2, "factor": 2}}}


@pytest.fixture
def engine_cluster(
    redis_server: RedisServer, simulators: Simulators, tmp_path: Path
) -> Iterator[Callable[[], Cluster]]:
    started: list[Cluster] = []

    def start(env: dict[str, str] | None = None) -> Cluster:
        redis_server.ensure_running()
        simulators.clear_faults()
        simulators.reset_requests()
        c = Cluster(
            redis_server,
            simulators,
            tmp_path,
            prefix=f"t{uuid.uuid4().hex[:12]}",
            env={**ENGINE_ENV, **(env or {})},
            providers=POLL,
        )
        started.append(c)
        c.start(REPLICAS)
        return c

    yield start
    for c in started:
        c.close()


#: The demo configuration's published signing secret (config/demo.yaml).
DEMO_WEBHOOK_SECRET = "whsec_ZGVtby13ZWJob29rLXNlY3JldC1wdWJsaXNoZWQtaW4tdGhlLVJFQURNRQ=="


class Receiver:
    """A webhook receiver in the test process; it verifies every delivery as it comes."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.bad: list[str] = []
        self.all_in = asyncio.Event()
        self.server = TestServer(self._app(), host="127.0.0.1")

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            payload = Webhook(DEMO_WEBHOOK_SECRET).verify(raw, dict(request.headers))
        except WebhookVerificationError as exc:
            self.bad.append(str(exc))
            return web.Response(status=400)
        assert payload["type"] == "job.succeeded", payload
        self.ids.append(request.headers["webhook-id"])
        if len(set(self.ids)) >= JOBS:
            self.all_in.set()
        return web.Response(status=204)


async def submit_all(api: Api, n: int, hook: str) -> list[str]:
    limit = asyncio.Semaphore(24)

    async def one(i: int) -> str:
        body = {**job_body(2, tag=f"e{i}-"), "webhook_url": hook}
        while True:
            async with limit:
                answer = await api.call("POST", i, "/v1/jobs", body=body)
            if answer.status != 429:
                break
            # The demo key's submit rate (config/demo.yaml): back off as a client would.
            await asyncio.sleep(float(answer.headers["Retry-After"]))
        assert answer.status == 202, answer
        job_id: str = answer.body["id"]
        return job_id

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def upstream_ids(cluster: Cluster, ids: list[str]) -> dict[str, str]:
    """Job id → the provider's id, read from Redis (not through a replica: no reads)."""
    with cluster.redis.client() as r:
        raws = r.mget([f"{cluster.prefix}:job:{job_id}" for job_id in ids])
    found = {}
    for job_id, raw in zip(ids, raws, strict=True):
        assert raw is not None, job_id
        found[job_id] = json.loads(raw)
    return {job_id: rec["upstream_id"] for job_id, rec in found.items()}


def records(cluster: Cluster, ids: list[str]) -> list[dict[str, Any]]:
    with cluster.redis.client() as r:
        raws = r.mget([f"{cluster.prefix}:job:{job_id}" for job_id in ids])
    return [json.loads(raw) for raw in raws if raw is not None]


def wait_all_done(cluster: Cluster, ids: list[str], seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        found = records(cluster, ids)
        done = [r for r in found if r["status"] in ("succeeded", "partially_succeeded", "failed")]
        if len(done) == len(ids):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{len(ids) - len(done)} of {len(ids)} jobs never finished on their own")
        time.sleep(0.2)


def checks_per_job(cluster: Cluster, upstream: dict[str, str]) -> dict[str, list[float]]:
    """The times each provider job's status was read, from the simulator's log."""
    log = cluster.sims.requests(limit=100_000)
    by_upstream: dict[str, list[float]] = defaultdict(list)
    for r in log:
        if r["method"] == "GET" and r["path"].startswith("/modzy/api/jobs/"):
            by_upstream[r["path"].rsplit("/", 1)[-1]].append(float(r["at"]))
    return {job_id: sorted(by_upstream[u]) for job_id, u in upstream.items()}


async def run(cluster: Cluster, kill_one: bool, measured: Callable[[str], None]) -> None:
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        await _run(cluster, kill_one, measured, receiver)
    finally:
        await receiver.server.close()


async def _run(
    cluster: Cluster, kill_one: bool, measured: Callable[[str], None], receiver: Receiver
) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, cluster.urls)
        started = time.monotonic()
        ids = await submit_all(api, JOBS, str(receiver.server.make_url("/hook")))
        if kill_one:
            await asyncio.sleep(1.0)  # the replicas are busy with checks now
            cluster.gateways[1].kill()
        found = await asyncio.to_thread(wait_all_done, cluster, ids, 90)
        took = time.monotonic() - started
        assert {r["status"] for r in found} == {"succeeded"}
        await asyncio.sleep(1.0)  # the last finishers' results fetches
        upstream = upstream_ids(cluster, ids)
        log = cluster.sims.requests(limit=100_000)
        results_fetches: defaultdict[str, int] = defaultdict(int)
        for r in log:
            if r["method"] == "GET" and r["path"].startswith("/modzy/api/results/"):
                results_fetches[r["path"].rsplit("/", 1)[-1]] += 1
        # Every job's results were fetched by the engine, once (a killed replica may
        # have fetched one whose cache write it never made: then twice at most).
        fetched = [results_fetches[upstream[j]] for j in ids]
        assert min(fetched) >= 1
        assert max(fetched) <= (2 if kill_one else 1), max(fetched)
        checks = checks_per_job(cluster, upstream)
        gaps = [b - a for times in checks.values() for a, b in itertools.pairwise(times)]
        polls = [len(t) for t in checks.values()]
        measured(
            f"engine over {REPLICAS} replicas{' (one killed)' if kill_one else ''}: {JOBS} jobs "
            f"never read, all finished in {took:.1f} s; status checks per job "
            f"min {min(polls)} / max {max(polls)} / mean {sum(polls) / len(polls):.1f}; "
            f"shortest gap between two checks of one job {min(gaps):.3f} s "
            f"(first interval {INITIAL_POLL} s); results fetches per job max {max(fetched)}"
        )
        # Never two checks of one job in the same interval (with 10 % for timer slack).
        assert min(gaps) >= INITIAL_POLL * 0.9, min(gaps)
        # Now every read is answered from state: no provider call for any of them.
        before = len(cluster.sims.requests(limit=100_000))
        alive = [0, 2] if kill_one else [0, 1, 2]
        for i, job_id in enumerate(ids[:50]):
            answer = await api.call("GET", alive[i % len(alive)], f"/v1/jobs/{job_id}/results")
            assert answer.status == 200, answer
            assert answer.headers["Cache-Status"].endswith("hit")
        assert len(cluster.sims.requests(limit=100_000)) == before
        # Every webhook arrived, signed right (at least once: a kill may repeat one).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.all_in.wait(), 20)
        assert not receiver.bad
        assert set(receiver.ids) == {f"msg_{job_id}" for job_id in ids}
        if not kill_one:
            assert len(receiver.ids) == JOBS
        measured(
            f"engine webhooks: {len(set(receiver.ids))} of {JOBS} delivered and verified with "
            f"standardwebhooks, {len(receiver.ids) - len(set(receiver.ids))} repeated"
        )
        # Every slot came back: the tenant may have as many unfinished jobs as it likes.
        with cluster.redis.client() as r:
            slots = [k for k in r.scan_iter(match=f"{cluster.prefix}:slots:*")]
            assert all(r.zcard(k) == 0 for k in slots)
            assert r.zcard(f"{cluster.prefix}:trk:{{engine}}") == 0


async def test_jobs_nobody_reads_all_finish_on_three_replicas(engine_cluster, measured):
    await run(engine_cluster(), kill_one=False, measured=measured)


async def test_a_killed_replica_loses_no_job(engine_cluster, measured):
    await run(engine_cluster(), kill_one=True, measured=measured)


async def test_a_replica_stopped_with_sigterm_hands_its_checks_back(engine_cluster, measured):
    """SIGTERM mid-run: the replica finishes or hands back what it holds and exits in
    time; no job waits for a lease (30 s here) to be checked again on another replica."""
    cluster = engine_cluster(
        {"GATEWAY_ENGINE__LEASE_SECONDS": "30", "GATEWAY_ENGINE__SHUTDOWN_GRACE_SECONDS": "2"}
    )
    jobs = 150
    async with aiohttp.ClientSession() as session:
        api = Api(session, cluster.urls)
        limit = asyncio.Semaphore(24)

        async def one(i: int) -> str:
            async with limit:
                answer = await api.call("POST", i, "/v1/jobs", body=job_body(2, tag=f"s{i}-"))
            assert answer.status == 202, answer
            job_id: str = answer.body["id"]
            return job_id

        ids = list(await asyncio.gather(*(one(i) for i in range(jobs))))
    await asyncio.sleep(1.0)  # every replica holds checks now
    stopping = cluster.gateways[1]
    began = time.monotonic()
    code = await asyncio.to_thread(stopping.stop)
    took = time.monotonic() - began
    # shutdown_timeout (2 s) + the engine's grace (2 s), with room for a busy machine.
    assert code == 0, [r for r in stopping.log_records() if r.get("event") != "request"]
    assert took < 8, took
    closed = [r for r in stopping.log_records() if r.get("event") == "engine_worker_closed"]
    assert closed, stopping.process.tail()
    # Well before any lease could lapse, every job has finished on the other two.
    found = await asyncio.to_thread(wait_all_done, cluster, ids, 20)
    assert {r["status"] for r in found} == {"succeeded"}
    checks = checks_per_job(cluster, upstream_ids(cluster, ids))
    gaps = [b - a for times in checks.values() for a, b in itertools.pairwise(times)]
    measured(
        f"engine SIGTERM of 1 of {REPLICAS} replicas: exited 0 in {took:.1f} s, handed back "
        f"{closed[0]['handed_back']} checks, cut off {closed[0]['cut_off']}; {jobs} jobs all "
        f"finished; longest gap between two checks of one job {max(gaps):.1f} s (lease 30 s)"
    )
    assert max(gaps) < 10, max(gaps)
