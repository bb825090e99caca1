"""``redis.mode: cluster``: two gateway apps over a real three-master Redis Cluster.

Each app gets the URL of one node only (redis-py's ``RedisCluster`` discovers the
rest), and every Redis-backed feature runs over real HTTP against the Modzy simulator:
the job store and its listing index, the shared result cache, idempotency keys,
coalescing leases, the caller limits (a key's and its tenant's GCRA buckets in one
script), the concurrent-jobs slots and the daily quota, and the provider pacing. A
command or script whose keys span two hash slots would fail here (CROSSSLOT), and the
keys must really be spread over the nodes.

The cluster client itself (``gateway.state.redis_cluster``) keeps the standalone client's
promises: a burst past ``max_connections`` waits instead of failing, and a hung node
costs a command one socket timeout (on a cluster of its own, paused with SIGSTOP).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy import PROVIDER_TYPE as MODZY
from adapters.modzy.simulator import SimSettings, create_simulator
from adapters.simulation import SIM_CONTROL, SimulatorControl
from gateway.config.settings import Settings
from gateway.http.app import create_app
from gateway.limits.settings import RateLimitSettings
from gateway.state.backends import redis_client
from gateway.state.settings import RedisSettings
from tests.api.test_jobs_api import problem
from tests.api.test_shared_state_api import BODY
from tests.conftest import AUTH, OTHER_AUTH, READ_AUTH, make_settings, provider_settings
from tests.redis_cluster import RedisClusterServers

pytestmark = pytest.mark.redis

SOFT_FAILURES = {
    "gateway_redis_errors",
    "gateway_cache_errors",
    "gateway_ratelimit_backend_errors",
    "gateway_ratelimit_fallback",
    "gateway_upstream_pacing_fallback",
}

LIMITS = RateLimitSettings.model_validate(
    {
        # The reader key: two reads a minute. Every read also charges its tenant's
        # bucket (roomy) in the same script: two keys, one hash slot ({acme}).
        "keys": {
            "acme-reader": {"read": {"requests": 1, "per_seconds": 60, "burst": 1}},
            "other-svc": {"concurrent_jobs": 1},
        },
        "per_tenant": {"read": {"requests": 1000, "burst": 100}},
        "daily_jobs": {"default": 1000},
    }
)


@dataclass
class OnCluster:
    a: TestClient[Any, Any]
    b: TestClient[Any, Any]
    sim: SimulatorControl
    prefix: str
    node_ports: list[int]
    registries: list[CollectorRegistry]

    def failures(self) -> dict[str, float]:
        """Every Redis error or fallback the replicas counted (a soft failure, such as a
        CROSSSLOT refusal in a cache or limit path, would only show here)."""
        out: dict[str, float] = {}
        for registry in self.registries:
            for family in registry.collect():
                if family.name.removesuffix("_total") in SOFT_FAILURES:
                    for sample in family.samples:
                        if sample.name.endswith("_total") and sample.value:
                            out[f"{sample.name}{sample.labels}"] = sample.value
        return out


@pytest.fixture
async def on_cluster(redis_cluster_url: str) -> AsyncIterator[OnCluster]:
    sim_app = create_simulator(None, SimSettings(queue_seconds=0.0, item_seconds=0.05))
    sim = TestServer(sim_app, host="127.0.0.1")
    await sim.start_server()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        [
            provider_settings(
                "modzy",
                "modzy",
                str(sim.make_url(MODZY.base_path)).rstrip("/"),
                pacing={"requests": 1000, "burst": 100},
            )
        ],
        redis=RedisSettings(url=redis_cluster_url, mode="cluster", prefix=prefix, socket_timeout=3),
        ratelimit=LIMITS,
        status_cache_seconds=1.0,
    )
    clients, registries = [], []
    for _ in range(2):
        registry = CollectorRegistry()
        client = TestClient(TestServer(create_app(settings, registry=registry)))
        await client.start_server()
        clients.append(client)
        registries.append(registry)
    with redis.RedisCluster.from_url(redis_cluster_url) as c:
        ports = sorted(n.port for n in c.get_primaries())
    try:
        yield OnCluster(clients[0], clients[1], sim_app[SIM_CONTROL], prefix, ports, registries)
    finally:
        for client in clients:
            await client.close()  # closes the app's RedisCluster client too
        await sim.close()
        with redis.RedisCluster.from_url(redis_cluster_url) as c:
            keys = list(c.scan_iter(match=f"{prefix}:*"))
            if keys:
                c.delete(*keys)


def keys_per_node(ports: list[int], prefix: str) -> dict[int, list[str]]:
    found = {}
    for port in ports:
        with redis.Redis(port=port, socket_timeout=2) as node:
            found[port] = [k.decode() for k in node.scan_iter(match=f"{prefix}:*")]
    return found


async def done(client: TestClient[Any, Any], job_id: str, headers=AUTH) -> dict[str, Any]:
    resp = await client.get(f"/v1/jobs/{job_id}", headers={**headers, "Prefer": "wait=10"})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200 and body["done"], body
    return body


class TestRedisCluster:
    async def test_every_shared_feature_works_across_the_clusters_nodes(self, on_cluster):
        c = on_cluster
        a, b = c.a, c.b
        ready = await a.get("/readyz")
        assert ready.status == 200, await ready.text()
        # Every master is asked what it keeps (these keep nothing on disk).
        persistence = (await ready.json())["details"]["redis"]
        assert persistence["checked"] == "cluster masters" and persistence["servers"] == 3
        assert persistence["persistence"] == "none", persistence

        # Submit on one replica, read on the other: the record and the tenant's index.
        ids = []
        for _ in range(3):
            resp = await a.post("/v1/jobs", json=BODY, headers=AUTH)
            assert resp.status == 202, await resp.text()
            ids.append((await resp.json())["id"])
        for job_id in ids:
            assert (await done(b, job_id))["status"] == "succeeded"
        listed = await (await b.get("/v1/jobs?page_size=2", headers=AUTH)).json()
        assert [j["id"] for j in listed["jobs"]] == ids[::-1][:2]
        token = listed["next_page_token"]
        rest = await b.get(f"/v1/jobs?page_size=2&page_token={token}", headers=AUTH)
        assert [j["id"] for j in (await rest.json())["jobs"]] == ids[:1]
        await problem(await b.get(f"/v1/jobs/{ids[0]}", headers=OTHER_AUTH), 404, "not_found")

        # Results: fetched from the provider once, then from the shared cache on the
        # other replica (which has never seen them in its own memory).
        first = await a.get(f"/v1/jobs/{ids[0]}/results", headers=AUTH)
        assert first.status == 200
        fetched = c.sim.count("GET", "/api/results/")
        again = await b.get(f"/v1/jobs/{ids[0]}/results", headers=AUTH)
        assert again.headers["Cache-Status"] == "gateway; hit"
        assert await again.json() == await first.json()
        assert c.sim.count("GET", "/api/results/") == fetched

        # Idempotent replay across replicas; a different body under the same key is refused.
        headers = {**AUTH, "Idempotency-Key": "order-1"}
        one = await a.post("/v1/jobs", json=BODY, headers=headers)
        two = await b.post("/v1/jobs", json=BODY, headers=headers)
        assert (one.status, two.status) == (202, 200)
        assert (await one.json())["id"] == (await two.json())["id"]
        other_body = {**BODY, "metadata": {"x": "y"}}
        await problem(
            await b.post("/v1/jobs", json=other_body, headers=headers),
            422,
            "idempotency_key_reused",
        )

        # A rate-limited read: the reader key has two reads a minute, on both replicas.
        statuses = [
            (await client.get("/v1/jobs", headers=READ_AUTH)).status for client in (a, b, a)
        ]
        assert statuses == [200, 200, 429]

        # Concurrent jobs: other-svc holds one slot; it comes back when the job is seen
        # finished (on the other replica).
        held = await (await a.post("/v1/jobs", json=BODY, headers=OTHER_AUTH)).json()
        await problem(
            await b.post("/v1/jobs", json=BODY, headers=OTHER_AUTH), 429, "concurrency_limited"
        )
        await done(b, held["id"], OTHER_AUTH)
        assert (await a.post("/v1/jobs", json=BODY, headers=OTHER_AUTH)).status == 202

        # Nothing fell back to this process or failed softly on the way.
        assert c.failures() == {}

        # The keys are spread over the masters, and every one of them expires.
        spread = keys_per_node(c.node_ports, c.prefix)
        assert sum(1 for keys in spread.values() if keys) >= 2, spread
        for port, keys in spread.items():
            with redis.Redis(port=port, socket_timeout=2) as node:
                for key in keys:
                    assert node.pttl(key) > 0, key


def cluster_client(url: str, **over: Any) -> Any:
    """The gateway's own cluster client (``redis_client``) for ``redis.mode: cluster``."""
    return redis_client(Settings(redis=RedisSettings(url=url, mode="cluster", **over)))


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A cluster for this module alone: its tests pause a node."""
    servers = RedisClusterServers(tmp_path_factory.mktemp("own-cluster"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


class TestClusterClient:
    async def test_a_burst_past_max_connections_waits_for_a_turn(self, redis_cluster_url):
        """redis-py's cluster pools fail at once past max_connections (the standalone
        client's blocking pool waits): 400 commands and 100 pipelines on 4 connections."""
        client = cluster_client(redis_cluster_url, max_connections=4, socket_timeout=5)
        prefix = f"t{uuid.uuid4().hex[:10]}"

        async def pipelined(i: int) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for j in range(5):
                pipe.get(f"{prefix}:p{i}:{j}")
            result: list[Any] = await pipe.execute()
            return result

        try:
            answers = await asyncio.gather(
                *(client.get(f"{prefix}:k{i}") for i in range(400)),
                *(pipelined(i) for i in range(100)),
            )
        finally:
            await client.aclose()
        assert answers == [None] * 400 + [[None] * 5] * 100

    async def test_a_hung_node_costs_one_socket_timeout(self, own_cluster):
        """redis-py retries a timed-out cluster command after refreshing its slot map
        (two timeouts or more), and refreshes it from the nodes in random order, the hung
        one included; the gateway's client does not retry a timeout, and asks the node
        that failed last. Every command here is one timeout and a refresh."""
        client = cluster_client(own_cluster.url(), socket_timeout=1.0, connect_timeout=1.0)
        key = f"t{uuid.uuid4().hex[:10]}:k"
        try:
            await client.set(key, b"v", ex=60)
            port = client.get_node_from_key(key).port
            own_cluster.hang(port)
            try:
                for _ in range(3):
                    started = time.monotonic()
                    with pytest.raises(redis.exceptions.TimeoutError):
                        await client.get(key)
                    assert time.monotonic() - started < 1.7
            finally:
                own_cluster.resume(port)
            assert await client.get(key) == b"v"  # back without a new client
        finally:
            await client.aclose()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class TestNoNodeAnswers:
    async def test_store_bound_paths_are_503_and_readyz_says_redis(self, make_gateway):
        """No node reachable: redis-py raises RedisClusterException (not a RedisError);
        it is a store failure like any other, never a 500."""
        dead = RedisSettings(
            url=f"redis://127.0.0.1:{_dead_port()}/0", mode="cluster", connect_timeout=0.2
        )
        h = await make_gateway(["modzy"], redis=dead)
        ready = await h.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["components"]["redis"] == "unavailable"
        await problem(
            await h.client.post("/v1/jobs", json=BODY, headers=AUTH), 503, "store_unavailable"
        )
        await problem(await h.client.get("/v1/jobs", headers=AUTH), 503, "store_unavailable")
        assert h.sim.count("POST") == 0
