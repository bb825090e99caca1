"""What a submit in flight holds, kept only as long as the submit is alive.

A submit takes its idempotency key (pending) and its concurrent-jobs slot before the
provider is asked, and turns them into lasting ones once the job is recorded. Until
then both are held under a short lease (``submit_lease_seconds``) that is renewed every
third of it while the submit works (a provider call may take up to its ``timeouts.total``,
a pacing turn up to ``pacing.max_wait_seconds``). A replica that dies mid-submit stops
renewing, so both come back within one lease: a retry with the same key is answered
within seconds on another replica (rather than 409 for minutes), and the slot does not
stay taken for ``slot_ttl_seconds``.

A timer, not a task per submit: almost every submit ends long before its first renewal
is due, and a cancelled timer costs next to nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog

from gateway.tasks import spawn

_log = structlog.get_logger("gateway.jobs")

Renewal = Callable[[], Awaitable[object]]


class SubmitLease:
    """Renews what a submit holds while the ``with`` block runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._every = seconds / 3
        self._renewals: list[tuple[str, Renewal]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._open = False

    def keep(self, what: str, renew: Renewal) -> None:
        """Call ``renew`` every third of the lease until the block ends."""
        self._renewals.append((what, renew))

    def __enter__(self) -> SubmitLease:
        self._open = True
        self._schedule()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None

    async def end(self) -> None:
        """Stop renewing, after any renewal under way (the job is recorded: what the
        submit holds is made lasting next, and no late renewal may shorten it again)."""
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        renewing, self._renewing = self._renewing, None
        if renewing is not None:
            await asyncio.gather(renewing, return_exceptions=True)

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._every, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._open:
            self._renewing = spawn(self._renew(), name="submit-lease")

    async def _renew(self) -> None:
        for what, renew in self._renewals:
            try:
                await renew()
            except Exception as exc:
                # Soft: if Redis is away the lease may lapse; the submit goes on, and what
                # it holds is at worst given up early (a retry may then submit again).
                _log.warning("submit_lease_not_renewed", held=what, error=type(exc).__name__)
        self._renewing = None
        if self._open:
            self._schedule()
