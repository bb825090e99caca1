"""A throw-away Redis Cluster: three masters on loopback, no replicas, nothing on disk.

Each node is a ``redis-server --cluster-enabled yes`` in a directory of its own (its
nodes file and output live there); ``redis-cli --cluster create`` assigns the 16384
slots across them. Every wait is bounded, and ``stop()`` ends every node whatever
happened half way (the child processes also die with the test runner on Linux).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.e2e.processes import Process, free_port, wait_until

#: Masters in the test cluster: enough that a tenant's keys, a job's record and a
#: provider account's keys land on different nodes.
MASTERS = 3


def _info(port: int) -> dict[str, str]:
    """A node's ``CLUSTER INFO`` (empty while it does not answer)."""
    try:
        with redis.Redis(port=port, socket_timeout=1.0, socket_connect_timeout=1.0) as c:
            info: dict[str, str] = c.execute_command("CLUSTER INFO")
            return {k: str(v) for k, v in info.items()}
    except (redis.RedisError, OSError):
        return {}


class RedisClusterServers:
    """``MASTERS`` cluster-enabled redis-servers, joined into one cluster by ``start()``."""

    def __init__(self, workdir: Path, masters: int = MASTERS):
        self.ports = [free_port() for _ in range(masters)]
        self.processes: list[Process] = []
        for port in self.ports:
            node_dir = workdir / f"node{port}"
            node_dir.mkdir()
            # The cluster bus on a free port of its own: the default (port + 10000) may
            # be taken, or past 65535 for an OS-chosen port.
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            argv += ["--cluster-port", str(free_port())]
            argv += ["--cluster-enabled", "yes"]
            argv += ["--cluster-config-file", str(node_dir / "nodes.conf")]
            argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
            argv += ["--dir", str(node_dir)]
            self.processes.append(Process(f"redis-{port}", argv, node_dir, os.environ))
        self._workdir = workdir

    def url(self, node: int = 0) -> str:
        """One node's URL: redis-py's RedisCluster discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[node]}/0"

    def start(self, timeout: float = 30.0) -> None:
        for p in self.processes:
            p.spawn()
        for port, p in zip(self.ports, self.processes, strict=True):

            def up(port: int = port, p: Process = p) -> bool:
                p.check_alive("starting")
                return "cluster_state" in _info(port)

            wait_until(up, 10.0, f"cluster node on port {port}")
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli is not installed (Debian: apt-get install redis-tools)"
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        argv = [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]

        def ok() -> bool:
            return all(
                info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == "16384"
                for info in map(_info, self.ports)
            )

        wait_until(ok, timeout, "cluster_state:ok on every node", interval=0.1)

    def hang(self, port: int) -> None:
        """SIGSTOP one node: its connections stay open and nothing answers."""
        self.processes[self.ports.index(port)].signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[self.ports.index(port)].signal(signal.SIGCONT)

    def stop(self) -> None:
        for p in self.processes:  # all at once, then each is waited for (bounded)
            p.terminate()
        for p in self.processes:
            p.stop(timeout=5.0)

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.processes)
