"""T-A10: API keys stored hashed, unknown = revoked, failed attempts limited per address."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from gateway.auth.failed_auth import FailedAuthLimiter
from gateway.auth.settings import ApiKeySettings, AuthSettings, FailedAuthSettings, hash_api_key
from gateway.http.app import create_app
from gateway.state.settings import RedisSettings
from tests.conftest import AUTH, KEY, OTHER_AUTH, SECRETS, api_keys, fresh_redis, make_settings
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
    async def test_an_address_over_the_limit_gets_429_for_a_credential_that_fails(
        self, make_jwt_gateway, captured_logs
    ):
        gw = await make_jwt_gateway(auth=limited(3))
        for _ in range(3):
            resp = await gw.client.get(LIST, headers={"X-API-Key": "wrong-guess-0123456789"})
            assert resp.status == 401
        resp = await gw.client.get(LIST, headers={"X-API-Key": "another-guess-0123456789"})
        body = await resp.json(content_type=None)
        assert resp.status == 429, body
        assert resp.content_type == "application/problem+json"
        assert body["code"] == "rate_limited"
        retry = int(resp.headers["Retry-After"])
        assert 1 <= retry <= 60
        gw.clock.advance(retry)
        assert (
            await gw.client.get(LIST, headers={"X-API-Key": "x-guess-0123456789"})
        ).status == 401
        logged = json.dumps(captured_logs, default=str)
        assert "wrong-guess-0123456789" not in logged and "another-guess" not in logged

    async def test_twenty_per_minute_is_not_twenty_then_one_every_three_seconds(
        self, make_jwt_gateway
    ):
        """F2 (issue 19)."""
        gw = await make_jwt_gateway(auth=limited(20))
        wrong = {"X-API-Key": "wrong-guess-0123456789"}
        for _ in range(20):
            assert (await gw.client.get(LIST, headers=wrong)).status == 401
        for _ in range(19):  # one every 3 s: none gets through within the minute
            gw.clock.advance(3)
            resp = await gw.client.get(LIST, headers=wrong)
            assert resp.status == 429
        assert resp.headers["Retry-After"] == "3"
        gw.clock.advance(3)
        assert (await gw.client.get(LIST, headers=wrong)).status == 401

    async def test_mistyped_keys_from_an_address_lock_out_no_valid_key_there(
        self, make_jwt_gateway
    ):
        """Issue 15 item 7: twenty mistyped keys from a shared egress lock out neither
        the keys already working from it nor a valid key new to it; guesses wait."""
        gw = await make_jwt_gateway(auth=limited(20))
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200
        for _ in range(20):
            resp = await gw.client.get(LIST, headers={"X-API-Key": "wrong-guess-0123456789"})
            assert resp.status == 401
        assert (await gw.client.get(LIST, headers=AUTH)).status == 200
        assert (await gw.client.get(LIST, headers={"X-API-Key": KEY})).status == 200
        assert (await gw.client.get(LIST, headers=OTHER_AUTH)).status == 200  # new here
        resp = await gw.client.get(LIST, headers={"X-API-Key": "wrong-guess-0123456789"})
        assert resp.status == 429

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
        spoofed = {"X-API-Key": "wrong", "X-Forwarded-For": "198.51.100.77"}
        assert (await gw.client.get(LIST, headers=spoofed)).status == 429

    async def test_forwarded_for_names_the_client_behind_a_trusted_proxy(self, make_jwt_gateway):
        gw = await make_jwt_gateway(auth=limited(2, trusted=("127.0.0.0/8",)))
        for _ in range(2):
            headers = {"X-API-Key": "wrong", "X-Forwarded-For": "203.0.113.9"}
            assert (await gw.client.get(LIST, headers=headers)).status == 401
        wrong = {"X-API-Key": "wrong"}
        blocked = {**wrong, "X-Forwarded-For": "203.0.113.9"}
        assert (await gw.client.get(LIST, headers=blocked)).status == 429
        # a client cannot escape by writing its own entry to the left of the real one
        prepended = {**wrong, "X-Forwarded-For": "192.0.2.1, 203.0.113.9"}
        assert (await gw.client.get(LIST, headers=prepended)).status == 429
        other = {**wrong, "X-Forwarded-For": "203.0.113.10"}
        assert (await gw.client.get(LIST, headers=other)).status == 401


@pytest.fixture
async def two_replicas(redis_url) -> AsyncIterator[tuple[TestClient[Any, Any], ...]]:
    """Two gateway apps on one Redis (one key prefix), behind a trusted proxy on loopback."""
    settings = make_settings(
        [],
        auth=limited(20, trusted=("127.0.0.0/8",)),
        redis=RedisSettings(url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}"),
    )
    clients = [
        TestClient(TestServer(create_app(settings, registry=CollectorRegistry()))) for _ in range(2)
    ]
    for client in clients:
        await client.start_server()
    yield tuple(clients)
    for client in clients:
        await client.close()
    async with fresh_redis(redis_url) as redis:
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis.prefix}:*")]
        if keys:
            await redis.delete(*keys)


def client_at(address: str, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "X-Forwarded-For": address}


class TestFailedAuthLimitAcrossReplicas:
    """F2 (issue 19): one limit per address, whichever replica the guesses reach."""

    async def test_the_limit_is_counted_once_over_every_replica(self, two_replicas):
        a, b = two_replicas
        wrong = client_at("203.0.113.5", {"X-API-Key": "wrong-guess-0123456789"})
        good = client_at("203.0.113.5", AUTH)
        assert (await a.get(LIST, headers=good)).status == 200  # known good from there
        for i in range(20):
            assert (await (a, b)[i % 2].get(LIST, headers=wrong)).status == 401
        for replica in (a, b):
            resp = await replica.get(LIST, headers=wrong)
            assert resp.status == 429
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
            # a valid key new to the address goes through, on either replica
            assert (
                await replica.get(LIST, headers=client_at("203.0.113.5", OTHER_AUTH))
            ).status == 200
        # the key that worked there, on the replica that never saw it (Redis knew it)
        assert (await b.get(LIST, headers=good)).status == 200
        # other addresses are not affected
        assert (await b.get(LIST, headers=client_at("203.0.113.6", OTHER_AUTH))).status == 200

    async def test_guesses_at_once_over_two_replicas_get_exactly_the_limit_checked(
        self, two_replicas
    ):
        a, b = two_replicas
        wrong = client_at("203.0.113.7", {"X-API-Key": "wrong-guess-0123456789"})

        async def guess(i: int) -> int:
            resp = await (a, b)[i % 2].get(LIST, headers=wrong)
            await resp.read()
            return resp.status

        statuses = await asyncio.gather(*(guess(i) for i in range(30)))
        assert sorted(statuses) == [401] * 20 + [429] * 10


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

    async def test_at_most_the_limit_in_any_window_then_the_oldest_frees_a_place(self):
        """F2 (issue 19): 20 per minute is 20 in any 60 s, not 20 and then one every 3 s."""
        clock = FakeClock()
        limiter = FailedAuthLimiter(limited(20), clock)
        for _ in range(20):
            await failing(limiter, "a")
        refused = await limiter.admit("a", "guess")
        assert refused.retry_after == 60
        assert (await limiter.admit("b", "guess")).retry_after is None
        clock.advance(3)
        assert (await limiter.admit("a", "guess")).retry_after == 57
        clock.advance(56.5)
        assert (await limiter.admit("a", "guess")).retry_after == 1
        clock.advance(0.5)
        for _ in range(20):
            await failing(limiter, "a")
        assert (await limiter.admit("a", "guess")).retry_after == 60

    async def test_a_steady_guesser_gets_the_limit_per_window_and_no_more(self):
        clock = FakeClock()
        limiter = FailedAuthLimiter(limited(20), clock)
        admitted = []
        for second in range(180):  # one guess a second for three minutes
            attempt = await limiter.admit("a", f"guess-{second}")
            if attempt.retry_after is None:
                await limiter.failed(attempt)
                admitted.append(second)
            clock.advance(1)
        assert len(admitted) == 60
        assert max(sum(s <= t < s + 60 for t in admitted) for s in range(180)) == 20

    async def test_a_credential_that_verified_from_an_address_is_never_refused_there(self):
        clock = FakeClock()
        limiter = FailedAuthLimiter(limited(3), clock)
        good = await limiter.admit("a", "good-key")
        await limiter.succeeded(good)
        for _ in range(3):
            await failing(limiter, "a")
        assert (await limiter.admit("a", "good-key")).retry_after is None
        assert (await limiter.admit("a", "other-good-key")).retry_after is not None
        assert (await limiter.admit("b", "good-key")).retry_after is None  # charged there
        # a known credential that stops verifying (an expired token) is forgotten
        await limiter.failed(await limiter.admit("a", "good-key"))
        assert (await limiter.admit("a", "good-key")).retry_after is not None

    async def test_a_charge_is_given_back_when_checking_fails_for_another_reason(self):
        limiter = FailedAuthLimiter(limited(1), FakeClock())
        await limiter.abandoned(await limiter.admit("a", "k"))
        assert (await limiter.admit("a", "k")).retry_after is None

    async def test_without_redis_answering_each_replica_takes_its_share(self):
        class Unreachable:
            async def charge(self, address, digest, token):
                return None

            async def settle(self, address, token, good):
                return False

            async def fail(self, address, digest, token):
                return False

        limiter = FailedAuthLimiter(limited(20), FakeClock(), shared=Unreachable(), replicas=3)
        for _ in range(6):
            await failing(limiter, "a")
        assert (await limiter.admit("a", "guess")).retry_after is not None

    async def test_memory_is_bounded(self):
        clock = FakeClock()
        settings = AuthSettings(failed_auth=FailedAuthSettings(limit=1, max_tracked=100))
        limiter = FailedAuthLimiter(settings, clock)
        for i in range(1000):
            await failing(limiter, f"addr-{i}")
        assert limiter.tracked <= 100
        assert (await limiter.admit("addr-999", "guess")).retry_after is not None


async def failing(limiter: FailedAuthLimiter, address: str) -> None:
    """One wrong credential from ``address``, admitted and failed."""
    attempt = await limiter.admit(address, "wrong-guess")
    assert attempt.retry_after is None
    await limiter.failed(attempt)
