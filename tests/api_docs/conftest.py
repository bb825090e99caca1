"""Fixtures of the API documentation and client tests: a demo gateway and the node tools.

The gateway is ``gateway demo`` itself, as a user starts it (every provider simulated,
API key ``demo-key``), once for the module. The node tools (Redocly, openapi-typescript,
tsc, playwright-core) and Debian's chromium are installed by ``make test``
(``node-tools`` and ``chromium``); a missing one fails the test with the command that
installs it, never skips it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import REPO, Process, answers, free_port, wait_until

NODE_DIR = REPO / "tests" / "node"
CHROMIUM = Path("/usr/bin/chromium")
DEMO_KEY = "demo-key"


def node_tool(name: str) -> Path:
    path = NODE_DIR / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{name} is missing: run `make node-tools` (make test does)")
    return path


def need_chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (make test does)")
    return CHROMIUM


#: Node's own chatter (Redocly's update notice and telemetry) kept out of the tests.
NODE_ENV = {
    **os.environ,
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "NO_COLOR": "1",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running ``gateway demo``."""
    port = free_port()
    process = Process(
        "demo",
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--port",
            str(port),
        ],
        tmp_path_factory.mktemp("demo"),
        os.environ,
    )
    process.spawn()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/readyz") or not process.running, 30, "demo ready")
        process.check_alive("starting")
        yield base
    finally:
        process.stop()
