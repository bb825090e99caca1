"""A Redis that dies while redis-py is connecting is a lost connection, not a 500.

Found by the durability e2e test (a Redis SIGKILLed mid-submits): a connection whose peer
hung up between the TCP connect and redis-py's handshake leaves a transport the event
loop has already closed, and under uvloop (what ``gateway serve`` runs) the handshake's
write raises ``RuntimeError``, which redis-py lets through. Here the race is made
certain: a real loopback server accepts and resets every connection, and the client's
connection waits until the loop has seen the close before its handshake writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions
import uvloop

from gateway.state.redis_gate import GatedRedis, RedisGate, RedisResting, closed_transport
from gateway.tasks import spawn


class _LateConnection(aioredis.Connection):
    """Connects, then waits until the peer's reset has closed the transport."""

    async def _connect(self) -> None:
        await super()._connect()
        assert self._reader is not None
        await _until_reset(self._reader)


async def _until_reset(reader: asyncio.StreamReader) -> None:
    """Until the server's reset has reached the transport (which the loop then closes)."""
    with contextlib.suppress(ConnectionError):
        await reader.read()
    await asyncio.sleep(0.01)


def _hanging_up_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    return server


async def _serve_hangups(server: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        conn, _ = await loop.sock_accept(server)
        # A reset, as from a killed process with data unread: the client's loop sees the
        # connection lost and closes the transport (a plain FIN would leave it half open).
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def _run(main: Any) -> Any:
    return uvloop.run(main())


def test_a_write_to_a_transport_the_loop_closed_raises_runtime_error_under_uvloop():
    """The behaviour the gateway translates: not an OSError, a RuntimeError."""

    async def main() -> BaseException:
        server = _hanging_up_server()
        serving = spawn(_serve_hangups(server), name="hangups")
        reader, writer = await asyncio.open_connection(*server.getsockname())
        await _until_reset(reader)
        try:
            writer.writelines([b"PING\r\n"])
        except BaseException as exc:  # what it is, is the finding
            return exc
        finally:
            serving.cancel()
            server.close()
        raise AssertionError("the write to a closed transport did not fail")

    exc = _run(main)
    assert isinstance(exc, RuntimeError), repr(exc)
    lost = closed_transport(exc)
    assert isinstance(lost, redis.exceptions.ConnectionError)
    assert lost.__cause__ is exc


def test_a_command_whose_connection_closed_mid_handshake_fails_as_a_lost_connection():
    async def main() -> tuple[BaseException, bool, BaseException]:
        server = _hanging_up_server()
        serving = spawn(_serve_hangups(server), name="hangups")
        host, port = server.getsockname()
        pool = aioredis.ConnectionPool(connection_class=_LateConnection, host=host, port=port)
        gate = RedisGate()
        client = GatedRedis(connection_pool=pool).attach(gate)
        try:
            with pytest.raises(redis.exceptions.ConnectionError) as first:
                await client.get("k")
            down = gate.down
            # The gate closed on it, as on any outage: the next command waits for nothing.
            pipe = client.pipeline()
            pipe.get("k")
            with pytest.raises(RedisResting) as second:
                await pipe.execute()
            return first.value, down, second.value
        finally:
            serving.cancel()
            await gate.close()
            await pool.disconnect()
            server.close()

    first, down, second = _run(main)
    assert isinstance(first.__cause__, RuntimeError), repr(first.__cause__)
    assert down
    assert isinstance(second, RedisResting)


def test_other_runtime_errors_are_not_taken_for_a_lost_connection():
    assert closed_transport(RuntimeError("Event loop is closed")) is None
    assert closed_transport(RuntimeError("dictionary changed size during iteration")) is None
    assert closed_transport(ValueError("closed")) is None
