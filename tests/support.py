"""Test helpers shared by the suites: a provider's simulator + Upstream + adapter, wired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import ProviderAdapter, ProviderConfig
from adapters.provider_type import ProviderType
from adapters.simulation import SIM_CONTROL, SimulatorControl
from adapters.upstream import Upstream, UpstreamSettings


class FakeClock:
    """A monotonic clock that moves only when a test says so (for simulator timing)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Wired:
    adapter: ProviderAdapter
    upstream: Upstream
    control: SimulatorControl
    server: TestServer
    base_url: str


@asynccontextmanager
async def wired_adapter(
    ptype: ProviderType,
    *,
    app: web.Application | None = None,
    credential: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    upstream_settings: Callable[[UpstreamSettings], UpstreamSettings] | None = None,
    name: str | None = None,
) -> AsyncIterator[Wired]:
    """Start ``ptype``'s fast simulator on loopback and an adapter pointed at it.

    ``app`` replaces the simulator (e.g. one built with custom settings);
    ``credential`` replaces the simulator's accepted key (to test a refused credential).
    """
    sim = app if app is not None else ptype.fast_simulator(None)
    server = TestServer(sim, host="127.0.0.1")
    await server.start_server()
    base_url = str(server.make_url(ptype.base_path or "/")).rstrip("/")
    settings = UpstreamSettings(
        provider=name or ptype.name,
        base_url=base_url,
        connect_timeout=2.0,
        read_timeout=5.0,
        total_timeout=10.0,
        backoff_base=0.01,
        backoff_cap=0.05,
        headers=ptype.auth_headers(credential or ptype.simulator_credential),
    )
    if upstream_settings is not None:
        settings = upstream_settings(settings)
    upstream = Upstream(settings)
    await upstream.start()
    config = ProviderConfig(
        name=name or ptype.name,
        type=ptype.name,
        defaults=dict(defaults if defaults is not None else ptype.examples.defaults),
    )
    try:
        yield Wired(
            adapter=ptype.create_adapter(config, upstream),
            upstream=upstream,
            control=sim[SIM_CONTROL],
            server=server,
            base_url=base_url,
        )
    finally:
        await upstream.close()
        await server.close()
