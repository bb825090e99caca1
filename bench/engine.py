"""The job engine's benchmarks (issue 13): many tracked jobs, readers, webhooks, reads from state.

    make bench-engine               # or: .venv/bin/python -m bench.engine
    BENCH_ENGINE_JOBS=2000 make bench-engine    # a smaller run (see ``EngineOptions``)

Three gateway replicas (``gateway serve``, engine on, one Redis) in front of the Modzy
simulator (``bench/sim.py``), and, in the same run, the baselines the figures are
divided by. Scenarios:

* E1: ``BENCH_ENGINE_JOBS`` (10,000) unfinished jobs, polled every 30 s by whichever
  replica holds each. Poll lag p99 (the gateway's histogram, and each job's interval
  between two status calls at the simulator); server CPU per tracked poll against the
  bare pass-through's CPU per proxied status read; memory per tracked job (replicas' RSS
  and Redis ``used_memory``, each a delta over the jobs).
* E2: provider calls per job while 1, 10, 100 and 300 readers read the same jobs as
  fast as they can: flat, since reads are answered from state.
* E3: webhook delay: jobs the provider finishes 2 s after submit, each with a
  ``webhook_url`` to a receiver in this process; arrival minus the provider's finish.
* E4: a status read of a running job answered from state (engine on) against the bare
  pass-through's proxied read (wrk, servers pinned as in ``make bench``).

The replicas are not pinned in E1-E3 (three replicas and the simulator share both
cores, as they would); E4 pins like ``make bench``. Results go to
``bench/results/engine.{json,md}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import redis
import yaml
from aiohttp import web

from adapters.modzy.simulator import SIMULATOR_KEY
from bench.config import MODEL, GatewayConfig, config_dict
from bench.loadgen import require_wrk
from bench.measure import Context, Row, ratio
from bench.options import Options
from bench.procs import Processes, free_port
from bench.report import machine_info, machine_line, print_out, table
from bench.run import _delete_keys
from bench.stack import GATEWAY, GATEWAY_AUTH, Server, Stack

#: A published test secret (Standard Webhooks' format); the receiver does not verify.
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtd2ViaG9vay1zZWNyZXQtbm90LWEtcmVhbC1vbmU="
#: A Modzy status check at the simulator (mounted at /modzy/), less the job id.
STATUS_PATH = "/modzy/api/jobs/"


@dataclass(frozen=True)
class EngineOptions:
    jobs: int
    replicas: int
    #: The engine polls each job this often (initial = max: a steady state at once).
    poll_seconds: float
    #: Seconds E1 measures once every job is tracked and has been polled once.
    window: float
    readers: tuple[int, ...]
    reader_seconds: float
    webhooks: int
    submit_concurrency: int

    @classmethod
    def from_env(cls) -> EngineOptions:
        env = os.environ.get
        return cls(
            jobs=int(env("BENCH_ENGINE_JOBS", "10000")),
            replicas=int(env("BENCH_REPLICAS", "3")),
            poll_seconds=float(env("BENCH_ENGINE_POLL_SECONDS", "30")),
            window=float(env("BENCH_ENGINE_WINDOW", "60")),
            readers=tuple(int(n) for n in env("BENCH_ENGINE_READERS", "1,10,100,300").split(",")),
            # One whole poll interval: every job is checked once in it, whatever its phase.
            reader_seconds=float(env("BENCH_ENGINE_READER_SECONDS", "30")),
            webhooks=int(env("BENCH_ENGINE_WEBHOOKS", "300")),
            submit_concurrency=int(env("BENCH_ENGINE_SUBMIT_CONCURRENCY", "24")),
        )


def _step(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)


def engine_config(c: GatewayConfig, e: EngineOptions) -> dict[str, Any]:
    """``make bench``'s production shape, with the engine on and webhooks to loopback."""
    data = config_dict(c)
    long_provider = data["providers"][0]
    slow = {**long_provider, "name": "modzy-2s", "base_url": f"{c.sim_url}/modzy-2s/api"}
    data["providers"].append(slow)
    # Every job checked every poll_seconds from the start: the steady state of a fleet
    # of long jobs, reached at once instead of after the backoff grows.
    long_provider["poll"] = {"initial_seconds": e.poll_seconds, "max_seconds": e.poll_seconds}
    # The 2 s jobs: checked after 0.5 s, then backing off, as a default config would.
    slow["poll"] = {"initial_seconds": 0.5, "max_seconds": 5, "factor": 2}
    # Reads answer from state while the engine's last check is younger than this: above
    # the poll interval plus its lag, so no read of a tracked job asks the provider.
    data["engine"] = {
        "enabled": True,
        "max_staleness_seconds": e.poll_seconds * 1.5,
        "concurrency": 64,
    }
    data["webhooks"] = {"secrets": [{"tenant": "bench", "value": WEBHOOK_SECRET}]}
    data["url_guard"] = {"allow_http": True, "allowed_networks": ["127.0.0.0/8"]}
    data["job_retention_seconds"] = 1800
    return data


