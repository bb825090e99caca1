"""The ``gateway`` command: serve, demo, simulate, check-config and check-provider."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from importlib.metadata import PackageNotFoundError, version

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
    for line in exc.located():
        print(f"  {line}", file=sys.stderr)


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
    log = structlog.get_logger("gateway")
    log.info(
        "serving",
        host=host,
        port=port,
        listening_on=f"http://{host}:{port}",
        providers=[p.name for p in settings.providers],
        redis=_redis_mode(settings),
        engine="on" if settings.engine.enabled else "off",
        log_format=settings.logging.format,
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
    log.info("stopped")
    return 0


def _redis_mode(settings: Settings) -> str:
    """``standalone redis://host:port`` or ``none (...)``: never the URL's password."""
    url = settings.redis.url
    if url is None:
        return "none (state in this process only: one replica)"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    where = parts.netloc.rpartition("@")[2]
    return f"{settings.redis.mode} {parts.scheme}://{where}"


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.simulators import simulators_app

    print(f"provider simulators on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(
        simulators_app(),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        # Nothing to drain: a request held by a "hang" fault must not hold up the exit.
        shutdown_timeout=0.5,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_event_loop) as r:
        r.run(run_demo(port=args.port, sim_port=args.simulator_port))
    return 0


def cmd_check_provider(args: argparse.Namespace) -> int:
    from gateway.provider_check import check_providers

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        _print_problems(exc, args.config)
        return 1
    configured = {p.name: p for p in settings.providers}
    if args.all:
        chosen = list(configured.values())
    else:
        unknown = [n for n in args.names if n not in configured]
        if unknown:
            listed = ", ".join(configured) or "none"
            print(
                f"no provider named {', '.join(map(repr, unknown))} in {args.config} "
                f"(configured: {listed})",
                file=sys.stderr,
            )
            return 1
        chosen = [configured[n] for n in dict.fromkeys(args.names)]
    if not chosen:
        print(f"{args.config} configures no providers", file=sys.stderr)
        return 1
    results = asyncio.run(check_providers(chosen))
    for result in results:
        print(result.line(), file=sys.stdout if result.ok else sys.stderr, flush=True)
    return 0 if all(r.ok for r in results) else 1


def _version() -> str:
    try:
        return version("inference-gateway")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help ("(default: 8080)"), where it has one: a
    ``None`` or ``False`` default says nothing a reader could use."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


_FORMATTER = _Formatter

DESCRIPTION = """\
One endpoint, one credential, one job model over several ML-inference providers.

Try it:        gateway demo                       (every provider simulated, in memory)
Run for real:  gateway check-config FILE; gateway check-provider --all --config FILE;
               gateway serve --config FILE
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "serve",
        help="run the gateway with a configuration file",
        description="Run the gateway. Refuses an invalid configuration (exit 2) before "
        "binding the port.",
        formatter_class=_FORMATTER,
    )
    p.add_argument("--config", required=True, metavar="FILE", help="YAML configuration file")
    p.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: server.host)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to listen on (default: server.port)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "demo",
        help="the gateway in memory plus every simulated provider",
        description="The gateway in memory with every provider simulated; prints a "
        "ready-to-paste API key and example requests.",
        formatter_class=_FORMATTER,
    )
    p.add_argument("--port", type=int, default=8080, help="port of the gateway")
    p.add_argument(
        "--simulator-port", type=int, default=0, help="port of the simulators (0: any free port)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate",
        help="the provider simulators alone",
        description="Every provider simulator, each under /<type>/ (e.g. /modzy/api).",
        formatter_class=_FORMATTER,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9100, help="port to listen on")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "check-config",
        help="validate a configuration file",
        description="List every problem of a configuration file (and the GATEWAY_* "
        "variables set), by field and line; exit 1 if there is any.",
        formatter_class=_FORMATTER,
    )
    p.add_argument("file", metavar="FILE", help="YAML configuration file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser(
        "check-provider",
        help="try each provider's credential and base URL with one read-only call",
        description="One authenticated, read-only call per provider (a model list or a "
        "key check; nothing is created or billed), and whether the credential and base "
        "URL work; exit 1 if any does not.",
        formatter_class=_FORMATTER,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="provider names (providers[].name)")
    p.add_argument("--all", action="store_true", help="check every configured provider")
    p.add_argument("--config", required=True, metavar="FILE", help="YAML configuration file")
    p.set_defaults(func=cmd_check_provider)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # A bare ``gateway`` is someone finding their way: help, not an error.
        parser.print_help()
        return 0
    if args.command == "check-provider" and bool(args.names) == args.all:
        parser.error("check-provider: name the providers to check, or give --all")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
