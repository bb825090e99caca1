"""``BENCH_PROFILE=1``: py-spy samples a server during a measured run; hot spots summarised.

py-spy (``pip install py-spy`` into the venv; not a dependency of the gateway) records
collapsed stacks (``--format raw --nolineno``; it pauses the process for each sample, so
stacks are whole) while wrk runs. The summary ranks functions by *self* samples (the
frame on top) and *inclusive* samples (anywhere on the stack), and groups self samples
by package, as shares of all samples. A profiled run is slower than a plain one: read
its figures for where the time goes only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import pinned

PY_SPY = Path(sys.executable).with_name("py-spy")


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


@contextmanager
def sampled(pid: int, out: Path, seconds: float, cpus: str | None) -> Iterator[None]:
    """py-spy on ``pid`` for ``seconds`` (started before, awaited after the body)."""
    exe = str(PY_SPY) if PY_SPY.exists() else "py-spy"
    cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "--nolineno", "--rate", "250"]
    cmd += ["--duration", str(max(1, round(seconds))), "--output", str(out)]
    spy = subprocess.Popen(pinned(cmd, cpus), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            spy.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py)" -> "module.py:function"; py-spy shortens paths already.
    func, _, where = frame.rpartition(" (")
    return f"{where.rstrip(')')}:{func}" if func else frame


def _package(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    parts = where.replace("\\", "/").split("/")
    return parts[0] if len(parts) > 1 else where


def summarise(raw: Path, top: int = 15) -> tuple[str, dict[str, object]]:
    """(text report, data): top functions by self and inclusive share, self by package."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        self_counts[_frame_name(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for name in {_frame_name(f) for f in frames}:
            incl_counts[name] += count
    if total == 0:
        return "no samples", {"samples": 0}

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, v * 100 / total) for k, v in counter.most_common(n)]

    data: dict[str, object] = {
        "samples": total,
        "self": pct(self_counts, top),
        "inclusive": pct(incl_counts, top * 2),
        "self_by_package": pct(packages, top),
    }
    lines = [f"{total} samples"]
    for title, key in (
        ("self", "self"),
        ("inclusive", "inclusive"),
        ("self, by package", "self_by_package"),
    ):
        lines.append(f"-- {title} --")
        rows = data[key]
        assert isinstance(rows, list)
        lines += [f"{share:5.1f} %  {name}" for name, share in rows]
    return "\n".join(lines), data
