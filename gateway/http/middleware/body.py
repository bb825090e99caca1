"""Refuse a body over the configured limit before any handler work (413)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import PayloadTooLarge
from gateway.http.keys import SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    length = request.content_length
    if length is not None and length > request.app[SETTINGS].max_body_bytes:
        raise PayloadTooLarge(
            f"The request body is larger than {request.app[SETTINGS].max_body_bytes} bytes."
        )
    if length is None and request.body_exists:
        # A chunked body has no length to check up front: read it here, so it is refused
        # before any handler work too. aiohttp stops at client_max_size (the same limit)
        # and keeps what it read for the handler's own read().
        try:
            await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(
                f"The request body is larger than {request.app[SETTINGS].max_body_bytes} bytes."
            ) from None
    return await handler(request)
