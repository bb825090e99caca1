"""Configuration of who may call (API keys, JWT keys, failed-auth limit) and whom we may
call (URL guard).

``gateway.config.settings`` embeds these models in the root ``Settings``, and
``gateway.config.loading`` calls ``resolve_auth``.

Key material follows the provider-credential rule: secrets come from an environment
variable or a file, read once at load into a ``SecretStr``. The one exception is an
inline ``secret``, meant only for published development secrets such as the demo's.
HMAC secrets shorter than the hash (32 bytes for HS256) are refused at load (RFC 7518
§3.2), and so are public keys that do not match the
algorithms allowed for them, so a token can never pick an algorithm its key was not
meant for (the HS256-with-an-RSA-public-key confusion).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

SCOPES = ("jobs:read", "jobs:write", "admin")
Scope = Literal["jobs:read", "jobs:write", "admin"]


def _default_scopes() -> list[Scope]:
    return ["jobs:read", "jobs:write"]


JwtAlgorithm = Literal[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
]
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384"})
#: RFC 7518 §3.2: an HMAC key at least as long as the hash output.
MIN_HMAC_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
#: Claims every token must carry, whatever the configuration adds.
MANDATORY_CLAIMS = ("exp", "iss", "aud", "sub")
#: A ``kid`` is an opaque name: no path separators, quotes or spaces, ever.
KID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _default_jwks_algorithms() -> list[JwtAlgorithm]:
    return ["RS256", "ES256"]


def _default_required_claims() -> list[str]:
    return list(MANDATORY_CLAIMS)


class JwtKeySettings(_Frozen):
    """One key that verifies JWTs, and the only algorithms it may verify.

    Give exactly one of ``secret`` (inline: published development secrets only),
    ``secret_env`` or ``secret_file`` (an HMAC secret), ``public_key`` or
    ``public_key_file`` (a PEM RSA or EC public key).
    """

    # A secret must not reach an error message, not even a refused one.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    kid: str | None = Field(default=None, pattern=KID_PATTERN)
    algorithms: list[JwtAlgorithm] = Field(min_length=1)
    secret: SecretStr | None = Field(default=None, repr=False)
    secret_env: str | None = None
    secret_file: Path | None = None
    public_key: str | None = None
    public_key_file: Path | None = None

    @model_validator(mode="after")
    def _one_source_matching_the_algorithms(self) -> JwtKeySettings:
        sources = [
            s
            for s in ("secret", "secret_env", "secret_file", "public_key", "public_key_file")
            if getattr(self, s) is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of secret, secret_env, secret_file, public_key, public_key_file"
            )
        hmac = sources[0].startswith("secret")
        if hmac and not set(self.algorithms) <= HMAC_ALGORITHMS:
            raise ValueError("an HMAC secret may only verify HS256, HS384 or HS512")
        if not hmac and set(self.algorithms) & HMAC_ALGORITHMS:
            raise ValueError("a public key may not verify HS* algorithms")
        return self

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        algorithms = info.data.get("algorithms", [])
        problem = hmac_secret_problem(v.get_secret_value(), algorithms) if v else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("public_key")
    @classmethod
    def _usable(cls, v: str | None, info: ValidationInfo) -> str | None:
        problem = public_key_problem(v, info.data.get("algorithms", [])) if v else None
        if problem:
            raise ValueError(problem)
        return v

    @property
    def is_hmac(self) -> bool:
        return set(self.algorithms) <= HMAC_ALGORITHMS


class JwtSettings(_Frozen):
    """Bearer JWTs: who issues them, for whom, and the keys that verify them."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    keys: list[JwtKeySettings] = Field(default_factory=list)
    #: Keys published by the issuer. Only this URL is ever fetched: never ``jku``/``x5u``.
    jwks_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    jwks_algorithms: list[JwtAlgorithm] = Field(default_factory=_default_jwks_algorithms)
    #: How long fetched keys are used before the next fetch.
    jwks_cache_seconds: float = Field(default=300.0, ge=1, le=86400)
    #: At most one fetch per this interval, also for an unknown ``kid``.
    jwks_min_refetch_seconds: float = Field(default=60.0, ge=0, le=3600)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    #: ``exp``, ``iss``, ``aud`` and ``sub`` are always required; list more here.
    required_claims: list[str] = Field(default_factory=_default_required_claims)
    tenant_claim: str = Field(default="tenant", min_length=1)
    #: Space-separated string (OAuth 2 ``scope``) or a list of strings.
    scope_claim: str = Field(default="scope", min_length=1)
    #: A claim holding the model allow-list; absent claim or None: every model.
    models_claim: str | None = None
    max_token_bytes: int = Field(default=8192, ge=256, le=65536)

    @model_validator(mode="after")
    def _has_keys(self) -> JwtSettings:
        if not self.keys and self.jwks_url is None:
            raise ValueError("give keys, a jwks_url, or both")
        if set(self.jwks_algorithms) & HMAC_ALGORITHMS:
            raise ValueError("jwks_algorithms may not contain HS* algorithms")
        missing = [c for c in MANDATORY_CLAIMS if c not in self.required_claims]
        if missing:
            raise ValueError(f"required_claims must include {', '.join(missing)}")
        kids = [k.kid for k in self.keys if k.kid is not None]
        if len(set(kids)) != len(kids):
            raise ValueError("key kids must be unique")
        return self


