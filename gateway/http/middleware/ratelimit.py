"""Caller rate limits for ``/v1/``: one decision per authenticated request, before any work.

Runs after authentication (the limits are per credential and tenant). The decision's
``RateLimit-Policy`` and ``RateLimit`` fields go on the answer whatever it turns out to
be (the request middleware adds them, error answers included); a refusal is 429
``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import RateLimited
from gateway.http.keys import CALLER_LIMITER, PRINCIPAL
from gateway.limits.settings import Policy
from gateway.observability.context import FACTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def ratelimit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    principal = request.get(PRINCIPAL)
    if principal is None:  # not /v1/, or no credential: nothing to charge it to
        return await handler(request)
    policy: Policy = "submit" if request.method == "POST" and request.path == "/v1/jobs" else "read"
    verdict = await request.app[CALLER_LIMITER].check(principal, policy)
    facts = FACTS.get()
    if facts is not None and verdict.buckets:
        facts.ratelimit_headers = verdict.headers()
        facts.ratelimit = verdict.outcome
    if not verdict.admitted:
        raise RateLimited(
            f"Over the {', '.join(verdict.refused_by)} limit; "
            f"try again in {verdict.retry_after} s.",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    return await handler(request)
