"""Request coalescing: concurrent reads of one job share one provider call.

In one process, callers asking for the same thing while a call is in flight await
that call's outcome, error included (single flight). Across replicas, the first to
take a short Redis lease leads; the others poll what the leader stores (``follow``)
until it appears, the leader publishes an error (they raise the same error), or the
lease ends, in which case they lead themselves. A new leader looks for a stored answer
once more before it calls: the last leader may have finished between its miss and its
lease. Errors are never kept: they are published only to the followers of that one
flight, under the leader's lease token. A caller with nothing another replica could
store for it passes no ``follow``: then only this process's callers share the call.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from gateway.errors import GatewayError
from gateway.state.cache import CacheErrors
from gateway.state.keyspace import Keyspace
from gateway.state.redis_store import REDIS_ERRORS

T = TypeVar("T")

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

_POLL_SECONDS = 0.02


class Coalescer:
    def __init__(
        self,
        *,
        client: aioredis.Redis | None = None,
        keys: Keyspace | None = None,
        lease_seconds: float = 2.0,
        errors: CacheErrors | None = None,
        on_coalesced: Callable[[], None] | None = None,
    ) -> None:
        self._r = client
        self._keys = keys or Keyspace()
        self._lease = lease_seconds
        self._errors = errors or CacheErrors()
        self._on_coalesced = on_coalesced or (lambda: None)
        self._flights: dict[str, asyncio.Future[Any]] = {}

    async def run(
        self,
        name: str,
        lead: Callable[[], Awaitable[T]],
        follow: Callable[[], Awaitable[T | None]] | None,
    ) -> T:
        """``lead()`` once for all concurrent callers of ``name``; see the module doc."""
        flight = self._flights.get(name)
        if flight is not None:
            self._on_coalesced()
            try:
                result: T = await asyncio.shield(flight)
                return result
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # we were cancelled ourselves
                return await self.run(name, lead, follow)  # the leader was: lead again
        flight = asyncio.get_running_loop().create_future()
        self._flights[name] = flight
        try:
            if follow is None:
                result = await lead()
            else:
                result = await self._across_replicas(name, lead, follow)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: followers may be none
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            self._flights.pop(name, None)

    async def _across_replicas(
        self,
        name: str,
        lead: Callable[[], Awaitable[T]],
        follow: Callable[[], Awaitable[T | None]],
    ) -> T:
        r = self._r
        if r is None:
            return await lead()
        lease = self._keys.lease(name)
        token = secrets.token_hex(8)
        try:
            leader = await r.set(lease, token, nx=True, px=int(self._lease * 1000))
            holder = None if leader else await r.get(lease)
        except REDIS_ERRORS as exc:
            self._errors.record("lease", exc)
            return await lead()
        if leader:
            try:
                # A leader that just finished may have stored its answer and released
                # the lease between our cache miss and our SET NX: look once more, or
                # the same answer is fetched twice (T-C2 allows one provider call).
                found = await self._look(follow)
                if found is not None:
                    self._on_coalesced()
                    return found
                return await lead()
            except GatewayError as exc:
                await self._publish(r, name, token, exc)
                raise
            finally:
                await self._release(r, lease, token)
        found = await self._follow(r, name, holder, follow)
        if found is not None:
            self._on_coalesced()
            return found
        return await lead()

    async def _look(self, follow: Callable[[], Awaitable[T | None]]) -> T | None:
        """``follow()``, where failing only means "not there": we then lead anyway."""
        try:
            return await follow()
        except (GatewayError, *REDIS_ERRORS) as exc:
            self._errors.record("look", exc)
            return None

    async def _follow(
        self,
        r: aioredis.Redis,
        name: str,
        holder: bytes | str | None,
        follow: Callable[[], Awaitable[T | None]],
    ) -> T | None:
        deadline = time.monotonic() + self._lease
        lease = self._keys.lease(name)
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            found = await follow()
            if found is not None:
                return found
            try:
                if holder is not None:
                    token = holder.decode() if isinstance(holder, bytes) else holder
                    raw = await r.get(self._keys.flight_error(name, token))
                    if raw is not None:
                        raise _rebuild(json.loads(raw))
                if not await r.exists(lease):
                    break  # the leader is done (or gone): one last look, then lead
            except REDIS_ERRORS as exc:
                self._errors.record("follow", exc)
                return None
        return await follow()

    async def _publish(self, r: aioredis.Redis, name: str, token: str, exc: GatewayError) -> None:
        body = {
            "status": exc.status,
            "code": exc.code,
            "title": exc.title,
            "detail": exc.detail,
            "headers": exc.headers,
        }
        try:
            key = self._keys.flight_error(name, token)
            await r.set(key, json.dumps(body), px=int(self._lease * 1000))
        except REDIS_ERRORS as exc2:
            self._errors.record("publish", exc2)

    async def _release(self, r: aioredis.Redis, lease: str, token: str) -> None:
        try:
            await r.eval(_RELEASE, 1, lease, token)
        except REDIS_ERRORS as exc:
            self._errors.record("release", exc)


def _rebuild(body: dict[str, Any]) -> GatewayError:
    """The leader's error, as seen by a follower on another replica."""
    cls = type(
        "CoalescedError",
        (GatewayError,),
        {"status": int(body["status"]), "code": str(body["code"]), "title": str(body["title"])},
    )
    error: GatewayError = cls(str(body["detail"]), headers=body.get("headers") or {})
    return error
