"""Which Redis URLs the gateway takes, checked when the configuration is read.

``redis://``, ``rediss://`` and ``unix://`` go to redis-py's own parser, the one
``Redis.from_url`` uses, so a URL that passes here cannot fail when the client is
built. Sentinel has no URL form in redis-py; ours is the common one (Kombu, Sidekiq)::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]

The credentials are the master's (they are sent to the master redis-py finds, not to
the sentinels); a URL that needs sentinel credentials too is not supported yet.
Cluster mode (``redis.mode: cluster``) takes ``redis://`` or ``rediss://`` only, of
database 0 (a cluster has no other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from redis.connection import parse_url

SENTINEL_SCHEME = "redis+sentinel"
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
_DB_PATH = re.compile(r"^/?(\d{1,5})?/?$")
_SERVICE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL.

    Raises:
        ValueError: naming what is wrong (never repeating a password).
    """
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != SENTINEL_SCHEME or not sep:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in hosts.split(","))
    segments = path.split("?", 1)[0].strip("/").split("/") if path else [""]
    if not segments[0] or not _SERVICE.match(segments[0]):
        raise ValueError("a Sentinel URL names the master's service: .../service_name[/db]")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError("after the service name only a database number may follow")
    db = int(segments[1]) if len(segments) == 2 else 0
    return SentinelUrl(sentinels, segments[0], db, username, password)


def _host_port(part: str) -> tuple[str, int]:
    host, colon, port = part.strip().rpartition(":")
    if not colon or not host:
        raise ValueError("every sentinel is host:port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel port {port!r} is not a port number")
    return host.strip("[]"), int(port)


def check_redis_url(url: str, mode: str = "standalone") -> None:
    """Raise ``ValueError`` if redis-py (or our Sentinel support) cannot use ``url``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
    if mode == "cluster" and scheme not in ("redis", "rediss"):
        raise ValueError("cluster mode takes redis:// or rediss:// URLs")
    if scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
        return
    parse_url(url)  # type: ignore[no-untyped-call]  # raises ValueError on a bad port, etc.
    if scheme == "unix":
        if not urlsplit(url).path:
            raise ValueError("a unix:// URL needs the socket's path")
        return
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("the URL needs a host")
    db = _DB_PATH.match(parts.path)
    if not db:
        # redis-py ignores a path that is not a number: say so rather than use db 0.
        raise ValueError(f"the path must be a database number, not {parts.path!r}")
    if mode == "cluster" and int(db.group(1) or 0) != 0:
        raise ValueError("a Redis Cluster has database 0 only")
