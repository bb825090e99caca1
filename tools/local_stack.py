"""``make stack``: the stack of docker-compose.yaml as local processes, for machines without Docker.

A redis-server with an append-only file (in a temporary directory), the provider
simulators on ``--sim-port`` (9100: config/demo.yaml's provider URLs point there), and
``--replicas`` gateway replicas on ports from ``--port`` up, all sharing that Redis. It
prints where each listens, then waits; Ctrl-C (or SIGTERM) stops every process it started,
gateways first, so they drain. It needs only what ``make demo`` installs.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def demo_config(workdir: Path, sim_port: int) -> Path:
    """config/demo.yaml with its providers on ``sim_port`` (it names 9100) and its
    credential files by absolute path, written into ``workdir``."""
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    for provider in data["providers"]:
        provider["base_url"] = provider["base_url"].replace(":9100/", f":{sim_port}/")
        credential = provider.get("credential", {})
        if "file" in credential:
            credential["file"] = str((DEMO_CONFIG.parent / credential["file"]).resolve())
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for(
    what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Redis, the simulators and N gateway replicas, as local processes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--replicas", type=int, default=3, help="gateway replicas")
    parser.add_argument("--port", type=int, default=8081, help="the first replica's port")
    parser.add_argument("--sim-port", type=int, default=9100, help="the simulators' port")
    parser.add_argument("--redis-port", type=int, default=6390, help="the stack's own Redis")
    args = parser.parse_args(argv)
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")

    workdir = Path(tempfile.mkdtemp(prefix="gateway-stack-"))
    started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env or dict(os.environ)
        )
        started.append((name, process))
        return process

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        durable = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        listen = ["--port", str(args.redis_port), "--bind", "127.0.0.1"]
        redis = start("redis", [redis_server, *listen, *durable, "--dir", str(workdir)])
        wait_for("redis-server", lambda: _redis_ping(args.redis_port), redis, 10)
        gateway = [sys.executable, "-m", "gateway"]
        sims = start("simulators", [*gateway, "simulate", "--port", str(args.sim_port)])
        wait_for("the simulators", lambda: answers(f"http://127.0.0.1:{args.sim_port}/"), sims, 30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["GATEWAY_REDIS__URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
        ports = [args.port + i for i in range(args.replicas)]
        config = demo_config(workdir, args.sim_port)
        replicas = [
            start(
                f"gateway-{i + 1}",
                [*gateway, "serve", "--config", str(config), "--port", str(port)],
                env,
            )
            for i, port in enumerate(ports)
        ]
        for port, replica in zip(ports, replicas, strict=True):
            ready = functools.partial(answers, f"http://127.0.0.1:{port}/readyz")
            wait_for(f"the gateway on {port}", ready, replica, 60)
        print(f"stack ready: {args.replicas} gateway replicas sharing one Redis", flush=True)
        for i, port in enumerate(ports):
            print(f"  gateway-{i + 1}   http://127.0.0.1:{port}/  (API key: demo-key)", flush=True)
        print(f"  simulators  http://127.0.0.1:{args.sim_port}/", flush=True)
        print(f"  redis       redis://127.0.0.1:{args.redis_port}/0", flush=True)
        print(f"  logs        {workdir}/  (Ctrl-C stops everything)", flush=True)
        while all(p.poll() is None for _, p in started):
            time.sleep(0.5)
        dead = [name for name, p in started if p.poll() is not None]
        print(f"stopping: {', '.join(dead)} exited", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # Gateways first (they drain), then the simulators, then Redis.
        for _, process in reversed(started):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _redis_ping(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
