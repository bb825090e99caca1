"""Wiring of authentication into the app: the authenticator, the failed-auth limiter, JWKS.

Called once by ``create_app``; kept here so the composition root stays one line per
concern. The JWKS client has a lifetime (an HTTP session), owned by a cleanup context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.auth.failed_auth import FailedAuthLimiter
from gateway.auth.jwks import JwksCache
from gateway.auth.jwt_auth import JwtVerifier
from gateway.auth.principals import ApiKeyAuthenticator, Authenticator
from gateway.clock import Clock
from gateway.config.settings import Settings
from gateway.http.keys import AUTH_LIMITER, AUTHENTICATOR


def install_auth(app: web.Application, settings: Settings, clock: Clock) -> None:
    """Put the authenticator and the failed-auth limiter on ``app``."""
    jwt_settings = settings.auth.jwt
    verifier: JwtVerifier | None = None
    if jwt_settings is not None:
        jwks = JwksCache(jwt_settings, clock) if jwt_settings.jwks_url else None
        verifier = JwtVerifier(jwt_settings, jwks)
        if jwks is not None:
            app.cleanup_ctx.append(_jwks_ctx(jwks))
    app[AUTHENTICATOR] = Authenticator(ApiKeyAuthenticator(settings.api_keys), verifier)
    app[AUTH_LIMITER] = FailedAuthLimiter(settings.auth, clock)


def _jwks_ctx(jwks: JwksCache) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await jwks.start()
        yield
        await jwks.close()

    return ctx
