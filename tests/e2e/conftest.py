"""Fixtures for multi-process tests: a redis-server, the simulators, gateway replicas.

Redis and the simulators live for the module (starting them per test buys nothing:
each test gets its own Redis key prefix and resets the simulator's log and faults);
the replicas are started per test, because tests kill and restart them. At teardown the
replicas' stdout and stderr are scanned for every credential the suite knows.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import leaked
from tests.e2e.replicas import REPLICAS, Cluster, RedisServer, Simulators


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the test item so fixtures can tell a failed test
    # in teardown and print the replicas' logs only then.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def simulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulators]:
    sims = Simulators(tmp_path_factory.mktemp("simulators"))
    sims.start()
    try:
        yield sims
    finally:
        sims.stop()


@pytest.fixture(scope="module")
def calm_cluster(
    redis_server: RedisServer, simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three replicas shared by a module's ``calm`` tests: those that neither stop nor
    add a replica nor touch Redis (each still gets the simulators reset and its own
    job ids). Starting three replicas is most of what such a test costs."""
    workdir = tmp_path_factory.mktemp("calm")
    c = Cluster(redis_server, simulators, workdir, prefix=f"t{uuid.uuid4().hex[:12]}")
    try:
        c.start(REPLICAS)
        yield c
    finally:
        c.close()
    leaked = leaked_credentials(workdir)
    assert not leaked, f"a credential reached a replica's output: {leaked}"


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    simulators: Simulators,
    tmp_path: Path,
) -> Iterator[Cluster]:
    """Three gateway replicas on their own Redis prefix, ready (``/readyz`` 200); for a
    test marked ``calm``, the module's shared ones."""
    redis_server.ensure_running()
    simulators.clear_faults()
    simulators.reset_requests()
    if request.node.get_closest_marker("calm") is not None:
        shared: Cluster = request.getfixturevalue("calm_cluster")
        try:
            yield shared
        finally:
            simulators.clear_faults()
            if _failed(request):
                print(f"\n=== replica logs (prefix {shared.prefix}) ===\n{shared.tails()}")
        return
    c = Cluster(redis_server, simulators, tmp_path, prefix=f"t{uuid.uuid4().hex[:12]}")
    try:
        c.start(REPLICAS)
        yield c
    finally:
        c.close()
        redis_server.ensure_running()
        simulators.clear_faults()
        if _failed(request):
            print(f"\n=== replica logs (prefix {c.prefix}) ===\n{c.tails()}")
    leaked = leaked_credentials(tmp_path)
    assert not leaked, f"a credential reached a replica's output: {leaked}"


def leaked_credentials(workdir: Path) -> list[str]:
    """``file: credential...`` for every known credential in a replica's stdout or stderr
    (``gateway<n>.<start>.out`` and ``.err``; the config file beside them is not output)."""
    return [
        f"{path.name}: {found}"
        for path in sorted([*workdir.glob("gateway*.out"), *workdir.glob("gateway*.err")])
        for found in leaked(path.read_text(errors="replace"))
    ]
