"""Scenario 6: LiteLLM's proxy as a peer, forwarding to an OpenAI-compatible mock.

Runs only where LiteLLM is installed, in its own virtualenv (it is not a dependency of
the gateway): ``BENCH_LITELLM`` names the ``litellm`` executable, else
``bench/.venv-litellm/bin/litellm`` is used if it exists. Install it once with

    python3 -m venv bench/.venv-litellm && bench/.venv-litellm/bin/pip install 'litellm[proxy]'

Its figures are ratios against the mock called directly, as ours are against the
simulator called directly (scenario 1); both servers sit on the same CPU as ours did.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from bench.measure import Context, Measured, ratio
from bench.openai_mock import MOCK_KEY, REQUEST
from bench.procs import free_port
from bench.stack import PYTHON

LITELLM_KEY = "sk-bench-litellm-master-key"
DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-litellm" / "bin" / "litellm"


def litellm_executable() -> Path | None:
    named = os.environ.get("BENCH_LITELLM")
    if named:
        return Path(named)
    return DEFAULT_VENV if DEFAULT_VENV.exists() else None


def _config(mock_url: str) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": "mock",
                "litellm_params": {
                    "model": "openai/mock",
                    "api_base": f"{mock_url}/v1",
                    "api_key": MOCK_KEY,
                },
            }
        ],
        # Auth on, as ours is (a master key; no database).
        "general_settings": {"master_key": LITELLM_KEY},
        "litellm_settings": {"telemetry": False},
    }


def scenario_6(ctx: Context, s1: dict[str, float]) -> None:
    """``s1``: our gateway's throughput ratio and added p50 over direct, from scenario 1."""
    executable = litellm_executable()
    if executable is None or not executable.exists():
        ctx.row("6", "LiteLLM proxy beside ours", "skipped", "not installed", None)
        return
    o, stack = ctx.opts, ctx.stack
    port = free_port()
    mock = stack.ps.start(
        "openai-mock",
        [PYTHON, "-m", "bench.openai_mock", "--port", str(port)],
        cpus=o.server_cpus,
        log=stack.log_path("openai-mock"),
    )
    mock_url = f"http://127.0.0.1:{port}"
    stack.ps.wait_http(mock, f"{mock_url}/v1/models")
    config = ctx.workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(_config(mock_url)))
    lport = free_port()
    started = time.monotonic()
    proxy = stack.ps.start(
        "litellm",
        [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(lport)],
        cpus=o.server_cpus,
        log=stack.log_path("litellm"),
        # No network fetch of the model cost map at start-up.
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    proxy_url = f"http://127.0.0.1:{lport}"
    try:
        stack.ps.wait_http(proxy, f"{proxy_url}/health/liveliness", timeout=120)
        startup = time.monotonic() - started
        env = {"BENCH_BODY": json.dumps(REQUEST)}
        runs: dict[str, dict[int, Measured]] = {}
        for name, url, proc, key in (
            ("direct", mock_url, mock, MOCK_KEY),
            ("litellm", proxy_url, proxy, LITELLM_KEY),
        ):
            headers = {"Authorization": f"Bearer {key}"}
            runs[name] = {
                conns: ctx.measure(
                    f"6 {name} {conns} conns",
                    f"{url}/v1/chat/completions",
                    proc,
                    connections=conns,
                    headers=headers,
                    fragments=["post"],
                    env=env,
                )
                for conns in (o.connections, 1)
            }
    finally:
        stack.ps.stop(proxy)
        stack.ps.stop(mock)
    c = o.connections
    d, lite = runs["direct"], runs["litellm"]
    r = ratio(lite[c].wrk.rps, d[c].wrk.rps)
    ctx.row(
        "6",
        f"LiteLLM throughput req/s, {c} conns (ours vs direct: {s1['rps_vs_direct']:.2f})",
        f"{lite[c].wrk.rps:.0f}",
        f"direct {d[c].wrk.rps:.0f}",
        r,
    )
    added = lite[1].wrk.p("p50") - d[1].wrk.p("p50")
    ours = s1["added_p50_ms"]
    ctx.row(
        "6",
        "LiteLLM added p50 ms over direct, 1 conn",
        f"{added:.2f}",
        f"our gateway {ours:.2f}",
        ratio(added, ours),
    )
    ctx.row("6", "LiteLLM CPU µs/request", f"{lite[c].cpu_us or 0:.0f}", "", None)
    ctx.data["scenario_6"] = {
        "executable": str(executable),
        "startup_seconds": round(startup, 1),
        **{name: {str(k): m.as_dict() for k, m in ms.items()} for name, ms in runs.items()},
    }
