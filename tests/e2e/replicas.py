"""The replica harness: one redis-server, one simulator process, N gateway replicas.

Everything here is a real OS process on 127.0.0.1, started by the test that uses it,
so replica tests exercise what production runs: separate event loops and memories
that share only Redis and the providers. Tests talk to the replicas with their own
aiohttp sessions; the harness only starts, signals and polls (see ``processes``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
import yaml
from yarl import URL

from tests.e2e.processes import REPO, Process, answers, free_port, http_json, wait_until

DEMO_CONFIG = REPO / "config" / "demo.yaml"
#: Replicas per test: enough to tell "shared" from "per process" in every count.
REPLICAS = 3


class RedisServer:
    """A throw-away redis-server: nothing on disk, so a restart starts empty; or, with
    ``durable``, every write in its append-only file before it answers (``appendfsync
    always``), so a restart, even after a SIGKILL, comes back with every key."""

    def __init__(self, workdir: Path, port: int | None = None, *, durable: bool = False):
        self.port = port or free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
        argv += ["--save", "", *(persistence or ["--appendonly", "no"])]
        argv += ["--daemonize", "no", "--dir", str(workdir)]
        self.process = Process("redis", argv, workdir, os.environ)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)

    def ping(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 5.0) -> None:
        """Start (again) on the same port and wait until it answers PING."""
        self.process.spawn()

        def up() -> bool:
            self.process.check_alive("starting")
            return self.ping()

        wait_until(up, timeout, f"redis-server on port {self.port}")

    def ensure_running(self) -> None:
        self.process.signal(signal.SIGCONT)
        if not self.process.running:
            self.start()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def hang(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        self.process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.signal(signal.SIGCONT)


class Simulators:
    """``gateway simulate``: every provider simulator in one process, under ``/<type>/``."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "gateway", "simulate", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        self.process = Process("simulators", argv, workdir, os.environ)

    def start(self, timeout: float = 15.0) -> None:
        self.process.spawn()

        def up() -> bool:
            self.process.check_alive("starting")
            return answers(self.base + "/")

        wait_until(up, timeout, f"simulators on port {self.port}")

    def stop(self) -> None:
        self.process.stop()

    def requests(self, ptype: str = "modzy", limit: int = 1000) -> list[dict[str, str]]:
        """What the provider received since the last reset (fails past ``limit``)."""
        url = f"{self.base}/{ptype}/_sim/requests?limit={limit}"
        status, body = http_json("GET", url, timeout=30.0)
        assert status == 200, body
        assert body["count"] <= len(body["requests"]), "request log overflowed: reset it more often"
        seen: list[dict[str, str]] = body["requests"]
        return seen

    def reset_requests(self, ptype: str = "modzy") -> None:
        assert http_json("DELETE", f"{self.base}/{ptype}/_sim/requests")[0] == 200

    def set_faults(self, faults: list[dict[str, Any]], ptype: str = "modzy") -> None:
        status, body = http_json("PUT", f"{self.base}/{ptype}/_sim/faults", {"faults": faults})
        assert status == 200, body

    def clear_faults(self, ptype: str = "modzy") -> None:
        assert http_json("DELETE", f"{self.base}/{ptype}/_sim/faults")[0] == 200

    def set_rate_limit(self, rps: float | None, burst: int = 1, ptype: str = "modzy") -> None:
        """The simulated provider's own limit (429 + Retry-After above it); None: off."""
        body = {"rps": rps, "burst": burst}
        status, answer = http_json("PUT", f"{self.base}/{ptype}/_sim/rate_limit", body)
        assert status == 200, answer


def status_calls(requests: list[dict[str, str]]) -> int:
    """Modzy job-status reads: ``GET .../api/jobs/{id}`` (not the history listing)."""
    return sum(
        1
        for r in requests
        if r["method"] == "GET" and "/api/jobs/" in r["path"] and "history" not in r["path"]
    )


def job_reads(requests: list[dict[str, str]]) -> int:
    """Every Modzy read about one job: its status and its results."""
    return status_calls(requests) + sum(
        1 for r in requests if r["method"] == "GET" and "/api/results/" in r["path"]
    )


