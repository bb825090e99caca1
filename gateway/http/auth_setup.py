"""Wiring of authentication into the app: the authenticator, the failed-auth limiter, JWKS.

Called once by ``create_app``; kept here so the composition root stays one line per
concern. The JWKS client has a lifetime (an HTTP session), owned by a cleanup context.
The failed-auth limiter counts in Redis when there is one, sharing the caller limits'
view of Redis's health (``guard``), so a hung Redis costs a request one timeout at most.
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
from gateway.limits.auth_failures import RedisFailureLog
from gateway.limits.ratelimit import SharedLimits
from gateway.state.backends import Backends


def install_auth(
    app: web.Application,
    settings: Settings,
    clock: Clock,
    backends: Backends | None = None,
    guard: SharedLimits | None = None,
) -> None:
    """Put the authenticator and the failed-auth limiter on ``app``."""
    jwt_settings = settings.auth.jwt
    verifier: JwtVerifier | None = None
    if jwt_settings is not None:
        jwks = JwksCache(jwt_settings, clock) if jwt_settings.jwks_url else None
        verifier = JwtVerifier(jwt_settings, jwks)
        if jwks is not None:
            app.cleanup_ctx.append(_jwks_ctx(jwks))
    app[AUTHENTICATOR] = Authenticator(ApiKeyAuthenticator(settings.api_keys), verifier)
    shared: RedisFailureLog | None = None
    if backends is not None and backends.redis is not None and guard is not None:
        failed = settings.auth.failed_auth
        shared = RedisFailureLog(
            backends.redis,
            backends.keys,
            guard,
            limit=failed.limit,
            window=failed.window_seconds,
            batcher=backends.batcher,
        )
    app[AUTH_LIMITER] = FailedAuthLimiter(
        settings.auth, clock, shared=shared, replicas=settings.ratelimit.replicas
    )


def _jwks_ctx(jwks: JwksCache) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await jwks.start()
        yield
        await jwks.close()

    return ctx
