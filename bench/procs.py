"""The processes a benchmark starts: pinned to CPUs, waited for, measured, always stopped.

Every process is started in its own session and registered with a ``Processes`` group;
leaving the group (normally, on an exception, or on SIGINT/SIGTERM turned into
``SystemExit``) stops each of them by its own process id, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cmd: Sequence[str], cpus: str | None) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` (unchanged when there is nothing to pin to)."""
    if not cpus or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", cpus, *cmd]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (its own threads, not its children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" the fields start at 3 (state): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    resident = Path(f"/proc/{pid}/statm").read_text().split()[1]
    return int(resident) * _PAGE_SIZE


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class StartError(RuntimeError):
    pass


class Processes:
    """A group of started processes, stopped together when the ``with`` block ends."""

    def __init__(self) -> None:
        self._procs: list[Proc] = []
        self._old_handlers: dict[int, object] = {}

    def __enter__(self) -> Processes:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _exit_on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop_all()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def start(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        cpus: str | None = None,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = log.open("wb")
        try:
            popen = subprocess.Popen(
                pinned(cmd, cpus),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        proc = Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def wait_http(self, proc: Proc, url: str, timeout: float = 30.0) -> None:
        """Wait until ``url`` answers at all (any status), or fail with the process log."""
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise StartError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1.0):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise StartError(f"{proc.name} did not answer {url} within {timeout:g} s:\n{proc.tail()}")

    def stop(self, proc: Proc, timeout: float = 5.0) -> None:
        if proc.alive():
            proc.popen.send_signal(signal.SIGINT)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            try:
                self.stop(proc)
            except Exception:  # keep stopping the others
                if proc.alive():
                    proc.popen.kill()


def _exit_on_signal(signum: int, frame: types.FrameType | None) -> None:
    raise SystemExit(128 + signum)
