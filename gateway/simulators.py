"""All provider simulators in one aiohttp app, each under ``/<type>/``.

``gateway simulate`` serves this app on its own (so several gateway processes can
share one set of simulated providers), and ``gateway demo`` runs it beside the
gateway. ``config/demo.yaml`` points each provider at ``http://127.0.0.1:9100/<type>``.
"""

from __future__ import annotations

from aiohttp import web

from adapters.registry import available_types

DEFAULT_PORT = 9100


async def _index(request: web.Request) -> web.Response:
    names = [t.name for t in available_types()]
    return web.json_response({"simulators": {n: f"/{n}/" for n in names}})


def simulators_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _index)
    for ptype in available_types():
        app.add_subapp(f"/{ptype.name}/", ptype.create_simulator(None))
    return app
