"""Upstream economy: provider items paid for per item submitted, with the item cache.

    make bench-economy                      # 400 jobs of 5 texts, 30 % of texts repeated
    BENCH_JOBS=1000 BENCH_REPEAT=0.5 make bench-economy

One gateway (in memory) in front of the Modzy simulator, both in this process over
loopback HTTP, the demo's sentiment model with its item cache on. The same workload
(seeded) runs twice: with ``options.cache: "off"`` (the baseline: every item goes to the
provider) and with the cache. Each text is new, or with probability ``BENCH_REPEAT`` one
from a job two rounds of ``BENCH_CONCURRENCY`` earlier, finished by then (a repeat of a
text still in flight cannot be answered from a cache written when its job finishes). Items
are counted at the simulator. Target (issue 17): at 30 % repeats, at most 0.7 provider items
per item submitted; exactly, at most the workload's own share of new texts.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from adapters.modzy.simulator import JOBS, SimSettings, create_simulator
from gateway.config.loading import load_settings
from gateway.demo import DEMO_CONFIG, _retarget
from gateway.http.app import create_app
from gateway.observability.logging import configure_logging

AUTH = {"Authorization": "Bearer demo-key"}


def workload(jobs: int, items: int, repeat: float, lag: int, seed: int) -> list[list[str]]:
    """Each job's texts; a repeat is drawn from jobs at least ``lag`` jobs earlier."""
    rng = random.Random(seed)
    out: list[list[str]] = []
    fresh = 0
    for j in range(jobs):
        seen = [t for earlier in out[: max(0, j - lag)] for t in earlier]
        texts = []
        for _ in range(items):
            if seen and rng.random() < repeat:
                texts.append(rng.choice(seen))
            else:
                fresh += 1
                texts.append(f"Review number {fresh}: {rng.choice(['great', 'awful', 'fine'])}")
        out.append(texts)
    return out


async def run(base: str, jobs: list[list[str]], mode: str, concurrency: int) -> list[float]:
    """Submit every job (waiting for it), ``concurrency`` at a time: submit latencies."""
    latencies: list[float] = []
    queue = iter(jobs)
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def worker() -> None:
            for texts in queue:
                body: dict[str, Any] = {
                    "model": "sentiment",
                    "inputs": [{"name": f"r{i}", "text": t} for i, t in enumerate(texts)],
                    "options": {"cache": mode},
                }
                started = time.perf_counter()
                async with session.post(
                    f"{base}/v1/jobs", json=body, headers={"Prefer": "wait=30"}
                ) as resp:
                    job = await resp.json()
                    assert resp.status in (200, 202), job
                latencies.append(time.perf_counter() - started)
                while not job["done"]:
                    async with session.get(
                        f"{base}/v1/jobs/{job['id']}", headers={"Prefer": "wait=30"}
                    ) as resp:
                        job = await resp.json()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def main() -> int:
    jobs_n = int(os.environ.get("BENCH_JOBS", "400"))
    items_n = int(os.environ.get("BENCH_ITEMS", "5"))
    repeat = float(os.environ.get("BENCH_REPEAT", "0.3"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "8"))

    sim = create_simulator(None, SimSettings(queue_seconds=0.02, item_seconds=0.01))
    root = web.Application()
    root.add_subapp("/modzy/", sim)
    sim_runner = web.AppRunner(root, access_log=None)
    await sim_runner.setup()
    sim_site = web.TCPSite(sim_runner, "127.0.0.1", 0)
    await sim_site.start()
    sim_port = sim_runner.addresses[0][1]
    settings = _retarget(load_settings(DEMO_CONFIG), f"http://127.0.0.1:{sim_port}")
    # No engine (a waiting submit sees its own job finish) and short waits between polls.
    engine = settings.engine.model_copy(update={"enabled": False})
    settings = settings.model_copy(update={"engine": engine, "wait_poll_interval": 0.02})
    configure_logging("console", "warning")
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"

    # Repeats of jobs two rounds back: finished, so their answers are in the cache.
    work = workload(jobs_n, items_n, repeat, lag=2 * concurrency, seed=7)
    submitted = jobs_n * items_n
    # What a cache of finished jobs' answers can save at best: texts an earlier job had
    # (a text twice in one job is sent twice: the cache does not merge a job's own inputs).
    seen: set[str] = set()
    unseen = 0
    for texts in work:
        unseen += sum(1 for t in texts if t not in seen)
        seen.update(texts)
    rows = []
    try:
        for mode in ("off", "use"):
            before = sum(len(j.items) for j in sim[JOBS].values())
            latencies = await run(base, work, mode, concurrency)
            sent = sum(len(j.items) for j in sim[JOBS].values()) - before
            rows.append((mode, sent, statistics.median(latencies)))
    finally:
        await runner.cleanup()
        await sim_runner.cleanup()

    print(f"{jobs_n} jobs x {items_n} texts, {repeat:.0%} repeats, {concurrency} at a time")
    print("| run | provider items | per item submitted |")
    print("|---|---|---|")
    for mode, sent, _ in rows:
        name = "baseline (options.cache: off)" if mode == "off" else "item cache"
        print(f"| {name} | {sent} | {sent / submitted:.3f} |")
    ratio = rows[1][1] / max(1, rows[0][1])
    target = unseen / submitted
    verdict = "PASS" if rows[1][1] <= unseen else "FAIL"
    print(
        f"provider items with the cache / without: {ratio:.3f}; texts no earlier job had: "
        f"{unseen} of {submitted} ({1 - target:.1%} repeats), so the target is <= "
        f"{target:.3f}: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
