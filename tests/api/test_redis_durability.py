"""Durable state, said and checked (issue 19 point 1), over real HTTP and real redis-servers.

At start-up the gateway says once whether its Redis keeps anything on disk, and /readyz
shows it; when a Redis without persistence restarts empty, the replica that wrote the
jobs writes them back, so another replica reads them again. Two apps sharing one
redis-server stand in for two replicas; tests/e2e/test_durability.py does it with
processes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.modzy import PROVIDER_TYPE as MODZY
from adapters.modzy.simulator import SimSettings, create_simulator
from gateway.http.app import create_app
from gateway.http.keys import REDIS_WATCH
from gateway.state.settings import RedisSettings
from tests.api.test_jobs_api import text_inputs
from tests.conftest import AUTH, make_settings, provider_settings
from tests.e2e.replicas import RedisServer

pytestmark = pytest.mark.redis

BODY = {"model": "sentiment", "inputs": text_inputs()}


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """``--appendonly no --save ""``: a restart comes back empty."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.ensure_running()
    server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, durable=True)
    server.start()
    yield server
    server.ensure_running()
    server.stop()


def redis_settings(url: str, **over: Any) -> RedisSettings:
    return RedisSettings(url=url, prefix=f"t{uuid.uuid4().hex[:10]}", socket_timeout=2.0, **over)


def warnings_of(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "redis_not_durable"]


