"""Golden files: one answer's exact bytes and headers, with what must vary made stable.

Each file under ``tests/golden/`` is one exchange: the request (method, target, the
headers that shape the answer), then the status line, every response header (sorted by
name), a line saying how long the body is and whether it ends with a newline, and the
body's bytes to the end of the file, untouched. Nothing is parsed and written back:
what varies from run to run is replaced in the raw bytes by regular expressions, so
key order, separators, number formatting, escaping and line endings stay pinned.

What is replaced, each distinct value by a placeholder numbered in order of first
appearance in the file (the same value is the same placeholder throughout the file):

* job ids (``job_`` + 22 random url-safe characters): ``<job:1>``;
* the simulators' job ids (UUIDs, Wood Wide's ``PREFIX_0123456789AB``, LlamaCloud's
  ``dfl-``/``cls-`` + hex): ``<upstream:1>``;
* the simulators' timestamps (they read the wall clock, some at each step, so even
  which of them are equal varies): the date, time and fraction become ``<ts>``, not
  numbered; the zone suffix (``Z``, ``+00:00``, ``+0000``) stays. The gateway's own
  timestamps come from the clock the test sets (year 2031) and stay as they are;
* literals a test names (a generated request id, a list cursor that holds a job id).

Headers: ``Date`` is checked to be an HTTP-date and written ``<http-date>``;
``Server-Timing`` is checked and its durations written ``<ms>`` (which entries it has
stays pinned); ``Content-Length`` is checked to be the body's length and written
``<body length>``; every other header is pinned as it is (after the replacements).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import ClientResponse

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
#: ``GOLDEN_UPDATE=1``: (re)write every golden file from the answers instead of comparing.
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
#: The year of every timestamp the gateway takes from the test's clock: kept as is.
FIXED_YEAR = b"2031"

_ID_CHARS = rb"A-Za-z0-9_-"
_VARYING = re.compile(
    rb"(?P<job>(?<![" + _ID_CHARS + rb"])job_[" + _ID_CHARS + rb"]{22}(?![" + _ID_CHARS + rb"]))"
    rb"|(?P<upstream>(?<![0-9A-Za-z])(?:"
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|[a-z]+_[0-9A-F]{12}"
    rb"|(?:dfl|cls)-[0-9a-f]{32}"
    rb")(?![0-9A-Za-z]))"
    rb"|(?P<ts>(?P<date>\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)"
)
_HTTP_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT$"
)
_SERVER_TIMING = re.compile(r"^upstream;dur=\d+\.\d(, wait;dur=\d+\.\d)?, gateway;dur=\d+\.\d$")
_DURATION = re.compile(r"dur=\d+\.\d")


@dataclass
class Normaliser:
    """Stable placeholders for one golden file, in order of first appearance."""

    #: Exact byte strings to replace, and how (``<request-id>``, a cursor's rendering).
    literals: dict[bytes, Callable[[Normaliser], bytes]] = field(default_factory=dict)
    _seen: dict[str, dict[object, int]] = field(default_factory=dict)

    def number(self, kind: str, key: object) -> int:
        table = self._seen.setdefault(kind, {})
        return table.setdefault(key, len(table) + 1)

    def literal(self, value: bytes, placeholder: bytes) -> None:
        self.literals[value] = lambda _: placeholder

    def cursor(self, token: bytes) -> None:
        """A base64url token (unpadded) whose content holds ids: written as
        ``<b64url:CONTENT>``, the decoded bytes normalised in turn; the token must be
        exactly the unpadded url-safe encoding of those bytes."""
        raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
        assert base64.urlsafe_b64encode(raw).rstrip(b"=") == token, token

        def render(n: Normaliser) -> bytes:
            return b"<b64url:" + n.apply(raw) + b">"

        self.literals[token] = render

    def apply(self, data: bytes) -> bytes:
        """``data`` with every varying value replaced, scanning left to right."""
        literal_alts = b"|".join(re.escape(v) for v in sorted(self.literals, key=len, reverse=True))
        pattern = (
            re.compile(b"(?P<literal>" + literal_alts + b")|" + _VARYING.pattern)
            if literal_alts
            else _VARYING
        )
        return pattern.sub(self._replace, data)

    def _replace(self, m: re.Match[bytes]) -> bytes:
        if m.groupdict().get("literal"):
            return self.literals[m.group("literal")](self)
        if m.group("job"):
            return b"<job:%d>" % self.number("job", m.group("job"))
        if m.group("upstream"):
            return b"<upstream:%d>" % self.number("upstream", m.group("upstream"))
        if m.group("date") == FIXED_YEAR:
            return m.group("ts")
        return b"<ts>"


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    #: The request headers that shape the answer, as written in the golden file.
    shown: tuple[tuple[str, str], ...] = ()
    #: Who asks: a name for the credential (never the credential itself).
    caller: str | None = None


def render(
    request: Request,
    response: ClientResponse,
    body: bytes,
    normaliser: Normaliser,
    *,
    body_as: str = "bytes",
) -> bytes:
    """The golden file's bytes for one exchange (see the module docstring).

    ``body_as``: ``bytes`` (pinned as is), ``sha256`` (a large static document: its
    digest), or ``unpinned`` (only its headers are pinned).
    """
    n = normaliser
    who = f"  (as {request.caller})" if request.caller else "  (no credential)"
    lines = [b"# request", n.apply(f"{request.method} {request.target}{who}".encode())]
    lines += [n.apply(f"{k}: {v}".encode()) for k, v in request.shown]
    version = f"HTTP/{response.version.major}.{response.version.minor}" if response.version else ""
    lines += [b"# response", f"{version} {response.status} {response.reason}".encode()]
    for name, value in sorted(response.raw_headers, key=lambda kv: kv[0].lower()):
        lines.append(name + b": " + _header_value(name.decode(), value.decode(), body, n))
    if body_as == "sha256":
        lines.append(b"# body: %d bytes, sha256 follows" % len(body))
        return b"\n".join(lines) + b"\n" + hashlib.sha256(body).hexdigest().encode() + b"\n"
    if body_as == "unpinned":
        lines.append(b"# body: not pinned")
        return b"\n".join(lines) + b"\n"
    out = n.apply(body)
    end = "ends with a newline" if out.endswith(b"\n") else "no newline at the end"
    lines.append(
        f"# body: {len(out)} bytes after normalising, {end}; to the end of the file".encode()
    )
    return b"\n".join(lines) + b"\n" + out


def _header_value(name: str, value: str, body: bytes, n: Normaliser) -> bytes:
    lower = name.lower()
    if lower == "date":
        assert _HTTP_DATE.match(value), f"Date is not an HTTP-date: {value!r}"
        return b"<http-date>"
    if lower == "server-timing":
        assert _SERVER_TIMING.match(value), f"Server-Timing is malformed: {value!r}"
        return _DURATION.sub("dur=<ms>", value).encode()
    if lower == "content-length":
        assert int(value) == len(body), f"Content-Length {value} for {len(body)} bytes"
        return b"<body length>"
    return n.apply(value.encode())


#: What each case wrote in this session under GOLDEN_UPDATE=1: a case run twice (on
#: the memory store and on Redis) must write the same bytes both times.
_WRITTEN: dict[str, bytes] = {}


@dataclass
class GoldenBook:
    """The exchanges of one test, compared with (or, under GOLDEN_UPDATE=1, written to)
    their golden files; every mismatch is reported, not only the first."""

    problems: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def check(self, name: str, actual: bytes) -> None:
        assert name not in self.names, f"two cases named {name}"
        self.names.append(name)
        path = GOLDEN_DIR / f"{name}.txt"
        if UPDATE:
            before = _WRITTEN.setdefault(name, actual)
            if before != actual:
                self.problems.append(
                    f"{name}: two runs of this case answered differently\n"
                    + explain(before, actual)
                )
                return
            GOLDEN_DIR.mkdir(exist_ok=True)
            if not path.exists() or path.read_bytes() != actual:
                path.write_bytes(actual)
            return
        if not path.exists():
            self.problems.append(f"{name}: no golden file {path.name} (GOLDEN_UPDATE=1 writes it)")
            return
        expected = path.read_bytes()
        if expected != actual:
            self.problems.append(f"{name}: differs from {path.name}\n{explain(expected, actual)}")

    def assert_all_match(self) -> None:
        """Fail with every mismatch named, the first few explained."""
        if not self.problems:
            return
        shown = "\n\n".join(self.problems[:_EXPLAINED])
        more = len(self.problems) - _EXPLAINED
        rest = (
            f"\n\n... and {more} more: "
            + ", ".join(p.split(":", 1)[0] for p in self.problems[_EXPLAINED:])
            if more > 0
            else ""
        )
        pytest.fail(
            f"{len(self.problems)} golden mismatch(es); after an intended change, "
            f"regenerate with GOLDEN_UPDATE=1 and read the diff:\n\n{shown}{rest}",
            pytrace=False,
        )


def _body(golden: bytes) -> bytes | None:
    """A golden file's body: what follows its ``# body: ... to the end of the file`` line."""
    _, found, body = golden.partition(b"; to the end of the file\n")
    return body if found else None


#: How many mismatches a failure explains in full (the others are named).
_EXPLAINED = 4
#: The longest diff line shown (bodies are single long lines).
_WIDTH = 240


def explain(expected: bytes, actual: bytes) -> str:
    """Where two files first differ (in the body, when the bodies differ), then the
    lines that differ (cut short)."""
    where, a, b = "the file", expected, actual
    body_a, body_b = _body(expected), _body(actual)
    if body_a is not None and body_b is not None and body_a != body_b:
        where, a, b = "the body", body_a, body_b
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    lo = max(0, at - 60)
    head = (
        f"first difference in {where} at byte {at}:\n"
        f"  golden ...{a[lo : at + 60]!r}\n"
        f"  actual ...{b[lo : at + 60]!r}"
    )
    # split, not splitlines: a body may hold U+2028, which splitlines breaks at.
    diff = difflib.unified_diff(
        expected.decode(errors="replace").split("\n"),
        actual.decode(errors="replace").split("\n"),
        "golden",
        "actual",
        n=0,
        lineterm="",
    )
    lines = [d if len(d) <= _WIDTH else d[:_WIDTH] + " [...]" for d in diff]
    return head + "\n" + "\n".join(lines[:40])
