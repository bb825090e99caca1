"""Fallback aliases over real HTTP: two Modzy accounts (two simulators), one real Redis.

The alias ``sentiment-ha`` names the primary (``modzy``) then the backup
(``modzy-backup``), each its own simulator so a fault hits one account only. Replicas
share the simulators and the Redis, as a deployment's replicas share providers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from adapters.registry import provider_type
from adapters.simulation import SIM_CONTROL, Fault, SimulatorControl
from gateway.auth.settings import ApiKeySettings, hash_api_key
from gateway.config.settings import ModelSettings, Settings, TimeoutSettings
from gateway.http.app import create_app
from gateway.limits.provider_resilience import CircuitBreakerSettings
from gateway.limits.settings import RateLimitSettings
from gateway.state.settings import RedisSettings
from tests.api.test_item_cache import models as cached_models
from tests.conftest import AUTH, api_keys, make_settings, provider_settings

PRIMARY = "modzy/ed542963de@1.0.1"
BACKUP = "modzy-backup/ed542963de@1.0.1"
CHAIN = [PRIMARY, BACKUP]
INPUTS = [{"name": "a", "text": "Great"}, {"name": "b", "text": "Awful"}]
SUBMIT = {"model": "sentiment-ha", "inputs": INPUTS}
BACKUP_ONLY_KEY = "test-key-backup-only-0123456789"
ALIAS_ONLY_KEY = "test-key-alias-only-0123456789"


@dataclass
class Pair:
    """Gateway replicas in front of a primary and a backup simulator."""

    clients: list[TestClient[Any, Any]]
    registries: list[CollectorRegistry]
    primary: SimulatorControl
    backup: SimulatorControl

    async def submit(self, replica: int = 0, body: Any = None, **headers: str) -> Any:
        resp = await self.clients[replica].post(
            "/v1/jobs", json=body or SUBMIT, headers={**AUTH, **headers}
        )
        return resp.status, await resp.json(content_type=None)

    def fallbacks(self, reason: str, replica: int = 0, to: str = BACKUP) -> float:
        labels = {"alias": "sentiment-ha", "from": PRIMARY, "to": to, "reason": reason}
        return self.registries[replica].get_sample_value("gateway_fallbacks_total", labels) or 0


def posts(sim: SimulatorControl) -> list[int | None]:
    """The statuses the simulator answered its submits with (None: no answer)."""
    return [r.status for r in sim.requests if r.method == "POST"]


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[Any]:
    started: list[Any] = []

    async def make(
        replicas: int = 1,
        primary_over: Any = None,
        models: list[ModelSettings] | None = None,
        **over: Any,
    ) -> Pair:
        sims, providers = [], []
        for name in ("modzy", "modzy-backup"):
            app = provider_type("modzy").fast_simulator(None)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            started.append(server)
            sims.append(app[SIM_CONTROL])
            extra = dict(primary_over or {}) if name == "modzy" else {}
            providers.append(
                provider_settings(
                    name,
                    "modzy",
                    str(server.make_url("/api")).rstrip("/"),
                    retries=0,
                    timeouts=TimeoutSettings(connect=1, read=2, total=4),
                    models=models,
                    **extra,
                )
            )
        settings: Settings = make_settings(
            providers,
            aliases=over.pop("aliases", {"sentiment-ha": CHAIN, "sentiment": PRIMARY}),
            redis=RedisSettings(url=redis_url, prefix=f"t{uuid.uuid4().hex[:10]}"),
            api_keys=[
                *api_keys(),
                ApiKeySettings(
                    id="backup-only",
                    sha256=hash_api_key(BACKUP_ONLY_KEY),
                    tenant="acme",
                    scopes=["jobs:read", "jobs:write"],
                    models=[BACKUP],
                ),
                ApiKeySettings(
                    id="alias-only",
                    sha256=hash_api_key(ALIAS_ONLY_KEY),
                    tenant="acme",
                    scopes=["jobs:read", "jobs:write"],
                    models=["sentiment-ha"],
                ),
            ],
            **over,
        )
        clients, registries = [], []
        for _ in range(replicas):
            registry = CollectorRegistry()
            client: TestClient[Any, Any] = TestClient(
                TestServer(create_app(settings, registry=registry))
            )
            await client.start_server()
            started.append(client)
            clients.append(client)
            registries.append(registry)
        return Pair(clients, registries, sims[0], sims[1])

    yield make
    for thing in reversed(started):
        await thing.close()


async def test_a_healthy_primary_takes_the_job_and_the_job_names_alias_and_target(pair):
    p = await pair()
    status, job = await p.submit()
    assert status == 202, job
    assert (job["model"], job["provider"], job["alias"]) == (PRIMARY, "modzy", "sentiment-ha")
    assert posts(p.primary) == [200] and posts(p.backup) == []
    read = await (await p.clients[0].get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
    assert (read["model"], read["alias"]) == (PRIMARY, "sentiment-ha")
    # A model named directly carries no alias.
    status, direct = await p.submit(body={"model": PRIMARY, "inputs": INPUTS})
    assert status == 202 and "alias" not in direct


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(kind="status", status=503, match="POST", times=1), "unavailable"),
        (Fault(kind="status", status=500, match="POST", times=1), "failed"),
        (Fault(kind="status", status=429, match="POST", times=1), "throttled"),
    ],
    ids=["503", "500", "429"],
)
async def test_a_refusing_primary_sends_the_submit_to_the_backup(
    pair, captured_logs, fault, reason
):
    p = await pair()
    p.primary.set_faults([fault])
    status, job = await p.submit()
    assert status == 202, job
    assert (job["model"], job["provider"], job["alias"]) == (BACKUP, "modzy-backup", "sentiment-ha")
    assert posts(p.primary) == [fault.status] and posts(p.backup) == [200]
    assert p.fallbacks(reason) == 1
    assert any(
        e["event"] == "fallback" and e["reason"] == reason and e["target"] == PRIMARY
        for e in captured_logs
    )
    # The job is read from the backup that runs it.
    read = await p.clients[0].get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=5"})
    assert (await read.json())["status"] == "succeeded"


async def test_a_retry_after_pause_passes_the_primary_over_on_every_replica(pair):
    p = await pair(replicas=2)
    p.primary.set_faults(
        [Fault(kind="status", status=429, retry_after="30", match="POST", times=1)]
    )
    status, job = await p.submit(0)
    assert (status, job["provider"]) == (202, "modzy-backup")
    # The pause is shared through Redis: the other replica does not ask the primary.
    status, job = await p.submit(1)
    assert (status, job["provider"]) == (202, "modzy-backup")
    assert posts(p.primary) == [429] and posts(p.backup) == [200, 200]
    assert p.fallbacks("throttled", 0) == 1 and p.fallbacks("paused", 1) == 1


async def test_an_open_circuit_passes_the_primary_over_without_calling_it(pair):
    breaker = CircuitBreakerSettings(failures=1, open_seconds=30, max_open_seconds=60, jitter=0)
    p = await pair(replicas=2, primary_over={"circuit_breaker": breaker})
    p.primary.set_faults([Fault(kind="status", status=500, match="POST")])
    # The first failure trips the breaker (and is itself passed over)...
    status, job = await p.submit(0)
    assert (status, job["provider"]) == (202, "modzy-backup")
    # ... and every later submit skips the primary in microseconds, on either replica
    # (the other replica follows the shared breaker after its own first failure).
    for replica in (0, 0, 1, 1):
        status, job = await p.submit(replica)
        assert (status, job["provider"]) == (202, "modzy-backup")
    assert p.fallbacks("circuit_open", 0) == 2
    assert len(posts(p.primary)) <= 2  # the trip, and at most replica 1's first failure
    assert p.fallbacks("circuit_open", 1) >= 1


async def test_a_recovered_primary_gets_the_alias_back_through_its_probe(pair):
    """Passing over an open circuit must not starve its probe: once the open time is
    over, the next alias submit is the probe, and the primary serves again."""
    breaker = CircuitBreakerSettings(
        failures=1, open_seconds=0.3, max_open_seconds=1, jitter=0, recheck_seconds=0.1
    )
    p = await pair(primary_over={"circuit_breaker": breaker})
    p.primary.set_faults([Fault(kind="status", status=500, match="POST", times=1)])
    assert (await p.submit())[1]["provider"] == "modzy-backup"  # the trip
    assert (await p.submit())[1]["provider"] == "modzy-backup"  # open: passed over
    await asyncio.sleep(0.4)
    assert (await p.submit())[1]["provider"] == "modzy"  # the probe, and it succeeded
    assert (await p.submit())[1]["provider"] == "modzy"
    assert posts(p.primary) == [500, 200, 200]


async def test_a_spent_daily_quota_on_the_primary_sends_the_job_to_the_backup(pair):
    limits = RateLimitSettings.model_validate(
        {"daily_jobs": {"tenants": {"acme": {"modzy": 1, "modzy-backup": 1}}}}
    )
    p = await pair(ratelimit=limits)
    assert (await p.submit())[1]["provider"] == "modzy"
    status, job = await p.submit()
    assert (status, job["provider"]) == (202, "modzy-backup")
    assert p.fallbacks("quota") == 1
    # Both spent: the answer is the last target's own 429.
    status, problem = await p.submit()
    assert (status, problem["code"]) == (429, "quota_exceeded")
    assert "modzy-backup" in problem["detail"]
    assert p.fallbacks("quota", to=BACKUP) == 2


async def test_a_submit_the_primary_may_have_accepted_is_never_sent_again(pair):
    """The connection drops after the primary created the job: no fallback, a 5xx."""
    p = await pair()
    p.primary.set_faults([Fault(kind="lost", match="POST", times=1)])
    status, problem = await p.submit()
    assert (status, problem["code"]) == (502, "provider_error"), problem
    assert posts(p.primary) == [None]  # the work was done, the answer lost
    assert posts(p.backup) == []
    assert p.registries[0].get_sample_value("gateway_fallbacks_total", None) is None


async def test_a_primary_that_times_out_after_the_body_was_sent_is_not_bypassed(pair):
    p = await pair()
    p.primary.set_faults([Fault(kind="hang", match="POST", times=1)])
    status, problem = await p.submit()
    assert (status, problem["code"]) == (504, "provider_timeout")
    assert posts(p.backup) == []


async def test_when_every_target_refuses_the_answer_is_the_last_ones(pair):
    p = await pair()
    p.primary.set_faults([Fault(kind="status", status=503, match="POST", times=1)])
    p.backup.set_faults([Fault(kind="status", status=503, retry_after="7", match="POST")])
    status, problem = await p.submit()
    assert (status, problem["code"]) == (503, "provider_unavailable")
    assert posts(p.primary) == [503] and posts(p.backup) == [503]


async def test_allow_lists_hold_for_the_alias_and_each_target(pair):
    p = await pair()
    # A key allowed only the backup may use the alias: it goes to the backup alone.
    status, job = await p.submit(Authorization=f"Bearer {BACKUP_ONLY_KEY}")
    assert (status, job["provider"]) == (202, "modzy-backup")
    assert posts(p.primary) == []
    # A key allowed the alias may use its whole chain, not other models.
    status, job = await p.submit(Authorization=f"Bearer {ALIAS_ONLY_KEY}")
    assert (status, job["provider"]) == (202, "modzy")
    status, problem = await p.submit(
        body={"model": "sentiment", "inputs": INPUTS}, Authorization=f"Bearer {ALIAS_ONLY_KEY}"
    )
    assert (status, problem["code"]) == (403, "forbidden")
    # The limited test key may use "sentiment" only, so not this alias.
    status, problem = await p.submit(Authorization="Bearer test-key-limited-0123456789")
    assert (status, problem["code"]) == (403, "forbidden")


async def test_a_weighted_alias_sends_traffic_to_both_targets(pair):
    split = [{"model": PRIMARY, "weight": 1}, {"model": BACKUP, "weight": 1}]
    p = await pair(aliases={"sentiment-ha": split})
    providers = [(await p.submit())[1]["provider"] for _ in range(24)]
    # 24 fair coin flips all landing on one side: one chance in 8 million.
    assert set(providers) == {"modzy", "modzy-backup"}


async def test_models_show_each_alias_chain(pair):
    split = [{"model": PRIMARY, "weight": 3}, {"model": BACKUP, "weight": 1}]
    p = await pair(aliases={"sentiment-ha": CHAIN, "sentiment-split": split})
    body = await (await p.clients[0].get("/v1/models", headers=AUTH)).json()
    assert body["aliases"] == [
        {
            "name": "sentiment-ha",
            "targets": [{"model": PRIMARY, "weight": None}, {"model": BACKUP, "weight": None}],
        },
        {
            "name": "sentiment-split",
            "targets": [{"model": PRIMARY, "weight": 3.0}, {"model": BACKUP, "weight": 1.0}],
        },
    ]
    by_id = {m["id"]: m for m in body["models"]}
    assert by_id[BACKUP]["aliases"] == ["sentiment-ha", "sentiment-split"]


async def test_a_target_that_cannot_take_the_inputs_is_skipped_with_the_reason_logged(
    make_gateway, captured_logs
):
    """Vody takes image URLs only: text inputs go to the next target, Modzy."""
    h = await make_gateway(
        ["vody", "modzy"],
        aliases={"any-sentiment": ["vody/color-classification", PRIMARY]},
    )
    body = {"model": "any-sentiment", "inputs": INPUTS}
    resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
    job = await resp.json()
    assert resp.status == 202, job
    assert (job["provider"], job["alias"]) == ("modzy", "any-sentiment")
    skipped = [e for e in captured_logs if e["event"] == "fallback_target_skipped"]
    assert [(e["target"], e["reason"]) for e in skipped] == [
        ("vody/color-classification", "inputs")
    ]
    assert "url" in skipped[0]["detail"].lower()
    labels = {
        "alias": "any-sentiment",
        "from": "vody/color-classification",
        "to": PRIMARY,
        "reason": "inputs",
    }
    assert h.registry.get_sample_value("gateway_fallbacks_total", labels) == 1
    assert not [r for r in h.sims["vody"].requests if r.method == "POST"]
    # When no target can take the inputs, the first one's refusal is the answer.
    body = {"model": "any-sentiment", "inputs": [{"name": "a", "ref": "3240"}]}
    resp = await h.client.post("/v1/jobs", json=body, headers=AUTH)
    assert (resp.status, (await resp.json())["code"]) == (422, "unsupported_input")


async def test_the_answers_of_a_job_the_backup_ran_are_kept_as_the_backups(pair):
    """An item cache on both accounts: the primary refuses, the backup runs the job; its
    answers are kept under the backup's account, so a job sent to the backup itself
    reuses them and one sent to the primary does not (another account's answers)."""
    p = await pair(models=cached_models())
    p.primary.set_faults([Fault(kind="status", status=503, match="POST", times=1)])
    status, job = await p.submit(body=SUBMIT, Prefer="wait=5")
    assert status == 200 and job["provider"] == "modzy-backup", job
    assert posts(p.backup) == [200]
    status, again = await p.submit(body={"model": BACKUP, "inputs": INPUTS}, Prefer="wait=5")
    assert status == 200 and again["status"] == "succeeded"
    assert posts(p.backup) == [200]  # answered from the entries the first job left
    results = await p.clients[0].get(f"/v1/jobs/{again['id']}/results", headers=AUTH)
    assert [i.get("cached") for i in (await results.json())["items"]] == [True, True]
    status, primary = await p.submit(body={"model": PRIMARY, "inputs": INPUTS}, Prefer="wait=5")
    assert status == 200 and primary["provider"] == "modzy"
    assert posts(p.primary) == [503, 200]  # the primary's own account had no entries
