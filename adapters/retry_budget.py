"""A retry budget for one provider: retries stay a fraction of the live traffic.

Per-request retry limits alone let a failing provider triple its own load (every
request tries three times) exactly when it can least take it. A budget caps retries
over a sliding window at ``ratio`` of the requests in that window (Envoy's
``retry_budget``: 20 %), with a floor of ``min_retries`` so a quiet provider can still
retry at all. A refused retry is not an error: the caller gets the answer it had.

The window is ``slots`` buckets wide, so memory is fixed whatever the traffic; the
count is per process (each replica's own traffic earns its own retries, so the ratio
holds for the sum too). Time comes from an injected monotonic clock.
"""

from __future__ import annotations

from collections.abc import Callable


class RetryBudget:
    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_retries: int = 3,
        window_seconds: float = 10.0,
        now: Callable[[], float],
        slots: int = 10,
    ) -> None:
        if not 0 <= ratio <= 1 or min_retries < 0 or window_seconds <= 0 or slots < 1:
            raise ValueError("need 0 <= ratio <= 1, min_retries >= 0, window_seconds > 0")
        self._ratio = ratio
        self._floor = min_retries
        self._slot_seconds = window_seconds / slots
        self._now = now
        # Per slot: [slot number, requests, retries]; a stale slot number means "empty".
        self._slots = [[-1, 0, 0] for _ in range(slots)]

    def request(self) -> None:
        """Count one new request (its first attempt)."""
        self._slot()[1] += 1

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it; False means do not retry."""
        requests, retries = self.totals()
        if retries + 1 > max(self._floor, self._ratio * requests):
            return False
        self._slot()[2] += 1
        return True

    def totals(self) -> tuple[int, int]:
        """Requests and retries in the current window."""
        current = self._index()
        oldest = current - len(self._slots) + 1
        live = [s for s in self._slots if s[0] >= oldest]
        return sum(s[1] for s in live), sum(s[2] for s in live)

    def _index(self) -> int:
        return int(self._now() // self._slot_seconds)

    def _slot(self) -> list[int]:
        index = self._index()
        slot = self._slots[index % len(self._slots)]
        if slot[0] != index:
            slot[:] = [index, 0, 0]
        return slot
