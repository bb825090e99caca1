"""``gateway demo``: the gateway in memory plus every simulated provider, on loopback.

It reads ``config/demo.yaml`` (the same file ``gateway serve`` uses against
``gateway simulate``), starts the simulators on a free port (or ``--simulator-port``),
points the providers at them, and prints commands to paste.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiohttp import web
from yarl import URL

from gateway.config.loading import load_settings
from gateway.config.settings import Settings
from gateway.http.app import create_app
from gateway.observability.logging import configure_logging
from gateway.simulators import simulators_app

#: The demo's configuration: every provider, simulated.
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"

DEMO_KEY = "demo-key"


def _retarget(settings: Settings, sim_base: str) -> Settings:
    """Point every provider at the simulators this demo started."""
    providers = []
    for p in settings.providers:
        path = URL(p.base_url).path
        providers.append(p.model_copy(update={"base_url": sim_base + path}))
    return settings.model_copy(update={"providers": providers})


def walkthrough(base: str) -> str:
    h = f'-H "Authorization: Bearer {DEMO_KEY}"'
    return f"""
Gateway ready on {base}  (API key: {DEMO_KEY}; another tenant's key: demo-key-other)

  # submit a job and wait up to 10 s for it to finish
  curl -s {h} -H "Prefer: wait=10" -H "Content-Type: application/json" \\
       {base}/v1/jobs -d '{{"model": "sentiment", "inputs": [
         {{"name": "review-1", "text": "Great product, I love it"}},
         {{"name": "review-2", "text": "Terrible support, bad experience"}}]}}'

  # then, with the id it printed:
  curl -s {h} {base}/v1/jobs/JOB_ID
  curl -s {h} {base}/v1/jobs/JOB_ID/results
  curl -s {h} "{base}/v1/jobs/JOB_ID/results?format=csv"

  curl -s {h} {base}/v1/models      # every model and alias
  curl -s {h} {base}/v1/providers   # providers and what they can do
  open {base}/docs                  # the API, browsable; "Authorize" with {DEMO_KEY}
  open {base}/openapi.json          # the same, as OpenAPI 3.1
"""


async def run_demo(*, port: int, sim_port: int, host: str = "127.0.0.1") -> None:
    settings = load_settings(DEMO_CONFIG)
    configure_logging("console", settings.logging.level)

    sim_runner = web.AppRunner(simulators_app(), access_log=None)
    await sim_runner.setup()
    sim_site = web.TCPSite(sim_runner, host, sim_port)
    await sim_site.start()
    addresses = sim_runner.addresses
    actual_sim_port = addresses[0][1] if addresses else sim_port
    settings = _retarget(settings, f"http://{host}:{actual_sim_port}")

    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(walkthrough(f"http://{host}:{port}"), flush=True)
    print(f"(simulated providers on http://{host}:{actual_sim_port}/; Ctrl-C stops)", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await sim_runner.cleanup()
