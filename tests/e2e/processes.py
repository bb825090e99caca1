"""Child processes for multi-process tests: start, signal, stop, and read their output.

Synchronous on purpose: a fixture of any scope can own a process without an event
loop. Every wait is bounded; ``stop()`` ends a process even when a test failed half
way (SIGTERM, then SIGKILL), and on Linux a child also dies with the test runner.
Each process writes stdout and stderr to files in its work directory; ``tail()``
returns them for failure reports.
"""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:g} s")


def http_json(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A small blocking HTTP call for control routes and readiness probes."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status: int = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
        exc.close()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def answers(url: str, expect: int = 200) -> bool:
    try:
        return http_json("GET", url, timeout=1.0)[0] == expect
    except OSError:
        return False


def _die_with_parent() -> None:
    # Linux: the child gets SIGKILL if the test runner dies without its teardown
    # (killed by CI, say), so no replica or Redis outlives the run.
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One child process with its output in files; restartable with the same command."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str]):
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        out = self.workdir / f"{self.name}.{self.starts}.out"
        err = self.workdir / f"{self.name}.{self.starts}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdout=stdout,
                stderr=stderr,
                preexec_fn=_die_with_parent,
            )

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting; ``stop()`` finishes the job."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            self.proc.terminate()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing gets to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, chars: int = 3000) -> str:
        parts = []
        for path in sorted(self.workdir.glob(f"{self.name}.*")):
            text = path.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {path.name} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def check_alive(self, what: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode} while {what}\n{self.tail()}"
            )
