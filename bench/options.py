"""What a benchmark run can be told, all from ``BENCH_*`` environment variables.

``BENCH_SECONDS`` is the length of each measured wrk run (each after a warm-up of
``BENCH_WARMUP_SECONDS``). With the defaults the whole run takes about 3.5 minutes on
2 cores: 17 such runs, 10 s of polling, the memory scenario's budget, start-ups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _rest(cpus: int) -> str:
    """Every CPU but the first (which the servers get)."""
    return "1" if cpus == 2 else f"1-{cpus - 1}"


@dataclass(frozen=True)
class Options:
    #: Seconds of each measured run, and of the warm-up before it.
    seconds: float
    warmup: float
    #: Connections of the throughput runs (scenarios 1-3).
    connections: int
    #: The "moderate fixed rate" of scenario 1 (requests/s), over ``rate_connections``.
    rate: float
    rate_connections: int
    #: Scenario 4: polling clients, gateway replicas, seconds of polling.
    pollers: int
    replicas: int
    poll_seconds: float
    #: Scenario 5: RSS after this many requests and after 5x as many, unless that would
    #: take longer than ``mem_budget`` seconds at the measured rate (then scaled down).
    mem_requests: int
    mem_budget: float
    #: taskset CPU lists: servers (simulator, pass-through, gateways) and wrk.
    server_cpus: str | None
    load_cpus: str | None
    redis_url: str
    results_dir: Path
    #: Where gateway logs go: a directory (one file per process) or /dev/null.
    log_dir: str | None
    #: Sample the servers with py-spy during the main measured runs (bench/profile.py).
    profile: bool

    @classmethod
    def from_env(cls) -> Options:
        cpus = os.cpu_count() or 1
        pin = cpus >= 2
        return cls(
            seconds=float(_env("BENCH_SECONDS", "6")),
            warmup=float(_env("BENCH_WARMUP_SECONDS", "1")),
            connections=int(_env("BENCH_CONNECTIONS", "32")),
            rate=float(_env("BENCH_RATE", "200")),
            rate_connections=int(_env("BENCH_RATE_CONNECTIONS", "10")),
            pollers=int(_env("BENCH_POLLERS", "300")),
            replicas=int(_env("BENCH_REPLICAS", "3")),
            poll_seconds=float(_env("BENCH_POLL_SECONDS", "10")),
            mem_requests=int(_env("BENCH_MEM_REQUESTS", "50000")),
            mem_budget=float(_env("BENCH_MEM_SECONDS", "60")),
            server_cpus=_env("BENCH_SERVER_CPUS", "0" if pin else "") or None,
            load_cpus=_env("BENCH_LOAD_CPUS", _rest(cpus) if pin else "") or None,
            redis_url=_env("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
            results_dir=Path(
                _env("BENCH_RESULTS", str(Path(__file__).resolve().parent / "results"))
            ),
            log_dir=os.environ.get("BENCH_LOG_DIR"),
            profile=_env("BENCH_PROFILE", "0") not in ("", "0", "false", "no"),
        )