def start_replicas(
    stack: Stack, ps: Processes, workdir: Path, config: dict[str, Any], n: int
) -> list[Server]:
    (workdir / "modzy.key").write_text(SIMULATOR_KEY + "\n")
    path = workdir / "engine.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    servers = []
    for i in range(n):
        port = free_port()
        proc = ps.start(
            f"replica-{i}",
            [GATEWAY, "serve", "--config", str(path), "--port", str(port)],
            log=stack.log_path(f"engine-replica-{i}"),
        )
        url = f"http://127.0.0.1:{port}"
        ps.wait_http(proc, f"{url}/healthz")
        servers.append(Server(proc, url))
    return servers


# -- async helpers --------------------------------------------------------------------------


async def submit_many(
    urls: Sequence[str], model: str, count: int, concurrency: int, webhook: str | None = None
) -> list[tuple[dict[str, Any], float]]:
    """Submit ``count`` one-text jobs round-robin over ``urls``: (job, accepted at)."""
    out: list[tuple[dict[str, Any], float]] = []
    queue = iter(range(count))
    headers = {**GATEWAY_AUTH, "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            for n in queue:
                body: dict[str, Any] = {
                    "model": model,
                    "inputs": [{"name": "review-1", "text": f"Great product {n}"}],
                }
                if webhook is not None:
                    body["webhook_url"] = webhook
                for attempt in range(5):
                    async with session.post(
                        f"{urls[n % len(urls)]}/v1/jobs", json=body, headers=headers
                    ) as resp:
                        if resp.status in (200, 202):
                            out.append((await resp.json(), time.time()))
                            break
                        if attempt == 4:
                            raise RuntimeError(f"submit: {resp.status} {await resp.text()}")
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def read_hard(
    urls: Sequence[str], job_ids: Sequence[str], readers: int, seconds: float
) -> int:
    """``readers`` clients reading the jobs as fast as they can; how many reads answered."""
    done = 0
    stop = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=readers)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def reader(k: int) -> None:
            nonlocal done
            n = k
            while time.monotonic() < stop:
                url = f"{urls[n % len(urls)]}/v1/jobs/{job_ids[n % len(job_ids)]}"
                async with session.get(url, headers=GATEWAY_AUTH) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
                n += 1

        await asyncio.gather(*(reader(k) for k in range(readers)))
    return done


