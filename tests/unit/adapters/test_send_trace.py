"""The send trace: which requests may have been taken by the provider, which were refused."""

from __future__ import annotations

import pytest

from adapters.send_trace import SendTrace, current, tracing


@pytest.mark.parametrize(
    ("method", "status", "taken", "refusal"),
    [
        ("POST", 202, True, None),
        ("POST", 422, True, None),
        ("POST", None, True, None),
        ("POST", 504, True, None),
        ("POST", 503, False, "unavailable"),
        ("POST", 429, False, "throttled"),
        ("POST", 500, False, "failed"),
        ("POST", 502, False, "failed"),
        ("GET", 200, False, None),
        ("GET", None, False, None),
        ("GET", 503, False, "unavailable"),
    ],
    ids=[
        "accepted",
        "rejected-4xx",
        "answer-lost",
        "proxy-gave-up",
        "503",
        "429",
        "500",
        "502",
        "read",
        "read-lost",
        "read-503",
    ],
)
def test_what_a_request_tells_of_a_submit(method, status, taken, refusal):
    trace = SendTrace()
    trace.sent(method, status)
    assert (trace.maybe_taken, trace.refusal) == (taken, refusal)


def test_a_taken_request_stays_taken_whatever_follows():
    """An upload answered 200, then the job's create refused: the provider holds something."""
    trace = SendTrace()
    trace.sent("POST", 200)
    trace.sent("POST", 503)
    assert trace.maybe_taken and trace.refusal == "unavailable"


def test_the_trace_is_on_only_inside_the_block():
    assert current() is None
    with tracing() as trace:
        assert current() is trace
    assert current() is None
