"""Configuration checks no single field can make: names, references and credentials.

They run on a ``ConfigView``: the validated settings, or, when the schema already
failed, whatever parts of the raw configuration still validate on their own. So one
``check-config`` run lists the schema problems *and* these (an unset credential, an
alias to a model its provider does not list) together, instead of one round each.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from gateway.auth.settings import ApiKeySettings, AuthSettings
from gateway.config.settings import (
    MODEL_REF,
    AliasTarget,
    Credential,
    ProviderSettings,
    Settings,
    alias_chain,
    chain_problem,
)
from gateway.jobs.settings import WebhookSecret, WebhookSettings, whsec_problem
from gateway.observability.settings import TracingSettings

Problem = tuple[str, str]
M = TypeVar("M", bound=BaseModel)

_ALIAS = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class ConfigView:
    """What the cross-field checks look at; parts that failed the schema are left out."""

    #: Providers that passed the schema.
    providers: list[ProviderSettings] = field(default_factory=list)
    #: Every provider named in the configuration, valid or not (so an alias to a
    #: provider with a bad base URL is not also reported as an unknown provider).
    provider_names: set[str] = field(default_factory=set)
    #: (provider name, credential) for every provider whose credential is well-formed.
    credentials: list[tuple[str, Credential]] = field(default_factory=list)
    #: Each alias's targets, in order (a plain alias is a chain of one).
    aliases: dict[str, tuple[AliasTarget, ...]] = field(default_factory=dict)
    api_keys: list[ApiKeySettings] = field(default_factory=list)
    auth: AuthSettings | None = None
    webhooks: WebhookSettings | None = None
    tracing: TracingSettings | None = None

    @classmethod
    def of(cls, settings: Settings) -> ConfigView:
        return cls(
            providers=list(settings.providers),
            provider_names={p.name for p in settings.providers},
            credentials=[(p.name, p.credential) for p in settings.providers if p.secret is None],
            aliases=settings.alias_chains(),
            api_keys=list(settings.api_keys),
            auth=settings.auth,
            webhooks=settings.webhooks,
            tracing=settings.tracing,
        )

    @classmethod
    def lenient(cls, raw: Mapping[str, Any]) -> ConfigView:
        """The parts of a configuration that failed validation which are still usable."""
        view = cls()
        for entry in _list(raw.get("providers")):
            if not isinstance(entry, Mapping):
                continue
            name = entry.get("name")
            if isinstance(name, str):
                view.provider_names.add(name)
            provider = _valid(ProviderSettings, entry)
            if provider is not None:
                view.providers.append(provider)
            credential = _valid(Credential, entry.get("credential"))
            if isinstance(name, str) and credential is not None and entry.get("secret") is None:
                view.credentials.append((name, credential))
        aliases = raw.get("aliases")
        if isinstance(aliases, Mapping):
            for name, value in aliases.items():
                chain = _chain(value)
                if isinstance(name, str) and chain is not None:
                    view.aliases[name] = chain
        view.api_keys = [
            k for k in (_valid(ApiKeySettings, e) for e in _list(raw.get("api_keys"))) if k
        ]
        view.auth = _valid(AuthSettings, raw.get("auth") or {})
        view.webhooks = _valid(WebhookSettings, raw.get("webhooks") or {})
        view.tracing = _valid(TracingSettings, raw.get("tracing") or {})
        return view


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _chain(value: Any) -> tuple[AliasTarget, ...] | None:
    """An alias's chain, if its shape is valid (the schema reports it otherwise)."""
    if isinstance(value, Mapping) and "targets" in value:  # an alias written in full
        return _chain(value["targets"])
    if isinstance(value, str):
        return alias_chain(value)
    if not isinstance(value, list):
        return None
    targets = [
        AliasTarget(model=e) if isinstance(e, str) else _valid(AliasTarget, e) for e in value
    ]
    chain = tuple(t for t in targets if t is not None)
    if len(chain) != len(value) or chain_problem(chain) is not None:
        return None
    return chain


