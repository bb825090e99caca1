"""What every route of the simulated Modzy API shares: its app keys, auth and error bodies.

Auth is ``Authorization: ApiKey <key>`` (modzy-sdk ``http.py``); without it, or with
another key, 401 in Modzy's error shape ``{"statusCode", "status", "message",
"reportErrorUrl"}`` (sdk-go ``errors.go``; the Python SDK reads ``message``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from adapters.modzy.sim_jobs import SimJob, SimSettings

#: [inferred] Where Modzy's error bodies send a user to report the error.
REPORT_ERROR_URL = "https://www.modzy.com/support/"

SETTINGS = web.AppKey("modzy_sim_settings", SimSettings)
JOBS = web.AppKey("modzy_sim_jobs", dict[str, SimJob])


def error_body(status: int, message: str) -> dict[str, Any]:
    """Modzy's error shape (sdk-go ``ModzyHTTPError``)."""
    try:
        name = HTTPStatus(status).name
    except ValueError:
        name = "ERROR"
    return {
        "statusCode": status,
        "status": name,
        "message": message,
        "reportErrorUrl": REPORT_ERROR_URL,
    }


def error(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status)


def caller(request: web.Request) -> str | web.Response:
    """The key prefix (public part) of an accepted ``ApiKey`` header, or the 401 answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme != "ApiKey" or key.strip() != request.app[SETTINGS].api_key:
        return error(401, "The API key is missing or misspelled.")
    return key.strip().split(".", 1)[0]
