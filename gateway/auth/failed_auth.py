"""Failed authentications, limited per client address (guessing keys costs time).

Each address gets ``limit`` failures per ``window_seconds``, tracked as one GCRA
timestamp (the "theoretical arrival time" of redis-cell and Stripe's limiter): a failure
pushes it ``window / limit`` seconds into the future, and the address is blocked while
it lies a whole window ahead. A blocked address gets 429 for every credential, right or
wrong, before any is checked; otherwise a guesser could still tell a hit from a miss.

In memory, per replica: this slows guessing down, it is not an exact global quota (N
replicas allow N times the limit). The table is bounded: past ``max_tracked`` entries,
expired ones are dropped, then the oldest.

The client address is the TCP peer, unless the peer is a configured trusted proxy: then
``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first
address that is not one is the client. An address a client wrote further left is never
believed, so a client cannot pick its own bucket.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence

from gateway.auth.settings import AuthSettings
from gateway.clock import Clock

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FailedAuthLimiter:
    def __init__(self, settings: AuthSettings, clock: Clock) -> None:
        failed = settings.failed_auth
        self._window = failed.window_seconds
        self._interval = failed.window_seconds / failed.limit
        self._max_tracked = failed.max_tracked
        self._trusted: tuple[IPNetwork, ...] = tuple(settings.trusted_proxies)
        self._clock = clock
        #: address -> theoretical arrival time (monotonic seconds).
        self._tat: dict[str, float] = {}

    @property
    def tracked(self) -> int:
        """How many addresses the table holds (for tests and a future gauge)."""
        return len(self._tat)

    def client_address(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The address failures are counted against (see the module docstring)."""
        if peer is None:
            return "unknown"
        if not self._is_trusted(peer):
            return peer
        hops = [h.strip() for value in forwarded_for for h in value.split(",")]
        for hop in reversed(hops):
            if _parse(hop) is None:
                break  # a malformed entry: stop believing the header here
            if not self._is_trusted(hop):
                return hop
        return peer

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None when it may now."""
        tat = self._tat.get(address)
        if tat is None:
            return None
        ahead = tat - self._clock.monotonic()
        if ahead < self._window:
            return None
        # Allowed again once the timestamp is less than a window ahead.
        return math.floor(ahead - self._window) + 1

    def record_failure(self, address: str) -> None:
        now = self._clock.monotonic()
        tat = max(self._tat.pop(address, now), now) + self._interval
        self._tat[address] = tat  # re-inserted last: dict order is least recently failed first
        if len(self._tat) > self._max_tracked:
            self._evict(now)

    def _evict(self, now: float) -> None:
        for addr in [a for a, t in self._tat.items() if t <= now]:
            del self._tat[addr]
        while len(self._tat) > self._max_tracked:
            del self._tat[next(iter(self._tat))]

    def _is_trusted(self, address: str) -> bool:
        ip = _parse(address)
        return ip is not None and _in_any(ip, self._trusted)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _in_any(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[IPNetwork]
) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)