def _valid(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def read_credentials(
    view: ConfigView, base_dir: Path, env: Mapping[str, str]
) -> tuple[dict[str, SecretStr], list[Problem]]:
    """Each provider's credential, read once from its variable or file, by provider name."""
    secrets: dict[str, SecretStr] = {}
    problems: list[Problem] = []
    for name, cred in view.credentials:
        where = f"providers[{name}].credential"
        if cred.env is not None:
            value = env.get(cred.env)
            if not value:
                problems.append((f"{where}.env", f"environment variable {cred.env} is not set"))
        else:
            assert cred.file is not None
            file = cred.file if cred.file.is_absolute() else base_dir / cred.file
            try:
                value = file.read_text(encoding="utf-8").strip()
            except OSError:
                value = None
                problems.append((f"{where}.file", f"cannot read {cred.file}"))
            else:
                if not value:
                    problems.append((f"{where}.file", f"{cred.file} is empty"))
        if value:
            secrets[name] = SecretStr(value)
    return secrets, problems


def read_webhook_secrets(
    webhooks: WebhookSettings, base_dir: Path, env: Mapping[str, str]
) -> tuple[WebhookSettings, list[Problem]]:
    """Every webhook secret named by a variable or a file, read once and checked."""
    problems: list[Problem] = []
    loaded: list[WebhookSecret] = []
    for i, entry in enumerate(webhooks.secrets):
        where = f"webhooks.secrets[{i}]"
        value: str | None = None
        if entry.value is not None:
            loaded.append(entry)
            continue
        if entry.env is not None:
            value = env.get(entry.env)
            if not value:
                problems.append((f"{where}.env", f"environment variable {entry.env} is not set"))
        elif entry.file is not None:
            file = entry.file if entry.file.is_absolute() else base_dir / entry.file
            try:
                value = file.read_text(encoding="utf-8").strip()
            except OSError:
                problems.append((f"{where}.file", f"cannot read {entry.file}"))
        if value:
            problem = whsec_problem(value)
            if problem is not None:
                problems.append((where, problem))
            else:
                loaded.append(entry.model_copy(update={"value": SecretStr(value)}))
    return webhooks.model_copy(update={"secrets": loaded}), problems


def check_references(view: ConfigView) -> list[Problem]:
    """Unique names, aliases and key allow-lists that point at configured models."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for p in view.providers:
        where = f"providers[{p.name}]"
        if p.name in seen:
            problems.append((f"{where}.name", "provider names must be unique"))
        seen.add(p.name)
        model_ids = [m.id for m in p.models]
        if len(set(model_ids)) != len(model_ids):
            problems.append((f"{where}.models", "model ids must be unique per provider"))
    for alias, chain in view.aliases.items():
        if not _ALIAS.fullmatch(alias):
            problems.append((f"aliases.{alias}", "alias names are 1-64 of [A-Za-z0-9._-]"))
        for i, target in enumerate(chain):
            where = f"aliases.{alias}" if len(chain) == 1 else f"aliases.{alias}[{i}]"
            if problem := _model_problem(target.model, view):
                problems.append((where, problem))
        if problem := _mixed_outputs(chain, view):
            problems.append((f"aliases.{alias}", problem))
    key_ids: set[str] = set()
    hashes: set[str] = set()
    for k in view.api_keys:
        where = f"api_keys[{k.id}]"
        if k.id in key_ids:
            problems.append((f"{where}.id", "key ids must be unique"))
        if k.sha256 in hashes:
            problems.append((f"{where}.sha256", "two keys share one hash"))
        key_ids.add(k.id)
        hashes.add(k.sha256)
        for i, entry in enumerate(k.models or ()):
            if entry in view.aliases:
                continue
            if entry.endswith("/*"):
                if entry[:-2] not in view.provider_names:
                    problems.append(
                        (f"{where}.models[{i}]", f"{entry[:-2]!r} is not a configured provider")
                    )
                continue
            if problem := _model_problem(entry, view):
                problems.append((f"{where}.models[{i}]", f"{entry!r}: {problem}"))
    if view.tracing is not None and (problem := exporter_problem(view.tracing)):
        problems.append(("tracing.protocol", problem))
    return problems


#: The module each OTLP protocol's exporter comes from (``http/json`` ships with the
#: gateway; the others with its ``tracing-protobuf`` extra).
_EXPORTERS = {
    "http/json": "opentelemetry.exporter.otlp.json.http.trace_exporter",
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
}


def exporter_problem(tracing: TracingSettings) -> str | None:
    """Tracing on with a protocol whose exporter is not installed: said at load (and by
    ``check-config``), not as a traceback when the app is built."""
    if not tracing.enabled:
        return None
    try:
        found = importlib.util.find_spec(_EXPORTERS[tracing.protocol]) is not None
    except ImportError:  # a parent package is missing
        found = False
    if found:
        return None
    return (
        f"{tracing.protocol!r} needs the gateway's 'tracing-protobuf' extra installed "
        "(pip install 'inference-gateway[tracing-protobuf]'; docs/tracing.md), "
        "or use 'http/json', which ships with the gateway"
    )


def _model_problem(target: str, view: ConfigView) -> str | None:
    """Why ``target`` names no configured model (None if it does, or cannot be told)."""
    m = MODEL_REF.match(target)
    if m is None:
        return f"{target!r} is not an alias or '<provider>/<model>[@<version>]'"
    if m["provider"] not in view.provider_names:
        return f"{target!r} does not name a configured provider"
    provider = next((p for p in view.providers if p.name == m["provider"]), None)
    if provider is None or not provider.models:
        return None  # a provider that lists no models takes any model id
    known = next((x for x in provider.models if x.id == m["model"]), None)
    if known is None:
        listed = ", ".join(_model_names(provider.models))
        return f"provider {provider.name!r} lists no model {m['model']!r} (it lists {listed})"
    if m["version"] and known.version and m["version"] != known.version:
        return f"model {m['model']!r} is version {known.version!r}, not {m['version']!r}"
    return None


def _mixed_outputs(chain: tuple[AliasTarget, ...], view: ConfigView) -> str | None:
    """A chain whose targets answer in different output types: a caller would get one
    shape or the other depending on which provider was up."""
    types: dict[str, str] = {}
    for target in chain:
        m = MODEL_REF.match(target.model)
        provider = m and next((p for p in view.providers if p.name == m["provider"]), None)
        known = m and provider and next((x for x in provider.models if x.id == m["model"]), None)
        if known:
            types[target.model] = known.output_type
    if len(set(types.values())) > 1:
        listed = ", ".join(f"{t} ({o})" for t, o in types.items())
        return f"the targets of an alias must share one output type: {listed}"
    return None


def _model_names(models: Iterable[Any]) -> list[str]:
    return [f"{m.id}@{m.version}" if m.version else m.id for m in models]
