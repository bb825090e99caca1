"""GCRA buckets, in this process or in Redis: the storage behind limits and pacing.

``MemoryBuckets`` serves one process (and is the ``local`` fallback when Redis fails);
``RedisBuckets`` runs ``gcra.GCRA_LUA`` so every replica shares each bucket and every
decision is one atomic script timed by Redis's clock. Both pass one contract suite
(``tests/contract/limits/test_buckets.py``), and the in-memory one runs the same arithmetic
(``gcra.gcra_step`` / ``gcra.reserve_step``) as the script.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis

from gateway.limits.gcra import GCRA_LUA, MICROS, Decision, Quota, gcra_step, reserve_step
from gateway.state.redis_batch import Batcher, run_script


class Buckets(Protocol):
    async def check(
        self, buckets: Sequence[tuple[str, Quota]], quantity: int = 1
    ) -> tuple[bool, list[Decision]]:
        """Charge every bucket if every one admits ``quantity``; else charge none."""
        ...

    async def reserve(
        self, key: str, pause_key: str, quota: Quota | None, max_wait: float
    ) -> float:
        """Seconds to wait before sending (charged), or ``-wait`` if over ``max_wait``."""
        ...

    async def pause(self, pause_key: str, seconds: float) -> None:
        """Nothing may be reserved under ``pause_key`` for ``seconds`` from now."""
        ...

    async def paused_for(self, pause_key: str) -> float:
        """Seconds left of the pause under ``pause_key`` (0 when none)."""
        ...


def _monotonic_us() -> int:
    return int(time.monotonic() * MICROS)


class MemoryBuckets:
    """Buckets in a dict; bounded by dropping buckets that are full again (= absent)."""

    def __init__(self, now_us: Callable[[], int] = _monotonic_us, max_keys: int = 100_000):
        self._now = now_us
        self._tat: dict[str, int] = {}
        self._pauses: dict[str, int] = {}
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._tat) + len(self._pauses)

    async def check(
        self, buckets: Sequence[tuple[str, Quota]], quantity: int = 1
    ) -> tuple[bool, list[Decision]]:
        now = self._now()
        decisions: list[Decision] = []
        writes: list[tuple[str, int]] = []
        for key, quota in buckets:
            decision, new_tat = gcra_step(self._live_tat(key, now), now, quota, quantity)
            decisions.append(decision)
            if new_tat is not None:
                writes.append((key, new_tat))
        admitted = all(d.allowed for d in decisions)
        if admitted:
            for key, new_tat in writes:
                self._tat[key] = new_tat
            self._bound(now)
        return admitted, decisions

    async def reserve(
        self, key: str, pause_key: str, quota: Quota | None, max_wait: float
    ) -> float:
        now = self._now()
        wait, new_tat = reserve_step(
            self._live_tat(key, now),
            now,
            quota,
            paused_until_us=self._pauses.get(pause_key, 0),
            max_wait_us=int(max_wait * MICROS),
        )
        if new_tat is not None:
            self._tat[key] = new_tat
            self._bound(now)
        return wait / MICROS

    async def pause(self, pause_key: str, seconds: float) -> None:
        until = self._now() + int(seconds * MICROS)
        self._pauses[pause_key] = max(until, self._pauses.get(pause_key, 0))

    async def paused_for(self, pause_key: str) -> float:
        return max(0, self._pauses.get(pause_key, 0) - self._now()) / MICROS

    def _live_tat(self, key: str, now: int) -> int | None:
        tat = self._tat.get(key)
        # A TAT in the past is a full bucket: the same as no entry (Redis lets it expire).
        return tat if tat is not None and tat > now else None

    def _bound(self, now: int) -> None:
        if len(self._tat) <= self._max_keys:
            return
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._pauses = {k: t for k, t in self._pauses.items() if t > now}
        while len(self._tat) > self._max_keys:
            del self._tat[next(iter(self._tat))]


class RedisBuckets:
    """Buckets in Redis, one Lua script per decision, timed by Redis's ``TIME``.

    With a ``batcher``, each script goes out with other requests' commands
    (``gateway.state.redis_batch``): still one script, one atomic decision. ``now_us``
    exists for tests that compare the script with ``gcra_step`` on a fake clock; in
    service it returns None and Redis's own clock is used.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        now_us: Callable[[], int | None] = lambda: None,
        batcher: Batcher | None = None,
    ) -> None:
        self._script = client.register_script(GCRA_LUA)
        self._client = client
        self._now = now_us
        self._batch = batcher

    async def _run(self, keys: list[str], args: list[str | int]) -> Any:
        return await run_script(self._script, self._batch, keys, args)

    def _now_arg(self) -> str:
        now = self._now()
        return "" if now is None else str(now)

    async def check(
        self, buckets: Sequence[tuple[str, Quota]], quantity: int = 1
    ) -> tuple[bool, list[Decision]]:
        args: list[str | int] = [self._now_arg(), "check", quantity]
        for _, quota in buckets:
            args += [quota.emission_us, quota.tolerance_us]
        reply = await self._run([k for k, _ in buckets], args)
        out = [int(n) for n in reply.split()]
        decisions = [
            Decision(
                allowed=bool(out[2 + 4 * i]),
                limit=quota.limit,
                remaining=out[3 + 4 * i],
                retry_after_us=out[4 + 4 * i],
                reset_after_us=out[5 + 4 * i],
            )
            for i, (_, quota) in enumerate(buckets)
        ]
        return bool(out[0]), decisions

    async def reserve(
        self, key: str, pause_key: str, quota: Quota | None, max_wait: float
    ) -> float:
        emission, tolerance = (quota.emission_us, quota.tolerance_us) if quota else (0, 0)
        out = await self._run(
            [key, pause_key],
            [self._now_arg(), "reserve", int(max_wait * MICROS), emission, tolerance],
        )
        return int(out[0]) / MICROS

    async def pause(self, pause_key: str, seconds: float) -> None:
        await self._run([pause_key], [self._now_arg(), "pause", int(seconds * MICROS)])

    async def paused_for(self, pause_key: str) -> float:
        # PTTL is the pause's remaining time by construction (the key expires at its end).
        left = await self._client.pttl(pause_key)
        return max(0, int(left)) / 1000
