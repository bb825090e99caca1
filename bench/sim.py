"""The simulated Modzy provider the benchmarks point the gateway at.

The repository's own Modzy simulator (``adapters.modzy.simulator``), served twice with
different job timing (``SimSettings``), since one simulator app has one timing:

* ``/modzy/``      jobs stay ``IN_PROGRESS`` for an hour (status polls of a running job);
* ``/modzy-fast/`` jobs finish within about 0.1 s (results of a finished job).

Each keeps its own request log: ``GET /<mount>/_sim/requests`` counts provider calls.
``gateway simulate`` would serve the same simulator with the demo timing (a one-item
job ends after 1.2 s), too short to poll a running job for a whole run.

The simulator keeps every job it is sent. Submitted flat out (thousands a second) they
make its garbage collector's full passes longer and longer over a run: its own submit
p99 then measures those pauses (and the run's length) more than the submits.
``--gc-freeze SECONDS`` moves what the process holds out of the collector's reach that
often (``gc.freeze()``), so a pass only looks at the last interval's objects.

    python -m bench.sim --port 9300 [--gc-freeze 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc

from aiohttp import web

from adapters.modzy.simulator import SimSettings, create_simulator

#: Seconds an item of a ``/modzy/`` job runs: longer than any benchmark run.
LONG_ITEM_SECONDS = 3600.0
MOUNTS = {
    "modzy": SimSettings(queue_seconds=0.01, item_seconds=LONG_ITEM_SECONDS),
    "modzy-fast": SimSettings(queue_seconds=0.01, item_seconds=0.02),
    # Jobs that finish 2 s after submit: webhook delay after the provider's finish.
    "modzy-2s": SimSettings(queue_seconds=0.01, item_seconds=2.0),
}


def bench_simulators(gc_freeze: float = 0.0) -> web.Application:
    """``gc_freeze`` > 0: ``gc.freeze()`` every that many seconds (see above)."""
    app = web.Application()
    for mount, settings in MOUNTS.items():
        app.add_subapp(f"/{mount}/", create_simulator(None, settings))
    if gc_freeze > 0:

        async def start_freezing(app: web.Application) -> None:
            loop = asyncio.get_running_loop()

            def freeze() -> None:
                gc.freeze()
                loop.call_later(gc_freeze, freeze)

            loop.call_later(gc_freeze, freeze)

        app.on_startup.append(start_freezing)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gc-freeze", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    app = bench_simulators(args.gc_freeze)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
