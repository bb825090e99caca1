"""The servers a benchmark talks to: the simulator, the bare pass-through, gateways.

Each is started the way it runs for real (``gateway serve --config <file>`` for the
gateway), pinned to the server CPUs, and registered with the run's ``Processes`` so it
is stopped whatever happens. Small synchronous HTTP helpers set up the jobs to read.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.modzy.sim_models import SENTIMENT_ID
from adapters.modzy.simulator import SIMULATOR_KEY
from bench.config import API_KEY, GatewayConfig, write_config
from bench.procs import Proc, Processes, free_port

PYTHON = sys.executable
GATEWAY = str(Path(PYTHON).with_name("gateway"))
#: What the gateway and the pass-through send to the simulator, and what wrk sends direct.
SIM_AUTH = {"Authorization": f"ApiKey {SIMULATOR_KEY}"}
GATEWAY_AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass(frozen=True)
class Server:
    proc: Proc
    url: str


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def job_body(model: str, name: str = "review-1") -> dict[str, Any]:
    return {"model": model, "inputs": [{"name": name, "text": "Great product, I love it"}]}


def sim_job_body() -> dict[str, Any]:
    """The same one-text job in Modzy's own wire shape (for submits sent direct)."""
    return {
        "model": {"identifier": SENTIMENT_ID, "version": "1.0.1"},
        "input": {"type": "text", "sources": {"review-1": {"input.txt": "Great product"}}},
    }


class Stack:
    def __init__(
        self, ps: Processes, workdir: Path, cpus: str | None, log_dir: Path | None
    ) -> None:
        """``log_dir`` None: every server's output goes to /dev/null."""
        self.ps = ps
        self.workdir = workdir
        self.cpus = cpus
        self.log_dir = log_dir

    def log_path(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir is not None else None

    # -- servers ----------------------------------------------------------------------------

    def simulator(self, gc_freeze: float = 0.0) -> Server:
        """``gc_freeze`` > 0: the simulator freezes its heap that often (``bench/sim.py``)."""
        port = free_port()
        freeze = ["--gc-freeze", f"{gc_freeze:g}"] if gc_freeze > 0 else []
        proc = self.ps.start(
            "simulator",
            [PYTHON, "-m", "bench.sim", "--port", str(port), *freeze],
            cpus=self.cpus,
            log=self.log_path("simulator"),
        )
        url = f"http://127.0.0.1:{port}"
        self.ps.wait_http(proc, f"{url}/modzy/_sim/requests")
        return Server(proc, url)

    def passthrough(self, upstream: str) -> Server:
        port = free_port()
        auth = SIM_AUTH["Authorization"]
        cmd = [PYTHON, "-m", "bench.passthrough", "--port", str(port), "--upstream", upstream]
        proc = self.ps.start(
            "pass-through",
            [*cmd, "--header", f"Authorization: {auth}"],
            cpus=self.cpus,
            log=self.log_path("passthrough"),
        )
        url = f"http://127.0.0.1:{port}"
        self.ps.wait_http(proc, f"{url}/modzy/_sim/requests")
        return Server(proc, url)

    def gateway(self, name: str, config: GatewayConfig) -> Server:
        return self.gateway_from_file(name, write_config(self.workdir, f"{name}.yaml", config))

    def gateway_from_file(self, name: str, path: Path) -> Server:
        """``gateway serve`` with a configuration file written by the caller."""
        port = free_port()
        proc = self.ps.start(
            name,
            [GATEWAY, "serve", "--config", str(path), "--port", str(port)],
            cpus=self.cpus,
            log=self.log_path(name),
        )
        url = f"http://127.0.0.1:{port}"
        self.ps.wait_http(proc, f"{url}/healthz")
        return Server(proc, url)

    # -- jobs and the simulator's request log -------------------------------------------------

    def submit(self, gateway: str, model: str) -> dict[str, Any]:
        status, job = http("POST", f"{gateway}/v1/jobs", job_body(model), GATEWAY_AUTH)
        if status not in (200, 202):
            raise RuntimeError(f"submit through the gateway failed: {status} {job}")
        result: dict[str, Any] = job
        return result

    def wait_done(self, gateway: str, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, job = http("GET", f"{gateway}/v1/jobs/{job_id}", headers=GATEWAY_AUTH)
            if job.get("done"):
                http("GET", f"{gateway}/v1/jobs/{job_id}/results", headers=GATEWAY_AUTH)
                result: dict[str, Any] = job
                return result
            time.sleep(0.05)
        raise RuntimeError(f"job {job_id} did not finish within {timeout:g} s")

    def clear_sim_log(self, sim: str, mount: str = "modzy") -> None:
        http("DELETE", f"{sim}/{mount}/_sim/requests")

    def sim_log(self, sim: str, mount: str = "modzy") -> tuple[int, list[dict[str, str]]]:
        """(requests logged since the last clear, the last 1000 of them)."""
        _, body = http("GET", f"{sim}/{mount}/_sim/requests")
        return int(body["count"]), list(body["requests"])
