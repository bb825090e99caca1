"""Configuration of the job engine (``engine``) and of how often it asks a provider (``poll``).

``gateway.config.settings`` embeds ``EngineSettings`` as the ``engine`` section and
``PollSettings`` under each ``providers[]`` entry as ``poll``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Frozen):
    """The job engine: every replica tracks unfinished jobs until they finish."""

    #: Off: a job moves only when a client reads it (one process, the behaviour before
    #: the engine). On: with ``redis.url`` the jobs are shared by every replica through a
    #: durable task queue in Redis; without it they are tracked in this process.
    enabled: bool = True
    #: A read asks the provider itself only when the engine has not refreshed the job's
    #: status for this long (the engine fell behind); otherwise it answers from state.
    max_staleness_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: A task held by a replica that stopped answering (killed, hung) runs again on
    #: another replica after this long.
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    #: Engine tasks one replica runs at once (each waits mostly on a provider).
    concurrency: int = Field(default=32, ge=1, le=1000)
    #: How often a replica looks for tracked jobs whose next check is overdue by more
    #: than ``max_staleness_seconds`` and schedules it again (a safety net: a check is
    #: never lost, but a Redis that lost data can drop one).
    sweep_seconds: float = Field(default=60.0, ge=1, le=3600)


class PollSettings(_Frozen):
    """How often the engine asks a provider about one unfinished job."""

    #: The first check after submit, and the interval again whenever progress is seen.
    initial_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: The interval grows by ``factor`` at every check that sees no progress, up to this.
    max_seconds: float = Field(default=30.0, gt=0, le=86_400)
    factor: float = Field(default=2.0, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> PollSettings:
        if self.max_seconds < self.initial_seconds:
            raise ValueError("max_seconds must be at least initial_seconds")
        return self

    def next_delay(self, previous: float | None, progressed: bool) -> float:
        """The wait before the next check, after one that waited ``previous``."""
        if previous is None or progressed:
            return self.initial_seconds
        return min(self.max_seconds, previous * self.factor)