def sim_requests(sim: str, mount: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{sim}/{mount}/_sim/requests?limit=1000000", timeout=30) as r:
        body = json.loads(r.read())
    requests: list[dict[str, Any]] = body["requests"]
    return requests


def histogram_quantile(texts: Sequence[str], name: str, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a histogram summed over
    several /metrics pages (every label set together): a conservative pXX."""
    buckets: dict[float, float] = defaultdict(float)
    for text in texts:
        for line in text.splitlines():
            if not line.startswith(f"{name}_bucket{{"):
                continue
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            buckets[math.inf if le == "+Inf" else float(le)] += float(value)
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    for bound in bounds:
        if buckets[bound] >= q * total:
            return bound
    return math.inf


def metrics(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text: str = r.read().decode()
        return text


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Receiver:
    """A webhook receiver in a thread: the arrival time of each job's first delivery."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            job_id = body.get("data", {}).get("id") or body.get("id")
            self.arrivals.setdefault(str(job_id), time.time())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)


# -- scenarios ------------------------------------------------------------------------------


def e1_tracked(
    ctx: Context, e: EngineOptions, replicas: list[Server], bare: Server, model: str, started: float
) -> list[tuple[str, str]]:
    sim = ctx.sim.url
    rds = redis.Redis.from_url(ctx.opts.redis_url)
    rss_before = sum(r.proc.rss() for r in replicas)
    redis_before = int(rds.info("memory")["used_memory"])
    _step(started, f"E1: submitting {e.jobs} jobs over {len(replicas)} replicas")
    t0 = time.monotonic()
    jobs = asyncio.run(submit_many([r.url for r in replicas], model, e.jobs, e.submit_concurrency))
    submit_seconds = time.monotonic() - t0
    _step(started, f"E1: {len(jobs)} submitted in {submit_seconds:.0f} s; waiting for steady state")
    time.sleep(e.poll_seconds + 2)
    ctx.stack.clear_sim_log(sim)
    cpu_before = sum(r.proc.cpu() for r in replicas)
    texts_before = [metrics(r.url) for r in replicas]
    _step(started, f"E1: measuring {e.window:g} s")
    time.sleep(e.window)
    cpu = sum(r.proc.cpu() for r in replicas) - cpu_before
    texts = [metrics(r.url) for r in replicas]
    log = sim_requests(sim, "modzy")
    rss_after = sum(r.proc.rss() for r in replicas)
    redis_after = int(rds.info("memory")["used_memory"])
    rds.close()

    # The simulator is mounted at /modzy/: a status check is GET /modzy/api/jobs/<id>.
    polls = [r for r in log if r["method"] == "GET" and r["path"].startswith(STATUS_PATH)]
    by_job: dict[str, list[float]] = defaultdict(list)
    for r in polls:
        by_job[r["path"]].append(float(r["at"]))
    intervals = [b - a for times in by_job.values() for a, b in pairwise(times)]
    per_poll_us = cpu * 1e6 / max(1, len(polls))

    # The baseline: the bare pass-through's CPU per proxied status read, this run.
    upstream_id = jobs[0][0]["upstream"]["id"]
    base = ctx.measure(
        "E1 pass-through",
        f"{bare.url}/modzy/api/jobs/{upstream_id}",
        bare.proc,
        connections=ctx.opts.connections,
        headers={},
    )
    base_us = base.cpu_us or 0.0
    # Lag from the histogram: only the checks made inside the window.
    lag_p99 = _window_quantile(texts_before, texts, "gateway_engine_poll_lag_seconds", 0.99)
    interval_p99 = percentile(intervals, 0.99) if intervals else None
    expected_polls = e.jobs * e.window / e.poll_seconds
    ctx.data["E1"] = {
        "jobs": e.jobs,
        "submit_seconds": round(submit_seconds, 1),
        "polls_in_window": len(polls),
        "expected_polls": round(expected_polls),
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_poll": round(per_poll_us, 1),
        "passthrough_cpu_us_per_request": round(base_us, 1),
        "poll_lag_p99_le": lag_p99,
        "interval_p99_s": None if interval_p99 is None else round(interval_p99, 3),
        "rss_bytes_per_job": round((rss_after - rss_before) / e.jobs),
        "redis_bytes_per_job": round((redis_after - redis_before) / e.jobs),
    }
    ctx.row(
        "E1",
        f"poll lag p99, {e.jobs} jobs, {len(replicas)} replicas",
        f"≤ {lag_p99:g} s" if lag_p99 is not None else "n/a",
        f"poll every {e.poll_seconds:g} s",
        None,
        "≤ 1 s",
        lag_p99 is not None and lag_p99 <= 1.0,
    )
    if interval_p99 is not None:
        ctx.row(
            "E1",
            "interval between a job's polls p99 (simulator)",
            f"{interval_p99:.2f} s",
            f"{e.poll_seconds:g} s",
            ratio(interval_p99, e.poll_seconds),
            f"≤ {e.poll_seconds + 1:g} s",
            interval_p99 <= e.poll_seconds + 1,
        )
    ctx.row(
        "E1",
        "polls in the window vs jobs * window / interval",
        str(len(polls)),
        str(round(expected_polls)),
        ratio(len(polls), expected_polls),
        "0.95-1.05",
        0.95 <= len(polls) / expected_polls <= 1.05,
    )
    ctx.row(
        "E1",
        "server CPU µs per tracked poll (3 replicas)",
        f"{per_poll_us:.0f}",
        f"pass-through read {base_us:.0f}",
        ratio(per_poll_us, base_us),
        "",
        None,
    )
    ctx.row(
        "E1",
        "memory per tracked job: replicas RSS / Redis",
        f"{(rss_after - rss_before) / e.jobs:.0f} B / "
        f"{(redis_after - redis_before) / e.jobs:.0f} B",
        "",
        None,
        "",
        None,
    )
    return [(j["id"], j["upstream"]["id"]) for j, _ in jobs]


def _window_quantile(
    before: Sequence[str], after: Sequence[str], name: str, q: float
) -> float | None:
    """A histogram quantile over what was observed between two scrapes of each replica."""
    diffs = []
    for b, a in zip(before, after, strict=True):
        old = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in b.splitlines()
            if line.startswith(f"{name}_bucket{{")
        }
        lines = []
        for line in a.splitlines():
            if line.startswith(f"{name}_bucket{{"):
                key, value = line.rsplit(" ", 1)
                lines.append(f"{key} {float(value) - old.get(key, 0.0)}")
        diffs.append("\n".join(lines))
    return histogram_quantile(diffs, name, q)


