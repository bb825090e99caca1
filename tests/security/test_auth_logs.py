"""Every refused credential is logged once, with why, and never the credential itself."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from gateway.auth.settings import ApiKeySettings, hash_api_key
from tests.conftest import AUTH, api_keys
from tests.security.support import LEEWAY, mint
from tests.security.test_api_keys import limited

LIST = "/v1/jobs"
REVOKED_KEY = "test-key-revoked-0123456789"


def failures(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "auth_failed"]


class TestAuthFailureLog:
    async def test_each_reason_is_logged_without_the_credential(
        self, make_jwt_gateway, captured_logs
    ):
        keys = [
            *api_keys(),
            ApiKeySettings(
                id="old-svc", sha256=hash_api_key(REVOKED_KEY), tenant="acme", revoked=True
            ),
        ]
        gw = await make_jwt_gateway(api_keys=keys)
        expired_at = math.floor(time.time()) - (LEEWAY + 1)
        expired = mint(kid="hs", exp=expired_at, iat=0)
        sent = {
            "unknown": {"X-API-Key": "unknown-key-0123456789"},
            "revoked": {"X-API-Key": REVOKED_KEY},
            "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
            "expired": {"Authorization": f"Bearer {expired}"},
            "missing": {},
        }
        for headers in sent.values():
            assert (await gw.client.get(LIST, headers=headers)).status == 401
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200  # logs no failure
        found = failures(captured_logs)
        assert [e["reason"] for e in found] == list(sent)
        assert all(e["log_level"] == "info" and e["client"] == "127.0.0.1" for e in found)
        revoked = found[1]
        assert revoked["key_id"] == "old-svc" and revoked["credential"] == "api_key"
        assert found[3]["credential"] == "bearer"
        logged = json.dumps(captured_logs, default=str)
        for secret in ("unknown-key-0123456789", REVOKED_KEY, expired, "dXNlcjpwYXNz"):
            assert secret not in logged

    async def test_over_the_limit_a_failure_is_logged_as_such(
        self, make_jwt_gateway, captured_logs
    ):
        gw = await make_jwt_gateway(auth=limited(2))
        for _ in range(3):
            await gw.client.get(LIST, headers={"X-API-Key": "unknown-key-0123456789"})
        assert [e["over_limit"] for e in failures(captured_logs)] == [False, False, True]
