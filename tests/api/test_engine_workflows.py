"""Provider workflows of several steps, driven by the job engine with no client reading.

AnnoLab's annotations come through a project export the gateway starts once the
inference finished and polls until it is ready (``adapters.annolab.adapter``). Each
step is kept in the job's record, so the engine takes the next one on any replica and
after any restart. The simulator runs on a clock the test moves: an export the
provider takes a minute over, with the gateway's checks coming every few hundred ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.annolab import EXAMPLES
from adapters.annolab.simulator import SimSettings, create_simulator
from adapters.simulation import SimulatorControl
from gateway.http.keys import STORE
from gateway.jobs.settings import EngineSettings
from gateway.state.settings import RedisSettings
from tests.conftest import AUTH, Harness
from tests.e2e.replicas import RedisServer
from tests.support import FakeClock

FAST_POLL: dict[str, Any] = {"annolab": {"poll": {"initial_seconds": 0.05, "max_seconds": 0.2}}}
BODY = {
    "model": f"annolab/{EXAMPLES.model_id}",
    "inputs": [{"name": i.name, "ref": i.ref} for i in EXAMPLES.good_inputs],
    "options": {"provider": dict(EXAMPLES.options)},
}


def minute_long_exports() -> tuple[FakeClock, Any]:
    clock = FakeClock()
    sim = create_simulator(
        SimulatorControl(clock=clock),
        SimSettings(job_seconds=2.0, queued_seconds=0.5, export_seconds=60.0),
    )
    return clock, sim


async def stored_when(h: Harness, job_id: str, check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            record = await h.app[STORE].get("acme", job_id)
        except Exception:  # the store is down for a moment (Redis restarting)
            record = None
        if record is not None and check(record):
            return record
        await asyncio.sleep(0.05)
    pytest.fail(f"job {job_id} never reached the expected state")


def exporting(record: Any) -> bool:
    return bool(record.upstream_state.get("export"))


async def run_export(h: Harness, clock: FakeClock, job_id: str) -> Any:
    """The provider's minute of exporting, ten simulated seconds at a time; the job stays
    running and its one export is polled, never started again."""
    sim = h.sims["annolab"]
    for _ in range(6):
        await asyncio.sleep(0.3)  # the engine checks a few times meanwhile
        record = await h.app[STORE].get("acme", job_id)
        assert record is not None and record.status == "running", record
        assert sim.count("POST", "/v1/export") == 1
        clock.advance(10)
    return await stored_when(h, job_id, lambda r: r.done)


async def test_an_export_of_a_minute_ends_with_results_and_no_client_reading(make_gateway):
    clock, sim = minute_long_exports()
    h = await make_gateway(
        ["annolab"],
        sim_apps={"annolab": sim},
        provider_over=FAST_POLL,
        engine=EngineSettings(max_staleness_seconds=30),
    )
    job = await (await h.client.post("/v1/jobs", json=BODY, headers=AUTH)).json()
    clock.advance(2)  # the inference finished
    record = await stored_when(h, job["id"], exporting)
    assert record.upstream_status.startswith("Finished (export")
    done = await run_export(h, clock, job["id"])
    assert done.status == "succeeded"
    assert done.upstream_state["export"]["download_url"]
    # The engine fetched the results as the job finished: a read is answered from cache.
    control = h.sims["annolab"]
    for _ in range(50):
        if control.count("GET", "/v1/export/download/") == 1:
            break
        await asyncio.sleep(0.05)
    calls = control.count()
    resp = await h.client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200 and resp.headers["Cache-Status"].endswith("hit")
    assert [i["status"] for i in body["items"]] == ["succeeded"] * len(EXAMPLES.good_inputs)
    assert control.count() == calls
    assert control.count("POST", "/v1/export") == 1


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, durable=True)
    server.start()
    yield server
    server.ensure_running()
    server.stop()


async def test_redis_restarted_mid_export_the_engine_resumes_and_loses_nothing(
    make_gateway, durable_redis
):
    clock, sim = minute_long_exports()
    h = await make_gateway(
        ["annolab"],
        sim_apps={"annolab": sim},
        provider_over=FAST_POLL,
        engine=EngineSettings(max_staleness_seconds=30, sweep_seconds=1),
        redis=RedisSettings(url=durable_redis.url(), socket_timeout=1.0, connect_timeout=0.5),
    )
    jobs = []
    for _ in range(3):
        resp = await h.client.post("/v1/jobs", json=BODY, headers=AUTH)
        assert resp.status == 202, await resp.text()
        jobs.append((await resp.json())["id"])
    clock.advance(2)
    for job_id in jobs:
        await stored_when(h, job_id, exporting)
    # Redis dies (SIGKILL) in the middle of the exports and comes back a moment later.
    durable_redis.kill()
    await asyncio.sleep(1.0)
    durable_redis.start()
    clock.advance(60)
    for job_id in jobs:
        record = await stored_when(h, job_id, lambda r: r.done, seconds=30)
        assert record.status == "succeeded"
        resp = await h.client.get(f"/v1/jobs/{job_id}/results", headers=AUTH)
        assert resp.status == 200
        items = (await resp.json())["items"]
        assert [i["status"] for i in items] == ["succeeded"] * len(EXAMPLES.good_inputs)
    # Each job's export was started once: its step survived the restart.
    assert h.sims["annolab"].count("POST", "/v1/export") == len(jobs)
