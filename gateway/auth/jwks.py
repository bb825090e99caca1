"""The issuer's published keys (JWKS), fetched from the configured URL only, and cached.

Only ``JwtSettings.jwks_url`` is ever fetched: a token's ``jku``, ``x5u`` or embedded
``jwk`` header is never looked at (RFC 8725 §3.10), so a caller cannot make the gateway
call a URL or trust a key of its choosing. Fetches are rate limited: one attempt per
``jwks_min_refetch_seconds`` at most, whether the cache went stale or a token named an
unknown ``kid``, so a flood of tokens with made-up kids costs the issuer at most one
request per interval. Concurrent misses wait for one fetch (a lock), not one each.

The URL is operator configuration, not caller input, so it is not put through the URL
guard (an issuer inside the cluster is a normal set-up).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import structlog

from gateway.auth.settings import KID_PATTERN, JwtSettings
from gateway.clock import Clock

_log = structlog.get_logger("gateway.jwks")
_KID = re.compile(KID_PATTERN)
_MAX_JWKS_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class PublishedKey:
    kid: str | None
    algorithm: str
    #: A ``cryptography`` public key object, ready for pyjwt.
    key: Any


class JwksCache:
    def __init__(self, settings: JwtSettings, clock: Clock) -> None:
        assert settings.jwks_url is not None
        self._url = settings.jwks_url
        self._algorithms = frozenset(settings.jwks_algorithms)
        self._ttl = settings.jwks_cache_seconds
        self._min_interval = settings.jwks_min_refetch_seconds
        self._timeout = aiohttp.ClientTimeout(total=settings.jwks_timeout_seconds)
        self._clock = clock
        self._keys: list[PublishedKey] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No proxies from the environment and no cookies: this session fetches one URL.
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def find(self, kid: str | None, algorithm: str) -> list[PublishedKey]:
        """Keys for ``kid`` (any key when None) that verify ``algorithm``."""
        if algorithm not in self._algorithms:
            return []
        if self._fetched_at is None or self._clock.monotonic() - self._fetched_at >= self._ttl:
            await self._refresh()
        found = self._match(kid, algorithm)
        if not found and kid is not None:
            # A new kid may mean the issuer rotated keys; the refresh is rate limited.
            await self._refresh()
            found = self._match(kid, algorithm)
        return found

    def _match(self, kid: str | None, algorithm: str) -> list[PublishedKey]:
        return [k for k in self._keys if k.algorithm == algorithm and (kid is None or k.kid == kid)]

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
                return
            self._attempted_at = now
            try:
                self._keys = await self._fetch()
                self._fetched_at = now
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # Keep the keys we had: an issuer outage must not fail every token at once.
                _log.warning("jwks_fetch_failed", error=type(exc).__name__, kept=len(self._keys))

    async def _fetch(self) -> list[PublishedKey]:
        if self._session is None:
            raise ValueError("the JWKS client is not started")
        async with self._session.get(
            self._url, allow_redirects=False, headers={"Accept": "application/json"}
        ) as resp:
            if resp.status != 200:
                raise ValueError(f"JWKS answered {resp.status}")
            raw = await resp.content.read(_MAX_JWKS_BYTES + 1)
        if len(raw) > _MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        doc = json.loads(raw)
        entries = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ValueError("JWKS document has no keys list")
        keys = [k for k in (self._usable(e) for e in entries) if k is not None]
        _log.info("jwks_fetched", keys=len(keys), published=len(entries))
        return keys

    def _usable(self, entry: Any) -> PublishedKey | None:
        """A published key we may use, or None: symmetric, encryption or odd keys are skipped."""
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
            return None
        if entry.get("use", "sig") != "sig":
            return None
        kid = entry.get("kid")
        if kid is not None and not (isinstance(kid, str) and _KID.match(kid)):
            return None
        try:
            parsed = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            return None
        if parsed.algorithm_name not in self._algorithms:
            return None
        return PublishedKey(kid=kid, algorithm=parsed.algorithm_name, key=parsed.key)
