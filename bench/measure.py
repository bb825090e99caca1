"""What every scenario shares: the run's context, measured runs, and result rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import profile
from bench.loadgen import WrkResult, run_wrk
from bench.options import Options
from bench.procs import Proc
from bench.stack import Server, Stack


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its baseline, their ratio and the verdict."""

    scenario: str
    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: str = ""
    #: True/False against ``target``; None for a figure printed for information.
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info" if self.ratio is not None or self.value else "n/a"
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "figure": self.figure,
            "value": self.value,
            "baseline": self.baseline,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Measured:
    wrk: WrkResult
    #: Server CPU time (utime+stime of its process) per request served, in µs.
    cpu_us: float | None

    def as_dict(self) -> dict[str, Any]:
        out = self.wrk.as_dict()
        if self.cpu_us is not None:
            out["cpu_us_per_request"] = round(self.cpu_us, 1)
        return out


@dataclass
class Context:
    opts: Options
    stack: Stack
    sim: Server
    workdir: Path
    prefix: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def wrk(
        self,
        url: str,
        *,
        connections: int,
        headers: dict[str, str],
        seconds: float | None = None,
        fragments: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> WrkResult:
        return run_wrk(
            url,
            workdir=self.workdir,
            seconds=self.opts.seconds if seconds is None else seconds,
            connections=connections,
            headers=headers,
            fragments=fragments,
            env=env,
            cpus=self.opts.load_cpus,
        )

    def measure(
        self,
        label: str,
        url: str,
        server: Proc | None,
        *,
        connections: int,
        headers: dict[str, str],
        fragments: Sequence[str] = (),
        env: dict[str, str] | None = None,
        seconds: float | None = None,
        before_run: Callable[[], None] | None = None,
        profile: str | None = None,
    ) -> Measured:
        """A warm-up run, then the measured run with the server's CPU time around it.

        ``before_run`` is called between the two (e.g. to clear the simulator's log);
        ``profile`` names the py-spy profile taken of ``server`` with ``BENCH_PROFILE=1``.
        """
        if self.opts.warmup > 0:
            self.wrk(
                url,
                connections=connections,
                headers=headers,
                seconds=self.opts.warmup,
                fragments=fragments,
                env=env,
            )
        if before_run is not None:
            before_run()
        before = server.cpu() if server is not None else 0.0
        with self._profiled(profile, server, seconds):
            result = self.wrk(
                url,
                connections=connections,
                headers=headers,
                seconds=seconds,
                fragments=fragments,
                env=env,
            )
        cpu = None
        if server is not None and result.requests > 0:
            cpu = (server.cpu() - before) * 1e6 / result.requests
        if result.failed:
            self.warnings.append(f"{label}: {result.failed} failed requests {result.errors}")
        return Measured(result, cpu)

    @contextmanager
    def _profiled(
        self, name: str | None, server: Proc | None, seconds: float | None
    ) -> Iterator[None]:
        if name is None or server is None or not self.opts.profile:
            yield
            return
        if not profile.available():
            self.warnings.append("BENCH_PROFILE: py-spy is not installed (pip install py-spy)")
            yield
            return
        out = self.opts.results_dir / f"profile-{name}.raw"
        out.parent.mkdir(parents=True, exist_ok=True)
        duration = self.opts.seconds if seconds is None else seconds
        with profile.sampled(server.pid, out, duration, self.opts.load_cpus):
            yield
        if out.exists():
            text, data = profile.summarise(out)
            out.with_suffix(".txt").write_text(f"profile {name} ({server.name})\n{text}\n")
            self.data.setdefault("profiles", {})[name] = data

    def row(self, *args: Any, **kwargs: Any) -> Row:
        r = Row(*args, **kwargs)
        self.rows.append(r)
        return r


def ratio(value: float, baseline: float) -> float | None:
    return value / baseline if baseline > 0 else None


def paced_env(rate: float, connections: int) -> dict[str, str]:
    """``paced.lua``'s delay so ``connections`` together offer about ``rate`` req/s."""
    return {"BENCH_DELAY_MS": str(max(0, round(connections * 1000 / rate)))}
