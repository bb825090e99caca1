"""Configuration of the shared store: where every replica keeps jobs, results and limits.

``gateway.config.settings`` embeds ``RedisSettings`` as the ``redis`` section. A URL is
checked here (``gateway.state.redis_url``), so a bad one is a named configuration
problem rather than a traceback from the client's constructor when the app is built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gateway.state.redis_url import check_redis_url


class RedisSettings(BaseModel):
    """The shared store of every replica; unset, one process keeps state in memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``cluster`` uses redis-py's RedisCluster with the same URL. (Declared before
    #: ``url``: the URL's check depends on it.)
    mode: Literal["standalone", "cluster"] = "standalone"
    #: ``redis://``, ``rediss://``, ``unix://`` (redis-py's own URL support), or
    #: ``redis+sentinel://host:port[,host:port]/service_name[/db]`` (``gateway.state.redis_url``).
    url: str | None = None
    prefix: str = Field(default="gw", pattern=r"^[A-Za-z0-9:_-]{1,32}$")
    #: Seconds; a hung Redis must cost a request no more than this.
    socket_timeout: float = Field(default=0.5, gt=0, le=30)
    connect_timeout: float = Field(default=0.5, gt=0, le=30)
    max_connections: int = Field(default=100, ge=1, le=10_000)
    #: How long a replica leading a shared provider read holds its lease.
    lease_seconds: float = Field(default=2.0, gt=0, le=60)
    #: How often each replica looks whether Redis restarted (its run_id changed), to
    #: write back the job records it knows that Redis lost (``gateway.state.recall``).
    restart_check_seconds: float = Field(default=5.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _usable_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        # Checked here, so a bad URL is a named configuration problem rather than a
        # traceback from the client's constructor when the app is built.
        if v is not None:
            check_redis_url(v, info.data.get("mode", "standalone"))
        return v
