"""``/docs``: the API, browsable and callable ("Try it out"), and ``/`` pointing there.

Swagger UI's browser bundle ships inside the package (``docs_ui/``, vendored by
tools/vendor-swagger-ui.sh with its licence): nothing is fetched from a CDN, so the
page works on a machine without internet and the policy below allows this origin only.
No credential is needed to read the page; "Authorize" takes an API key for the calls.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

# Swagger UI sets inline style attributes (React) and draws its icons from data: URIs;
# everything else comes from this origin, and the page may not be framed.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

#: What /docs/{name} serves: the page's own files, nothing else of the folder.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "init.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain",
}


@cache
def _read(name: str) -> bytes:
    return (resources.files("gateway.http") / "docs_ui" / name).read_bytes()


def _answer(name: str, content_type: str, cache_control: str) -> web.Response:
    response = web.Response(body=_read(name), content_type=content_type)
    if content_type.startswith("text/"):
        response.charset = "utf-8"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = cache_control
    return response


async def root(request: web.Request) -> web.Response:
    # 302, not 301/308: a browser never caches it, so / stays free for something else.
    return web.Response(status=302, headers={"Location": "/docs"})


async def page(request: web.Request) -> web.Response:
    # Revalidated each time, so a new release's page (and asset list) shows at once.
    return _answer("index.html", "text/html", "no-cache")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = _ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return _answer(name, content_type, "public, max-age=3600")
