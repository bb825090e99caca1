"""Configuration: one YAML file plus ``GATEWAY_*`` environment overrides, read once, frozen.

Source priority (highest first): init kwargs (tests) > environment (``GATEWAY_`` prefix,
``__`` between nested names, e.g. ``GATEWAY_REDIS__URL``) > secrets dir > the YAML file >
defaults. Nothing else in the code base reads ``os.environ``.

Provider credentials are never inline: each names an environment variable or a file
(relative paths resolve against the configuration file's folder), read here once
into a ``SecretStr`` so the value never reaches a repr, a log or an error message.

Invalid configuration raises ``ConfigError`` listing every problem by field path.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.provider_resilience import (
    CircuitBreakerSettings,
    PacingSettings,
    RetryBudgetSettings,
)
from gateway.security_settings import AuthSettings, UrlGuardSettings, resolve_auth

PROVIDER_TYPES = ("modzy", "vody", "woodwide", "annolab", "llamacloud")
SCOPES = ("jobs:read", "jobs:write", "admin")
Scope = Literal["jobs:read", "jobs:write", "admin"]


def _default_scopes() -> list[Scope]:
    return ["jobs:read", "jobs:write"]


_NAME = r"^[a-z][a-z0-9-]{0,62}$"
_MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:+ -]{0,127}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credential(_Frozen):
    """Where a provider credential comes from: an environment variable or a file."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Credential:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


class ModelSettings(_Frozen):
    id: str = Field(pattern=_MODEL_ID)
    version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    output_type: str = "json"
    description: str | None = None


class TimeoutSettings(_Frozen):
    connect: float = Field(default=5.0, gt=0, le=120)
    read: float = Field(default=30.0, gt=0, le=600)
    total: float = Field(default=60.0, gt=0, le=900)


class ProviderSettings(_Frozen):
    name: str = Field(pattern=_NAME)
    type: Literal["modzy", "vody", "woodwide", "annolab", "llamacloud"]
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    credential: Credential
    timeouts: TimeoutSettings = TimeoutSettings()
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    retries: int = Field(default=2, ge=0, le=5)
    retry_after_max: float = Field(default=60.0, ge=0, le=3600)
    pacing: PacingSettings = PacingSettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    retry_budget: RetryBudgetSettings = RetryBudgetSettings()
    #: Default ``options.provider`` values (e.g. an AnnoLab project and layer).
    defaults: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)
    #: Filled at load from ``credential``; never written in a file.
    secret: SecretStr | None = Field(default=None, exclude=True, repr=False)


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


class RedisSettings(_Frozen):
    """The shared store of every replica; unset, one process keeps state in memory."""

    #: ``redis://``, ``rediss://`` or ``unix://`` (redis-py's own URL support).
    url: str | None = None
    #: ``cluster`` uses redis-py's RedisCluster with the same URL.
    mode: Literal["standalone", "cluster"] = "standalone"
    prefix: str = Field(default="gw", pattern=r"^[A-Za-z0-9:_-]{1,32}$")
    #: Seconds; a hung Redis must cost a request no more than this.
    socket_timeout: float = Field(default=0.5, gt=0, le=30)
    connect_timeout: float = Field(default=0.5, gt=0, le=30)
    max_connections: int = Field(default=100, ge=1, le=10_000)
    #: How long a replica leading a shared provider read holds its lease.
    lease_seconds: float = Field(default=2.0, gt=0, le=60)


class LoggingSettings(_Frozen):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ServerSettings(_Frozen):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    #: Serve /metrics on this port too (None: only on the main port).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Also route /metrics on the main port; turn off when metrics_port is set and the
    #: main port is reachable from outside.
    metrics_on_main_port: bool = True
    #: Seconds aiohttp waits for in-flight requests at shutdown.
    shutdown_timeout: float = Field(default=20.0, ge=0, le=600)


