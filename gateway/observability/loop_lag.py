"""Event-loop lag: how late the loop wakes a timer, exported as a gauge.

Every request, provider call and timer of the process shares one event loop. When
something holds it (CPU-heavy parsing, a blocking call), every other request
waits, and the first visible symptom is that timers fire late. A background task
sleeps for a fixed interval and records how much longer than that it actually
took; the lag is the time the loop was busy elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import Gauge

#: How often the loop is probed; a probe costs one timer wake-up.
INTERVAL_SECONDS = 0.5


async def measure_lag(
    gauge: Gauge,
    *,
    interval: float = INTERVAL_SECONDS,
    now: Callable[[], float] | None = None,
) -> None:
    """Forever: sleep ``interval``, then set ``gauge`` to how late the wake-up was."""
    loop = asyncio.get_running_loop()
    clock = now or loop.time
    gauge.set(0)
    while True:
        before = clock()
        await asyncio.sleep(interval)
        gauge.set(max(0.0, clock() - before - interval))
