"""T-A10: API keys stored hashed, unknown = revoked, failed attempts limited per address."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from gateway.auth.failed_auth import FailedAuthLimiter
from gateway.auth.settings import ApiKeySettings, AuthSettings, FailedAuthSettings, hash_api_key
from tests.conftest import AUTH, KEY, SECRETS, api_keys
from tests.security.support import FakeClock

REVOKED_KEY = "test-key-revoked-0123456789"
LIST = "/v1/jobs"


def keys_with_revoked() -> list[ApiKeySettings]:
    revoked = ApiKeySettings(
        id="acme-old", sha256=hash_api_key(REVOKED_KEY), tenant="acme", revoked=True
    )
    return [*api_keys(), revoked]


def limited(limit: int, trusted: tuple[str, ...] = ()) -> AuthSettings:
    return AuthSettings(
        failed_auth=FailedAuthSettings(limit=limit, window_seconds=60),
        trusted_proxies=[ipaddress.ip_network(t) for t in trusted],
    )


def bare(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


class TestApiKeys:
    async def test_unknown_and_revoked_keys_get_the_same_answer(self, make_jwt_gateway):
        gw = await make_jwt_gateway(api_keys=keys_with_revoked())
        answers = []
        for headers in (
            {"Authorization": f"Bearer {REVOKED_KEY}"},
            {"Authorization": "Bearer test-key-never-issued-0123456789"},
            {"X-API-Key": REVOKED_KEY},
            {"X-API-Key": "test-key-never-issued-0123456789"},
        ):
            resp = await gw.client.get(LIST, headers=headers)
            answers.append(
                (
                    resp.status,
                    resp.headers["WWW-Authenticate"],
                    bare(await resp.json(content_type=None)),
                )
            )
        assert len(set(map(json.dumps, answers))) == 1
        assert answers[0][0] == 401

    async def test_keys_are_stored_hashed(self, make_jwt_gateway):
        gw = await make_jwt_gateway()
        from gateway.http.keys import SETTINGS

        dumped = gw.app[SETTINGS].model_dump_json()
        assert all(secret not in dumped for secret in SECRETS)
        assert hash_api_key(KEY) in dumped
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200


class TestFailedAuthLimit:
    async def test_an_address_over_the_limit_gets_429_even_with_a_good_key(
        self, make_jwt_gateway, captured_logs
    ):
        gw = await make_jwt_gateway(auth=limited(3))
        for _ in range(3):
            resp = await gw.client.get(LIST, headers={"X-API-Key": "wrong-guess-0123456789"})
            assert resp.status == 401
        resp = await gw.client.get(LIST, headers=AUTH)
        body = await resp.json(content_type=None)
        assert resp.status == 429, body
        assert resp.content_type == "application/problem+json"
        assert body["code"] == "rate_limited"
        retry = int(resp.headers["Retry-After"])
        assert 1 <= retry <= 60
        gw.clock.advance(retry)
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200
        assert "wrong-guess-0123456789" not in json.dumps(captured_logs, default=str)

    async def test_missing_credentials_are_not_counted(self, make_jwt_gateway):
        gw = await make_jwt_gateway(auth=limited(2))
        for _ in range(10):
            assert (await gw.client.get(LIST)).status == 401
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200

    async def test_forwarded_for_is_ignored_from_untrusted_peers(self, make_jwt_gateway):
        gw = await make_jwt_gateway(auth=limited(2))
        for i in range(2):
            headers = {"X-API-Key": "wrong", "X-Forwarded-For": f"198.51.100.{i}"}
            assert (await gw.client.get(LIST, headers=headers)).status == 401
        spoofed = {**AUTH, "X-Forwarded-For": "198.51.100.77"}
        assert (await gw.client.get(LIST, headers=spoofed)).status == 429

    async def test_forwarded_for_names_the_client_behind_a_trusted_proxy(self, make_jwt_gateway):
        gw = await make_jwt_gateway(auth=limited(2, trusted=("127.0.0.0/8",)))
        for _ in range(2):
            headers = {"X-API-Key": "wrong", "X-Forwarded-For": "203.0.113.9"}
            assert (await gw.client.get(LIST, headers=headers)).status == 401
        blocked = {**AUTH, "X-Forwarded-For": "203.0.113.9"}
        assert (await gw.client.get(LIST, headers=blocked)).status == 429
        # a client cannot escape by writing its own entry to the left of the real one
        prepended = {**AUTH, "X-Forwarded-For": "192.0.2.1, 203.0.113.9"}
        assert (await gw.client.get(LIST, headers=prepended)).status == 429
        other = {**AUTH, "X-Forwarded-For": "203.0.113.10"}
        assert (await gw.client.get(LIST, headers=other)).status == 200


class TestLimiter:
    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            ("198.51.100.1", ["203.0.113.5"], "198.51.100.1"),
            ("10.0.0.1", ["203.0.113.5"], "203.0.113.5"),
            ("10.0.0.1", ["6.6.6.6, 203.0.113.5, 10.0.0.2"], "203.0.113.5"),
            ("10.0.0.1", ["6.6.6.6", "203.0.113.5"], "203.0.113.5"),
            ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.1"),
            ("10.0.0.1", ["not-an-address"], "10.0.0.1"),
            ("10.0.0.1", ["203.0.113.5, garbage"], "10.0.0.1"),
            ("10.0.0.1", [], "10.0.0.1"),
            (None, ["203.0.113.5"], "unknown"),
        ],
        ids=[
            "untrusted-peer",
            "trusted-peer",
            "rightmost-untrusted-wins",
            "several-headers",
            "all-trusted",
            "malformed",
            "malformed-nearest",
            "no-header",
            "no-peer",
        ],
    )
    def test_client_address(self, peer, forwarded, expected):
        limiter = FailedAuthLimiter(
            AuthSettings(trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")]), FakeClock()
        )
        assert limiter.client_address(peer, forwarded) == expected

    def test_limit_per_window_then_one_per_interval(self):
        clock = FakeClock()
        limiter = FailedAuthLimiter(limited(20), clock)
        for _ in range(20):
            assert limiter.retry_after("a") is None
            limiter.record_failure("a")
        assert limiter.retry_after("a") == 1
        assert limiter.retry_after("b") is None
        clock.advance(1)
        assert limiter.retry_after("a") is None
        limiter.record_failure("a")
        assert limiter.retry_after("a") == 3  # one failure now costs 60/20 seconds
        clock.advance(3)
        assert limiter.retry_after("a") is None

    def test_memory_is_bounded(self):
        clock = FakeClock()
        settings = AuthSettings(failed_auth=FailedAuthSettings(limit=1, max_tracked=100))
        limiter = FailedAuthLimiter(settings, clock)
        for i in range(1000):
            limiter.record_failure(f"addr-{i}")
        assert limiter.tracked <= 100
        assert limiter.retry_after("addr-999") is not None
