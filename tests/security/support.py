"""Shared by the security tests: keys, token minting, a fake clock, JWT settings."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.settings import AuthSettings, FailedAuthSettings, JwtKeySettings, JwtSettings
from tests.conftest import MINTED

ISSUER = "https://idp.example"
AUDIENCE = "gateway"
HS_SECRET = "test-hs-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
LEEWAY = 10

# Every token minted by these helpers goes into MINTED, so the suite (tests/conftest.py)
# checks that none reached a log line; so does the HMAC secret they are signed with.
MINTED.add(HS_SECRET)


class FakeClock:
    """Wall time is real (pyjwt reads it); the monotonic clock moves only when told."""

    def __init__(self) -> None:
        self.mono = 1000.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.mono += seconds


@cache
def rsa_key(name: str = "rs") -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(name: str = "es") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str, alg: str = "RS256") -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "svc-reporting",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "tenant": "acme",
        "scope": "jobs:read jobs:write",
        "iat": now,
        "exp": now + 300,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: Any = HS_SECRET, alg: str = "HS256", kid: str | None = None, **over: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    token = jwt.encode(claims(**over), key, algorithm=alg, headers=headers)
    MINTED.add(token)
    return token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for headers and algorithms pyjwt would not produce."""
    token = ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )
    MINTED.add(token)
    return token


def signed(header: dict[str, Any], payload: dict[str, Any], key: Any = HS_SECRET) -> str:
    """A token signed correctly under ``header`` as given (kid, crit, jku: anything)."""
    alg = jwt.get_algorithm_by_name(header["alg"])
    unsigned = ".".join(b64(json.dumps(part).encode()) for part in (header, payload))
    token = unsigned + "." + b64(alg.sign(unsigned.encode(), alg.prepare_key(key)))
    MINTED.add(token)
    return token


def jwt_settings(jwks_url: str | None = None, **over: Any) -> JwtSettings:
    keys = [
        JwtKeySettings(kid="hs", algorithms=["HS256"], secret=HS_SECRET),
        JwtKeySettings(kid="rs", algorithms=["RS256"], public_key=public_pem(rsa_key("rs"))),
        JwtKeySettings(kid="es", algorithms=["ES256"], public_key=public_pem(ec_key("es"))),
    ]
    return JwtSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=over.pop("keys", keys),
        jwks_url=jwks_url,
        leeway_seconds=LEEWAY,
        jwks_min_refetch_seconds=over.pop("jwks_min_refetch_seconds", 60),
        **over,
    )


def auth_settings(jwks_url: str | None = None, limit: int = 10_000, **over: Any) -> AuthSettings:
    return AuthSettings(
        jwt=jwt_settings(jwks_url),
        failed_auth=FailedAuthSettings(limit=limit, window_seconds=60),
        **over,
    )
