"""wrk (Debian's ``wrk`` package) driven with Lua scripts, pinned to the load CPUs.

A script is put together from the fragments in ``bench/lua/`` (every run gets
``report.lua``, which prints one ``BENCH_JSON`` line from wrk's ``done()``), so each
run pays only for the Lua hooks it needs: a plain GET has no ``request()`` or
``response()`` callback at all. ``non2xx.lua`` (last among the fragments) counts the
answers that are not 2xx, which wrk's own ``errors.status`` (status > 399) does not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import pinned

LUA_DIR = Path(__file__).resolve().parent / "lua"


class LoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    #: Non-2xx/3xx answers and socket errors together.
    failed: int = field(default=0)
    #: Answers that were not 2xx, when the script counted them (``non2xx.lua``).
    non2xx: int | None = field(default=None)

    @property
    def socket_errors(self) -> int:
        """Requests that got no answer: connect, read, write errors and timeouts."""
        return sum(n for kind, n in self.errors.items() if kind != "status")

    @property
    def bad(self) -> int:
        """Requests not answered 2xx (exact with ``non2xx.lua``; else wrk's > 399 count)."""
        if self.non2xx is None:
            return self.failed
        return self.non2xx + self.socket_errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, name: str) -> float:
        """A latency figure in milliseconds (``p50``, ``p99``, ``mean``...)."""
        return self.latency_us[name] / 1000.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "latency_ms": {k: round(v / 1000.0, 3) for k, v in self.latency_us.items()},
        }
        if self.non2xx is not None:
            out["non_2xx"] = self.non2xx
        return out


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadError("wrk is not installed: apt-get install -y wrk")
    return path


def build_script(workdir: Path, fragments: Sequence[str]) -> Path:
    parts = ["report", "headers", *fragments]
    name = "-".join(parts) + ".lua"
    target = workdir / name
    if not target.exists():
        target.write_text("\n".join((LUA_DIR / f"{p}.lua").read_text() for p in parts))
    return target


def run_wrk(
    url: str,
    *,
    workdir: Path,
    seconds: float,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    fragments: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cpus: str | None = None,
    timeout_s: float = 10.0,
) -> WrkResult:
    """One wrk run; raises ``LoadError`` when wrk fails or prints no figures.

    With the ``stop_after`` fragment the run ends when every thread has had its count of
    responses (``seconds`` is then only the upper bound).
    """
    script = build_script(workdir, fragments)
    n_threads = max(1, min(threads, connections))
    args = [
        require_wrk(),
        f"-t{n_threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
        "--",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]

    proc = subprocess.Popen(
        pinned(args, cpus),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    timer = threading.Timer(seconds + 60, proc.kill)
    timer.start()
    try:
        out_lines: list[str] = []
        stopped = 0
        assert proc.stdout is not None
        assert proc.stderr is not None
        for raw in proc.stdout:
            out_lines.append(raw.rstrip("\n"))
            if raw.startswith("BENCH_STOPPED"):  # stop_after.lua: a thread is done
                stopped += 1
                if stopped == n_threads:
                    proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = next((ln for ln in out_lines if ln.startswith("BENCH_JSON ")), None)
    if returncode != 0 or line is None:
        raise LoadError(f"wrk failed ({returncode}): {err.strip() or ' '.join(out_lines)}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = {k: int(v) for k, v in data["errors"].items()}
    counted = next((ln for ln in out_lines if ln.startswith("BENCH_NON2XX ")), None)
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        latency_us={k: float(v) for k, v in data["latency_us"].items()},
        failed=sum(errors.values()),
        non2xx=None if counted is None else int(counted.split()[1]),
    )
