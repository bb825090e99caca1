"""``redis+sentinel://`` URLs: the gateway finds its master through a real Sentinel.

The test starts a redis-server and a redis-server in sentinel mode watching it, both
on loopback ports of their own, and points a gateway at the sentinel only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.state.settings import RedisSettings
from tests.api.test_jobs_api import submit, wait_done
from tests.conftest import AUTH

pytestmark = pytest.mark.redis

SERVICE = "gwmaster"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=0.5) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _wait(check, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.05)


def _start(argv: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(sentinel port, master port) of a master and one sentinel that watches it."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    workdir: Path = tmp_path_factory.mktemp("sentinel")
    master_port, sentinel_port = _free_port(), _free_port()
    conf = workdir / "sentinel.conf"  # the sentinel rewrites its file: one of its own
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
    )
    argv = [binary, "--port", str(master_port), "--bind", "127.0.0.1"]
    master = _start([*argv, "--save", "", "--appendonly", "no"], workdir)
    watcher = _start([binary, str(conf), "--sentinel"], workdir)
    try:
        _wait(lambda: _answers(master_port), "redis-server")
        _wait(lambda: _answers(sentinel_port), "redis sentinel")
        yield sentinel_port, master_port
    finally:
        for proc in (watcher, master):
            proc.terminate()
            proc.wait(timeout=10)


class TestSentinel:
    async def test_jobs_are_stored_on_the_master_the_sentinel_names(self, make_gateway, sentinel):
        sentinel_port, master_port = sentinel
        prefix = f"t{uuid.uuid4().hex[:10]}"
        url = f"redis+sentinel://127.0.0.1:{sentinel_port}/{SERVICE}/3"
        h = await make_gateway(["modzy"], redis=RedisSettings(url=url, prefix=prefix))

        ready = await h.client.get("/readyz")
        assert ready.status == 200, await ready.text()
        # What the master keeps is checked and said (this test master keeps nothing).
        persistence = (await ready.json())["details"]["redis"]
        assert persistence["checked"] == "sentinel master"
        assert persistence["persistence"] in ("none", "snapshots"), persistence
        job = await (await submit(h)).json()
        assert (await wait_done(h, job["id"]))["status"] == "succeeded"
        listed = await (await h.client.get("/v1/jobs", headers=AUTH)).json()
        assert [j["id"] for j in listed["jobs"]] == [job["id"]]

        # The record is on the master, in the URL's database, under the prefix.
        with redis.Redis(port=master_port, db=3) as master:
            keys = [k.decode() for k in master.scan_iter(match=f"{prefix}:*")]
            assert any(job["id"] in k for k in keys), keys
            master.delete(*keys)
