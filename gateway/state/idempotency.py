"""Idempotency keys: the same key and body return the same job; a different body is refused.

A key is remembered per tenant with a fingerprint of the request. While the first
request is in flight the entry is ``pending`` (a replay gets 409); once the job is
accepted it names the job (a replay gets 200 and that job) for the retention time;
if the first request fails the entry is dropped, so a retry can succeed. A pending
entry outlives a crashed replica only briefly (``pending_seconds``).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis

from gateway.state.keyspace import Keyspace
from gateway.state.redis_batch import Batcher
from gateway.state.redis_store import store_errors

Outcome = Literal["new", "replay", "in_flight", "mismatch"]


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    job_id: str | None = None


class IdempotencyStore(Protocol):
    async def claim(self, tenant: str, key: str, fingerprint: str) -> Claim: ...

    async def complete(self, tenant: str, key: str, fingerprint: str, job_id: str) -> None: ...

    async def release(self, tenant: str, key: str) -> None: ...


def _judge(stored: dict[str, str | None], fingerprint: str) -> Claim:
    if stored.get("fp") != fingerprint:
        return Claim("mismatch")
    job = stored.get("job")
    return Claim("replay", job) if job else Claim("in_flight")


class MemoryIdempotencyStore:
    def __init__(
        self,
        *,
        ttl_seconds: float,
        pending_seconds: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[dict[str, str | None], float]] = (
            OrderedDict()
        )
        self._ttl = ttl_seconds
        self._pending = pending_seconds
        self._clock = clock
        self._max = max_entries

    async def claim(self, tenant: str, key: str, fingerprint: str) -> Claim:
        now = self._clock()
        found = self._entries.get((tenant, key))
        if found is not None and found[1] > now:
            return _judge(found[0], fingerprint)
        self._entries[(tenant, key)] = ({"fp": fingerprint, "job": None}, now + self._pending)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return Claim("new")

    async def complete(self, tenant: str, key: str, fingerprint: str, job_id: str) -> None:
        self._entries[(tenant, key)] = (
            {"fp": fingerprint, "job": job_id},
            self._clock() + self._ttl,
        )

    async def release(self, tenant: str, key: str) -> None:
        self._entries.pop((tenant, key), None)


class RedisIdempotencyStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keyspace,
        *,
        ttl_seconds: int,
        pending_seconds: int = 120,
        batcher: Batcher | None = None,
    ) -> None:
        self._r = client
        self._keys = keys
        self._ttl = ttl_seconds
        self._pending = pending_seconds
        self._batch = batcher

    async def _command(self, *args: Any) -> Any:
        # A submit's commands share their trips with other requests' when batched.
        if self._batch is not None:
            return await self._batch.execute(*args)
        return await self._r.execute_command(*args)  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def claim(self, tenant: str, key: str, fingerprint: str) -> Claim:
        name = self._keys.idempotency(tenant, key)
        pending = json.dumps({"fp": fingerprint, "job": None})
        with store_errors():
            # Two tries: the entry may expire between a failed SET NX and the GET.
            for _ in range(2):
                if await self._command("SET", name, pending, "NX", "EX", self._pending):
                    return Claim("new")
                raw = await self._command("GET", name)
                if raw is not None:
                    return _judge(json.loads(raw), fingerprint)
        return Claim("in_flight")

    async def complete(self, tenant: str, key: str, fingerprint: str, job_id: str) -> None:
        value = json.dumps({"fp": fingerprint, "job": job_id})
        with store_errors():
            await self._command("SET", self._keys.idempotency(tenant, key), value, "EX", self._ttl)

    async def release(self, tenant: str, key: str) -> None:
        with store_errors():
            await self._command("DEL", self._keys.idempotency(tenant, key))
