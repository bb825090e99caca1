"""Run every scenario of issue 9 and print the table; write it and the JSON to bench/results/.

    make bench                      # or: .venv/bin/python -m bench
    BENCH_SECONDS=3 make bench      # shorter runs (see bench/options.py for every knob)

Set-up, in order: the Modzy simulator (``bench/sim.py``), one gateway started with
``gateway serve --config`` (Redis store, API-key auth, caller rate limits, JSON logs,
metrics, status cache off), the bare pass-through; a running job and a finished job
submitted through the gateway. Then scenarios 1-3 against those, scenario 4 on its own
replicas, scenario 5 on a fresh gateway, scenario 6 where LiteLLM is installed. Servers
are pinned to ``BENCH_SERVER_CPUS``, wrk to ``BENCH_LOAD_CPUS``. Every process started is
stopped at the end, and the run's Redis keys deleted.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import redis

from bench.config import FAST_MODEL, MODEL, RATELIMIT, GatewayConfig, ratelimit_supported
from bench.litellm import scenario_6
from bench.loadgen import LoadError, require_wrk
from bench.measure import Context, Row
from bench.options import Options
from bench.procs import Processes, StartError
from bench.report import machine_info, machine_line, print_out, table, write_results
from bench.scenarios import scenario_1, scenario_2, scenario_3, scenario_4, scenario_5
from bench.stack import Stack


def _step(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)


def _loadavg() -> str:
    """The 1-minute load average: other work on the machine shows here."""
    return Path("/proc/loadavg").read_text().split()[0]


def _delete_keys(url: str, prefix: str) -> int:
    """Delete the run's keys (``<prefix>:*`` and ``<prefix>-4:*``); they expire anyway."""
    client = redis.Redis.from_url(url)
    try:
        deleted = 0
        for pattern in (f"{prefix}:*", f"{prefix}-*:*"):
            batch = list(client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(batch), 500):
                deleted += int(client.delete(*batch[i : i + 500]))
        return deleted
    finally:
        client.close()


def _guarded(ctx: Context, scenario: str, body: Callable[[], None]) -> None:
    """Run one scenario; a failure becomes a FAIL row and a warning, and the run goes on."""
    try:
        body()
    except (StartError, LoadError, RuntimeError, OSError) as exc:
        ctx.row(scenario, "scenario failed to run", "error", "", None, "runs", False)
        ctx.warnings.append(f"scenario {scenario} failed: {exc}")


def run(opts: Options, started: float) -> Context:
    prefix = f"bench-{secrets.token_hex(4)}"
    with Processes() as ps, tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        workdir = Path(tmp)
        log_dir: Path | None = workdir
        if opts.log_dir == "/dev/null":
            log_dir = None
        elif opts.log_dir:
            log_dir = Path(opts.log_dir)
            log_dir.mkdir(parents=True, exist_ok=True)
        stack = Stack(ps, workdir, opts.server_cpus, log_dir)
        try:
            _step(started, "starting the simulator")
            sim = stack.simulator()
            config = GatewayConfig(sim.url, opts.redis_url, prefix, 0.0, ratelimit=False)
            accepted, said = ratelimit_supported(workdir, config)
            config = replace(config, ratelimit=accepted)
            ctx = Context(opts, stack, sim, workdir, prefix)
            ctx.data["ratelimit"] = {"enabled": accepted, "section": RATELIMIT}
            if not accepted:
                ctx.warnings.append(
                    "rate limit OFF: this gateway does not accept the `ratelimit` section "
                    f"yet ({said.splitlines()[-1].strip()})"
                )
            _step(started, "starting the gateway and the bare pass-through")
            gw = stack.gateway("gateway", config)
            bare = stack.passthrough(sim.url)
            running = stack.submit(gw.url, MODEL)
            done = stack.submit(gw.url, FAST_MODEL)
            stack.wait_done(gw.url, done["id"])

            _step(started, "scenario 1: status read, cache off (direct, pass-through, gateway)")
            s1 = scenario_1(ctx, gw, bare, running)
            _step(started, "scenario 2: cached results read")
            _guarded(ctx, "2", lambda: scenario_2(ctx, gw, done, s1["rps"]))
            _step(started, "scenario 3: submit")
            _guarded(ctx, "3", lambda: scenario_3(ctx, gw))
            ps.stop(gw.proc)
            ps.stop(bare.proc)
            _step(started, f"scenario 4: {opts.pollers} pollers over {opts.replicas} replicas")
            _guarded(ctx, "4", lambda: scenario_4(ctx, config))
            _step(started, "scenario 5: memory")
            _guarded(ctx, "5", lambda: scenario_5(ctx, config, running, done))
            _step(started, "scenario 6: LiteLLM proxy (where installed)")
            _guarded(ctx, "6", lambda: scenario_6(ctx, s1))
            return ctx
        except (StartError, LoadError) as exc:
            for proc in list(ps._procs):
                print_out(f"--- {proc.name} (pid {proc.pid}) log tail ---\n{proc.tail()}")
            raise SystemExit(f"benchmark failed: {exc}") from exc
        finally:
            ps.stop_all()
            try:
                _delete_keys(opts.redis_url, prefix)
            except redis.RedisError as exc:
                print(f"could not delete the run's Redis keys: {exc}", file=sys.stderr)


def main() -> int:
    opts = Options.from_env()
    require_wrk()
    started = time.monotonic()
    load_before = _loadavg()
    machine = machine_info(opts.server_cpus, opts.load_cpus)
    ctx = run(opts, started)
    elapsed = time.monotonic() - started
    _step(started, "done")
    rows: list[Row] = ctx.rows
    text = table(rows)
    print_out(f"\nMachine: {machine_line(machine)}")
    load_after = _loadavg()
    print_out(
        f"Runs: {opts.seconds:g} s each after {opts.warmup:g} s warm-up, "
        f"{opts.connections} connections; fixed rate {opts.rate:g} req/s over "
        f"{opts.rate_connections} connections; total {elapsed:.0f} s; "
        f"load average {load_before} before, {load_after} after\n"
    )
    print_out(text)
    if float(load_before) > 0.5:  # (the load after includes this run's own processes)
        ctx.warnings.append(
            f"the machine was busy before the run (load average {load_before}): absolute "
            "figures may be low and ratios noisy; run again on a quiet machine"
        )
    for warning in ctx.warnings:
        print_out(f"warning: {warning}")
    json_path, md_path = write_results(
        opts.results_dir,
        rows,
        machine,
        {
            "options": {k: str(v) for k, v in vars(opts).items()},
            "elapsed_seconds": round(elapsed, 1),
            "loadavg": {"before": load_before, "after": load_after},
            "warnings": ctx.warnings,
            "scenarios": ctx.data,
        },
    )
    print_out(f"\nwrote {json_path} and {md_path}")
    failed = [r for r in rows if r.passed is False]
    print_out(f"targets: {sum(r.passed is True for r in rows)} PASS, {len(failed)} FAIL")
    return 0
