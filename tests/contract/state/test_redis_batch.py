"""The batcher: concurrent commands share one trip, and each caller gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.limits.buckets import RedisBuckets
from gateway.limits.gcra import Quota
from gateway.state.redis_batch import Batcher
from tests.conftest import fresh_redis


class CountingClient:
    """The real client, counting the pipelines made from it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self.pipelines = 0

    def pipeline(self, **kwargs: Any) -> Any:
        self.pipelines += 1
        return self._client.pipeline(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def test_commands_of_one_loop_turn_go_in_one_pipeline_each_with_its_own_reply(redis_url):
    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        await client.set(f"{p}:a", "1")
        await client.set(f"{p}:b", "2")
        spy = CountingClient(client)
        batcher = Batcher(spy)  # type: ignore[arg-type]
        got = await asyncio.gather(
            batcher.execute("GET", f"{p}:a"),
            batcher.execute("GET", f"{p}:b"),
            batcher.execute("GET", f"{p}:none"),
            batcher.execute("INCR", f"{p}:a"),
        )
        assert list(got) == [b"1", b"2", None, 2]
        assert spy.pipelines == 1


async def test_a_failing_command_fails_only_its_caller(redis_url):
    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        await client.set(f"{p}:s", "text")
        batcher = Batcher(client)
        bad, good = list(
            await asyncio.gather(
                batcher.execute("INCR", f"{p}:s"),
                batcher.execute("GET", f"{p}:s"),
                return_exceptions=True,
            )
        )
        assert isinstance(bad, ResponseError)
        assert good == b"text"
        # Alone in its turn, a command is sent as it is, and fails the same way.
        with pytest.raises(ResponseError):
            await batcher.execute("INCR", f"{p}:s")


async def test_a_lost_server_fails_every_caller_of_the_trip():
    client = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    batcher = Batcher(client)
    try:
        got = await asyncio.gather(
            *(batcher.execute("GET", "k") for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(g, (RedisConnectionError, OSError)) for g in got), got
    finally:
        await client.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_replies(redis_url):
    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        await client.set(f"{p}:a", "1")
        batcher = Batcher(client)
        gone = asyncio.ensure_future(batcher.execute("GET", f"{p}:a"))
        kept = asyncio.ensure_future(batcher.execute("GET", f"{p}:a"))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == b"1"
        assert gone.cancelled()


async def test_a_script_the_server_lost_is_loaded_again(redis_url):
    """A restarted Redis has no scripts: the batched EVALSHA is refused, then loaded."""
    async with fresh_redis(redis_url) as client:
        p = client.test_prefix
        buckets = RedisBuckets(client, batcher=Batcher(client))
        await client.script_flush()
        admitted, _ = await buckets.check([(f"{p}:rl", Quota(rate=10))])
        assert admitted
        assert await client.exists(f"{p}:rl")
