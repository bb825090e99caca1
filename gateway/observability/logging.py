"""structlog set-up: JSON lines for ``serve``, readable console lines for ``demo``.

Request context (request id, tenant, key id) is bound in context variables by the
request middleware and merged first into every line. The standard library's
logging (aiohttp, asyncio, redis, warnings) goes through the same processors and
renderer, so a library's line is JSON too and carries the request id when it was
written inside a request.

Redaction runs last before rendering, after tracebacks have been turned into
text, so it sees everything that will be written. It hides the value under any
key that names a credential, at any depth, and credential-shaped text inside any
string ("Bearer ...", "Authorization: <any scheme> ...", "api_key=..."): a credential
cannot reach a log line by accident, whoever logged it.

The console format escapes control characters (``escape_controls``), as JSON does: a
URL path or header a caller wrote could otherwise put terminal escapes (colours, cursor
moves, a window title) or a fake line on the screen of whoever reads the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

REDACTED = "[redacted]"

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "token",
        "password",
        "secret",
        "credential",
        "cookie",
        "set-cookie",
        # Modzy puts the submitting key's id in every result item (``accessKey``).
        "accesskey",
        "access_key",
    }
)
#: A key containing one of these names a credential too (``access_token``, ``db_password``).
_SECRET_PARTS = ("password", "secret", "token", "credential", "api_key", "apikey", "api-key")

# An auth scheme followed by its credential: the shape of an Authorization header value
# (``Api-Key`` is AnnoLab's scheme).
_SCHEME = re.compile(r"(?i)\b(bearer|basic|apikey|api-key)(\s+)[^\s\"',;]+")
# ``Authorization: <scheme> <credential>``, whatever the scheme (RFC 9110 §11.4): the value's
# first word and the next one on the same line are hidden together. A word after a
# credential that had no scheme is hidden too: better one word too many than a secret.
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization)(\"?'?\s*[:=]\s*\"?'?)"
    r"[^\s\"',;&}]+(?:[ \t]+[^\s\"',;&}]+)?"
)
# ``name: value`` / ``name=value`` where name is another credential header or field.
_NAMED = re.compile(
    r"(?i)\b(x-api-key|api[_-]?key|password|secret|"
    r"access_token|token|cookie)(\"?'?\s*[:=]\s*\"?'?)"
    r"(?:(?:bearer|basic|apikey|api-key)\s+)?[^\s\"',;&}]+"
)
_KEEP = rf"\1\2{REDACTED}"


#: Every pattern above needs one of these words (compared case-insensitively): ASCII text
#: holding none of them cannot match, so it skips the regexes. That is most text in a
#: line (timestamps, ids, paths), and the regexes are most of a line's cost.
_NEEDLES = (
    "bearer",
    "basic",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "password",
    "secret",
    "token",
    "cookie",
)

_NEEDLE = re.compile("|".join(map(re.escape, _NEEDLES)))

# Verdicts per key name: lines reuse a handful of names, and the test is a dozen scans.
# Bounded, since a logged mapping's keys may be data.
_KEY_VERDICTS: dict[str, bool] = {}
_MAX_KEY_VERDICTS = 4096


def secret_key(key: str) -> bool:
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        k = key.lower()
        verdict = k in _SECRET_KEYS or any(part in k for part in _SECRET_PARTS)
        if len(_KEY_VERDICTS) < _MAX_KEY_VERDICTS:
            _KEY_VERDICTS[key] = verdict
    return verdict


def _may_hold_credential(text: str) -> bool:
    if not text.isascii():
        # IGNORECASE also folds a few non-ASCII letters onto ASCII ones that lower()
        # leaves alone (the long s onto s, the dotted capital I onto i): the regexes judge.
        return True
    return _NEEDLE.search(text.lower()) is not None


def redact_text(text: str) -> str:
    """``text`` through every pattern above (no fast path: ``scrub`` adds that)."""
    text = _SCHEME.sub(_KEEP, text)
    text = _HEADER.sub(_KEEP, text)
    return _NAMED.sub(_KEEP, text)


def scrub(value: Any) -> Any:
    """``value`` with credentials hidden: in strings, and in containers at any depth."""
    kind = type(value)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, str):
        # Under 6 characters: too short to hold a scheme and a credential.
        if len(value) < 6 or not _may_hold_credential(value):
            return value
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and secret_key(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# C0 controls, DEL and C1 controls: written raw to a terminal they are commands (ESC and
# CSI start escape sequences; CR and NUL hide what came before them on the line).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
#: A traceback rendered as text keeps its line breaks (and nothing else raw).
_ESCAPES_MULTILINE = {c: e for c, e in _ESCAPES.items() if c != ord("\n")}
_MULTILINE_KEYS = frozenset({"exception", "stack"})
#: What the console renderer writes with ``str``: its columns, and the text after the line.
_RAW_KEYS = frozenset({"timestamp", "level", "event", "logger", "logger_name"})


class _Quoted:
    """A string the console renderer writes with ``repr``: quoted, controls escaped."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def escape_controls(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor for the console format: no control character is written raw.

    The renderer writes its columns (time, level, event, logger) and tracebacks with
    ``str``, and other values with ``repr`` only when they hold a space, a quote, ``=``,
    a tab or a line break: a path like ``/v1/<ESC>[2J`` would go out raw. Column text
    gets ``\\xNN`` escapes (tracebacks keep their line breaks); any other string holding
    a control character is written as its ``repr``, quoted and escaped.
    """
    for key, value in list(event.items()):
        if type(value) is str and _CONTROL.search(value):
            if key in _MULTILINE_KEYS:
                event[key] = value.translate(_ESCAPES_MULTILINE)
            elif key in _RAW_KEYS:
                event[key] = value.translate(_ESCAPES)
            else:
                event[key] = _Quoted(value)
        if type(key) is str and _CONTROL.search(key):
            event[key.translate(_ESCAPES)] = event.pop(key)
    return event


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide credentials under secret keys and inside values."""
    texts: list[str] = []
    changed: list[tuple[str, Any]] = []
    verdicts = _KEY_VERDICTS
    for key, value in event.items():
        # key_id names a credential without being one (it is the key's public id).
        secret = verdicts.get(key)
        if secret is None:
            secret = secret_key(key)
        if secret and key != "key_id":
            changed.append((key, REDACTED))
            continue
        kind = type(value)
        if kind is str:
            # Under 6 characters: too short to hold a scheme and a credential.
            if len(value) >= 6:
                texts.append(value)
        elif not (kind is int or kind is float or value is None or kind is bool):
            clean = scrub(value)
            if clean is not value:
                changed.append((key, clean))
    for key, value in changed:
        event[key] = value
    # The line's plain strings are looked at together first, joined by a character no
    # pattern holds: usually none has a credential word, and then none needs the regexes.
    if texts and _may_hold_credential("\0".join(texts)):
        for key, value in list(event.items()):
            if type(value) is str:
                event[key] = scrub(value)
    return event


#: What the console's canonical request line leaves out: its first words say the method,
#: route, status and time; the tenant and key are in the JSON format for whoever audits.
_CONSOLE_REQUEST_DROP = ("method", "route", "path", "status", "duration_ms", "tenant", "key_id")


def console_compact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor for the console format: short lines a person reads.

    No ``key=None`` filler on any line. The canonical request line reads
    ``POST /v1/jobs 202 14ms job=job_… provider=modzy cache=miss``: zero waits, an
    allowed rate decision and the request id (but on a 5xx, which someone will look up)
    are left out. The JSON format keeps every field: dashboards and tests read them.
    """
    for key in [k for k, v in event.items() if v is None]:
        del event[key]
    if event.get("event") == "request" and "method" in event and "status" in event:
        status = event["status"]
        ms = event.get("duration_ms", 0.0)
        head = f"{event['method']} {event.get('route', event.get('path', '?'))} {status} {ms:.0f}ms"
        for key in _CONSOLE_REQUEST_DROP:
            event.pop(key, None)
        for key in ("upstream_ms", "wait_ms"):
            if not event.get(key):
                event.pop(key, None)
        if event.get("ratelimit") == "allowed":
            del event["ratelimit"]
        if not (isinstance(status, int) and status >= 500):
            event.pop("request_id", None)
        if "job_id" in event:
            event["job"] = event.pop("job_id")
        event["event"] = head
    return event


#: orjson's options for a log line: keys that are not strings (a logged mapping's data)
#: written as text, as the standard library's ``json`` would.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def json_line(event: Any, **kw: Any) -> str:
    """One log line as JSON text: orjson, about 10 times the standard library's speed on
    a request line. ``default`` (structlog's: ``repr`` of what JSON cannot hold) is
    passed through; a value orjson refuses anyway (an int past 64 bits) falls back to
    the standard library, so no line is ever lost to its content."""
    try:
        return orjson.dumps(event, default=kw.get("default"), option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(event, default=kw.get("default") or repr)


#: The request line's fields that hold the caller's text (the rest are the gateway's own
#: words, numbers and configured names): the only ones its redaction needs to look at.
_CALLER_TEXT = ("path", "job_id", "request_id")


@dataclass(frozen=True)
class _JsonRequestLine:
    """What the JSON request line is written with while ``configure_logging`` holds."""

    processors: list[Any]
    renderer: Any
    stamp: Any
    out: TextIO


_request_line: _JsonRequestLine | None = None


def log_request(fields: dict[str, Any]) -> None:
    """The canonical request line, one per request (``gateway.http.middleware.context``).

    In the JSON format it is rendered here, in the schema structlog's chain gives it
    (the same keys, timestamp and redaction; ``tests/observability`` compares the
    two), without the chain: a processor pass over every context variable of the
    request and a redaction of every field cost more than the rest of the line. Its
    fields are the gateway's own words, numbers and names but for ``_CALLER_TEXT``,
    which are redacted as any string is. Anything else (the console format, a level
    above info, a test capturing logs with its own processors) goes through structlog.
    """
    line = _request_line
    # Still the chain configure_logging set: the same list (structlog.configure with
    # another replaces it), still ending in its renderer (capture_logs empties and
    # refills that very list, ending in its own capture).
    chain = structlog.get_config()["processors"]
    if line is None or chain is not line.processors or not chain or chain[-1] is not line.renderer:
        # A logger of the chain in force now (a cached one keeps the chain it first met).
        structlog.get_logger("gateway.access").info("request", **fields)
        return
    for key in _CALLER_TEXT:
        value = fields.get(key)
        if type(value) is str and len(value) >= 6 and _may_hold_credential(value):
            fields[key] = redact_text(value)
    fields["event"] = "request"
    fields["level"] = "info"
    line.stamp(None, "info", fields)
    line.out.write(json_line(fields) + "\n")
    line.out.flush()


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        # A person reading the console wants the time of day; JSON keeps the full instant.
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
        if fmt == "console"
        else structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=json_line)
    )
    # Tracebacks become data (JSON) or text (console) before redaction looks at them.
    # Frame locals stay out: they hold headers, keys and bodies nobody meant to log.
    tracebacks: Any = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if fmt == "json"
        else structlog.processors.format_exc_info
    )
    # JSON escapes control characters itself; the console renderer writes strings raw.
    last: list[Any] = [redact] if fmt == "json" else [redact, console_compact, escape_controls]
    processors = [*shared, tracebacks, *last, renderer]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # One write per line (print() costs twice as much: its separators and its own
        # flush); each line is still flushed as it is written.
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    global _request_line
    _request_line = (
        _JsonRequestLine(processors, renderer, shared[2], sys.stdout)
        if fmt == "json" and logging.getLevelNamesMapping()[level.upper()] <= logging.INFO
        else None
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                tracebacks,
                *last,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # Python warnings (deprecations in libraries, ...) become log lines, not stderr text.
    logging.captureWarnings(True)
    # The canonical request line replaces aiohttp's access log.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
