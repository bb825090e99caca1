"""Whether a provider may have taken a request: what ``Upstream`` notes while a trace is on.

A fallback may send a submit to another provider only if the first one certainly did
not take it; only ``Upstream`` sees enough to tell (was the connection made? was the
body sent? what did the provider answer?), and an adapter's submit may make several
calls (an upload, then the job). So the caller turns a trace on around the whole
submit (``tracing()``), and ``Upstream`` notes on it, for every request:

* a call refused before anything was sent (an open circuit, no pacing turn, the
  deadline, a connection never made): the reason, nothing taken;
* an answer of 429 or 5xx (but 504) to any request: the reason, nothing taken: the
  provider said it did not do it;
* anything else after a write request (POST, PUT, PATCH, DELETE) left: *maybe taken*: a
  2xx/3xx/4xx answer, a timeout, a connection lost mid-request (the simulators' ``lost``
  fault), an answer too large to read. A 504 is a proxy that gave up waiting on a
  backend which may still be working on it.

Reads (GET, HEAD) never create anything, so whatever befalls them only notes a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

#: Answers that say the provider did not do what was asked.
REFUSING = frozenset({429, 500, 501, 502, 503})


@dataclass(slots=True)
class SendTrace:
    #: A write request reached the provider and was not clearly refused.
    maybe_taken: bool = False
    #: Why the latest request was refused untaken (a bounded word), None if it was not.
    refusal: str | None = None

    def refused(self, reason: str) -> None:
        self.refusal = reason

    def sent(self, method: str, status: int | None) -> None:
        """A request left (``status`` None: its answer never came)."""
        if status is not None and status in REFUSING:
            self.refusal = {429: "throttled", 503: "unavailable"}.get(status, "failed")
            return
        self.refusal = None
        if method not in ("GET", "HEAD"):
            self.maybe_taken = True


_TRACE: ContextVar[SendTrace | None] = ContextVar("gateway_send_trace", default=None)


def current() -> SendTrace | None:
    return _TRACE.get()


@contextmanager
def tracing() -> Iterator[SendTrace]:
    """Note what every ``Upstream`` request in the block (this task) sends."""
    trace = SendTrace()
    token = _TRACE.set(trace)
    try:
        yield trace
    finally:
        _TRACE.reset(token)
