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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.limit_settings import RateLimitSettings
from gateway.metrics_settings import MetricsSettings
from gateway.provider_resilience import (
    CircuitBreakerSettings,
    PacingSettings,
    RetryBudgetSettings,
)
from gateway.redis_url import check_redis_url
from gateway.security_settings import AuthSettings, UrlGuardSettings, resolve_auth

if TYPE_CHECKING:
    from gateway import config_checks

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

    #: ``cluster`` uses redis-py's RedisCluster with the same URL. (Declared before
    #: ``url``: the URL's check depends on it.)
    mode: Literal["standalone", "cluster"] = "standalone"
    #: ``redis://``, ``rediss://``, ``unix://`` (redis-py's own URL support), or
    #: ``redis+sentinel://host:port[,host:port]/service_name[/db]`` (``gateway.redis_url``).
    url: str | None = None
    prefix: str = Field(default="gw", pattern=r"^[A-Za-z0-9:_-]{1,32}$")
    #: Seconds; a hung Redis must cost a request no more than this.
    socket_timeout: float = Field(default=0.5, gt=0, le=30)
    connect_timeout: float = Field(default=0.5, gt=0, le=30)
    max_connections: int = Field(default=100, ge=1, le=10_000)
    #: How long a replica leading a shared provider read holds its lease.
    lease_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _usable_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        # Checked here, so a bad URL is a named configuration problem rather than a
        # traceback from the client's constructor when the app is built.
        if v is not None:
            check_redis_url(v, info.data.get("mode", "standalone"))
        return v


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
    #: Caller limits: rates per key and tenant, unfinished jobs, daily job quotas.
    ratelimit: RateLimitSettings = RateLimitSettings()
    #: What metric labels may name: tenants with a label of their own (none by default).
    metrics: MetricsSettings = MetricsSettings()

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

    # The merged input of every source (file, environment, overrides), kept for the
    # checks that still run when the schema fails, and for naming fields by path.
    merged: dict[str, Any] = {}

    class _FromFile(Settings):
        @model_validator(mode="before")
        @classmethod
        def _keep_input(cls, values: Any) -> Any:
            if isinstance(values, dict):
                merged.update(values)
            return values

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

    from gateway import config_checks  # it builds on this module's models

    try:
        settings: Settings = _FromFile(**overrides)
    except ValidationError as exc:
        # Report the cross-field and credential problems of the parts that did
        # validate too: one run of check-config lists everything.
        view = config_checks.ConfigView.lenient(merged or data)
        problems = _problems(exc, merged or data)
        problems += _resolve(view, base_dir, os.environ)[2]
        raise ConfigError(problems) from None
    providers, auth, problems = _resolve(
        config_checks.ConfigView.of(settings), base_dir, os.environ
    )
    if problems:
        raise ConfigError(problems)
    return settings.model_copy(update={"providers": providers, "auth": auth})


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


def _resolve(
    view: config_checks.ConfigView, base_dir: Path, env: Mapping[str, str]
) -> tuple[list[ProviderSettings], AuthSettings | None, list[tuple[str, str]]]:
    """Credentials and JWT keys read in, and every problem no single field shows."""
    from gateway import config_checks

    secrets, problems = config_checks.read_credentials(view, base_dir, env)
    providers = [
        p if p.secret is not None else p.model_copy(update={"secret": secrets.get(p.name)})
        for p in view.providers
    ]
    problems += config_checks.check_references(view)
    auth = None
    if view.auth is not None:
        auth, auth_problems = resolve_auth(view.auth, base_dir, env)
        problems.extend(auth_problems)
    return providers, auth, problems
