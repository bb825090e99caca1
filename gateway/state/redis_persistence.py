"""Whether the Redis behind the gateway would keep job state through a restart.

Job records, idempotency keys and limit counters live only in Redis: a Redis that keeps
nothing on disk and has no replica loses every accepted job when it restarts (docs/operations.md
"What Redis the gateway needs, and why"). This module asks the server(s) the client
reaches, once at start-up and again when the answer was not known, and says what it
found: as one structured warning when the Redis is not durable, and in ``/readyz``.

The question is asked with ``CONFIG GET`` (appendonly, appendfsync, save); a managed
Redis often refuses CONFIG, and then ``INFO persistence`` answers whether the
append-only file is on. ``INFO replication`` adds the replicas a master streams to (a
managed Redis with replication survives the loss of one node). If nothing answers,
the verdict is ``unknown``: never a reason not to start. On a Sentinel set-up the
server asked is the current master; on a Cluster, every master.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from gateway.state.redis_store import REDIS_ERRORS

_log = structlog.get_logger("gateway.state")

#: aof: an append-only file; replicated: no AOF, but replicas; snapshots: RDB snapshots
#: only (a restart loses the writes since the last one); none: nothing on disk and no
#: replica; unknown: the server would not say (or did not answer).
Mode = Literal["aof", "replicated", "snapshots", "none", "unknown"]
#: What the client reaches: one server, a Sentinel's master, or a Cluster's masters.
Scope = Literal["server", "sentinel master", "cluster masters"]

#: Worst first: a Cluster is as durable as its least durable master.
_RANK: dict[str, int] = {"none": 0, "snapshots": 1, "unknown": 2, "replicated": 3, "aof": 4}

Command = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Persistence:
    """What the Redis servers keep, as ``/readyz`` reports it."""

    mode: Mode
    #: How it was learned, e.g. "appendonly=no save='' replicas=0 (CONFIG GET)".
    detail: str
    scope: Scope
    #: Servers asked (a Cluster's masters; otherwise 1).
    servers: int = 1

    @property
    def durable(self) -> bool | None:
        """True with an AOF or replicas; False with nothing (or snapshots only); None unknown."""
        if self.mode == "unknown":
            return None
        return self.mode in ("aof", "replicated")

    def as_dict(self) -> dict[str, Any]:
        return {
            "persistence": self.mode,
            "durable": self.durable,
            "detail": self.detail,
            "checked": self.scope,
            "servers": self.servers,
        }


NOT_CHECKED = Persistence("unknown", "not checked yet", "server")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _config(answer: Any) -> dict[str, str]:
    """CONFIG GET's answer (a dict from redis-py's parser, or a flat list) as text."""
    if isinstance(answer, dict):
        return {_text(k): _text(v) for k, v in answer.items()}
    items = list(answer or [])
    return {_text(k): _text(v) for k, v in zip(items[::2], items[1::2], strict=True)}


def _info(answer: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (answer or {}).items()}


async def _replicas(run: Command) -> int | None:
    try:
        info = _info(await run("INFO", "replication"))
    except ResponseError:
        return None
    try:
        return int(info.get("connected_slaves", "0"))
    except ValueError:
        return None


async def server_persistence(run: Command) -> tuple[Mode, str]:
    """One server's verdict, asked through ``run`` (a command on that server)."""
    # A refusal (ResponseError: unknown command, NOPERM) moves on to the next question;
    # a Redis that does not answer at all raises, and the caller says "unknown".
    replicas = await _replicas(run)
    shown = "?" if replicas is None else str(replicas)
    try:
        config = _config(await run("CONFIG", "GET", "appendonly"))
        config.update(_config(await run("CONFIG", "GET", "save")))
        config.update(_config(await run("CONFIG", "GET", "appendfsync")))
        source = "CONFIG GET"
        aof = config.get("appendonly", "").lower() == "yes"
        snapshots: bool | None = bool(config.get("save", "").strip())
        detail = (
            f"appendonly={config.get('appendonly', '?')} "
            f"appendfsync={config.get('appendfsync', '?')} save={config.get('save', '')!r}"
        )
    except ResponseError:
        # Managed Redis (ElastiCache, Memorystore, ...) often refuses CONFIG.
        try:
            info = _info(await run("INFO", "persistence"))
        except ResponseError as exc:
            return "unknown", f"CONFIG and INFO refused ({str(exc)[:80]})"
        if "aof_enabled" not in info:
            return "unknown", "INFO persistence has no aof_enabled"
        source = "INFO persistence"
        aof = info["aof_enabled"] == "1"
        # INFO does not show the save schedule: only whether a snapshot was ever taken.
        snapshots = None
        detail = f"aof_enabled={info['aof_enabled']}"
    detail += f" replicas={shown} ({source})"
    if aof:
        return "aof", detail
    if replicas:
        return "replicated", detail
    if snapshots is None:
        # No AOF and no replica: the documented need is not met either way.
        return "none", detail + "; snapshot schedule unknown"
    return ("snapshots" if snapshots else "none"), detail


async def check_persistence(client: aioredis.Redis) -> Persistence:
    """What the Redis behind ``client`` keeps; never raises (``unknown`` instead)."""
    try:
        primaries = getattr(client, "get_primaries", None)
        if primaries is not None:
            if not primaries():
                # A Cluster client learns its nodes on its first command: ask now.
                await client.initialize()
            return await _cluster(client, primaries())
        scope: Scope = "sentinel master" if _is_sentinel(client) else "server"
        mode, detail = await server_persistence(client.execute_command)
        return Persistence(mode, detail, scope)
    except REDIS_ERRORS as exc:
        return Persistence("unknown", f"Redis did not answer ({type(exc).__name__})", "server")


async def _cluster(client: aioredis.Redis, nodes: list[Any]) -> Persistence:
    if not nodes:
        # Not yet initialised (no node answered at start-up): ask again later.
        return Persistence("unknown", "no cluster master known yet", "cluster masters", 0)
    verdicts: list[tuple[Mode, str]] = []
    for node in nodes:

        async def run(*args: Any, node: Any = node) -> Any:
            return await client.execute_command(*args, target_nodes=node)  # type: ignore[no-untyped-call]  # untyped in redis-py

        mode, detail = await server_persistence(run)
        verdicts.append((mode, f"{node.name}: {detail}"))
    worst = min(verdicts, key=lambda v: _RANK[v[0]])
    return Persistence(worst[0], worst[1], "cluster masters", len(nodes))


def _is_sentinel(client: aioredis.Redis) -> bool:
    return getattr(client.connection_pool, "sentinel_manager", None) is not None


class PersistenceReport:
    """The latest verdict, and its one warning per process."""

    def __init__(self) -> None:
        self.current: Persistence = NOT_CHECKED
        self._warned = False
        self._said_unknown = False

    def note(self, found: Persistence) -> None:
        """Keep ``found``; the first time it is not durable, say so as a warning."""
        self.current = found
        if found.durable is False and not self._warned:
            self._warned = True
            _log.warning(
                "redis_not_durable",
                persistence=found.mode,
                detail=found.detail,
                checked=found.scope,
                servers=found.servers,
                consequence=(
                    "job records, idempotency keys and limits are lost when this Redis "
                    "restarts: run it with appendonly yes, or use a replicated Redis"
                ),
            )
        elif found.durable is None and not self._said_unknown:
            self._said_unknown = True
            _log.info("redis_persistence_unknown", detail=found.detail, checked=found.scope)
