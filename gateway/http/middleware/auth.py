"""Authentication for ``/v1/``: resolve the credential to a ``Principal`` up front.

Scopes are checked by the job service, per operation; here we only establish who
is calling, so an unauthenticated request costs no handler work.

Failed attempts are limited per client address (``gateway.auth.failed_auth``): a
credential is charged as a failure before it is checked and the charge given back if it
verifies. The credential is checked first even when its address is over the limit (an
API key is one hash and one lookup; a token's JWKS fetches are rate-limited on their
own): one that verifies goes through, so twenty mistyped keys from a neighbour behind
the same egress cannot lock out everyone else there; one that does not gets 429 with
``Retry-After`` instead of 401. A request with no credential at all is not a guess and
is not counted.

Every refusal is logged (``auth_failed``) with its reason (``missing``, ``malformed``,
``unknown``, ``revoked``, ``expired``, ...) and the client address, never the credential.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.auth.principals import credential_from, missing_reason
from gateway.errors import RateLimited, Unauthenticated
from gateway.http.keys import AUTH_LIMITER, AUTHENTICATOR, PRINCIPAL
from gateway.observability.context import FACTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_log = structlog.get_logger("gateway.auth")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    limiter = request.app[AUTH_LIMITER]
    address = limiter.client_address(request.remote, request.headers.getall("X-Forwarded-For", []))
    credential = credential_from(request.headers)
    if credential is None:
        reason = missing_reason(request.headers)
        _log.info("auth_failed", reason=reason, client=address)
        raise Unauthenticated(reason=reason)
    kind = "api_key" if not credential.bearer else "bearer"
    attempt = await limiter.admit(address, credential.value)
    authenticator = request.app[AUTHENTICATOR]
    try:
        principal = await authenticator.authenticate(request.headers)
    except Unauthenticated as exc:
        refused = attempt.retry_after is not None
        _log.info(
            "auth_failed",
            reason=exc.reason,
            credential=kind,
            # A revoked key's id is configuration, not a secret: it says whose key it was.
            key_id=authenticator.revoked_key_id(credential.value)
            if exc.reason == "revoked"
            else None,
            client=address,
            over_limit=refused,
        )
        if refused:
            raise RateLimited(
                "Too many failed authentication attempts; try again later.",
                headers={"Retry-After": str(attempt.retry_after)},
            ) from None
        await limiter.failed(attempt)
        raise
    except Exception:
        if attempt.retry_after is None:
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
