"""Shared fixtures: settings, and the gateway over real HTTP with simulators on loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from adapters.base import ProviderAdapter
from adapters.modzy import SIM_ACCESS_KEY
from adapters.registry import KNOWN_TYPES, provider_type
from adapters.simulation import SIM_CONTROL, SimulatorControl
from gateway.auth.settings import ApiKeySettings, hash_api_key
from gateway.config.settings import (
    Credential,
    ModelSettings,
    ProviderSettings,
    Settings,
    TimeoutSettings,
)
from gateway.http.app import create_app
from gateway.jobs.settings import EngineSettings

# Test credentials: every one of them must never appear in an answer or a log line.
KEY = "test-key-acme-0123456789"
OTHER_KEY = "test-key-other-0123456789"
READ_KEY = "test-key-readonly-0123456789"
LIMITED_KEY = "test-key-limited-0123456789"
SECRETS = (KEY, OTHER_KEY, READ_KEY, LIMITED_KEY)
#: The shipped demo configuration's API keys ("demo-key" is also the start of the other two)
#: and JWT secret, used by the demo and e2e tests: never in a log line either.
DEMO_SECRETS = (
    "demo-key",
    "demo-jwt-secret-0123456789abcdef0123",
    "whsec_ZGVtby13ZWJob29rLXNlY3JldC1wdWJsaXNoZWQtaW4tdGhlLVJFQURNRQ==",
)
#: Credentials tests create at run time (minted JWTs, their signing secrets): helpers add
#: them here, and every test's logs are checked for all of them.
MINTED: set[str] = set()

AUTH = {"Authorization": f"Bearer {KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_KEY}"}
READ_AUTH = {"X-API-Key": READ_KEY}
LIMITED_AUTH = {"Authorization": f"Bearer {LIMITED_KEY}"}

SIM_MODELS: dict[str, list[ModelSettings]] = {
    "modzy": [
        ModelSettings(id="ed542963de", version="1.0.1", output_type="classification"),
        ModelSettings(id="c60c8dbd79", version="0.0.1", output_type="classification"),
    ],
}


def api_keys() -> list[ApiKeySettings]:
    return [
        ApiKeySettings(
            id="acme-svc",
            sha256=hash_api_key(KEY),
            tenant="acme",
            scopes=["jobs:read", "jobs:write"],
        ),
        ApiKeySettings(
            id="other-svc",
            sha256=hash_api_key(OTHER_KEY),
            tenant="other",
            scopes=["jobs:read", "jobs:write"],
        ),
        ApiKeySettings(
            id="acme-reader", sha256=hash_api_key(READ_KEY), tenant="acme", scopes=["jobs:read"]
        ),
        ApiKeySettings(
            id="acme-limited",
            sha256=hash_api_key(LIMITED_KEY),
            tenant="acme",
            scopes=["jobs:read", "jobs:write"],
            models=["sentiment"],
        ),
    ]


def provider_settings(
    name: str,
    ptype: str,
    base_url: str,
    *,
    credential: str | None = None,
    models: list[ModelSettings] | None = None,
    **over: Any,
) -> ProviderSettings:
    pt = provider_type(ptype)
    return ProviderSettings(
        name=name,
        type=ptype,
        base_url=base_url,
        credential=Credential(env="UNUSED_IN_TESTS"),
        secret=SecretStr(credential or pt.simulator_credential),
        timeouts=over.pop("timeouts", TimeoutSettings(connect=2, read=5, total=10)),
        models=models if models is not None else SIM_MODELS.get(ptype, []),
        defaults=dict(over.pop("defaults", pt.examples.defaults)),
        **over,
    )


def make_settings(providers: list[ProviderSettings], **over: Any) -> Settings:
    """Settings for a test gateway. The job engine is off unless a test turns it on
    (``engine=EngineSettings()``): most suites test what a read does, and count the
    provider calls it makes; the engine's own suites (``test_engine*``) turn it on."""
    over.setdefault("engine", EngineSettings(enabled=False))
    aliases = (
        {"sentiment": "modzy/ed542963de@1.0.1"} if any(p.name == "modzy" for p in providers) else {}
    )
    return Settings(
        providers=providers,
        aliases=over.pop("aliases", aliases),
        api_keys=over.pop("api_keys", api_keys()),
        wait_poll_interval=over.pop("wait_poll_interval", 0.05),
        # The simulators' jobs end in tenths of a second: with the default 1 s, every
        # Prefer: wait would see the end up to a second late (the status is reused
        # meanwhile). Tests about the status cache set their own.
        status_cache_seconds=over.pop("status_cache_seconds", 0.2),
        **over,
    )


