"""The gateway's configuration as frozen models: the root ``Settings`` and its providers.

Each wing owns the model of its own section (``auth.settings``, ``jobs.settings``,
``limits.settings``, ``limits.provider_resilience``, ``observability.settings``,
``state.settings``); this module assembles them under one root, with the sections that
belong to the gateway as a whole: providers and their models, aliases, the server and
the request bounds.
``gateway.config.loading`` reads a file and the environment into it.

Source priority (highest first): init kwargs (tests) > environment (``GATEWAY_`` prefix,
``__`` between nested names, e.g. ``GATEWAY_REDIS__URL``) > secrets dir > the YAML file >
defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapters.outputs import OutputType
from gateway.auth.settings import ApiKeySettings, AuthSettings, UrlGuardSettings
from gateway.jobs.settings import (
    EngineSettings,
    EventStreamSettings,
    ItemCacheSettings,
    PollSettings,
    WebhookSettings,
)
from gateway.limits.provider_resilience import (
    CircuitBreakerSettings,
    PacingSettings,
    RetryBudgetSettings,
)
from gateway.limits.settings import RateLimitSettings
from gateway.observability.settings import LoggingSettings, MetricsSettings, TracingSettings
from gateway.state.settings import RedisSettings

PROVIDER_TYPES = ("modzy", "vody", "woodwide", "annolab", "llamacloud")
_NAME = r"^[a-z][a-z0-9-]{0,62}$"
_MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:+ -]{0,127}$"

#: ``<provider>/<model>[@<version>]``, as written in requests, aliases and key allow-lists.
MODEL_REF = re.compile(
    r"^(?P<provider>[a-z][a-z0-9-]*)/(?P<model>[^@/\s]+)(?:@(?P<version>[^@/\s]+))?$"
)


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
    # The output type /v1/models announces: one the API documents, so a typo is
    # refused when the configuration loads rather than served.
    output_type: OutputType = "json"
    description: str | None = None
    #: Answers reused for identical inputs (off unless ``cache.items``).
    cache: ItemCacheSettings = ItemCacheSettings()


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
    #: How often the job engine asks this provider about an unfinished job.
    poll: PollSettings = PollSettings()
    #: Default ``options.provider`` values (e.g. an AnnoLab project and layer).
    defaults: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)
    #: Filled at load from ``credential``; never written in a file.
    secret: SecretStr | None = Field(default=None, exclude=True, repr=False)


class ServerSettings(_Frozen):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    #: Serve /metrics on this port too (None: only on the main port).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Also route /metrics on the main port; turn off when metrics_port is set and the
    #: main port is reachable from outside.
    metrics_on_main_port: bool = True
    #: Seconds from SIGTERM until the last in-flight request is cut off: the drain delay
    #: and the wait for requests in flight together (the engine's grace comes after).
    shutdown_timeout: float = Field(default=20.0, ge=0, le=600)
    #: After SIGTERM, /readyz answers 503 while the listener still takes requests for
    #: this long, so load balancers polling readiness stop sending before connections
    #: are refused (part of shutdown_timeout).
    drain_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    #: Bytes of finished jobs' answers (views, results pages, exports) this process keeps
    #: rendered, to serve again without building them (``gateway.http.rendered``); 0: none.
    rendered_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0, le=16 * 1024**3)

    @model_validator(mode="after")
    def _delay_within_timeout(self) -> ServerSettings:
        if self.drain_delay_seconds > self.shutdown_timeout:
            raise ValueError("drain_delay_seconds must not exceed shutdown_timeout")
        return self


class AliasTarget(_Frozen):
    """One target of an alias's fallback chain: a model, and its share of a split."""

    model: str = Field(min_length=1, max_length=300)
    #: Share of first attempts (relative to the chain's other weights); None: no split.
    #: A weight of 0 makes the target a fallback only, never the first choice.
    weight: float | None = Field(default=None, ge=0, le=1_000_000)


MAX_ALIAS_TARGETS = 8


ChainValue = str | list[str | AliasTarget]


class AliasSettings(_Frozen):
    """An alias written in full: its targets, and an item cache of its own."""

    targets: ChainValue
    #: Answers reused for identical inputs submitted under this alias, whichever target
    #: runs them: overrides each target model's own ``cache`` for submits through the
    #: alias (a model named directly keeps its own). Unset: each target's own.
    cache: ItemCacheSettings | None = None


def alias_chain(value: ChainValue | AliasSettings) -> tuple[AliasTarget, ...]:
    """An alias's targets in order, one per entry (a plain string is a chain of one)."""
    if isinstance(value, AliasSettings):
        value = value.targets
    entries = [value] if isinstance(value, str) else value
    return tuple(AliasTarget(model=e) if isinstance(e, str) else e for e in entries)


def alias_cache(value: ChainValue | AliasSettings) -> ItemCacheSettings | None:
    """The alias's own item cache settings (None: each target's own)."""
    return value.cache if isinstance(value, AliasSettings) else None


