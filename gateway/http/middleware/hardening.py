"""What aiohttp says on its own: no framework name, version or echoed request bytes.

Most answers go through the application, which sets ``Server: inference-gateway``
(``on_response_prepare``) and renders errors as problem+json. aiohttp answers some
requests itself, before any application code runs: a malformed request line, a header
line over 8190 bytes, more than 128 headers, a bad ``Content-Length`` (400, from its HTTP
parser). Out of the box those answers carry ``Server: Python/3.x aiohttp/3.y.z``, echo
the first 100 bytes of the offending line (which may be an ``Authorization`` header) in
the body, and log the same bytes with a traceback.

aiohttp has no setting for any of this, so ``harden_framework_answers`` adjusts it once
per process: the default ``Server`` value becomes ours, and a parser error becomes a
generic problem+json 400 and one log line naming the error class only. Like every
answer of the application, those answers (and any other error page aiohttp writes
itself) carry ``X-Content-Type-Options: nosniff`` and an ``X-Request-ID``: a new one,
since the request's own headers could not be read, also in the body and the log line.
Every other error aiohttp handles is otherwise left to its own code.
"""

from __future__ import annotations

import json
import uuid

import structlog
from aiohttp import web, web_protocol, web_response
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_request import BaseRequest

SERVER_NAME = "inference-gateway"
_log = structlog.get_logger("gateway.http")
_original_handle_error = web_protocol.RequestHandler.handle_error


def _handle_error(
    self: web_protocol.RequestHandler,
    request: BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    request_id = uuid.uuid4().hex
    if status != 400 or not isinstance(exc, HttpProcessingError):
        resp = _original_handle_error(self, request, status, exc, message)
        return _with_common_headers(resp, request_id)
    # Non-HTTP traffic (TLS to a plain port, scanners) is routine on a public port: debug.
    log = _log.debug if isinstance(exc, BadHttpMethod) else _log.info
    log(
        "bad_http_request",
        error=type(exc).__name__,
        remote=request.remote,
        request_id=request_id,
    )
    if request.writer.output_size > 0:
        raise ConnectionError("a response was already sent on this connection")
    body = {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "code": "bad_http_request",
        "detail": "The request is not valid HTTP or exceeds a header limit.",
        "request_id": request_id,
    }
    resp = web.Response(status=400, text=json.dumps(body), content_type="application/problem+json")
    resp.force_close()
    return _with_common_headers(resp, request_id)


def _with_common_headers(resp: web.StreamResponse, request_id: str) -> web.StreamResponse:
    """What ``context_middleware`` puts on every answer it sees, for one it never sees."""
    if not resp.prepared:
        resp.headers["X-Request-ID"] = request_id
        resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def harden_framework_answers() -> None:
    """Apply the adjustments described in the module docstring (idempotent)."""
    # setattr: neither name is part of aiohttp's typed, exported surface.
    setattr(web_response, "SERVER_SOFTWARE", SERVER_NAME)  # noqa: B010
    setattr(web_protocol.RequestHandler, "handle_error", _handle_error)  # noqa: B010
