"""The gateway's configuration for a benchmark: the production shape, against the simulator.

Redis store (a unique prefix per run), API-key auth, JSON logs (to a file the runner
chooses), metrics on, and the simulated Modzy provider twice (``modzy``: jobs that keep
running; ``modzy-fast``: jobs that finish at once, see ``bench/sim.py``).

The caller rate limit is the one optional part: ``RATELIMIT`` below is the section the
benchmarks enable (limits far above any benchmark's rate, so it never rejects) once
``gateway check-config`` accepts it; until the gateway has that section it is left out
and the run says so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from adapters.modzy.sim_models import SENTIMENT_ID
from adapters.modzy.simulator import SIMULATOR_KEY

API_KEY = "bench-key-0123456789abcdef"
TENANT = "bench"
MODEL = f"modzy/{SENTIMENT_ID}@1.0.1"
FAST_MODEL = f"modzy-fast/{SENTIMENT_ID}@1.0.1"


# ---------------------------------------------------------------------------------------
# THE RATE LIMIT SECTION (issue 5, `ratelimit:` in gateway/limits/settings.py). Enabled when
# `gateway check-config` accepts it; edit here if the fields change. Every limit is far
# above what any scenario sends (a few thousand requests per second at most), so each
# decision runs in full on every request and none is ever refused.
def _never() -> dict[str, Any]:
    return {"requests": 10_000_000, "per_seconds": 1, "burst": 10_000_000}


RATELIMIT: dict[str, Any] = {
    "per_key": {"submit": _never(), "read": _never(), "concurrent_jobs": 1_000_000},
    "per_tenant": {"submit": _never(), "read": _never()},
    "daily_jobs": {"default": 100_000_000},
}
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayConfig:
    sim_url: str
    redis_url: str
    prefix: str
    status_cache_seconds: float
    ratelimit: bool


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_dict(c: GatewayConfig) -> dict[str, Any]:
    model = {"id": SENTIMENT_ID, "version": "1.0.1", "output_type": "classification"}
    timeouts = {"connect": 2, "read": 10, "total": 20}

    def provider(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "modzy",
            "base_url": f"{c.sim_url}/{name}/api",
            "credential": {"file": "modzy.key"},
            "timeouts": timeouts,
            "models": [model],
        }

    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 8080, "shutdown_timeout": 1},
        "logging": {"format": "json", "level": "info"},
        "providers": [provider("modzy"), provider("modzy-fast")],
        "api_keys": [
            {
                "id": "bench",
                "sha256": sha256(API_KEY),
                "tenant": TENANT,
                "scopes": ["jobs:read", "jobs:write"],
            }
        ],
        "redis": {"url": c.redis_url, "prefix": c.prefix},
        "status_cache_seconds": c.status_cache_seconds,
        # Jobs the benchmark creates expire on their own soon after the run.
        "job_retention_seconds": 600,
    }
    if c.ratelimit:
        data["ratelimit"] = RATELIMIT
    return data


def write_config(directory: Path, name: str, c: GatewayConfig) -> Path:
    """The YAML file (and the provider credential file beside it)."""
    (directory / "modzy.key").write_text(SIMULATOR_KEY + "\n")
    path = directory / name
    path.write_text(yaml.safe_dump(config_dict(c), sort_keys=False))
    return path


def check_config(path: Path) -> tuple[bool, str]:
    """``gateway check-config`` on the file: (accepted, what it said)."""
    gateway = Path(sys.executable).with_name("gateway")
    done = subprocess.run(
        [str(gateway), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def ratelimit_supported(directory: Path, c: GatewayConfig) -> tuple[bool, str]:
    """Whether this gateway accepts ``RATELIMIT``: check a copy of the config with it."""
    probe = write_config(directory, "ratelimit-probe.yaml", replace(c, ratelimit=True))
    return check_config(probe)