def write_config(
    workdir: Path,
    sim_base: str,
    source: Path = DEMO_CONFIG,
    providers: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    item_cache: bool = False,
) -> Path:
    """A copy of the demo configuration pointed at ``sim_base``, credentials by absolute path.

    ``providers`` adds or replaces fields of named providers (e.g. their ``pacing``).
    ``item_cache``: keep the demo's item caches (most suites drop them, below).
    """
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    for p in data.get("providers", []):
        p.update((providers or {}).get(p["name"], {}))
        # These suites count what the provider is sent, and submit the same texts often:
        # the demo's item cache would answer them (it has its own suite, test_item_cache).
        for model in p.get("models", []) if not item_cache else ():
            model.pop("cache", None)
        p["base_url"] = sim_base + URL(p["base_url"]).path
        cred = p.get("credential", {})
        if "file" in cred and not Path(cred["file"]).is_absolute():
            cred["file"] = str((source.parent / cred["file"]).resolve())
    if not item_cache:  # an alias's own item cache too: its targets alone remain
        aliases = data.get("aliases", {})
        for name, value in aliases.items():
            if isinstance(value, dict):
                aliases[name] = value["targets"]
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class Gateway:
    """One ``gateway serve`` replica; restarts keep its port and environment."""

    def __init__(
        self, name: str, config: Path, workdir: Path, env: Mapping[str, str], port: int = 0
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        full_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GATEWAY_")}
        full_env.update(env)
        self.process = Process(name, argv, workdir, full_env)

    def spawn(self) -> None:
        self.process.spawn()

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            self.process.check_alive("waiting for /readyz")
            return answers(self.url + "/readyz")

        try:
            wait_until(ready, timeout, f"{self.process.name} /readyz")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.process.tail()}") from None

    def start(self, timeout: float = 20.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def stop(self) -> int | None:
        return self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines the current process has written so far."""
        path = self.process.workdir / f"{self.process.name}.{self.process.starts}.out"
        records = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                records.append(parsed)
        return records


def start_gateways(gateways: Sequence[Gateway], timeout: float = 20.0) -> None:
    """Start replicas side by side (imports overlap), then wait for each to be ready."""
    for gw in gateways:
        gw.spawn()
    for gw in gateways:
        gw.wait_ready(timeout)


class Cluster:
    """N replicas sharing one Redis (under their own key prefix) and one simulator set."""

    def __init__(
        self,
        redis_server: RedisServer,
        sims: Simulators,
        workdir: Path,
        *,
        prefix: str,
        env: Mapping[str, str] | None = None,
        providers: Mapping[str, Mapping[str, Any]] | None = None,
        item_cache: bool = False,
    ):
        self.redis = redis_server
        self.sims = sims
        self.prefix = prefix
        config = write_config(workdir, sims.base, providers=providers, item_cache=item_cache)
        self.env = {
            "GATEWAY_REDIS__URL": redis_server.url(),
            "GATEWAY_REDIS__PREFIX": prefix,
            "GATEWAY_LOGGING__FORMAT": "json",
            "GATEWAY_STATUS_CACHE_SECONDS": "1",
            "GATEWAY_SERVER__SHUTDOWN_TIMEOUT": "2",
            # These suites count the provider calls reads make; the engine's suite
            # (test_engine_replicas.py) turns the engine on.
            "GATEWAY_ENGINE__ENABLED": "false",
            **(env or {}),
        }
        self._config = config
        self._workdir = workdir
        self.gateways: list[Gateway] = []

    def start(self, n: int) -> list[Gateway]:
        new = [
            Gateway(f"gateway{len(self.gateways) + i + 1}", self._config, self._workdir, self.env)
            for i in range(n)
        ]
        self.gateways += new
        start_gateways(new)
        return new

    def start_extra(self, env: Mapping[str, str]) -> Gateway:
        """One more replica of the same configuration, with ``env`` over the cluster's."""
        name = f"gateway{len(self.gateways) + 1}"
        gw = Gateway(name, self._config, self._workdir, {**self.env, **env})
        self.gateways.append(gw)
        start_gateways([gw])
        return gw

    @property
    def urls(self) -> list[str]:
        return [gw.url for gw in self.gateways]

    def close(self) -> None:
        for gw in self.gateways:  # all drain at once, then each is waited for
            gw.process.terminate()
        for gw in self.gateways:
            gw.stop()

    def tails(self) -> str:
        return "\n".join(gw.process.tail() for gw in self.gateways)
