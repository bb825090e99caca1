"""Webhooks over real HTTP: the gateway's engine delivers to a receiver on loopback, and
what it sends verifies with the official ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook

from gateway.auth.settings import UrlGuardSettings
from gateway.jobs.settings import EngineSettings, WebhookSettings
from tests.conftest import AUTH, MINTED, OTHER_AUTH, Harness
from tests.e2e.processes import free_port

SECRET = "whsec_" + base64.b64encode(b"acme-webhook-secret-for-tests-0001").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"acme-webhook-secret-for-tests-0002").decode()
MINTED.update({SECRET, NEW_SECRET})  # no log line may ever hold one
FAST_POLL = {"modzy": {"poll": {"initial_seconds": 0.05, "max_seconds": 0.2}}}
LOOPBACK = UrlGuardSettings(allow_http=True, allowed_networks=["127.0.0.0/8"])


@dataclass
class Receiver:
    """A webhook receiver that answers from a script of statuses (then 204)."""

    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read(), time.monotonic()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 204
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status)

    async def elsewhere(self, request: web.Request) -> web.Response:
        pytest.fail("a redirect was followed")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        app.router.add_post("/elsewhere", self.elsewhere)
        return app


async def start(receiver: Receiver, port: int = 0) -> TestServer:
    server = TestServer(receiver.app(), host="127.0.0.1", port=port)
    await server.start_server()
    return server


def webhook_settings(**over: Any) -> WebhookSettings:
    base: dict[str, Any] = {
        "secrets": [{"tenant": "acme", "value": SECRET}],
        "max_attempts": 3,
        "initial_backoff_seconds": 0.05,
        "max_backoff_seconds": 0.2,
        "timeout_seconds": 2,
    }
    base.update(over)
    return WebhookSettings.model_validate(base)


async def gateway(make_gateway, **over: Any) -> Harness:
    over.setdefault("engine", EngineSettings(max_staleness_seconds=5))
    over.setdefault("webhooks", webhook_settings())
    over.setdefault("url_guard", LOOPBACK)
    over.setdefault("provider_over", FAST_POLL)
    h: Harness = await make_gateway(["modzy"], **over)
    return h


def body(url: str) -> dict[str, Any]:
    return {"model": "sentiment", "inputs": [{"name": "a", "text": "fine"}], "webhook_url": url}


async def job_when(h: Harness, job_id: str, check: Any, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        job: dict[str, Any] = await (await h.client.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()
        if check(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job never reached the expected state: {job}")
        await asyncio.sleep(0.05)


def attempts(h: Harness, outcome: str) -> float:
    return h.registry.get_sample_value("gateway_webhook_attempts_total", {"outcome": outcome}) or 0


async def test_a_finished_job_is_delivered_once_signed_as_standard_webhooks_say(make_gateway):
    receiver = Receiver()
    server = await start(receiver)
    try:
        h = await gateway(make_gateway)
        url = str(server.make_url("/hook"))
        submitted = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        assert submitted["notification"] == {
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "delivered_at": None,
        }
        job = await job_when(h, submitted["id"], lambda j: j["notification"]["status"] != "pending")
        assert job["notification"]["status"] == "delivered"
        assert job["notification"]["attempts"] == 1 and job["notification"]["delivered_at"]
        assert len(receiver.got) == 1
        headers, raw, _ = receiver.got[0]
        payload = Webhook(SECRET).verify(raw, headers)  # the official verifier
        assert headers["webhook-id"] == f"msg_{job['id']}"
        assert payload["type"] == "job.succeeded"
        assert payload["timestamp"].endswith("Z")
        data = payload["data"]
        assert data["id"] == job["id"] and data["status"] == "succeeded" and data["done"]
        assert {k: v for k, v in data.items() if k != "notification"} == {
            k: v for k, v in job.items() if k != "notification"
        }
        assert attempts(h, "delivered") == 1
        assert h.registry.get_sample_value("gateway_webhook_delay_seconds_count") == 1
        # A job without webhook_url carries no notification at all.
        plain = {"model": "sentiment", "inputs": [{"name": "a", "text": "x"}]}
        other = await (await h.client.post("/v1/jobs", json=plain, headers=AUTH)).json()
        assert "notification" not in other
    finally:
        await server.close()


async def test_while_a_secret_rotates_both_sign_and_either_verifies(make_gateway):
    receiver = Receiver()
    server = await start(receiver)
    try:
        secrets = [{"tenant": "acme", "value": SECRET}, {"tenant": "acme", "value": NEW_SECRET}]
        h = await gateway(make_gateway, webhooks=webhook_settings(secrets=secrets))
        url = str(server.make_url("/hook"))
        job = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        await job_when(h, job["id"], lambda j: j["notification"]["status"] == "delivered")
        headers, raw, _ = receiver.got[0]
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(SECRET).verify(raw, headers)
        Webhook(NEW_SECRET).verify(raw, headers)
    finally:
        await server.close()


async def test_a_receiver_that_always_fails_is_dead_lettered_after_max_attempts(make_gateway):
    receiver = Receiver(statuses=[500] * 10)
    server = await start(receiver)
    try:
        h = await gateway(make_gateway)
        url = str(server.make_url("/hook"))
        job = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        done = await job_when(h, job["id"], lambda j: j["notification"]["status"] == "failed")
        assert done["notification"]["attempts"] == 3
        assert "500" in done["notification"]["last_error"]
        assert len(receiver.got) == 3
        assert {h_["webhook-id"] for h_, _, _ in receiver.got} == {f"msg_{job['id']}"}
        gaps = [b - a for (_, _, a), (_, _, b) in zip(receiver.got, receiver.got[1:], strict=False)]
        assert all(g >= 0.025 for g in gaps), gaps  # backed off (half the wait is fixed)
        assert (attempts(h, "retried"), attempts(h, "dead_lettered")) == (2, 1)
        await asyncio.sleep(0.5)
        assert len(receiver.got) == 3  # and then left alone
    finally:
        await server.close()


async def test_a_receiver_down_for_a_while_gets_it_when_it_is_back(make_gateway):
    port = free_port()
    webhooks = webhook_settings(
        max_attempts=20, initial_backoff_seconds=0.1, max_backoff_seconds=0.3
    )
    h = await gateway(make_gateway, webhooks=webhooks)
    job = await (
        await h.client.post("/v1/jobs", json=body(f"http://127.0.0.1:{port}/hook"), headers=AUTH)
    ).json()
    failing = await job_when(h, job["id"], lambda j: j["notification"]["attempts"] >= 2)
    assert failing["notification"]["status"] == "pending"
    assert "cannot reach" in failing["notification"]["last_error"]
    receiver = Receiver()
    server = await start(receiver, port=port)
    try:
        done = await job_when(h, job["id"], lambda j: j["notification"]["status"] == "delivered")
        assert done["notification"]["attempts"] >= 3
        Webhook(SECRET).verify(receiver.got[0][1], receiver.got[0][0])
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("status", "expected", "tries"),
    [(410, "failed", 1), (302, "delivered", 2)],
    ids=["410-stops", "redirect-not-followed-then-ok"],
)
async def test_410_stops_and_a_redirect_is_not_followed(make_gateway, status, expected, tries):
    receiver = Receiver(statuses=[status])
    server = await start(receiver)
    try:
        h = await gateway(make_gateway)
        url = str(server.make_url("/hook"))
        job = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        done = await job_when(h, job["id"], lambda j: j["notification"]["status"] == expected)
        assert done["notification"]["attempts"] == tries == len(receiver.got)
        await asyncio.sleep(0.4)
        assert len(receiver.got) == tries
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("over", "url", "message"),
    [
        ({"url_guard": UrlGuardSettings(allow_http=True)}, "http://127.0.0.1:9/h", "not public"),
        ({}, "http://10.0.0.1/h", "not public"),
        ({}, "http://169.254.169.254/latest/meta-data", "not public"),
        ({"url_guard": UrlGuardSettings()}, "http://hooks.example.com/h", "scheme must be https"),
        ({}, "http://user:pw@127.0.0.1/h", "credentials"),
        ({"webhooks": WebhookSettings()}, "http://127.0.0.1:9/h", "no webhook secret"),
        ({"engine": EngineSettings(enabled=False)}, "http://127.0.0.1:9/h", "job engine"),
    ],
    ids=["loopback", "private", "metadata", "plain-http", "userinfo", "no-secret", "no-engine"],
)
async def test_a_webhook_url_that_may_not_be_called_is_a_422_before_the_provider_is_asked(
    make_gateway, over, url, message
):
    h = await gateway(make_gateway, **over)
    resp = await h.client.post("/v1/jobs", json=body(url), headers=AUTH)
    problem = await resp.json()
    assert resp.status == 422, problem
    assert problem["errors"][0]["pointer"] == "/webhook_url"
    assert message in problem["errors"][0]["message"] + problem["detail"]
    assert h.sim.count("POST") == 0


async def test_another_tenants_secret_never_signs_and_its_job_stays_hidden(make_gateway):
    receiver = Receiver()
    server = await start(receiver)
    try:
        h = await gateway(make_gateway)
        url = str(server.make_url("/hook"))
        # The other tenant has no secret configured: refused, though acme's exists.
        resp = await h.client.post("/v1/jobs", json=body(url), headers=OTHER_AUTH)
        assert resp.status == 422
        job = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        await job_when(h, job["id"], lambda j: j["notification"]["status"] == "delivered")
        assert (await h.client.get(f"/v1/jobs/{job['id']}", headers=OTHER_AUTH)).status == 404
    finally:
        await server.close()


async def test_a_cancelled_job_is_notified_at_once_not_at_the_next_check(make_gateway):
    from adapters.modzy.simulator import SimSettings, create_simulator

    receiver = Receiver()
    server = await start(receiver)
    try:
        slow = create_simulator(None, SimSettings(queue_seconds=30, item_seconds=30))
        # The engine would look again only after 30 s: the cancel itself must notify.
        lazy = {"modzy": {"poll": {"initial_seconds": 30, "max_seconds": 30}}}
        h = await gateway(make_gateway, sim_apps={"modzy": slow}, provider_over=lazy)
        url = str(server.make_url("/hook"))
        job = await (await h.client.post("/v1/jobs", json=body(url), headers=AUTH)).json()
        cancelled = await h.client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
        assert (await cancelled.json())["status"] == "cancelled"
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        headers, raw, _ = receiver.got[0]
        payload = Webhook(SECRET).verify(raw, headers)
        assert payload["type"] == "job.cancelled"
        assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "cancelled"
        done = await job_when(h, job["id"], lambda j: j["notification"]["status"] == "delivered")
        assert done["notification"]["attempts"] == 1
    finally:
        await server.close()
