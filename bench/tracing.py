"""What tracing costs: CPU per request with tracing off, and on at sample ratio 1.0 and 0.0.

    .venv/bin/python -m bench.tracing          # BENCH_REQUESTS=2000 BENCH_ROUNDS=3

One gateway (in memory) in front of the Modzy simulator, both in this process over
loopback HTTP (so the CPU measured is the gateway's, the simulator's and the client's: the
same in every run, so differences are the gateway's). Each run submits a few jobs, then
reads a finished job ``BENCH_REQUESTS`` times (answered from what the gateway holds: the
path where fixed overhead shows most) and submits ``BENCH_REQUESTS / 10`` jobs (a provider
call each). Spans go to an exporter that drops them, each as it ends (the SDK's simple
processor: a little dearer than production's batch one), without a collector's network
cost. Runs alternate, ``BENCH_ROUNDS`` times; the median per configuration is printed, with
"off" measured twice to show the noise.
Not part of the test suite.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from adapters.modzy.simulator import SimSettings, create_simulator
from gateway.config.loading import load_settings
from gateway.config.settings import Settings
from gateway.demo import DEMO_CONFIG, _retarget
from gateway.http.app import create_app
from gateway.observability.logging import configure_logging
from gateway.observability.settings import TracingSettings

AUTH = {"Authorization": "Bearer demo-key"}
BODY = {"model": "sentiment", "inputs": [{"name": "a", "text": "fine"}]}


class Dropped(SpanExporter):
    """Takes every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def one_run(settings: Settings, tracing: TracingSettings | None, requests: int) -> float:
    """CPU seconds per request (process time) for one configuration."""
    settings = settings.model_copy(update={"tracing": tracing or TracingSettings()})
    exporter = Dropped() if tracing is not None else None
    app = create_app(settings, span_exporter=exporter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.post(
                f"{base}/v1/jobs", json=BODY, headers={"Prefer": "wait=10"}
            ) as resp:
                job = await resp.json()
            url = f"{base}/v1/jobs/{job['id']}"
            for _ in range(20):  # warm up: connections, caches
                async with session.get(url) as resp:
                    await resp.read()
            started = time.process_time()
            for _ in range(requests):
                async with session.get(url) as resp:
                    await resp.read()
            for _ in range(requests // 10):
                async with session.post(f"{base}/v1/jobs", json=BODY) as resp:
                    await resp.read()
            spent = time.process_time() - started
    finally:
        await runner.cleanup()
    return spent / (requests + requests // 10)


async def main() -> None:
    requests = int(os.environ.get("BENCH_REQUESTS", "2000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    sim = create_simulator(None, SimSettings(queue_seconds=0.0, item_seconds=0.0))
    root = web.Application()
    root.add_subapp("/modzy/", sim)
    sim_runner = web.AppRunner(root, access_log=None)
    await sim_runner.setup()
    await web.TCPSite(sim_runner, "127.0.0.1", 0).start()
    settings = _retarget(
        load_settings(DEMO_CONFIG), f"http://127.0.0.1:{sim_runner.addresses[0][1]}"
    )
    engine = settings.engine.model_copy(update={"enabled": False})
    settings = settings.model_copy(update={"engine": engine})
    configure_logging("console", "warning")
    configs: dict[str, TracingSettings | None] = {
        "off": None,
        "off (again)": None,
        "on, ratio 1.0": TracingSettings(enabled=True, sample_ratio=1.0),
        "on, ratio 0.0": TracingSettings(enabled=True, sample_ratio=0.0),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for _ in range(rounds):
            for name, tracing in configs.items():
                results[name].append(await one_run(settings, tracing, requests))
    finally:
        await sim_runner.cleanup()
    base = statistics.median(results["off"])
    print(f"{requests} cached reads + {requests // 10} submits per run, {rounds} rounds")
    print("| tracing | CPU per request (µs) | vs off |")
    print("|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e6:.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
