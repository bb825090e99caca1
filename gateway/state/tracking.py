"""Which unfinished jobs the engine tracks, and where each one's chain of checks stands.

Each tracked job has a sequence number: the check numbered ``seq`` is the only one
that may ask the provider, and it moves the job to ``seq + 1`` with a compare-and-set
(``advance``) before it schedules the next check. A duplicate of a check (a task run
again after its replica died, or scheduled twice) finds the number moved on and does
nothing, so a job is never polled twice in one interval, on one replica or several.
The due time of each job's next check lets a sweep find a chain that was lost.

``MemoryTracking`` serves one process; ``gateway.state.redis_tracking`` keeps the same
entries in Redis for every replica (one Lua script per step), and both pass one
contract suite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Tracked:
    tenant: str
    job_id: str
    seq: int
    #: Wall-clock time (epoch seconds) the next check is due.
    due: float
    #: The wait before that check (the backoff grows from it).
    delay: float
    #: Provider checks made so far.
    polls: int = 0


class Tracking(Protocol):
    async def start(self, tenant: str, job_id: str, *, due: float, delay: float) -> None:
        """Track a new job (its first check is ``seq`` 0); a tracked job is left as is."""
        ...

    async def get(self, job_id: str) -> Tracked | None: ...

    async def advance(
        self, job_id: str, seq: int, *, due: float, delay: float, polled: bool
    ) -> bool:
        """Move the job from ``seq`` to ``seq + 1`` if it is still at ``seq``."""
        ...

    async def finish(self, job_id: str) -> None:
        """Stop tracking the job."""
        ...

    async def overdue(self, before: float, limit: int) -> list[Tracked]:
        """Tracked jobs whose next check was due before ``before``, most overdue first."""
        ...

    async def count(self) -> int: ...


class MemoryTracking:
    def __init__(self) -> None:
        self._jobs: dict[str, Tracked] = {}

    async def start(self, tenant: str, job_id: str, *, due: float, delay: float) -> None:
        self._jobs.setdefault(job_id, Tracked(tenant, job_id, 0, due, delay))

    async def get(self, job_id: str) -> Tracked | None:
        return self._jobs.get(job_id)

    async def advance(
        self, job_id: str, seq: int, *, due: float, delay: float, polled: bool
    ) -> bool:
        found = self._jobs.get(job_id)
        if found is None or found.seq != seq:
            return False
        self._jobs[job_id] = replace(
            found, seq=seq + 1, due=due, delay=delay, polls=found.polls + int(polled)
        )
        return True

    async def finish(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    async def overdue(self, before: float, limit: int) -> list[Tracked]:
        late = sorted((t for t in self._jobs.values() if t.due < before), key=lambda t: t.due)
        return late[:limit]

    async def count(self) -> int:
        return len(self._jobs)
