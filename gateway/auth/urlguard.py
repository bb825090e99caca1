"""The URL guard: every URL the gateway itself calls on a caller's behalf goes through here.

Today that is webhooks (``gateway.jobs.webhooks``): checked at submit (``check``) and
again at every delivery (``fetch``). Job
inputs given by ``url`` (e.g. Vody's ``image_path``) are *not* fetched by the gateway:
they are handed to the provider, which fetches them from its own network, so they do
not pass through this guard.

The rules (OWASP API7, server-side request forgery):

* ``https`` only (``allow_http`` is for tests and local development), no user info;
* the host is resolved once, and every address it resolves to must be public: no
  loopback, RFC 1918, CGNAT, link-local 169.254/16 (cloud metadata), multicast,
  reserved, ``0.0.0.0``, ``::1``, ``fc00::/7``, ``fe80::/10``, nor IPv6 forms that carry
  an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64);
* IPv4 in any other spelling than four decimal parts (``2130706433``, ``0x7f.1``,
  ``017700000001``, ``127.1``) is refused outright, since resolvers disagree on them;
* the connection goes to the address that was checked (a pinned resolver), so a DNS
  answer that changes between check and connect (rebinding) cannot redirect it;
* redirects are never followed: a 3xx is returned as it is.

``allowed_networks`` lets a deployment (or a test) allow a private network on purpose.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gateway.auth.settings import UrlGuardSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_MAX_URL = 2048
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(\.{_LABEL})*\.?$")
# The WHATWG URL standard reads a host whose last label is a number as IPv4.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_EMBEDS_IPV4 = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4
    ipaddress.ip_network("2001::/32"),  # Teredo
)


class UnsafeUrl(Exception):
    """The URL may not be called; ``reason`` says why (safe to show the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GuardedTarget:
    url: URL
    host: str
    port: int
    #: The checked addresses; the connection goes to these and nowhere else.
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuardedResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class UrlGuard:
    def __init__(self, settings: UrlGuardSettings, resolver: Resolver | None = None) -> None:
        self._schemes = ("https", "http") if settings.allow_http else ("https",)
        self._allowed = tuple(settings.allowed_networks)
        self._resolve = resolver or system_resolver

    async def check(self, url: str) -> GuardedTarget:
        """The target of ``url`` with its checked addresses; raises ``UnsafeUrl``."""
        if len(url) > _MAX_URL:
            raise UnsafeUrl("the URL is too long")
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise UnsafeUrl("not a valid URL") from None
        if parsed.scheme not in self._schemes:
            raise UnsafeUrl(f"the scheme must be {' or '.join(self._schemes)}")
        if parsed.user is not None or parsed.password is not None:
            raise UnsafeUrl("credentials in the URL are not allowed")
        host = (parsed.raw_host or "").lower()
        port = parsed.port
        if not host or port is None:
            raise UnsafeUrl("the URL has no host")
        literal = _ip(host)
        if literal is not None:
            self._require_public(literal)
            return GuardedTarget(url=parsed, host=host, port=port, addresses=(str(literal),))
        if not _HOSTNAME.match(host):
            raise UnsafeUrl("not a valid host name")
        if _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
            raise UnsafeUrl("IP addresses must be written as four decimal numbers")
        bare = host.rstrip(".")
        if bare == "localhost" or bare.endswith(".localhost"):
            raise UnsafeUrl("the host is not public")
        try:
            found = await self._resolve(host, port)
        except OSError:
            raise UnsafeUrl("the host does not resolve") from None
        addresses = [a for a in (_ip(x) for x in found) if a is not None]
        if not addresses or len(addresses) != len(found):
            raise UnsafeUrl("the host does not resolve")
        for address in addresses:
            # Every answer must be public: the connector may try any of them.
            self._require_public(address)
        unique = tuple(dict.fromkeys(str(a) for a in addresses))
        return GuardedTarget(url=parsed, host=host, port=port, addresses=unique)

    async def fetch(
        self,
        url: str,
        *,
        method: str = "POST",
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        total_seconds: float = 10.0,
        max_bytes: int = 64 * 1024,
    ) -> GuardedResponse:
        """Call ``url`` if it passes ``check``, at the checked address, following no redirect.

        The session is per call on purpose: its resolver is pinned to this one target.
        """
        target = await self.check(url)
        connector = aiohttp.TCPConnector(resolver=_PinnedResolver(target), use_dns_cache=False)
        async with (
            aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=total_seconds),
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as session,
            session.request(
                method, target.url, json=json, data=data, headers=headers, allow_redirects=False
            ) as resp,
        ):
            body = await resp.content.read(max_bytes)
            return GuardedResponse(status=resp.status, headers=dict(resp.headers), body=body)

    def _require_public(self, ip: IPAddress) -> None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            raise UnsafeUrl("IPv4-mapped IPv6 addresses are not allowed")
        if any(ip.version == n.version and ip in n for n in self._allowed):
            return
        if (
            not ip.is_global
            or ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or any(ip.version == n.version and ip in n for n in _EMBEDS_IPV4)
        ):
            raise UnsafeUrl("the host is not public")


class _PinnedResolver(AbstractResolver):
    """Answers the checked addresses for the checked host, and refuses any other host."""

    def __init__(self, target: GuardedTarget) -> None:
        self._target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.lower() != self._target.host:
            raise OSError(f"{host} was not checked by the URL guard")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._target.addresses
        ]

    async def close(self) -> None:
        return None


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
