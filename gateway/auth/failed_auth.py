"""Failed authentications, limited per client address (guessing keys costs time).

**The limit.** An address may fail at most ``limit`` times in any ``window_seconds``: a
sliding log of its recent failures, not a rate, so "20 per minute" means 20 in any 60
seconds, never 20 at once and then one more every 3 s. Past it, a credential from the
address that does not verify gets 429 with ``Retry-After`` (until its oldest failure
leaves the window) instead of 401; one that verifies still goes through (the auth
middleware checks it first), so a neighbour's mistyped keys behind a shared egress deny
no one else there. The price: a guesser over the limit still tells a hit (200) from a
miss (429), so the limit slows the noise of guessing, not a guess at a weak key; API keys
must be long random strings (the README says how to make one).

**Charged before it is checked.** Every credential not known good (below) is charged as
a failure *before* it is checked, and the charge is given back when it verifies: guesses
sent at once, to one replica or to many, cannot slip through between a check and a count.
A request with no credential at all is not a guess and is not charged.

**Known good.** A credential that verified from an address is remembered there (as a
digest) for ``KNOWN_GOOD_SECONDS``, and from that address it costs no charge (and, with
Redis, no Redis trip for half that time). A known one that fails (an expired token) is
forgotten and its failure counted.

**Where.** With Redis, the log and the known-good set are shared by every replica
(``gateway.limits.auth_failures``: one script per decision, timed by Redis's clock), and
each replica also keeps what it saw verify, so a known credential costs no Redis trip
for the first half of its time (the second half refreshes it in Redis). When Redis
cannot answer, the replica decides alone, with the limit divided by ``ratelimit.replicas``;
without Redis, each process is the only judge. In this process, the tables are bounded:
past ``max_tracked`` entries, expired ones are dropped, then the oldest.

**The address** is the TCP peer, unless the peer is a configured trusted proxy: then
``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first
address that is not one is the client. An address a client wrote further left is never
believed, so a client cannot pick its own bucket.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.auth.settings import AuthSettings
from gateway.clock import Clock

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How long a credential that verified from an address stays known good there.
KNOWN_GOOD_SECONDS = 3600.0


def credential_digest(credential: str) -> str:
    """What the known-good tables hold instead of the credential (128 bits of SHA-256)."""
    return hashlib.sha256(credential.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Charge:
    """A failure log's answer to one credential from one address."""

    admitted: bool
    #: A failure was charged under the attempt's token (given back if it verifies).
    reserved: bool = False
    #: Known good from this address: admitted with nothing charged.
    known: bool = False
    #: Refused: seconds until the address's oldest counted failure leaves the window.
    retry_after: float = 0.0


class FailureLog(Protocol):
    """An address's recent failures and its known-good credentials (by digest)."""

    async def charge(self, address: str, digest: str, token: str) -> Charge | None:
        """Admit ``digest`` if known good from ``address``; else charge a failure under
        ``token`` if the window holds fewer than the limit; else refuse. None: no answer
        (Redis failed), decide elsewhere."""
        ...

    async def settle(self, address: str, token: str | None, good: str | None) -> bool:
        """Give back the failure charged under ``token``; remember ``good`` as known good
        from ``address``. False when it could not be done."""
        ...

    async def fail(self, address: str, digest: str, token: str) -> bool:
        """A known-good credential failed: forget it, count a failure under ``token``."""
        ...


