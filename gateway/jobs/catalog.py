"""Models and aliases: turning what a caller wrote in ``model`` into a ``ModelRef``."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import ModelRef
from gateway.config.settings import MODEL_REF, ModelSettings, Settings
from gateway.errors import NotFound
from gateway.jobs.settings import ItemCacheSettings
from gateway.limits.pacing import account_id

#: Where a caller who named no known model finds the ones there are.
_SEE_MODELS = " GET /v1/models lists every model and alias this gateway serves."


_NO_CACHE = ItemCacheSettings()


@dataclass(frozen=True, slots=True)
class Resolved:
    ref: ModelRef
    #: Every name the model goes by, for allow-lists: alias, with and without version.
    names: tuple[str, ...]
    output_type: str
    #: The model's item cache (off unless configured).
    cache: ItemCacheSettings = _NO_CACHE


class ModelCatalog:
    def __init__(self, settings: Settings) -> None:
        self._providers = {p.name: p for p in settings.providers}
        self._aliases = dict(settings.aliases)
        self._accounts = {
            p.name: account_id(
                p.type, p.base_url, p.secret.get_secret_value() if p.secret is not None else ""
            )
            for p in settings.providers
        }

    def aliases_of(self, provider: str, model: ModelSettings) -> list[str]:
        plain = f"{provider}/{model.id}"
        full = f"{plain}@{model.version}" if model.version else plain
        return sorted(a for a, t in self._aliases.items() if t in (plain, full))

    def resolve(self, name: str) -> Resolved:
        """Resolve a model id or alias; unknown providers and models are 404s."""
        alias = name if name in self._aliases else None
        target = self._aliases.get(name, name)
        m = MODEL_REF.match(target)
        if m is None:
            raise NotFound(
                f"Unknown model {name!r}: use '<provider>/<model>[@<version>]' or an alias."
                + _SEE_MODELS
            )
        provider = self._providers.get(m["provider"])
        if provider is None:
            raise NotFound(f"Unknown provider {m['provider']!r}." + _SEE_MODELS)
        version = m["version"]
        output_type = "json"
        cache = _NO_CACHE
        if provider.models:
            known = next((x for x in provider.models if x.id == m["model"]), None)
            if known is None:
                raise NotFound(
                    f"Provider {provider.name!r} has no model {m['model']!r}." + _SEE_MODELS
                )
            if version is not None and known.version is not None and version != known.version:
                raise NotFound(f"Model {m['model']!r} has no version {version!r}." + _SEE_MODELS)
            version = version or known.version
            output_type = known.output_type
            cache = known.cache
        ref = ModelRef(provider=provider.name, model_id=m["model"], version=version)
        plain = f"{provider.name}/{m['model']}"
        names = tuple(n for n in (alias, str(ref), plain, f"{provider.name}/*") if n)
        return Resolved(ref=ref, names=names, output_type=output_type, cache=cache)

    def account(self, provider: str) -> str:
        """The provider's account (a hash of its type, base URL and credential): what
        item cache entries are shared by, whatever the provider is named."""
        return self._accounts[provider]
