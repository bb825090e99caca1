"""A job fanned out to several provider jobs: LlamaCloud classifies one file per job.

The gateway job of N files is N classify jobs at the provider; the engine checks the
ones still running (one list call), the job shows partial results as files finish,
ends when all have, and a cancel stops every one still running. The simulator runs on
a clock the test moves.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from typing import Any

import pytest

from adapters.llamacloud import EXAMPLE_RULES, SIM_STATE
from adapters.llamacloud.simulator import FAST_SETTINGS, fast_simulator
from adapters.simulation import SimulatorControl
from gateway.http.keys import STORE
from gateway.jobs.settings import EngineSettings
from tests.conftest import AUTH, Harness
from tests.support import FakeClock

FAST_POLL: dict[str, Any] = {"llamacloud": {"poll": {"initial_seconds": 0.05, "max_seconds": 0.2}}}
TEXTS = {
    "invoice": "Invoice number 7781. Line items: 2 chairs. Amount due: $90.",
    "slow-receipt": "Store receipt. Items paid: coffee. Change given: $1.",
    "contract": "Agreement between the parties; terms apply; signatures below.",
    "slow-invoice": "Invoice number 12, amount due $5.",
}


def body(names: list[str]) -> dict[str, Any]:
    return {
        "model": "llamacloud/classifier",
        "inputs": [
            {
                "name": name,
                "data": base64.b64encode(TEXTS[name].encode()).decode(),
                "content_type": "text/plain",
            }
            for name in names
        ],
        "options": {"provider": {"rules": EXAMPLE_RULES}},
    }


def simulator() -> tuple[FakeClock, Any]:
    clock = FakeClock()
    app = fast_simulator(SimulatorControl(clock=clock), replace(FAST_SETTINGS, slow_seconds=60.0))
    return clock, app


async def stored_when(h: Harness, job_id: str, check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record = await h.app[STORE].get("acme", job_id)
        if record is not None and check(record):
            return record
        await asyncio.sleep(0.05)
    pytest.fail(f"job {job_id} never reached the expected state")


async def test_the_engine_finishes_every_provider_job_with_partial_results_on_the_way(
    make_gateway,
):
    clock, app = simulator()
    h = await make_gateway(
        ["llamacloud"],
        sim_apps={"llamacloud": app},
        provider_over=FAST_POLL,
        engine=EngineSettings(max_staleness_seconds=30),
    )
    names = list(TEXTS)
    resp = await h.client.post("/v1/jobs", json=body(names), headers=AUTH)
    assert resp.status == 202, await resp.text()
    job = await resp.json()
    sim = h.sims["llamacloud"]
    assert sim.count("POST", "/api/v2/classify") == 4
    assert job["upstream"]["id"] == next(iter(app[SIM_STATE].jobs))

    clock.advance(1.0)  # the quick files are done; the slow ones run another minute
    record = await stored_when(h, job["id"], lambda r: r.counts.succeeded == 2)
    assert record.status == "running"
    assert record.upstream_status == "COMPLETED:2,RUNNING:2"
    partial = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
    assert [i["status"] for i in partial["items"]] == [
        "succeeded",
        "pending",
        "succeeded",
        "pending",
    ]
    assert partial["items"][0]["output"]["label"] == "invoice"

    clock.advance(60.0)
    done = await stored_when(h, job["id"], lambda r: r.done)
    assert done.status == "succeeded"
    # The engine read the results as the job finished: a read is answered from cache.
    await asyncio.sleep(0.3)
    calls = sim.count()
    resp = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
    items = (await resp.json())["items"]
    assert resp.headers["Cache-Status"].endswith("hit")
    assert [i["output"]["label"] for i in items] == ["invoice", "receipt", "contract", "invoice"]
    assert sim.count() == calls
    # Never a second job for a file: one create each, whatever the checks did.
    assert sim.count("POST", "/api/v2/classify") == 4


async def test_cancel_stops_every_provider_job_still_running(make_gateway):
    clock, app = simulator()
    h = await make_gateway(["llamacloud"], sim_apps={"llamacloud": app})
    resp = await h.client.post(
        "/v1/jobs", json=body(["invoice", "slow-receipt", "slow-invoice"]), headers=AUTH
    )
    job = await resp.json()
    clock.advance(1.0)
    read = await (await h.client.get(f"/v1/jobs/{job['id']}", headers=AUTH)).json()
    assert read["counts"]["succeeded"] == 1
    resp = await h.client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
    cancelled = await resp.json()
    assert resp.status == 200, cancelled
    assert cancelled["status"] == "cancelled"
    jobs = list(app[SIM_STATE].jobs.values())
    assert [j.cancelled_at is not None for j in jobs] == [False, True, True]
    results = await (await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)).json()
    assert [i["status"] for i in results["items"]] == ["succeeded", "cancelled", "cancelled"]
    again = await h.client.delete(f"/v1/jobs/{job['id']}", headers=AUTH)
    assert again.status == 409


async def test_a_refused_file_fails_the_submit_and_leaves_no_provider_job(make_gateway):
    _, app = simulator()
    h = await make_gateway(["llamacloud"], sim_apps={"llamacloud": app})
    payload = body(["invoice", "contract"])
    payload["inputs"].append({"name": "missing", "ref": "dfl-does-not-exist"})
    resp = await h.client.post("/v1/jobs", json=payload, headers=AUTH)
    problem = await resp.json()
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert "dfl-does-not-exist" in problem["detail"]
    state = app[SIM_STATE]
    assert all(j.cancelled_at is not None for j in state.jobs.values())
    assert set(state.files) == {"dfl-sample-invoice", "dfl-sample-contract"}