class MemoryFailureLog:
    """A ``FailureLog`` in this process, on ``monotonic`` seconds, bounded by ``max_tracked``."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        *,
        limit: int,
        window: float,
        max_tracked: int,
        known_seconds: float = KNOWN_GOOD_SECONDS,
    ) -> None:
        self._now = monotonic
        self._limit = limit
        self._window = window
        self._max_tracked = max_tracked
        self._known_seconds = known_seconds
        #: address -> [(when, token)], oldest first; dict order: least recently charged first.
        self._failures: dict[str, list[tuple[float, str]]] = {}
        #: (address, digest) -> when it stops being known good; least recently verified first.
        self._known: dict[tuple[str, str], float] = {}

    @property
    def tracked(self) -> int:
        """Addresses with failures in the table (for tests and a future gauge)."""
        return len(self._failures)

    def known_for(self, address: str, digest: str) -> float:
        """Seconds ``digest`` stays known good from ``address`` (0 when it is not)."""
        until = self._known.get((address, digest))
        return 0.0 if until is None else max(0.0, until - self._now())

    def remember(self, address: str, digest: str) -> None:
        self._known.pop((address, digest), None)  # re-inserted last
        self._known[(address, digest)] = self._now() + self._known_seconds
        if len(self._known) > self._max_tracked:
            now = self._now()
            self._known = {k: t for k, t in self._known.items() if t > now}
            while len(self._known) > self._max_tracked:
                del self._known[next(iter(self._known))]

    def forget(self, address: str, digest: str) -> None:
        self._known.pop((address, digest), None)

    async def charge(self, address: str, digest: str, token: str) -> Charge:
        if self.known_for(address, digest) > 0:
            return Charge(admitted=True, known=True)
        now = self._now()
        log = self._live(address, now)
        if len(log) >= self._limit:
            self._failures[address] = log
            oldest = log[len(log) - self._limit][0]
            return Charge(admitted=False, retry_after=oldest + self._window - now)
        log.append((now, token))
        self._failures[address] = log
        self._bound(now)
        return Charge(admitted=True, reserved=True)

    async def settle(self, address: str, token: str | None, good: str | None) -> bool:
        if token is not None:
            log = self._failures.get(address)
            if log is not None:
                log[:] = [entry for entry in log if entry[1] != token]
                if not log:
                    del self._failures[address]
        if good is not None:
            self.remember(address, good)
        return True

    async def fail(self, address: str, digest: str, token: str) -> bool:
        self.forget(address, digest)
        now = self._now()
        log = self._live(address, now)
        log.append((now, token))
        self._failures[address] = log
        self._bound(now)
        return True

    def _live(self, address: str, now: float) -> list[tuple[float, str]]:
        """The address's failures still in the window (taken out of the table)."""
        log = self._failures.pop(address, [])
        start = now - self._window
        return [entry for entry in log if entry[0] > start]

    def _bound(self, now: float) -> None:
        if len(self._failures) <= self._max_tracked:
            return
        start = now - self._window
        self._failures = {a: log for a, log in self._failures.items() if log[-1][0] > start}
        while len(self._failures) > self._max_tracked:
            del self._failures[next(iter(self._failures))]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One credential from one address, admitted or not, and where it was charged."""

    address: str
    digest: str
    #: The failure charged for it, given back when it verifies (None: nothing charged).
    token: str | None
    #: Refused: whole seconds until the address may try again; None when admitted.
    retry_after: int | None
    #: The log that decided (None: known good in this process, no log was asked).
    log: FailureLog | None


class FailedAuthLimiter:
    """The limit the auth middleware applies (see the module docstring)."""

    def __init__(
        self,
        settings: AuthSettings,
        clock: Clock,
        *,
        shared: FailureLog | None = None,
        replicas: int = 1,
    ) -> None:
        failed = settings.failed_auth
        self._trusted: tuple[IPNetwork, ...] = tuple(settings.trusted_proxies)
        #: Each address's answer once parsed: a request's peer is asked on every request,
        #: and the peers of a deployment are few (its proxies, or its callers).
        self._trusted_seen: dict[str, bool] = {}
        self._shared = shared
        # Deciding alone while Redis is away: this replica's share of the limit.
        limit = failed.limit if shared is None else max(1, failed.limit // max(1, replicas))
        self._local = MemoryFailureLog(
            clock.monotonic,
            limit=limit,
            window=failed.window_seconds,
            max_tracked=failed.max_tracked,
        )

    @property
    def tracked(self) -> int:
        """Addresses with failures in this process's table."""
        return self._local.tracked

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

    async def admit(self, address: str, credential: str) -> Attempt:
        """Charge ``credential`` from ``address`` before it is checked (or refuse it)."""
        digest = credential_digest(credential)
        # Known good here, and not yet due for a refresh in Redis: nothing to ask.
        fresh = KNOWN_GOOD_SECONDS / 2 if self._shared is not None else 0.0
        if self._local.known_for(address, digest) > fresh:
            return Attempt(address, digest, None, None, None)
        token = secrets.token_hex(8)
        if self._shared is not None:
            charge = await self._shared.charge(address, digest, token)
            if charge is not None:
                return _attempt(address, digest, token, charge, self._shared)
        charge = await self._local.charge(address, digest, token)
        return _attempt(address, digest, token, charge, self._local)

    async def succeeded(self, attempt: Attempt) -> None:
        """The credential verified: give its charge back, remember it as known good."""
        if attempt.log is None:  # known here and fresh
            if self._shared is None:
                self._local.remember(attempt.address, attempt.digest)
            return  # with Redis, the refresh comes when half its time is gone
        await attempt.log.settle(attempt.address, attempt.token, attempt.digest)
        if attempt.log is not self._local:
            self._local.remember(attempt.address, attempt.digest)

    async def failed(self, attempt: Attempt) -> None:
        """The credential did not verify: its charge stands (or, if it was known good
        and so not charged, it is forgotten and a failure counted now)."""
        self._local.forget(attempt.address, attempt.digest)
        if attempt.token is not None:
            return
        token = secrets.token_hex(8)
        if self._shared is not None and await self._shared.fail(
            attempt.address, attempt.digest, token
        ):
            return
        await self._local.fail(attempt.address, attempt.digest, token)

    async def abandoned(self, attempt: Attempt) -> None:
        """Checking failed for another reason (not the credential's): give the charge back."""
        if attempt.token is not None and attempt.log is not None:
            await attempt.log.settle(attempt.address, attempt.token, None)

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        seen = self._trusted_seen.get(address)
        if seen is None:
            ip = _parse(address)
            seen = ip is not None and _in_any(ip, self._trusted)
            if len(self._trusted_seen) >= _MAX_SEEN_ADDRESSES:
                self._trusted_seen.clear()  # many distinct callers: start over, stay bounded
            self._trusted_seen[address] = seen
        return seen


_MAX_SEEN_ADDRESSES = 4096


def _attempt(address: str, digest: str, token: str, charge: Charge, log: FailureLog) -> Attempt:
    if not charge.admitted:
        wait = max(1, math.ceil(charge.retry_after))
        return Attempt(address, digest, None, wait, log)
    return Attempt(address, digest, token if charge.reserved else None, None, log)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _in_any(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[IPNetwork]
) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)
