"""Demo mode, end to end: one client, unchanged, against every provider of config/demo.yaml.

The simulators are mounted under ``/<type>/`` exactly as ``gateway demo`` and
``gateway simulate`` serve them, the gateway runs with the shipped demo configuration,
and the same three calls (submit, wait, page through results) run for each provider.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from adapters.base import JobInput
from adapters.registry import KNOWN_TYPES, provider_type
from gateway.config.loading import load_settings
from gateway.demo import DEMO_CONFIG, _retarget
from gateway.http.app import create_app
from gateway.simulators import simulators_app

AUTH = {"Authorization": "Bearer demo-key"}


def as_api_input(item: JobInput) -> dict[str, Any]:
    out: dict[str, Any] = {"name": item.name}
    if item.data is not None:
        out["data"] = base64.b64encode(item.data).decode()
        out["content_type"] = item.content_type
    else:
        value = getattr(item, item.kind.value)
        out[item.kind.value] = dict(value) if item.kind.value == "record" else value
    if item.fields:
        out["fields"] = dict(item.fields)
    return out


async def run_job(
    client: TestClient[Any, Any], body: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The client code a service would write: submit, wait, page through results."""
    resp = await client.post("/v1/jobs", json=body, headers={**AUTH, "Prefer": "wait=30"})
    job = await resp.json()
    assert resp.status in (200, 202), job
    while not job["done"]:
        resp = await client.get(f"/v1/jobs/{job['id']}", headers={**AUTH, "Prefer": "wait=30"})
        job = await resp.json()
    items: list[dict[str, Any]] = []
    token = None
    while True:
        query = "page_size=1" + (f"&page_token={token}" if token else "")
        page = await (
            await client.get(f"/v1/jobs/{job['id']}/results?{query}", headers=AUTH)
        ).json()
        items += page["items"]
        token = page["next_page_token"]
        if token is None:
            return job, items


async def test_the_same_client_works_against_every_demo_provider():
    settings = load_settings(DEMO_CONFIG)
    assert {p.type for p in settings.providers} == set(KNOWN_TYPES)
    async with TestServer(simulators_app(), host="127.0.0.1") as sims:
        settings = _retarget(settings, str(sims.make_url("")).rstrip("/"))
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            bodies: dict[str, dict[str, Any]] = {}
            for p in settings.providers:
                ex = provider_type(p.type).examples
                model = f"{p.name}/{ex.model_id}" + (f"@{ex.version}" if ex.version else "")
                bodies[p.name] = {
                    "model": model,
                    "inputs": [as_api_input(i) for i in ex.good_inputs],
                    "options": {"provider": dict(ex.options)},
                }
            outcomes = await asyncio.gather(*(run_job(client, b) for b in bodies.values()))
    for name, (job, items) in zip(bodies, outcomes, strict=True):
        assert job["status"] == "succeeded", (name, job)
        assert [i["input"] for i in items] == [i["name"] for i in bodies[name]["inputs"]]
        assert all(i["status"] == "succeeded" for i in items), (name, items)
        assert all(i["output"] is not None for i in items), (name, items)
