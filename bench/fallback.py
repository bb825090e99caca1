"""What a fallback alias adds to a submit's latency (issue 17 point 4).

    make bench-fallback              # or: .venv/bin/python -m bench.fallback
    BENCH_FALLBACK_SUBMITS=100 make bench-fallback    # a quicker look

One ``gateway serve`` (Redis store, shared pacing and breaker, as in production) in
front of the benchmark simulator (``bench/sim.py``): ``modzy`` is the primary account,
``modzy-fast`` the backup. Submits are sent one at a time on one keep-alive connection,
so each figure is one submit's own latency. Each case is compared with a baseline from
the same run, the same target named directly:

* F1 the alias, primary healthy (served by the primary): the alias's own cost, a
  Retry-After check of the primary (one Redis read) against ``modzy/…`` direct;
* F2 the alias, primary answering 503 to every submit, its breaker off (served by the
  backup): one refused round trip to the primary, against ``modzy-fast/…`` direct;
* F3 the alias, primary circuit open (served by the backup): a breaker refusal, the
  daily-quota admit given back, against ``modzy-fast/…`` direct.

No pass/fail targets: the figures are for the reader (``docs/benchmarks.md``). Results go
to ``bench/results/fallback.{json,md}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.config import FAST_MODEL, MODEL, GatewayConfig, config_dict, write_config
from bench.procs import Processes
from bench.run import _delete_keys
from bench.stack import GATEWAY_AUTH, Stack, http, job_body

ALIAS = "sentiment-ha"
SUBMITS = int(os.environ.get("BENCH_FALLBACK_SUBMITS", "300"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = Path(__file__).parent / "results"


def _config(c: GatewayConfig, primary_breaker: dict[str, Any]) -> dict[str, Any]:
    data = config_dict(c)
    data["providers"][0]["circuit_breaker"] = primary_breaker
    data["aliases"] = {ALIAS: [MODEL, FAST_MODEL]}
    data["ratelimit"] = {"daily_jobs": {"default": 100_000_000}}
    return data


async def _latencies(url: str, model: str, n: int) -> tuple[list[float], dict[str, int]]:
    """Milliseconds per submit (sequential, one connection), and who served them."""
    out: list[float] = []
    served: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers=GATEWAY_AUTH) as s:
        for i in range(n + 10):
            started = time.perf_counter()
            async with s.post(f"{url}/v1/jobs", json=job_body(model, f"r{i}")) as resp:
                body = await resp.json()
                if resp.status != 202:
                    raise RuntimeError(f"submit to {model} answered {resp.status}: {body}")
            if i >= 10:  # the first ten warm the connections and caches
                out.append((time.perf_counter() - started) * 1000)
                served[body["provider"]] = served.get(body["provider"], 0) + 1
    return out, served


def _summary(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"p50": statistics.median(ms), "p95": q[94], "p99": q[98]}


def _fault(sim: str, faults: list[dict[str, Any]]) -> None:
    status, body = http("PUT", f"{sim}/modzy/_sim/faults", {"faults": faults})
    if status != 200:
        raise RuntimeError(f"setting faults failed: {status} {body}")


def main() -> None:
    rows: list[dict[str, Any]] = []
    with Processes() as ps, tempfile.TemporaryDirectory() as tmp:
        stack = Stack(ps, Path(tmp), None, None)
        sim = stack.simulator()
        prefix = f"bench-fb-{secrets.token_hex(4)}"
        base = GatewayConfig(sim.url, REDIS_URL, prefix, 1.0, True)
        try:
            cases: list[tuple[str, str, str, dict[str, Any], list[dict[str, Any]]]] = [
                ("F1", "primary healthy", MODEL, {"enabled": True}, []),
                (
                    "F2",
                    "primary answers 503",
                    FAST_MODEL,
                    {"enabled": False},
                    [{"kind": "status", "status": 503, "match": "POST"}],
                ),
                (
                    "F3",
                    "primary circuit open",
                    FAST_MODEL,
                    {
                        "enabled": True,
                        "failures": 1,
                        "open_seconds": 3600,
                        "max_open_seconds": 3600,
                    },
                    [{"kind": "status", "status": 503, "match": "POST"}],
                ),
            ]
            for case, what, baseline_model, breaker, faults in cases:
                # write_config also writes the credential file beside it.
                path = write_config(Path(tmp), f"{case}.yaml", base)
                path.write_text(yaml.safe_dump(_config(base, breaker), sort_keys=False))
                gw = stack.gateway_from_file(f"gateway-{case}", path)
                _fault(sim.url, faults)
                baseline, _ = asyncio.run(_latencies(gw.url, baseline_model, SUBMITS))
                alias, served = asyncio.run(_latencies(gw.url, ALIAS, SUBMITS))
                _fault(sim.url, [])
                b, a = _summary(baseline), _summary(alias)
                rows.append(
                    {
                        "case": case,
                        "what": what,
                        "baseline": baseline_model,
                        "served_by": served,
                        "baseline_ms": b,
                        "alias_ms": a,
                        "added_p50_ms": a["p50"] - b["p50"],
                        "added_p99_ms": a["p99"] - b["p99"],
                    }
                )
                ps.stop(gw.proc)
        finally:
            _delete_keys(REDIS_URL, prefix)
    _report(rows)


def _report(rows: list[dict[str, Any]]) -> None:
    lines = [
        f"Fallback alias: added submit latency ({SUBMITS} sequential submits per figure, "
        f"{os.cpu_count()} CPUs, servers not pinned)",
        "",
        "| case | alias served by | baseline (direct) p50 / p99 ms | alias p50 / p99 ms "
        "| added p50 / p99 ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        b, a = r["baseline_ms"], r["alias_ms"]
        served = ", ".join(f"{k} {v}" for k, v in r["served_by"].items())
        lines.append(
            f"| {r['case']} {r['what']} | {served} "
            f"| {b['p50']:.2f} / {b['p99']:.2f} | {a['p50']:.2f} / {a['p99']:.2f} "
            f"| {r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fallback.md").write_text(text + "\n")
    (RESULTS / "fallback.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