class Settings(BaseSettings):
    """The whole gateway configuration; build with ``load_settings`` or init kwargs."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    providers: list[ProviderSettings] = Field(default_factory=list)
    #: Alias → ``<provider>/<model>[@<version>]``.
    aliases: dict[str, str] = Field(default_factory=dict)
    api_keys: list[ApiKeySettings] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    job_retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    max_inputs_per_job: int = Field(default=1000, ge=1, le=100_000)
    #: Time a request may spend on provider calls, retries and waits included
    #: (``Prefer: wait`` adds its own seconds to it).
    request_deadline_seconds: float = Field(default=60.0, gt=0, le=900)
    #: Upper bound of ``Prefer: wait`` (the contract says at most 60).
    max_wait_seconds: float = Field(default=60.0, ge=0, le=60)
    #: How often a ``Prefer: wait`` request re-asks the provider.
    wait_poll_interval: float = Field(default=0.5, gt=0, le=10)
    #: An unfinished job's status is reused for this long, so many polling clients
    #: cost one provider call per interval (shared by replicas through Redis).
    status_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    #: How long an Idempotency-Key is remembered (the contract asks for 24 h).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    logging: LoggingSettings = LoggingSettings()
    #: JWTs, trusted proxies and the failed-authentication limit (API keys: ``api_keys``).
    auth: AuthSettings = AuthSettings()
    url_guard: UrlGuardSettings = UrlGuardSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, file_secret_settings)

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds ``(field path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored in configuration."""
    return hashlib.sha256(key.encode()).hexdigest()


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any) and the environment into frozen ``Settings``.

    Raises:
        ConfigError: with every invalid field by path.
    """
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        path = Path(path)
        base_dir = path.resolve().parent
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror}")]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([("<file>", f"not valid YAML: {exc}")]) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([("<file>", "the top level must be a mapping")])
        data = loaded

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                env_settings,
                file_secret_settings,
                InitSettingsSource(settings_cls, init_kwargs=data),
            )

    try:
        settings: Settings = _FromFile(**overrides)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, data)) from None
    return _resolve(settings, base_dir, os.environ)


def _problems(exc: ValidationError, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        out.append((_path(loc, data), err["msg"]))
    return out


def _path(loc: list[str], data: Mapping[str, Any]) -> str:
    """``providers.0.base_url`` → ``providers[modzy-eu].base_url`` where a name is known."""
    parts: list[str] = []
    node: Any = data
    for p in loc:
        if isinstance(node, list) and p.isdigit() and int(p) < len(node):
            item = node[int(p)]
            label = item.get("name") or item.get("id") if isinstance(item, dict) else None
            parts[-1:] = [f"{parts[-1]}[{label or p}]"] if parts else [f"[{p}]"]
            node = item
            continue
        parts.append(p)
        node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts)


def _resolve(settings: Settings, base_dir: Path, env: Mapping[str, str]) -> Settings:
    """Read credentials and check what one field alone cannot (names, aliases)."""
    problems: list[tuple[str, str]] = []
    providers = []
    seen: set[str] = set()
    for p in settings.providers:
        where = f"providers[{p.name}]"
        if p.name in seen:
            problems.append((f"{where}.name", "provider names must be unique"))
        seen.add(p.name)
        secret = p.secret
        if secret is None:
            cred = p.credential
            if cred.env is not None:
                value = env.get(cred.env)
                if not value:
                    problems.append(
                        (f"{where}.credential.env", f"environment variable {cred.env} is not set")
                    )
            else:
                assert cred.file is not None
                file = cred.file if cred.file.is_absolute() else base_dir / cred.file
                try:
                    value = file.read_text(encoding="utf-8").strip()
                except OSError:
                    value = None
                    problems.append((f"{where}.credential.file", f"cannot read {cred.file}"))
                else:
                    if not value:
                        problems.append((f"{where}.credential.file", f"{cred.file} is empty"))
            secret = SecretStr(value) if value else None
        providers.append(p.model_copy(update={"secret": secret}))
        model_ids = [m.id for m in p.models]
        if len(set(model_ids)) != len(model_ids):
            problems.append((f"{where}.models", "model ids must be unique per provider"))
    by_name = {p.name: p for p in providers}
    for alias, target in settings.aliases.items():
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", alias):
            problems.append((f"aliases.{alias}", "alias names are 1-64 of [A-Za-z0-9._-]"))
        provider = target.split("/", 1)[0] if "/" in target else None
        if provider is None or provider not in by_name:
            problems.append((f"aliases.{alias}", f"{target!r} does not name a configured provider"))
    key_ids: set[str] = set()
    hashes: set[str] = set()
    for k in settings.api_keys:
        if k.id in key_ids:
            problems.append((f"api_keys[{k.id}].id", "key ids must be unique"))
        if k.sha256 in hashes:
            problems.append((f"api_keys[{k.id}].sha256", "two keys share one hash"))
        key_ids.add(k.id)
        hashes.add(k.sha256)
    auth, auth_problems = resolve_auth(settings.auth, base_dir, env)
    problems.extend(auth_problems)
    if problems:
        raise ConfigError(problems)
    return settings.model_copy(update={"providers": providers, "auth": auth})
