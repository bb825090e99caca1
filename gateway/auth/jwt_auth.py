"""Bearer JWTs verified with pyjwt, following RFC 8725 (JWT best current practices).

The token names an algorithm and maybe a key id; neither is trusted on its own:

* the algorithm must be on the allow-list of the very key that verifies it, so ``none``
  never verifies and an HS256 token cannot be checked against an RSA public key;
* a ``kid`` is only a name to look up, checked against a strict pattern first;
* ``crit`` extensions are refused (we implement none), and ``jku``/``x5u``/``jwk``
  headers are never read: keys come from configuration or the configured JWKS URL;
* ``exp``, ``iss``, ``aud`` and ``sub`` are required, the issuer compared exactly.

Every failure answers the same generic 401; the reason goes to the log only (never the
token itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from gateway.auth.jwks import JwksCache
from gateway.auth.principals import Principal
from gateway.auth.settings import KID_PATTERN, SCOPES, JwtKeySettings, JwtSettings
from gateway.errors import Unauthenticated

_KID = re.compile(KID_PATTERN)
_TENANT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+ -]{0,255}$")


#: PyJWT's exception names, as the log's reasons.
_REASONS = {
    "ExpiredSignatureError": "expired",
    "ImmatureSignatureError": "not_yet_valid",
    "InvalidAudienceError": "wrong_audience",
    "InvalidIssuerError": "wrong_issuer",
    "InvalidIssuedAtError": "bad_iat",
    "MissingRequiredClaimError": "missing_claim",
    "DecodeError": "malformed",
    "InvalidTokenError": "malformed",
}


class TokenRejected(Exception):
    """Why a token was refused; for the log, never for the caller."""


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str | None
    algorithms: frozenset[str]
    #: bytes for HMAC, a ``cryptography`` public key object otherwise.
    material: Any


def _load(k: JwtKeySettings) -> _Key:
    if k.secret is not None:
        material: Any = k.secret.get_secret_value().encode("utf-8")
    else:
        assert k.public_key is not None, "key files are read by load_settings"
        material = serialization.load_pem_public_key(k.public_key.encode("utf-8"))
    return _Key(kid=k.kid, algorithms=frozenset(k.algorithms), material=material)


class JwtVerifier:
    """Turns a bearer JWT into a ``Principal``, or raises ``Unauthenticated``."""

    def __init__(self, settings: JwtSettings, jwks: JwksCache | None = None) -> None:
        self._s = settings
        self._keys = [_load(k) for k in settings.keys]
        self._jwks = jwks
        allowed = {a for k in self._keys for a in k.algorithms}
        if jwks is not None:
            allowed |= set(settings.jwks_algorithms)
        self._allowed = frozenset(allowed)
        # Short keys fail verification instead of producing a warning.
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})

    async def verify(self, token: str) -> Principal:
        try:
            return await self._verify(token)
        except TokenRejected as exc:
            # Logged once, by the auth middleware, with the address and the reason.
            raise Unauthenticated(reason=_REASONS.get(str(exc), str(exc))) from None

    async def _verify(self, token: str) -> Principal:
        if len(token) > self._s.max_token_bytes:
            raise TokenRejected("too_large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise TokenRejected("algorithm_not_allowed")
        if "crit" in header:
            raise TokenRejected("unsupported_crit")
        kid = header.get("kid")
        if kid is not None and not (isinstance(kid, str) and _KID.match(kid)):
            raise TokenRejected("bad_kid")
        candidates = [
            k.material
            for k in self._keys
            if alg in k.algorithms and (kid is None or k.kid is None or k.kid == kid)
        ]
        named = kid is not None and any(k.kid == kid for k in self._keys)
        if self._jwks is not None and not named and not candidates:
            # Only a token no configured key can take costs a (rate-limited) JWKS lookup.
            candidates = [p.key for p in await self._jwks.find(kid, alg)]
        if not candidates:
            raise TokenRejected("unknown_key")
        return self._principal(self._decode(token, alg, candidates))

    def _decode(self, token: str, alg: str, candidates: Sequence[Any]) -> dict[str, Any]:
        for material in candidates:
            try:
                claims: dict[str, Any] = self._jwt.decode(
                    token,
                    material,
                    algorithms=[alg],
                    audience=self._s.audience,
                    issuer=self._s.issuer,
                    leeway=self._s.leeway_seconds,
                    options={"require": list(self._s.required_claims)},
                )
                return claims
            except jwt.InvalidSignatureError:
                continue  # another key with the same kid (or none) may match
            except jwt.PyJWTError as exc:
                raise TokenRejected(type(exc).__name__) from None
        raise TokenRejected("bad_signature")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip() or len(sub) > 256:
            raise TokenRejected("bad_sub")
        tenant = claims.get(self._s.tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise TokenRejected("bad_tenant")
        raw_scopes = claims.get(self._s.scope_claim, "")
        if isinstance(raw_scopes, str):
            names = raw_scopes.split()
        elif isinstance(raw_scopes, list) and all(isinstance(s, str) for s in raw_scopes):
            names = raw_scopes
        else:
            raise TokenRejected("bad_scope")
        models: frozenset[str] | None = None
        if self._s.models_claim is not None and self._s.models_claim in claims:
            raw = claims[self._s.models_claim]
            if not (
                isinstance(raw, list) and all(isinstance(m, str) and _MODEL.match(m) for m in raw)
            ):
                raise TokenRejected("bad_models")
            models = frozenset(raw)
        return Principal(
            tenant=tenant,
            key_id=sub,
            # Scopes we do not know are dropped, not refused: issuers mix audiences' scopes.
            scopes=frozenset(s for s in names if s in SCOPES),
            models=models,
        )