@dataclass
class Harness:
    """A gateway on loopback and the simulators behind it."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    settings: Settings
    registry: CollectorRegistry
    sims: dict[str, SimulatorControl] = field(default_factory=dict)

    @property
    def sim(self) -> SimulatorControl:
        return self.sims["modzy"]


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def make_gateway(aiohttp_client: Any) -> AsyncIterator[GatewayFactory]:
    """Build a gateway over real simulators: ``await make_gateway(["modzy"], ...)``."""
    servers: list[TestServer] = []

    async def factory(
        types: list[str] | tuple[str, ...] = ("modzy",),
        *,
        sim_apps: Mapping[str, web.Application] | None = None,
        adapters: Mapping[str, ProviderAdapter] | None = None,
        provider_over: Mapping[str, dict[str, Any]] | None = None,
        app_over: Mapping[str, Any] | None = None,
        also: Mapping[str, str] | None = None,
        **settings_over: Any,
    ) -> Harness:
        """``also``: more providers, by name, each on the simulator of the given type
        (another account of that type, on the same simulator)."""
        providers = []
        sims: dict[str, SimulatorControl] = {}
        for t in types:
            pt = provider_type(t)
            app = (sim_apps or {}).get(t) or pt.fast_simulator(None)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            sims[t] = app[SIM_CONTROL]
            base = str(server.make_url(pt.base_path or "/")).rstrip("/")
            providers.append(
                provider_settings(t, t, base, **dict((provider_over or {}).get(t, {})))
            )
        for name, t in (also or {}).items():
            shared = next(p for p in providers if p.name == t)
            providers.append(provider_settings(name, t, shared.base_url))
        settings = make_settings(providers, **settings_over)
        registry = CollectorRegistry()
        app = create_app(settings, adapters=adapters, registry=registry, **dict(app_over or {}))
        client = await aiohttp_client(app)
        return Harness(client=client, app=app, settings=settings, registry=registry, sims=sims)

    yield factory
    for server in servers:
        await server.close()


# -- measured numbers: what the reliability tests measured, in every run's output ------------

_MEASURED: list[str] = []


@pytest.fixture
def measured() -> Callable[[str], None]:
    """Record a number a test measured (admitted vs limit, observed rate vs configured);
    every recorded line is printed in the run's summary, passed or failed."""

    def record(line: str) -> None:
        _MEASURED.append(line)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASURED:
        terminalreporter.section("measured by the reliability tests")
        for line in _MEASURED:
            terminalreporter.write_line(line)


@pytest.fixture
def captured_logs() -> Any:
    with structlog.testing.capture_logs() as logs:
        yield logs


#: Credential-like values the simulated providers put in their answers: Modzy's result
#: items name the submitting key (``accessKey``), which must never reach a log or a caller.
PROVIDER_ANSWER_SECRETS = (SIM_ACCESS_KEY,)


def never_logged() -> tuple[str, ...]:
    """Every credential the suite knows of: its keys, the demo's, providers', minted ones."""
    providers = tuple(provider_type(t).simulator_credential for t in KNOWN_TYPES)
    return (*SECRETS, *DEMO_SECRETS, *providers, *PROVIDER_ANSWER_SECRETS, *MINTED)


