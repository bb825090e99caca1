"""Fallback aliases: a submit goes to the first target of an alias's chain that takes it.

An alias may name an ordered chain of targets, optionally weighted for a split
(``aliases`` in the configuration). A submit then:

1. keeps the targets the caller may use (an alias on the allow-list grants its chain;
   a target on it grants that target) and puts them in order: configured order, or,
   weighted, one drawn by weight first and the others after it in configured order;
2. drops each target whose adapter cannot take the inputs or options (validated per
   target: each provider has its own rules), logging why; if none can, the first
   target's refusal is the answer;
3. tries the rest in turn, one attempt each, within the request's deadline. A target
   is passed over, before its attempt, when its provider's circuit is open (until its
   probe is due: then the attempt goes, as the probe, so a recovered primary gets its
   traffic back) or it is paused by a ``Retry-After`` (waiting out a pause is what the
   fallback saves); and after it, when the tenant's daily quota for its provider is
   spent, or when the attempt is refused before anything could have been taken: the
   breaker's probe is out elsewhere, no pacing turn, the provider unreachable, or an
   answer of 429 or 5xx (but 504). What the provider may have taken it never resends
   (``adapters.send_trace``): a timeout, a connection lost after the body was sent,
   an answer it cannot read.

The last target left is always attempted, whatever its state, so a chain that runs out
answers as a plain model would (503 + ``Retry-After``, 429 ``quota_exceeded``, ...).
A model named directly is a chain of one: every error is its own answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

import structlog

from adapters.base import JobRequest, ProviderAdapter
from adapters.errors import ProviderError
from adapters.send_trace import tracing
from adapters.upstream import DEADLINE
from gateway.errors import FieldError, NotFound, QuotaExceeded, ValidationFailed
from gateway.jobs.catalog import Target

_log = structlog.get_logger("gateway.jobs")

T = TypeVar("T")
#: One attempt at a target: the request (its model set to the target) and its adapter.
Attempt = Callable[[JobRequest, ProviderAdapter], Awaitable[T]]

#: Why a target was passed over (the ``reason`` label of ``gateway_fallbacks_total``).
REASONS = (
    "inputs",  # its adapter cannot take the inputs or options
    "paused",  # a Retry-After pause
    "quota",  # the tenant's daily jobs on its provider are spent
    "circuit_open",
    "busy",  # no pacing turn within the wait the caller allows
    "unreachable",  # the connection was never made
    "throttled",  # answered 429
    "unavailable",  # answered 503
    "failed",  # answered another 5xx
)
#: The ``to`` label when no target was left to try.
NO_TARGET = "none"


class FallbackObserver(Protocol):
    def fallback(self, alias: str, source: str, target: str, reason: str) -> None: ...


class _NoObserver:
    def fallback(self, alias: str, source: str, target: str, reason: str) -> None:
        return None


def first_choice(targets: Sequence[Target], rng: random.Random) -> list[Target]:
    """The targets in the order to try them: as configured, or, when weighted, one
    drawn by weight first and the others after it in their configured order."""
    weights = [t.weight or 0.0 for t in targets]
    if len(targets) < 2 or targets[0].weight is None or sum(weights) <= 0:
        return list(targets)
    first = rng.choices(range(len(targets)), weights=weights)[0]
    return [targets[first], *(t for i, t in enumerate(targets) if i != first)]


def check_target(adapter: ProviderAdapter, request: JobRequest) -> None:
    """Raise if the target's adapter cannot take the request (422)."""
    if request.explain and not adapter.capabilities.explain:
        raise ValidationFailed(
            "This provider cannot explain its predictions.",
            errors=[FieldError("/options/explain", "not supported by this provider")],
        )
    adapter.validate(request)


class Fallback:
    """Tries the targets of a submit in turn (see the module docstring)."""

    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        *,
        passed_over: Callable[[str], Awaitable[str | None]] | None = None,
        observer: FallbackObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        passed_over: why a provider should not be tried now (``circuit_open``,
            ``paused``), or None; asked only while another target is left.
        """
        self._adapters = adapters
        self._passed_over_now = passed_over
        self._observer: FallbackObserver = observer or _NoObserver()
        self._rng = rng or random.Random()

    async def submit(
        self,
        alias: str | None,
        targets: Sequence[Target],
        request: JobRequest,
        attempt: Attempt[T],
    ) -> T:
        """What ``attempt`` returns for the first target that takes the job."""
        ordered = first_choice(targets, self._rng)
        label = alias or ordered[0].label
        usable: list[tuple[Target, JobRequest, ProviderAdapter]] = []
        refusal: ValidationFailed | None = None
        for n, target in enumerate(ordered):
            adapter = self._adapters.get(target.ref.provider)
            if adapter is None:
                raise NotFound(f"Unknown provider {target.ref.provider!r}.")
            own = replace(request, model=target.ref)
            try:
                check_target(adapter, own)
            except ValidationFailed as exc:
                if len(ordered) == 1:
                    raise
                refusal = refusal or exc
                _log.info(
                    "fallback_target_skipped",
                    alias=label,
                    target=target.label,
                    reason="inputs",
                    detail=exc.detail,
                )
                following = ordered[n + 1] if n + 1 < len(ordered) else None
                self._passed_over(label, target, following, "inputs")
                continue
            usable.append((target, own, adapter))
        if not usable:
            assert refusal is not None
            raise refusal
        for i, (target, own, adapter) in enumerate(usable):
            after = usable[i + 1][0] if i + 1 < len(usable) else None
            ask = self._passed_over_now
            if after is not None and ask is not None:
                why = await ask(target.ref.provider)
                if why is not None:
                    self._skip(label, target, after, why)
                    continue
            reason = "quota"
            with tracing() as trace:
                try:
                    return await attempt(own, adapter)
                except QuotaExceeded:
                    if after is None:
                        raise
                except ProviderError:
                    refused = None if trace.maybe_taken else trace.refusal
                    if after is None or refused in (None, "deadline") or _late():
                        raise
                    reason = str(refused)
            self._skip(label, target, after, reason)
        raise AssertionError("the last target is always attempted")  # pragma: no cover

    def _skip(self, alias: str, target: Target, after: Target | None, reason: str) -> None:
        _log.info(
            "fallback",
            alias=alias,
            target=target.label,
            next=after.label if after else NO_TARGET,
            reason=reason,
        )
        self._passed_over(alias, target, after, reason)

    def _passed_over(self, alias: str, target: Target, after: Target | None, reason: str) -> None:
        self._observer.fallback(alias, target.label, after.label if after else NO_TARGET, reason)


def _late() -> bool:
    """The request's deadline has passed: no time to ask another provider."""
    deadline = DEADLINE.get()
    return deadline is not None and time.monotonic() >= deadline
