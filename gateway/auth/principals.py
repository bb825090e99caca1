"""Who is calling: API keys (hashed in configuration) or JWTs resolved to a ``Principal``.

A presented key is hashed with SHA-256 and looked up by its digest, then compared
with ``hmac.compare_digest``, so neither the lookup nor the comparison leaks by
timing how much of a key matched. Unknown and revoked keys get the same answer.

``Authenticator`` is the one entry point the middleware uses: a bearer credential
that is not a known API key and has the shape of a JWT goes to the token verifier
(``gateway.auth.jwt_auth``), which answers the same generic 401 for every failure.
Only ``Authorization: Bearer`` may carry a JWT; ``X-API-Key`` is only ever an API key,
whatever else the request sends (an empty ``Authorization`` header included).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.auth.settings import ApiKeySettings
from gateway.errors import Forbidden, Unauthenticated


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    key_id: str
    scopes: frozenset[str]
    #: Model ids or aliases this principal may use; None allows all.
    models: frozenset[str] | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise Forbidden(f"This credential lacks the '{scope}' scope.")

    def may_use(self, names: Iterable[str]) -> bool:
        """Whether any of the names a model goes by is on this principal's allow-list."""
        if self.models is None:
            return True
        return any(n in self.models for n in names)


class ApiKeyAuthenticator:
    def __init__(self, keys: Iterable[ApiKeySettings]) -> None:
        self._by_hash: dict[str, ApiKeySettings] = {k.sha256: k for k in keys}

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal for a request's credential; raises ``Unauthenticated``."""
        credential = credential_from(headers)
        if credential is None:
            raise Unauthenticated(reason=missing_reason(headers))
        principal = self.lookup(credential.value)
        if principal is None:
            raise Unauthenticated(reason=self.refusal(credential.value))
        return principal

    def refusal(self, key: str) -> str:
        """Why a key is refused, for the log: ``revoked`` (a configured key whose id the
        log may then name) or ``unknown``."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        found = self._by_hash.get(digest)
        return "revoked" if found is not None and found.revoked else "unknown"

    def key_id(self, key: str) -> str | None:
        """The configured id of a key (revoked or not); None for an unknown one."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        found = self._by_hash.get(digest)
        return found.id if found is not None else None

    def lookup(self, key: str) -> Principal | None:
        """The principal for an API key; None when unknown or revoked (alike)."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found.sha256, digest) or found.revoked:
            return None
        return Principal(
            tenant=found.tenant,
            key_id=found.id,
            scopes=frozenset(found.scopes),
            models=frozenset(found.models) if found.models is not None else None,
        )


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The principal for a bearer token; raises ``Unauthenticated``."""
        ...


class Authenticator:
    """API keys first (a dictionary lookup), then bearer JWTs when configured."""

    def __init__(self, api_keys: ApiKeyAuthenticator, tokens: TokenVerifier | None = None) -> None:
        self._api_keys = api_keys
        self._tokens = tokens

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal for a request's credential; raises ``Unauthenticated``."""
        credential = credential_from(headers)
        if credential is None:
            raise Unauthenticated(reason=missing_reason(headers))
        principal = self._api_keys.lookup(credential.value)
        if principal is not None:
            return principal
        # The contract takes JWTs in ``Authorization: Bearer`` only, not in X-API-Key.
        if self._tokens is not None and credential.bearer and looks_like_jwt(credential.value):
            return await self._tokens.verify(credential.value)
        raise Unauthenticated(reason=self._api_keys.refusal(credential.value))

    def revoked_key_id(self, key: str) -> str | None:
        """The id of a configured key, for the log line of its refusal."""
        return self._api_keys.key_id(key)


def missing_reason(headers: Mapping[str, str]) -> str:
    """``malformed`` when an Authorization header was sent but holds no bearer
    credential (another scheme, no value), ``missing`` when nothing was sent."""
    return "malformed" if headers.get("Authorization") else "missing"


def looks_like_jwt(credential: str) -> bool:
    """Three dot-separated parts: a JWS compact serialisation (RFC 7515 §7.1)."""
    return credential.count(".") == 2


@dataclass(frozen=True, slots=True)
class Presented:
    """What a request presented, and where: only a bearer credential may be a JWT."""

    value: str
    #: True from ``Authorization: Bearer`` (an API key or a JWT), False from ``X-API-Key``
    #: (an API key only).
    bearer: bool


def credential_from(headers: Mapping[str, str]) -> Presented | None:
    """The credential in ``Authorization: Bearer`` or ``X-API-Key``, if any.

    A non-empty ``Authorization`` header wins, and one of another scheme is no credential;
    an empty one counts as absent, so ``X-API-Key`` is read, as an API key.
    """
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Presented(value.strip(), bearer=True)
        return None
    key = headers.get("X-API-Key")
    return Presented(key.strip(), bearer=False) if key and key.strip() else None