async def readyz(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    body: dict[str, Any] = await resp.json()
    return resp.status, body


class TestPersistenceIsSaid:
    async def test_a_redis_keeping_nothing_on_disk_is_warned_of_once_and_shown(
        self, make_gateway, plain_redis, captured_logs
    ):
        h = await make_gateway(["modzy"], redis=redis_settings(plain_redis.url()))
        status, body = await readyz(h.client)
        assert status == 200, body
        redis_details = body["details"]["redis"]
        assert redis_details["persistence"] == "none" and redis_details["durable"] is False
        assert redis_details["checked"] == "server"
        assert "appendonly=no" in redis_details["detail"]
        (warning,) = warnings_of(captured_logs)
        assert warning["log_level"] == "warning" and warning["persistence"] == "none"
        assert "appendonly yes" in warning["consequence"]
        # Said once: the watch's later looks do not repeat it.
        await h.app[REDIS_WATCH].check()
        assert len(warnings_of(captured_logs)) == 1

    async def test_a_redis_with_an_append_only_file_is_not_warned_of(
        self, make_gateway, durable_redis, captured_logs
    ):
        h = await make_gateway(["modzy"], redis=redis_settings(durable_redis.url()))
        status, body = await readyz(h.client)
        assert status == 200
        assert body["details"]["redis"]["persistence"] == "aof"
        assert body["details"]["redis"]["durable"] is True
        assert "appendfsync=always" in body["details"]["redis"]["detail"]
        assert warnings_of(captured_logs) == []

    async def test_a_redis_that_refuses_config_is_asked_through_info(
        self, make_gateway, plain_redis, captured_logs
    ):
        """Managed Redis often forbids CONFIG: INFO persistence answers instead."""
        with plain_redis.client() as admin:
            admin.acl_setuser(
                "app", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                commands=["+@all", "-config"],
            )  # fmt: skip
        url = f"redis://app:pw@127.0.0.1:{plain_redis.port}/0"
        h = await make_gateway(["modzy"], redis=redis_settings(url))
        _, body = await readyz(h.client)
        assert body["details"]["redis"]["persistence"] == "none"
        assert "INFO persistence" in body["details"]["redis"]["detail"]
        assert len(warnings_of(captured_logs)) == 1

    async def test_a_redis_that_answers_neither_is_unknown_and_start_up_goes_on(
        self, make_gateway, plain_redis, captured_logs
    ):
        with plain_redis.client() as admin:
            admin.acl_setuser(
                "app", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                commands=["+@all", "-config", "-info"],
            )  # fmt: skip
        url = f"redis://app:pw@127.0.0.1:{plain_redis.port}/0"
        h = await make_gateway(["modzy"], redis=redis_settings(url))
        status, body = await readyz(h.client)
        assert status == 200
        assert body["details"]["redis"]["persistence"] == "unknown"
        assert body["details"]["redis"]["durable"] is None
        assert warnings_of(captured_logs) == []
        assert [e["event"] for e in captured_logs].count("redis_persistence_unknown") == 1

    async def test_a_redis_down_at_start_up_is_unknown_not_fatal(self, make_gateway, plain_redis):
        plain_redis.kill()
        h = await make_gateway(
            ["modzy"], redis=redis_settings(plain_redis.url(), connect_timeout=0.2)
        )
        status, body = await readyz(h.client)
        assert status == 503 and body["components"]["redis"] == "unavailable"
        assert body["details"]["redis"]["persistence"] == "unknown"
        plain_redis.start()
        # Once this process sees it answer (its Redis gate's PING, moments later; /readyz
        # turns 200), the watch's next look learns what it keeps.
        deadline = time.monotonic() + 5
        while (await readyz(h.client))[0] != 200:
            assert time.monotonic() < deadline, "Redis did not come back for the gateway"
            await asyncio.sleep(0.05)
        await h.app[REDIS_WATCH].check()
        _, body = await readyz(h.client)
        assert body["details"]["redis"]["persistence"] == "none"


@pytest.fixture
async def three_replicas(plain_redis: RedisServer) -> AsyncIterator[list[TestClient[Any, Any]]]:
    sim_app = create_simulator(None, SimSettings(queue_seconds=0.0, item_seconds=0.05))
    sim = TestServer(sim_app, host="127.0.0.1")
    await sim.start_server()
    settings = make_settings(
        [provider_settings("modzy", "modzy", str(sim.make_url(MODZY.base_path)).rstrip("/"))],
        redis=redis_settings(plain_redis.url(), restart_check_seconds=0.2),
    )
    clients = []
    for _ in range(3):
        client = TestClient(TestServer(create_app(settings, registry=CollectorRegistry())))
        await client.start_server()
        clients.append(client)
    yield clients
    for client in clients:
        await client.close()
    await sim.close()


async def status_on(client: TestClient[Any, Any], job_id: str) -> int:
    resp = await client.get(f"/v1/jobs/{job_id}", headers=AUTH)
    await resp.read()
    return resp.status


async def readable_within(client: TestClient[Any, Any], ids: list[str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if [await status_on(client, i) for i in ids] == [200] * len(ids):
            return True
        await asyncio.sleep(0.1)
    return False


class TestLostRecordsAreWrittenBack:
    async def test_jobs_a_replica_accepted_are_readable_on_another_after_redis_restarts_empty(
        self, three_replicas, plain_redis, captured_logs
    ):
        """a accepts the jobs, b has read them (and holds them finished), c never saw them."""
        a, b, c = three_replicas
        ids = []
        for _ in range(5):
            resp = await a.post("/v1/jobs", json=BODY, headers={**AUTH, "Prefer": "wait=10"})
            assert resp.status == 200, await resp.text()
            ids.append((await resp.json())["id"])
        assert [await status_on(b, i) for i in ids] == [200] * 5

        plain_redis.kill()
        plain_redis.start()
        with plain_redis.client() as server:
            assert server.dbsize() == 0  # it kept nothing: every record is gone from Redis
        # Replica a (and b) see the new run_id within restart_check_seconds and write back.
        assert await readable_within(c, ids, 10.0), [await status_on(c, i) for i in ids]
        assert [await status_on(b, i) for i in ids] == [200] * 5
        listed = await (await c.get("/v1/jobs", headers=AUTH)).json()
        assert sorted(j["id"] for j in listed["jobs"]) == sorted(ids)
        events = [e["event"] for e in captured_logs]
        assert "redis_restarted" in events and "job_records_restored" in events

    async def test_a_read_that_finds_its_record_missing_writes_it_back_at_once(
        self, make_gateway, plain_redis
    ):
        """The watch looks rarely here: the read itself is what brings the job back."""
        h = await make_gateway(
            ["modzy"], redis=redis_settings(plain_redis.url(), restart_check_seconds=300)
        )
        resp = await h.client.post("/v1/jobs", json=BODY, headers=AUTH)
        assert resp.status == 202
        job_id = (await resp.json())["id"]
        prefix = h.settings.redis.prefix
        with plain_redis.client() as c:
            c.flushall()  # what a restart of this Redis does
            assert c.get(f"{prefix}:job:{job_id}") is None
        assert await status_on(h.client, job_id) == 200
        with plain_redis.client() as c:
            assert c.get(f"{prefix}:job:{job_id}") is not None
