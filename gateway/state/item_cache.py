"""The item cache: a deterministic model's answer to one input, reused for the same input.

An entry is one normalized item result under a key that ``gateway.jobs.item_keys`` derives
from everything that decides the answer (the provider account, model and version, the
options, the input's content) and from its scope (a tenant, or every tenant). Entries are
written when a job finishes and read when a job is submitted; each lives ``ttl_seconds``.
The item's ``input`` name is the first asker's and is replaced by the reader's own.

In Redis (one ``GET``/``SET`` per entry, pipelined: a job's entries spread over a Cluster
like job records do) or in this process (bounded, oldest first out). Failures are soft: a
cache that cannot answer is a miss, and a write that fails is skipped, counted in
``CacheErrors``; a job is never failed for its cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from adapters.base import ItemResult
from gateway.state.cache import CacheErrors
from gateway.state.codec import item_from_json, item_to_json
from gateway.state.keyspace import Keyspace
from gateway.state.redis_store import REDIS_ERRORS


class ItemCache(Protocol):
    async def get_many(self, keys: Sequence[str]) -> list[ItemResult | None]:
        """The entry of each key (None: no entry), in the keys' order."""
        ...

    async def put_many(self, entries: Mapping[str, ItemResult], ttl_seconds: float) -> None: ...


class MemoryItemCache:
    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[ItemResult, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get_many(self, keys: Sequence[str]) -> list[ItemResult | None]:
        now = self._clock()
        found: list[ItemResult | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or entry[1] <= now:
                found.append(None)
            else:
                found.append(entry[0])
        return found

    async def put_many(self, entries: Mapping[str, ItemResult], ttl_seconds: float) -> None:
        until = self._clock() + ttl_seconds
        for key, item in entries.items():
            self._entries.pop(key, None)
            self._entries[key] = (item, until)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class RedisItemCache:
    def __init__(self, client: aioredis.Redis, keys: Keyspace, errors: CacheErrors) -> None:
        self._r = client
        self._keys = keys
        self._errors = errors

    async def get_many(self, keys: Sequence[str]) -> list[ItemResult | None]:
        if not keys:
            return []
        try:
            # A pipeline, not MGET: the entries of one job live on many Cluster nodes.
            pipe = self._r.pipeline(transaction=False)
            for key in keys:
                pipe.get(self._keys.cached_item(key))
            raws = await pipe.execute()
        except REDIS_ERRORS as exc:
            self._errors.record("item_cache.get", exc)
            return [None] * len(keys)
        return [item_from_json(raw) if raw is not None else None for raw in raws]

    async def put_many(self, entries: Mapping[str, ItemResult], ttl_seconds: float) -> None:
        if not entries:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            for key, item in entries.items():
                pipe.set(self._keys.cached_item(key), item_to_json(item), ex=int(ttl_seconds))
            await pipe.execute()
        except REDIS_ERRORS as exc:
            self._errors.record("item_cache.put", exc)
