"""The docs' examples run against one ``gateway demo`` per module, as a reader would run them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.processes import Process, answers, free_port, wait_until


@pytest.fixture(scope="module")
def demo_simulator_port() -> int:
    """Where the demo's simulators listen (the docs write 127.0.0.1:9100)."""
    return free_port()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_simulator_port: int) -> Iterator[int]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("demo")
    argv = [sys.executable, "-m", "gateway", "demo", "--port", str(port)]
    argv += ["--simulator-port", str(demo_simulator_port)]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GATEWAY_")}
    process = Process("demo", argv, workdir, env)
    process.spawn()
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), 30, "gateway demo")
        yield port
    finally:
        process.stop()
