"""Authentication for ``/v1/``: resolve the credential to a ``Principal`` up front.

Scopes are checked by the job service, per operation; here we only establish who
is calling, so an unauthenticated request costs no handler work.

Failed attempts are limited per client address (``gateway.auth.failed_auth``): a
credential is charged as a failure before it is checked and the charge given back if it
verifies, and an address over its limit gets 429 before its credential is even looked at
(unless that credential already verified from the address: it is known good). A request
with no credential at all is not a guess and is not counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.auth.principals import credential_from
from gateway.errors import RateLimited, Unauthenticated
from gateway.http.keys import AUTH_LIMITER, AUTHENTICATOR, PRINCIPAL
from gateway.observability.context import FACTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    credential = credential_from(request.headers)
    if credential is None:
        raise Unauthenticated()
    limiter = request.app[AUTH_LIMITER]
    address = limiter.client_address(request.remote, request.headers.getall("X-Forwarded-For", []))
    attempt = await limiter.admit(address, credential.value)
    if attempt.retry_after is not None:
        raise RateLimited(
            "Too many failed authentication attempts; try again later.",
            headers={"Retry-After": str(attempt.retry_after)},
        )
    try:
        principal = await request.app[AUTHENTICATOR].authenticate(request.headers)
    except Unauthenticated:
        await limiter.failed(attempt)
        raise
    except Exception:
        await limiter.abandoned(attempt)
        raise
    await limiter.succeeded(attempt)
    request[PRINCIPAL] = principal
    facts = FACTS.get()
    if facts is not None:
        facts.tenant = principal.tenant
        facts.key_id = principal.key_id
    structlog.contextvars.bind_contextvars(tenant=principal.tenant, key_id=principal.key_id)
    return await handler(request)
