"""The table (Markdown, so docs/benchmarks.md can carry it as printed) and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.measure import Row

HEADER = ("#", "figure", "gateway", "baseline", "ratio", "target", "result")


def machine_info(server_cpus: str | None, load_cpus: str | None) -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "kernel": platform.release(),
        "wrk": _version(["wrk", "-v"], r"wrk (\S+)"),
        "redis_server": _version(["redis-server", "--version"], r"v=([\d.]+)"),
        "pinning": {
            "servers": server_cpus or "unpinned",
            "wrk": load_cpus or "unpinned",
            "redis": "unpinned (an existing redis-server, not started by the benchmark)",
        },
    }


def _version(cmd: list[str], pattern: str) -> str:
    if shutil.which(cmd[0]) is None:
        return "missing"
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10)
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


def _ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.2f}" if abs(r) >= 0.1 else f"{r:.2g}"


def table(rows: list[Row]) -> str:
    cells = [HEADER] + [
        (
            r.scenario,
            r.figure,
            r.value,
            r.baseline,
            _ratio(r.ratio),
            r.target,
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def machine_line(m: dict[str, Any]) -> str:
    p = m["pinning"]
    return (
        f"{m['nproc']} x {m['cpu_model']}, Python {m['python']}, aiohttp {m['aiohttp']}, "
        f"wrk {m['wrk']}, Redis {m['redis_server']}; servers on CPU {p['servers']}, "
        f"wrk on CPU {p['wrk']} (taskset), Redis {p['redis']}"
    )


def write_results(
    directory: Path, rows: list[Row], machine: dict[str, Any], extra: dict[str, Any]
) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = {"machine": machine, "rows": [r.as_dict() for r in rows], **extra}
    json_path = directory / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    text_path = directory / f"bench-{stamp}.md"
    text_path.write_text(f"{machine_line(machine)}\n\n{table(rows)}\n")
    for src, name in ((json_path, "latest.json"), (text_path, "latest.md")):
        shutil.copyfile(src, directory / name)
    return json_path, text_path


def print_out(text: str = "") -> None:
    print(text, flush=True)
    sys.stdout.flush()