class _StdlibRecords(logging.Handler):
    """Keeps the text of every stdlib log record (aiohttp, asyncio, redis-py, warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception:  # a record whose args do not fit its format: keep both raw
            self.texts.append(f"{record.msg!r} {record.args!r}")


#: The in-memory span exporters of the running test (``span_exporter``), read by
#: ``no_credential_is_logged`` when the test ends.
_EXPORTERS: list[InMemorySpanExporter] = []


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """Where a test gateway's spans go: ``create_app(..., span_exporter=...)`` with
    tracing on. Every span it holds is checked for credentials when the test ends."""
    exporter = InMemorySpanExporter()
    _EXPORTERS.append(exporter)
    return exporter


def spans_text(exporter: InMemorySpanExporter) -> str:
    """Every name, attribute, event and status of the exported spans, as one text."""
    return "\n".join(span.to_json(indent=None) for span in exporter.get_finished_spans())


@pytest.fixture(autouse=True)
def no_credential_is_logged(captured_logs: list[dict[str, Any]]) -> Iterator[None]:
    """Every test: no test credential in any structlog event, stdlib log record or span.

    structlog events are captured before the gateway's redaction processor runs, so a
    credential must never even be handed to a logger, which is stricter than production.
    """
    records = _StdlibRecords()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        yield
    finally:
        root.removeHandler(records)
    found = leaked(json.dumps(captured_logs, default=str) + "\n".join(records.texts))
    assert not found, f"a credential reached a log line: {found}"
    spans = "\n".join(spans_text(e) for e in _EXPORTERS)
    _EXPORTERS.clear()
    found = leaked(spans)
    assert not found, f"a credential reached a span: {found}"


def leaked(text: str) -> list[str]:
    """The start of every known credential found in ``text`` (never the whole of it)."""
    return [secret[:12] + "..." for secret in never_logged() if secret in text]


# -- Redis: a real server, a fresh key prefix per test -----------------------------------


def _redis_answers(url: str) -> bool:
    import redis as sync_redis

    try:
        # Closed at once: a client left to the garbage collector warns about its socket
        # in whichever test happens to be running then.
        with sync_redis.Redis.from_url(url, socket_timeout=0.5) as client:
            return bool(client.ping())
    except (sync_redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url() -> Any:
    """``REDIS_URL``, else 127.0.0.1:6379, else a redis-server started for the session."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if _redis_answers(url):
        yield url
        return
    binary = shutil.which("redis-server")
    assert binary is not None, "these tests need a Redis: set REDIS_URL or install redis-server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real three-master Redis Cluster on loopback for the session: one node's URL."""
    import shutil

    from tests.redis_cluster import RedisClusterServers

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    servers = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        servers.start()
        yield servers.url()
    finally:
        servers.stop()


#: The Redis backends a contract suite runs over: one server, and a three-master cluster.
REDIS_BACKENDS = ("redis", "cluster")


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The URL of ``backend`` (``redis`` or ``cluster``), starting its servers if needed."""
    fixture = "redis_cluster_url" if backend == "cluster" else "redis_url"
    url: str = request.getfixturevalue(fixture)
    return url


@asynccontextmanager
async def fresh_redis(redis_url: str, *, cluster: bool = False) -> AsyncIterator[Any]:
    """An asyncio Redis client with a key prefix no other test uses (cleaned up after).

    ``cluster``: a redis-py ``RedisCluster`` (``redis_url`` names one node); its
    ``scan_iter`` visits every master and its ``delete`` splits keys by slot.
    """
    import uuid

    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    client: Any = (
        RedisCluster.from_url(redis_url, socket_timeout=2)
        if cluster
        else aioredis.from_url(redis_url, socket_timeout=2)
    )
    prefix = f"t{uuid.uuid4().hex[:12]}"
    client.test_prefix = prefix
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    async with fresh_redis(redis_url) as client:
        yield client
