"""``gateway serve | demo | simulate | check-config``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import structlog
from aiohttp import web

from gateway.config.loading import load_settings
from gateway.config.settings import ConfigError, Settings


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv): in the benchmarks (``bench/``) it takes ~11 % off
    the CPU and the added latency of a proxied status read. Where uvloop is not
    installed (it has no Windows build), asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _print_problems(exc: ConfigError, source: str) -> None:
    print(f"invalid configuration in {source}:", file=sys.stderr)
    for path, message in exc.problems:
        print(f"  {path}: {message}", file=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        _print_problems(exc, args.file)
        return 1
    print(
        f"configuration OK: {len(settings.providers)} providers, "
        f"{sum(len(p.models) for p in settings.providers)} models, "
        f"{len(settings.aliases)} aliases, {len(settings.api_keys)} API keys"
    )
    return 0


def _load_or_exit(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        _print_problems(exc, path)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.http.app import create_app
    from gateway.http.keys import LIFECYCLE
    from gateway.http.lifecycle import AIOHTTP_SHUTDOWN_SECONDS, handle_stop_signals
    from gateway.observability.logging import configure_logging

    # Everything that can refuse the configuration runs before the port is bound, and
    # refuses with the field's path and exit code 2, never a traceback.
    settings = _load_or_exit(args.config)
    configure_logging(settings.logging.format, settings.logging.level)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    structlog.get_logger("gateway").info(
        "serving", host=host, port=port, providers=[p.name for p in settings.providers]
    )
    try:
        app = create_app(settings)
    except ConfigError as exc:  # what only building the clients reveals (a Redis URL)
        _print_problems(exc, args.config)
        return 2
    if settings.server.metrics_port is not None:
        from gateway.http.metrics_server import metrics_site_ctx

        app.cleanup_ctx.append(metrics_site_ctx(host, settings.server.metrics_port))
    drain_delay = settings.server.drain_delay_seconds

    async def stop_signals(app: web.Application) -> None:
        handle_stop_signals(app[LIFECYCLE], drain_delay)

    app.on_startup.append(stop_signals)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        # The gateway drains itself (gateway.http.lifecycle), within shutdown_timeout;
        # aiohttp's own two waits only finish what is left.
        shutdown_timeout=AIOHTTP_SHUTDOWN_SECONDS,
        handle_signals=False,
        print=None,
        loop=new_event_loop(),
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.simulators import simulators_app

    print(f"provider simulators on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(simulators_app(), host=args.host, port=args.port, access_log=None, print=None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_event_loop) as r:
        r.run(run_demo(port=args.port, sim_port=args.simulator_port))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway with a configuration file")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the gateway in memory plus every simulated provider")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--simulator-port", type=int, default=0, help="port for the simulators (default: any free)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="the provider simulators alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
