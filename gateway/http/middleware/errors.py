"""The one place errors become answers: RFC 9457 ``application/problem+json``.

Dispatch is by ``isinstance`` on the ``GatewayError`` tree (its classes carry their
status, code and title). aiohttp's own HTTP exceptions (no route, wrong method, body
too large) are rendered the same way. Anything else is logged once with its
traceback and answered as a 500 that reveals nothing of the internals.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from adapters.errors import ProviderError
from gateway.errors import GatewayError
from gateway.observability.context import FACTS

_log = structlog.get_logger("gateway.errors")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: ("invalid_request", "Bad Request"),
    401: ("unauthenticated", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    406: ("not_acceptable", "Not Acceptable"),
    413: ("payload_too_large", "Content Too Large"),
    415: ("unsupported_media_type", "Unsupported Media Type"),
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
    problem_type: str = "about:blank",
) -> web.Response:
    facts = FACTS.get()
    body: dict[str, object] = {
        "type": problem_type,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": facts.request_id if facts else "",
    }
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


def render_error(exc: GatewayError) -> web.Response:
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        headers=exc.headers or None,
        errors=[e.as_dict() for e in exc.errors] or None,
        problem_type=exc.type,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        if isinstance(exc, ProviderError) and exc.status >= 500:
            # The cause (an aiohttp error) may name the provider's host: log, never answer it.
            _log.warning(
                "provider_error",
                provider=exc.provider,
                code=exc.code,
                detail=exc.detail,
                cause=type(exc.__cause__).__name__ if exc.__cause__ else None,
            )
        return render_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404 and request.method == "CONNECT":
            # CONNECT names a host, not a path (RFC 9110 §9.3.6), so no route ever matches
            # it: what is not supported is the method. No resource here allows any method
            # for that target, hence an empty Allow.
            exc = web.HTTPMethodNotAllowed(request.method, allowed_methods=())
        code, title = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {}
        if exc.status == 405 and "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
        detail = {
            404: "No such resource.",
            405: f"{request.method} is not allowed here.",
            413: "The request body is larger than this gateway accepts.",
        }.get(exc.status, exc.reason)
        return problem_response(exc.status, code, title, detail, headers=headers or None)
    except Exception:
        _log.exception("unhandled_error", path=request.path, method=request.method)
        return problem_response(
            500, "internal", "Internal Server Error", "The gateway failed to answer this request."
        )
