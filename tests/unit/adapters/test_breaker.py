"""The circuit breaker's states on a fake clock, and the retry budget's arithmetic."""

from __future__ import annotations

import random

import pytest

from adapters.breaker import PROBE_RETRY_AFTER, BreakerState, CircuitBreaker
from adapters.retry_budget import RetryBudget
from tests.support import FakeClock


def breaker(clock: FakeClock, **over) -> tuple[CircuitBreaker, list[BreakerState]]:
    moves: list[BreakerState] = []
    options = {"failures": 5, "open_seconds": 30.0, "max_open_seconds": 300.0, "jitter": 0.1}
    b = CircuitBreaker(
        **{**options, **over}, now=clock, rng=random.Random(7), on_change=moves.append
    )
    return b, moves


def state(b: CircuitBreaker) -> BreakerState:
    # A call, not the property: mypy would keep the first assert's narrowing.
    return b.state


def trip(b: CircuitBreaker, n: int = 5) -> None:
    for _ in range(n):
        assert b.acquire() is None
        b.failure()


class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_only(self):
        clock = FakeClock()
        b, moves = breaker(clock)
        trip(b, 4)
        b.success()  # a success in between starts the count again
        trip(b, 4)
        assert state(b) is BreakerState.CLOSED
        trip(b, 1)
        assert state(b) is BreakerState.OPEN and moves == [BreakerState.OPEN]

    def test_refuses_while_open_then_lets_one_probe_through(self):
        clock = FakeClock()
        b, moves = breaker(clock)
        trip(b)
        wait = b.acquire()
        assert wait is not None and 27 <= wait <= 33  # 30 s +- 10 %
        clock.advance(wait - 0.01)
        assert b.acquire() is not None
        clock.advance(0.02)
        assert b.acquire() is None  # the probe
        assert state(b) is BreakerState.HALF_OPEN
        assert b.acquire() == PROBE_RETRY_AFTER  # everyone else waits for its verdict
        b.success()
        assert state(b) is BreakerState.CLOSED
        assert moves == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
        assert b.acquire() is None

    def test_an_abandoned_probe_frees_the_slot(self):
        clock = FakeClock()
        b, _ = breaker(clock)
        trip(b)
        clock.advance(40)
        assert b.acquire() is None
        b.abandon()
        assert b.acquire() is None  # the next caller is the probe now

    def test_repeated_trips_double_the_open_time_up_to_the_cap(self, measured):
        clock = FakeClock()
        b, _ = breaker(clock, jitter=0.0)
        trip(b)
        opens = []
        for _ in range(6):
            wait = b.acquire()
            assert wait is not None
            opens.append(round(wait, 6))
            clock.advance(wait)
            assert b.acquire() is None  # probe
            b.failure()  # fails: open again, longer
        assert opens == [30, 60, 120, 240, 300, 300]
        measured(f"T-U5 open times of consecutive trips (s): {opens}")

    def test_open_time_jitter_stays_within_ten_percent(self):
        clock = FakeClock()
        waits: list[float] = []
        for seed in range(200):
            b = CircuitBreaker(now=clock, rng=random.Random(seed))
            trip(b)
            wait = b.acquire()
            assert wait is not None
            waits.append(wait)
        assert all(27 <= w <= 33 for w in waits)
        assert max(waits) - min(waits) > 4  # actually spread, not a constant

    def test_a_provider_that_flaps_keeps_the_longer_open_time(self):
        clock = FakeClock()
        b, _ = breaker(clock, jitter=0.0)
        trip(b)
        clock.advance(30)
        b.acquire()
        b.success()  # closed again...
        trip(b)  # ...and failing again soon after: a trip in a row
        assert b.acquire() == pytest.approx(60)
        clock.advance(60)
        b.acquire()
        b.success()
        clock.advance(301)  # closed for longer than the cap: forgiven
        trip(b)
        assert b.acquire() == pytest.approx(30)

    def test_late_answers_while_open_change_nothing(self):
        clock = FakeClock()
        b, _ = breaker(clock)
        trip(b)
        b.failure()
        b.success()
        assert state(b) is BreakerState.OPEN


class TestRetryBudget:
    def test_floor_then_ratio_of_requests_in_the_window(self):
        clock = FakeClock()
        budget = RetryBudget(ratio=0.2, min_retries=3, window_seconds=10, now=clock)
        budget.request()
        assert [budget.try_retry() for _ in range(4)] == [True, True, True, False]
        for _ in range(99):
            budget.request()
        allowed = sum(budget.try_retry() for _ in range(100))
        assert allowed == 20 - 3  # 20 % of 100 requests, 3 already spent
        assert budget.totals() == (100, 20)

    def test_the_window_slides(self):
        clock = FakeClock()
        budget = RetryBudget(ratio=0.5, min_retries=0, window_seconds=10, now=clock)
        for _ in range(10):
            budget.request()
        assert sum(budget.try_retry() for _ in range(10)) == 5
        clock.advance(10.5)  # every slot of the first second is out of the window
        assert budget.totals() == (0, 0)
        assert not budget.try_retry()
