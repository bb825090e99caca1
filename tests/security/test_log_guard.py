"""The suite's log guard (tests/conftest.py, tests/e2e/conftest.py) sees what it must.

Each case logs a credential where the guard of the test itself cannot see it (a nested
capture, a logger that does not propagate, files in a temp folder) and feeds that to the
guard's own functions, which must name the leak.
"""

from __future__ import annotations

import json
import logging

import structlog

from adapters.modzy import SIM_ACCESS_KEY
from tests.conftest import KEY, MINTED, _StdlibRecords, leaked, never_logged
from tests.e2e.conftest import leaked_credentials
from tests.security.support import HS_SECRET, mint


def test_the_guard_knows_the_suites_demos_providers_and_minted_credentials():
    token = mint()
    known = never_logged()
    for secret in (KEY, "demo-key", "demo.modzy-simulator-key", HS_SECRET, token, SIM_ACCESS_KEY):
        assert secret in known
    assert token in MINTED


def test_a_credential_in_a_structlog_event_is_found():
    with structlog.testing.capture_logs() as events:  # nested: the test's own guard sees none
        structlog.get_logger("x").info("auth", header=f"Bearer {KEY}")
    assert leaked(json.dumps(events)) == [KEY[:12] + "..."]


def test_a_minted_token_in_a_stdlib_record_is_found():
    token = mint(sub="leaky")
    logger = logging.getLogger("tests.log_guard")
    logger.propagate = False  # keep it from the root handler of the test's own guard
    records = _StdlibRecords()
    logger.addHandler(records)
    try:
        logger.warning("bad header %s", f"Authorization: Bearer {token}")
    finally:
        logger.removeHandler(records)
    assert leaked("\n".join(records.texts)) == [token[:12] + "..."]


def test_replica_output_is_scanned_but_not_its_config(tmp_path):
    (tmp_path / "gateway.yaml").write_text("secret: demo-jwt-secret-0123456789abcdef0123\n")
    (tmp_path / "gateway1.1.out").write_text('{"event": "request", "status": 200}\n')
    assert leaked_credentials(tmp_path) == []
    (tmp_path / "gateway2.1.err").write_text("Authorization: Bearer demo-key-other\n")
    assert leaked_credentials(tmp_path) == ["gateway2.1.err: demo-key..."]
