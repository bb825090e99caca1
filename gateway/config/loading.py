"""Reading the configuration: one YAML file plus ``GATEWAY_*`` environment overrides.

Nothing else in the code base reads ``os.environ``. Provider credentials are never
inline: each names an environment variable or a file (relative paths resolve against
the configuration file's folder), read here once into a ``SecretStr`` so the value
never reaches a repr, a log or an error message.

Invalid configuration raises ``ConfigError`` listing every problem by field path: the
schema's, and those of ``gateway.config.checks`` (names, references, credentials), in
one round.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource

from gateway.auth.settings import AuthSettings, resolve_auth
from gateway.config import checks, yaml_lines
from gateway.config.settings import ConfigError, ProviderSettings, Settings
from gateway.jobs.settings import WebhookSettings


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any) and the environment into frozen ``Settings``.

    Raises:
        ConfigError: with every invalid field by path.
    """
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    root: yaml.Node | None = None
    source: str | None = None
    if path is not None:
        path = Path(path)
        source = str(path)
        base_dir = path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror}")]) from None
        try:
            loaded, root = _parse_yaml(text, str(path))
        except yaml.YAMLError as exc:
            raise ConfigError(
                [("<file>", f"not valid YAML: {_yaml_problem(exc)}")],
                lines=[_yaml_line(exc)],
                source=str(path),
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([("<file>", "the top level must be a mapping")], source=str(path))
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

    try:
        settings: Settings = _FromFile(**overrides)
    except ValidationError as exc:
        # Report the cross-field and credential problems of the parts that did
        # validate too: one run of check-config lists everything.
        view = checks.ConfigView.lenient(merged or data)
        problems, lines = _problems(exc, merged or data, root)
        more = _resolve(view, base_dir, os.environ)[3]
        problems += more
        lines += [yaml_lines.line_of_path(root, p) for p, _ in more]
        raise ConfigError(problems, lines=lines, source=source) from None
    providers, auth, webhooks, problems = _resolve(
        checks.ConfigView.of(settings), base_dir, os.environ
    )
    if problems:
        raise ConfigError(
            problems, lines=[yaml_lines.line_of_path(root, p) for p, _ in problems], source=source
        )
    return settings.model_copy(update={"providers": providers, "auth": auth, "webhooks": webhooks})


def _parse_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    """The document, and its node tree (each node knows its line), from one parse."""
    loader = yaml.SafeLoader(text)
    # Marks (and so every error) name the file, not "<unicode string>".
    loader.name = name
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _yaml_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``mapping values are not allowed here (column 9)``, without yaml's own excerpt."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    out = f"{context}, {what}" if context else what
    return f"{out} (column {mark.column + 1})" if mark is not None else out


def _problems(
    exc: ValidationError, data: Mapping[str, Any], root: yaml.Node | None
) -> tuple[list[tuple[str, str]], list[int | None]]:
    out = []
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        out.append((_path(loc, data), yaml_lines.explain(err, Settings)))
        lines.append(yaml_lines.line_of(root, loc))
    return out, lines


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
    view: checks.ConfigView, base_dir: Path, env: Mapping[str, str]
) -> tuple[
    list[ProviderSettings], AuthSettings | None, WebhookSettings | None, list[tuple[str, str]]
]:
    """Credentials, JWT keys and webhook secrets read in, and every problem no single
    field shows."""
    secrets, problems = checks.read_credentials(view, base_dir, env)
    providers = [
        p if p.secret is not None else p.model_copy(update={"secret": secrets.get(p.name)})
        for p in view.providers
    ]
    problems += checks.check_references(view)
    auth = None
    if view.auth is not None:
        auth, auth_problems = resolve_auth(view.auth, base_dir, env)
        problems.extend(auth_problems)
    webhooks = None
    if view.webhooks is not None:
        webhooks, webhook_problems = checks.read_webhook_secrets(view.webhooks, base_dir, env)
        problems.extend(webhook_problems)
    return providers, auth, webhooks, problems
