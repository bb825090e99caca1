"""Answers reused across jobs: the item cache's part in a submit and in a job's finish.

At submit (``plan``), for a model whose ``cache.items`` is on, each input's key is
derived (``gateway.jobs.item_keys``) and looked up: the inputs found are answered at once,
only the others go to the provider, and their keys go into the job's record. When the
job finishes (``remember``, from whichever replica or engine task sees it finish), the
provider's succeeded answers are written under those keys for ``ttl_seconds``. A failed
item is never kept: asking again may succeed.

An input repeated within one submit (the same key) is sent once: its repeats are
*copies*, answered with what the provider answers for the first (``item_of``). Only a
model with an item cache does this, for the same reason it caches at all.

``options.cache``: ``bypass`` looks nothing up but writes the fresh answers (an entry
refreshed), repeats still sent once; ``off`` does neither. Everything here is soft: an
item cache that cannot answer is a miss, and a job is never failed for its cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import structlog

from adapters.base import ItemResult, ItemStatus, JobRequest, ResultSet
from gateway.jobs.catalog import ModelCatalog, Resolved
from gateway.jobs.item_keys import item_key
from gateway.state.item_cache import ItemCache
from gateway.state.store import JobRecord

_log = structlog.get_logger("gateway.jobs")

CacheMode = Literal["use", "bypass", "off"]


class ReuseObserver(Protocol):
    def item_cache_lookups(self, provider: str, hits: int, misses: int) -> None: ...

    def item_cache_bypassed(self, provider: str, items: int) -> None: ...

    def item_cache_written(self, provider: str, items: int) -> None: ...

    def item_cache_repeats(self, provider: str, items: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """What the item cache answers of one submit."""

    #: Inputs answered from the cache, by name (the entry's item, renamed).
    cached: dict[str, ItemResult] = field(default_factory=dict)
    #: The key of each input that goes to the provider: its answer is kept under it.
    keys: dict[str, str] = field(default_factory=dict)
    #: Inputs that repeat an earlier input of the same submit, by name: the earlier
    #: one's name. Not sent; answered with its answer.
    copies: dict[str, str] = field(default_factory=dict)

    def everything_cached(self, request: JobRequest) -> bool:
        return len(self.cached) == len(request.inputs)

    def not_sent(self, name: str) -> bool:
        return name in self.cached or name in self.copies


class ItemReuse:
    def __init__(self, cache: ItemCache, catalog: ModelCatalog, observer: ReuseObserver) -> None:
        self._cache = cache
        self._catalog = catalog
        self._observer = observer

    async def plan(
        self, tenant: str, resolved: Resolved, request: JobRequest, mode: CacheMode
    ) -> ItemPlan | None:
        """None when the model has no item cache or the caller turned it off."""
        settings = resolved.cache
        if not settings.items or mode == "off":
            return None
        ref = resolved.ref
        keys = self._keys(tenant, settings.scope, replace(request, model=ref))
        cached: dict[str, ItemResult] = {}
        if mode == "bypass":
            self._observer.item_cache_bypassed(ref.provider, len(keys))
        else:
            unique = list(dict.fromkeys(keys.values()))
            found = dict(zip(unique, await self._cache.get_many(unique), strict=True))
            cached = {
                name: replace(item, input=name)
                for name, key in keys.items()
                if (item := found[key]) is not None
            }
        # Of the inputs left, the first with each key is sent; the others copy it.
        first: dict[str, str] = {}
        sent: dict[str, str] = {}
        copies: dict[str, str] = {}
        for name, key in keys.items():
            if name in cached:
                continue
            if key in first:
                copies[name] = first[key]
            else:
                first[key] = name
                sent[name] = key
        if mode != "bypass":
            self._observer.item_cache_lookups(ref.provider, len(cached), len(sent))
        if copies:
            self._observer.item_cache_repeats(ref.provider, len(copies))
        return ItemPlan(cached=cached, keys=sent, copies=copies)

    def for_target(
        self,
        tenant: str,
        plan: ItemPlan | None,
        resolved: Resolved,
        request: JobRequest,
        mode: CacheMode,
    ) -> ItemPlan | None:
        """``plan`` (made as the first target's) for the target ``request`` is going to:
        the answers it gives are kept under its own account and model, as its cache
        settings say (the alias's, or its model's; none, if it keeps none). What the
        first target's entries answered stays answered."""
        if plan is None or mode == "off":
            return plan
        settings = resolved.cache_of(request.model)
        keys = self._keys(tenant, settings.scope, request) if settings.items else {}
        return replace(plan, keys={n: k for n, k in keys.items() if not plan.not_sent(n)})

    def _keys(self, tenant: str, scope: str, request: JobRequest) -> dict[str, str]:
        account = self._catalog.account(request.model.provider)
        return {
            item.name: item_key(
                scope="" if scope == "global" else tenant,
                account=account,
                model=request.model,
                options=request.options,
                explain=request.explain,
                item=item,
            )
            for item in request.inputs
        }

    async def remember(
        self, record: JobRecord, results: Callable[[], Awaitable[ResultSet]]
    ) -> None:
        """Keep the finished job's succeeded answers under the keys its record holds."""
        if not record.cache_keys:
            return
        try:
            ttl = self._catalog.cache_of(record.alias, record.model).ttl_seconds
            found = await results()
        except Exception as exc:
            # The answers stay with the job; only their reuse is lost.
            _log.warning("item_cache_not_written", job_id=record.id, error=type(exc).__name__)
            return
        entries = {
            key: replace(item, input="", cached=False)
            for name, key in record.cache_keys.items()
            if (item := found.items.get(name)) is not None and item.status is ItemStatus.SUCCEEDED
        }
        await self._cache.put_many(entries, ttl)
        self._observer.item_cache_written(record.provider, len(entries))
