"""Models and aliases: turning what a caller wrote in ``model`` into a ``ModelRef``.

An alias names one model or an ordered chain of them (``gateway.jobs.fallback`` tries
them in turn); a model named directly is a chain of one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapters.base import ModelRef
from gateway.config.settings import MODEL_REF, AliasTarget, ModelSettings, Settings
from gateway.errors import NotFound
from gateway.jobs.settings import ItemCacheSettings
from gateway.limits.pacing import account_id

#: Where a caller who named no known model finds the ones there are.
_SEE_MODELS = " GET /v1/models lists every model and alias this gateway serves."


_NO_CACHE = ItemCacheSettings()


@dataclass(frozen=True, slots=True)
class Target:
    """One model a submit may go to."""

    ref: ModelRef
    #: Every name the model goes by itself, for allow-lists: with and without version.
    names: tuple[str, ...]
    output_type: str
    #: Its share of first attempts in a weighted alias (None: the chain is not split).
    weight: float | None = None
    #: The model's item cache (off unless configured).
    cache: ItemCacheSettings = _NO_CACHE

    @property
    def label(self) -> str:
        """The target as logs and metric labels name it (configured names only)."""
        return str(self.ref)


@dataclass(frozen=True, slots=True)
class Resolved:
    #: The first target's model (a weighted alias may send a submit elsewhere).
    ref: ModelRef
    #: Every name the first target goes by, for allow-lists: alias, with and without version.
    names: tuple[str, ...]
    output_type: str
    #: The alias the caller wrote (None: a model named directly).
    alias: str | None = None
    #: Every target, in the configured order; a model named directly is the only one.
    targets: tuple[Target, ...] = ()

    def names_of(self, target: Target) -> tuple[str, ...]:
        """What an allow-list may name to let a caller use ``target`` through this name:
        the alias (an alias on the list grants its whole chain) or the target itself."""
        return (self.alias, *target.names) if self.alias else target.names

    @property
    def cache(self) -> ItemCacheSettings:
        """The first target's item cache: what a submit's inputs are looked up in."""
        return self.targets[0].cache if self.targets else _NO_CACHE

    def cache_of(self, ref: ModelRef) -> ItemCacheSettings:
        """The item cache of the target ``ref`` (none if it is not one of them)."""
        return next((t.cache for t in self.targets if t.ref == ref), _NO_CACHE)


class ModelCatalog:
    def __init__(self, settings: Settings) -> None:
        self._providers = {p.name: p for p in settings.providers}
        self._accounts = {
            p.name: account_id(
                p.type, p.base_url, p.secret.get_secret_value() if p.secret is not None else ""
            )
            for p in settings.providers
        }
        self._chains = settings.alias_chains()
        self._alias_caches = settings.alias_caches()

    @property
    def chains(self) -> dict[str, tuple[AliasTarget, ...]]:
        """Every alias and its targets, as configured (for ``GET /v1/models``)."""
        return dict(self._chains)

    def account(self, provider: str) -> str:
        """The provider's account (a hash of its type, base URL and credential): what
        item cache entries are shared by, whatever the provider is named."""
        return self._accounts[provider]

    def cache_of(self, alias: str | None, model: str) -> ItemCacheSettings:
        """The item cache a job submitted under ``alias`` (None: the model named
        directly) and run by ``model`` keeps its answers in, as configured now: the
        alias's, unless the alias is gone or no longer names the model; then the model's."""
        for name in (alias, model):
            if name is None:
                continue
            try:
                targets = self.resolve(name).targets
            except NotFound:
                continue
            found = next((t.cache for t in targets if str(t.ref) == model), None)
            if found is not None:
                return found
        return _NO_CACHE

    def aliases_of(self, provider: str, model: ModelSettings) -> list[str]:
        """The aliases whose chain includes the model."""
        plain = f"{provider}/{model.id}"
        full = f"{plain}@{model.version}" if model.version else plain
        return sorted(
            a for a, chain in self._chains.items() if any(t.model in (plain, full) for t in chain)
        )

    def resolve(self, name: str) -> Resolved:
        """Resolve a model id or alias; unknown providers and models are 404s."""
        chain = self._chains.get(name)
        if chain is None:
            target = self._target(name, name, None)
            return Resolved(target.ref, target.names, target.output_type, None, (target,))
        targets = tuple(self._target(name, t.model, t.weight) for t in chain)
        cache = self._alias_caches.get(name)
        if cache is not None:
            # The alias's own item cache, whichever target runs the job.
            targets = tuple(replace(t, cache=cache) for t in targets)
        first = targets[0]
        return Resolved(first.ref, (name, *first.names), first.output_type, name, targets)

    def _target(self, name: str, target: str, weight: float | None) -> Target:
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
        names = tuple(dict.fromkeys((str(ref), plain, f"{provider.name}/*")))
        return Target(ref=ref, names=names, output_type=output_type, weight=weight, cache=cache)
