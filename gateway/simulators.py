"""All provider simulators in one aiohttp app, each under ``/<type>/``.

``gateway simulate`` serves this app on its own (so several gateway processes can
share one set of simulated providers), and ``gateway demo`` runs it beside the
gateway. ``config/demo.yaml`` points each provider at ``http://127.0.0.1:9100/<type>``.

Besides one simulator per type, a second Modzy account is mounted under
``/modzy-backup/``: its own jobs and its own faults (the same demo credential opens
it), so the demo's fallback alias can be watched moving to it when the primary
(``/modzy/``) is made to fail through ``PUT /modzy/_sim/faults``.
"""

from __future__ import annotations

from aiohttp import web

from adapters.provider_type import ProviderType
from adapters.registry import available_types

DEFAULT_PORT = 9100
#: Further simulated accounts: mount name -> provider type.
SECOND_ACCOUNTS = {"modzy-backup": "modzy"}


def _mounts() -> dict[str, ProviderType]:
    types = {t.name: t for t in available_types()}
    extra = {n: types[t] for n, t in SECOND_ACCOUNTS.items() if t in types}
    return {**types, **extra}


async def _index(request: web.Request) -> web.Response:
    return web.json_response({"simulators": {n: f"/{n}/" for n in _mounts()}})


def simulators_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _index)
    for name, ptype in _mounts().items():
        app.add_subapp(f"/{name}/", ptype.create_simulator(None))
    return app
