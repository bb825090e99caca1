"""Fixtures for the security tests: a JWKS server on loopback, a gateway with a fake clock.

That no credential reaches a log line is checked for every test of the suite, by
``no_credential_is_logged`` in tests/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from gateway.http.app import create_app
from tests.conftest import make_settings
from tests.security.support import FakeClock, auth_settings, public_jwk, rsa_key


@dataclass
class JwksServer:
    """The issuer's key endpoint, and a canary where a token's ``jku`` would point."""

    url: str = ""
    canary_url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    hits: int = 0
    canary_hits: int = 0


@pytest.fixture
async def jwks(aiohttp_server: Any) -> JwksServer:
    state = JwksServer(keys=[public_jwk(rsa_key("jwks-1"), "j1")])

    async def serve(request: web.Request) -> web.Response:
        state.hits += 1
        return web.json_response({"keys": state.keys}, status=state.status)

    async def canary(request: web.Request) -> web.Response:
        state.canary_hits += 1
        return web.json_response({"keys": [public_jwk(rsa_key("attacker"), "attacker")]})

    app = web.Application()
    app.router.add_get("/jwks.json", serve)
    app.router.add_get("/attacker.json", canary)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = str(server.make_url("/jwks.json"))
    state.canary_url = str(server.make_url("/attacker.json"))
    return state


@dataclass
class Gateway:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: FakeClock


@pytest.fixture
async def make_jwt_gateway(aiohttp_client: Any):
    """A gateway with no providers (list routes need none), JWT auth and a fake clock."""

    async def factory(jwks_url: str | None = None, **over: Any) -> Gateway:
        clock = FakeClock()
        settings = make_settings([], auth=over.pop("auth", auth_settings(jwks_url)), **over)
        app = create_app(settings, clock=clock, registry=CollectorRegistry())
        return Gateway(client=await aiohttp_client(app), app=app, clock=clock)

    return factory