def e2_readers(
    ctx: Context,
    e: EngineOptions,
    replicas: list[Server],
    jobs: list[tuple[str, str]],
    started: float,
) -> None:
    """Readers on a few hundred tracked jobs: the provider calls those jobs cost."""
    # Spread over the submission, so their checks are spread over the interval (the
    # first 300 submitted would all be checked in the same second).
    chosen = jobs[:: max(1, len(jobs) // 300)][:300]
    upstream = {f"{STATUS_PATH}{u}" for _, u in chosen}
    urls = [r.url for r in replicas]
    expected = 60.0 / e.poll_seconds
    per_level: dict[int, dict[str, float]] = {}
    for readers in e.readers:
        ctx.stack.clear_sim_log(ctx.sim.url)
        _step(started, f"E2: {readers} readers for {e.reader_seconds:g} s")
        reads = asyncio.run(read_hard(urls, [g for g, _ in chosen], readers, e.reader_seconds))
        log = sim_requests(ctx.sim.url, "modzy")
        calls = sum(1 for r in log if r["method"] == "GET" and r["path"] in upstream)
        per_level[readers] = {
            "reads": reads,
            "provider_calls": calls,
            "per_job_per_minute": calls / len(chosen) * 60 / e.reader_seconds,
        }
    ctx.data["E2"] = {"jobs_read": len(chosen), "levels": per_level}
    for readers, figures in per_level.items():
        value = figures["per_job_per_minute"]
        r = ratio(value, expected)
        ctx.row(
            "E2",
            f"provider calls/job/min, {readers} readers ({figures['reads']:.0f} reads)",
            f"{value:.2f}",
            f"engine alone {expected:.2f}",
            r,
            "≤ 1.2",
            r is not None and r <= 1.2,
        )


def e3_webhooks(ctx: Context, e: EngineOptions, replicas: list[Server], started: float) -> None:
    """Jobs the provider finishes 2 s after submit; a webhook each: how late it comes."""
    receiver = Receiver()
    receiver.start()
    _step(started, f"E3: {e.webhooks} jobs with webhooks")
    model = ctx.data["model"].replace("modzy/", "modzy-2s/")
    jobs = asyncio.run(
        submit_many([r.url for r in replicas], model, e.webhooks, 8, webhook=receiver.url)
    )
    deadline = time.monotonic() + 60
    while len(receiver.arrivals) < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
    delays = []
    for job, accepted in jobs:
        arrived = receiver.arrivals.get(job["id"])
        if arrived is not None:
            # The simulator finishes a job 0.01 s (queue) + 2 s (its one item) after it
            # accepted it, which is before the gateway's 202 reached us.
            delays.append(arrived - (accepted + 2.01))
    texts = [metrics(r.url) for r in replicas]
    gateway_p99 = histogram_quantile(texts, "gateway_webhook_delay_seconds", 0.99)
    p50 = percentile(delays, 0.5) if delays else None
    p99 = percentile(delays, 0.99) if delays else None
    ctx.data["E3"] = {
        "jobs": len(jobs),
        "delivered": len(delays),
        "delay_p50_s": p50,
        "delay_p99_s": p99,
        "gateway_histogram_p99_le": gateway_p99,
    }
    ctx.row(
        "E3",
        f"webhooks delivered of {len(jobs)}",
        str(len(delays)),
        str(len(jobs)),
        ratio(len(delays), len(jobs)),
        "all",
        len(delays) == len(jobs),
    )
    ctx.row(
        "E3",
        "webhook delay after provider finish, p50 / p99",
        "n/a" if p99 is None or p50 is None else f"{p50:.2f} / {p99:.2f} s",
        "polls at 0.5, 1.5, 3.5 s",
        None,
        "",
        None,
    )
    ctx.row(
        "E3",
        "gateway's own: finish seen → 2xx, p99",
        f"≤ {gateway_p99:g} s" if gateway_p99 is not None else "n/a",
        "",
        None,
        "≤ 1 s",
        gateway_p99 is not None and gateway_p99 <= 1.0,
    )


def e4_read_from_state(ctx: Context, config: dict[str, Any], bare: Server) -> None:
    """A status read of a tracked running job (from state) against the pass-through's.

    One gateway, pinned like ``make bench``'s, on a Redis namespace of its own: it tracks
    this one job (first check after 1 s), so the reads measure the read path alone.
    """
    path = ctx.workdir / "engine-e4.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = ctx.stack.ps.start(
        "engine-e4",
        [GATEWAY, "serve", "--config", str(path), "--port", str(port)],
        cpus=ctx.opts.server_cpus,
        log=ctx.stack.log_path("engine-e4"),
    )
    gw = Server(proc, f"http://127.0.0.1:{port}")
    ctx.stack.ps.wait_http(proc, f"{gw.url}/healthz")
    job = ctx.stack.submit(gw.url, ctx.data["model"])
    time.sleep(2.0)  # the engine's first check has made the job's state fresh
    ctx.stack.clear_sim_log(ctx.sim.url)
    checks_before = _engine_checks(gw.url)
    mine = ctx.measure(
        "E4 gateway",
        f"{gw.url}/v1/jobs/{job['id']}",
        gw.proc,
        connections=ctx.opts.connections,
        headers=GATEWAY_AUTH,
    )
    asked = sum(
        1
        for r in sim_requests(ctx.sim.url, "modzy")
        if r["path"] == f"{STATUS_PATH}{job['upstream']['id']}"
    )
    # The engine's own checks (1, 2, 4 s ... apart) are not reads reaching the provider.
    by_reads = asked - (_engine_checks(gw.url) - checks_before)
    base = ctx.measure(
        "E4 pass-through",
        f"{bare.url}/modzy/api/jobs/{job['upstream']['id']}",
        bare.proc,
        connections=ctx.opts.connections,
        headers={},
    )
    g, b = mine.cpu_us or 0.0, base.cpu_us or 0.0
    r = ratio(g, b)
    ctx.data["E4"] = {
        "gateway": mine.as_dict(),
        "pass_through": base.as_dict(),
        "provider_calls": asked,
        "provider_calls_by_reads": by_reads,
    }
    ctx.row(
        "E4",
        f"status read from state: server CPU µs/request, {ctx.opts.connections} conns",
        f"{g:.0f}",
        f"pass-through {b:.0f}",
        r,
        "≤ 1.0",
        r is not None and r <= 1.0,
    )
    rps = ratio(mine.wrk.rps, base.wrk.rps)
    ctx.row(
        "E4",
        "status read from state: throughput",
        f"{mine.wrk.rps:.0f}/s",
        f"pass-through {base.wrk.rps:.0f}/s",
        rps,
        "≥ 1.0",
        rps is not None and rps >= 1.0,
    )
    ctx.row(
        "E4",
        "provider calls made by reads (not the engine's checks)",
        str(by_reads),
        f"{mine.wrk.requests} reads, {asked} calls in all",
        None,
        "0",
        by_reads <= 0,
    )
    ctx.stack.ps.stop(gw.proc)


# -- the run --------------------------------------------------------------------------------


def _engine_checks(url: str) -> float:
    """The engine checks this gateway made so far (``gateway_engine_polls_total``)."""
    total = 0.0
    for line in metrics(url).splitlines():
        if line.startswith("gateway_engine_polls_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _delete_engine_keys(url: str, prefix: str) -> None:
    """streaq's keys (``streaq:{<prefix>-engine}:*``), outside the gateway's prefix."""
    client = redis.Redis.from_url(url)
    try:
        batch = list(client.scan_iter(match=f"streaq:{{{prefix}*", count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])
    finally:
        client.close()


def main() -> int:
    opts = Options.from_env()
    e = EngineOptions.from_env()
    require_wrk()
    started = time.monotonic()
    machine = machine_info(opts.server_cpus, opts.load_cpus)
    prefix = f"bench-{secrets.token_hex(4)}"
    with Processes() as ps, tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        workdir = Path(tmp)
        log_dir = Path(opts.log_dir) if opts.log_dir and opts.log_dir != "/dev/null" else workdir
        stack = Stack(ps, workdir, opts.server_cpus, log_dir)
        try:
            _step(started, "starting the simulator and the bare pass-through")
            sim = stack.simulator()
            bare = stack.passthrough(sim.url)
            c = GatewayConfig(sim.url, opts.redis_url, prefix, 0.0, ratelimit=True)
            config = engine_config(c, e)
            ctx = Context(opts, stack, sim, workdir, prefix)
            ctx.data["model"] = MODEL
            _step(started, f"starting {e.replicas} replicas (engine on)")
            replicas = start_replicas(stack, ps, workdir, config, e.replicas)
            ids = e1_tracked(ctx, e, replicas, bare, MODEL, started)
            e2_readers(ctx, e, replicas, ids, started)
            e3_webhooks(ctx, e, replicas, started)
            for r in replicas:
                ps.stop(r.proc)
            _step(started, "E4: read from state against the pass-through")
            c4 = GatewayConfig(sim.url, opts.redis_url, f"{prefix}-4", 0.0, ratelimit=True)
            config4 = engine_config(c4, e)
            config4["providers"][0]["poll"] = {"initial_seconds": 1, "max_seconds": 30}
            e4_read_from_state(ctx, config4, bare)
        finally:
            ps.stop_all()
            try:
                _delete_keys(opts.redis_url, prefix)
                _delete_engine_keys(opts.redis_url, prefix)
            except redis.RedisError as exc:
                print(f"could not delete the run's Redis keys: {exc}", file=sys.stderr)
    _step(started, "done")
    rows: list[Row] = ctx.rows
    print_out(f"\nMachine: {machine_line(machine)}")
    print_out(
        f"Engine: {e.jobs} jobs over {e.replicas} replicas, polled every {e.poll_seconds:g} s, "
        f"measured {e.window:g} s; readers {list(e.readers)} for {e.reader_seconds:g} s each; "
        f"{e.webhooks} webhooks; wrk {opts.seconds:g} s, {opts.connections} connections\n"
    )
    print_out(table(rows))
    for warning in ctx.warnings:
        print_out(f"warning: {warning}")
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    (opts.results_dir / "engine.json").write_text(
        json.dumps(
            {"machine": machine, "rows": [r.as_dict() for r in rows], "scenarios": ctx.data},
            indent=2,
            default=str,
        )
    )
    (opts.results_dir / "engine.md").write_text(table(rows) + "\n")
    print_out(f"\nwrote {opts.results_dir / 'engine.json'} and engine.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