class FailedAuthSettings(_Frozen):
    """Failed authentications allowed per client address before answering 429."""

    limit: int = Field(default=20, ge=1, le=100_000)
    window_seconds: float = Field(default=60.0, gt=0, le=86400)
    #: Addresses tracked at most (memory bound); the oldest are forgotten first.
    max_tracked: int = Field(default=100_000, ge=100, le=10_000_000)


class AuthSettings(_Frozen):
    jwt: JwtSettings | None = None
    #: Proxies whose ``X-Forwarded-For`` is believed (CIDRs). Empty: the peer address counts.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    failed_auth: FailedAuthSettings = FailedAuthSettings()


class UrlGuardSettings(_Frozen):
    """Rules for URLs the gateway calls on a caller's behalf (webhooks)."""

    #: Plain http is for tests and local development only.
    allow_http: bool = False
    #: Networks allowed despite being private (CIDRs); empty in production.
    allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)


def hmac_secret_problem(secret: str, algorithms: list[JwtAlgorithm]) -> str | None:
    need = max((MIN_HMAC_SECRET_BYTES.get(a, 32) for a in algorithms), default=32)
    if len(secret.encode("utf-8")) < need:
        return f"HMAC secrets for {', '.join(algorithms)} must be at least {need} bytes"
    return None


def public_key_problem(pem: str, algorithms: list[JwtAlgorithm]) -> str | None:
    """Why ``pem`` cannot verify ``algorithms``, or None when it can."""
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError):
        return "not a PEM public key"
    algs = set(algorithms)
    if isinstance(key, rsa.RSAPublicKey):
        if not algs <= RSA_ALGORITHMS:
            return "an RSA key may only verify RS* and PS* algorithms"
        if key.key_size < 2048:
            return "RSA keys must be at least 2048 bits"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not algs <= EC_ALGORITHMS:
            return "an EC key may only verify ES* algorithms"
        return None
    return "only RSA and EC public keys are supported"


def resolve_auth(
    auth: AuthSettings, base_dir: Path, env: Mapping[str, str]
) -> tuple[AuthSettings, list[tuple[str, str]]]:
    """Read JWT key material from env and files; problems are ``(field path, message)``."""
    if auth.jwt is None:
        return auth, []
    problems: list[tuple[str, str]] = []
    keys = []
    for i, k in enumerate(auth.jwt.keys):
        where = f"auth.jwt.keys[{k.kid or i}]"
        update: dict[str, object] = {}
        if k.secret_env is not None:
            value = env.get(k.secret_env, "")
            if not value:
                problems.append((f"{where}.secret_env", f"{k.secret_env} is not set"))
            elif problem := hmac_secret_problem(value, k.algorithms):
                problems.append((f"{where}.secret_env", problem))
            update = {"secret": SecretStr(value), "secret_env": None}
        elif k.secret_file is not None or k.public_key_file is not None:
            field = "secret_file" if k.secret_file is not None else "public_key_file"
            path = k.secret_file or k.public_key_file
            assert path is not None
            file = path if path.is_absolute() else base_dir / path
            try:
                value = file.read_text(encoding="utf-8").strip()
            except OSError:
                problems.append((f"{where}.{field}", f"cannot read {path}"))
                continue
            if field == "secret_file":
                problem = hmac_secret_problem(value, k.algorithms)
                update = {"secret": SecretStr(value), "secret_file": None}
            else:
                problem = public_key_problem(value, k.algorithms)
                update = {"public_key": value, "public_key_file": None}
            if problem:
                problems.append((f"{where}.{field}", problem))
        keys.append(k.model_copy(update=update))
    jwt = auth.jwt.model_copy(update={"keys": keys})
    return auth.model_copy(update={"jwt": jwt}), problems


class ApiKeySettings(_Frozen):
    """One API key, stored as the SHA-256 hex digest of the key, never the key."""

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    scopes: list[Scope] = Field(default_factory=_default_scopes)
    #: Model ids or aliases this key may use; None allows every model.
    models: list[str] | None = None
    revoked: bool = False

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored in configuration."""
    return hashlib.sha256(key.encode()).hexdigest()