def chain_problem(chain: tuple[AliasTarget, ...]) -> str | None:
    """Why a chain cannot be used (None if it can): empty, too long, repeated, or
    weighted in part (a split needs every target's weight, or none)."""
    if not chain:
        return "an alias needs at least one target"
    if len(chain) > MAX_ALIAS_TARGETS:
        return f"an alias has at most {MAX_ALIAS_TARGETS} targets"
    models = [t.model for t in chain]
    if len(set(models)) != len(models):
        return "an alias names each target once"
    weighted = [t.weight is not None for t in chain]
    if any(weighted) and not all(weighted):
        return "give every target a weight, or none (a split needs them all)"
    if all(weighted) and not any(t.weight for t in chain):
        return "at least one weight must be above 0"
    return None


def _chain_shape(value: Any) -> Any:
    """One clear message for a malformed alias, rather than pydantic's per-branch list."""
    if isinstance(value, str | AliasTarget | AliasSettings):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"targets", "cache"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (targets, cache)")
        if "targets" not in value:
            raise ValueError("an alias written in full names its 'targets'")
        _chain_shape(value["targets"])
        if value.get("cache") is not None:
            try:
                ItemCacheSettings.model_validate(value["cache"])
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise ValueError(f"cache{'.' + where if where else ''}: {first['msg']}") from None
        return value
    if not isinstance(value, list):
        raise ValueError("an alias is a model name, a list of targets or {targets, cache}")
    for i, entry in enumerate(value):
        if isinstance(entry, str | AliasTarget):
            continue
        if not isinstance(entry, dict):
            raise ValueError(f"target {i}: give a model name or {{model, weight}}")
        unknown = sorted(set(entry) - {"model", "weight"})
        if unknown:
            raise ValueError(f"target {i}: unknown field {unknown[0]!r} (model, weight)")
        if not isinstance(entry.get("model"), str):
            raise ValueError(f"target {i}: 'model' must name a model")
        weight = entry.get("weight")
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0
        ):
            raise ValueError(f"target {i}: 'weight' must be a number of 0 or more")
    return value


def _usable_chain(value: ChainValue | AliasSettings) -> ChainValue | AliasSettings:
    if problem := chain_problem(alias_chain(value)):
        raise ValueError(problem)
    return value


#: An alias names one model (``"modzy/ed542963de@1.0.1"``) or an ordered chain of
#: targets: model strings, or ``{model, weight}`` entries for a weighted split; or, in
#: full, ``{targets: <either>, cache: {...}}`` for an item cache of the alias's own.
AliasValue = Annotated[
    ChainValue | AliasSettings,
    BeforeValidator(_chain_shape),
    AfterValidator(_usable_chain),
]


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
    #: Alias → ``<provider>/<model>[@<version>]``, or an ordered fallback chain of them
    #: (optionally weighted): ``gateway.jobs.fallback``.
    aliases: dict[str, AliasValue] = Field(default_factory=dict)
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
    #: A job whose provider keeps reporting a status word its adapter does not know is
    #: failed after this long (it is shown as running meanwhile), not left running forever.
    unknown_status_grace_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    #: How long an Idempotency-Key is remembered (the contract asks for 24 h).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    #: How long a submit in flight holds its Idempotency-Key and job slot without
    #: renewing them (renewed every third of it): how soon a retry on another replica
    #: is answered after the replica working on the first request died.
    submit_lease_seconds: float = Field(default=5.0, ge=0.3, le=60)
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
    #: OpenTelemetry traces (off by default): where they go, and how many are kept.
    tracing: TracingSettings = TracingSettings()
    #: The job engine: unfinished jobs tracked by every replica until they finish.
    engine: EngineSettings = EngineSettings()
    #: Webhooks: per-tenant signing secrets, and how long a delivery is tried.
    webhooks: WebhookSettings = WebhookSettings()
    #: Live events (Server-Sent Events): heartbeats, per-credential cap, stream length.
    events: EventStreamSettings = EventStreamSettings()

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

    def alias_chains(self) -> dict[str, tuple[AliasTarget, ...]]:
        return {a: alias_chain(v) for a, v in self.aliases.items()}

    def alias_caches(self) -> dict[str, ItemCacheSettings]:
        """The aliases with an item cache of their own, and its settings."""
        return {a: c for a, v in self.aliases.items() if (c := alias_cache(v)) is not None}


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds ``(field path, message)`` pairs."""

    def __init__(
        self,
        problems: list[tuple[str, str]],
        *,
        lines: list[int | None] | None = None,
        source: str | None = None,
    ) -> None:
        self.problems = problems
        #: Per problem, the line of the configuration file it is about (None: not in
        #: the file, e.g. set by a GATEWAY_* variable, or missing altogether).
        self.lines = lines if lines is not None else [None] * len(problems)
        #: The configuration file's name, when there is one.
        self.source = source
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))

    def located(self) -> list[str]:
        """One line per problem, ``file:line: path: message`` where the line is known."""
        out = []
        for (path, message), line in zip(self.problems, self.lines, strict=False):
            where = f"{self.source}:{line}: " if self.source and line else ""
            out.append(f"{where}{path}: {message}")
        return out
