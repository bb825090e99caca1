"""GCRA arithmetic: redis-cell's golden cases, and properties over random arrivals (T-L4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limits.gcra import MICROS, Quota, gcra_step, reserve_step

S = MICROS  # one second in µs

# redis-cell's it_rate_limits table (src/cell/mod.rs): limit 5 (max_burst 4), 1 per second.
# (now offset µs, quantity, remaining, reset_after µs, retry_after µs, limited)
REDIS_CELL_CASES = [
    (0, 6, 5, 0, -1, True),  # never more than the bucket holds
    (0, 1, 4, 1 * S, -1, False),
    (0, 1, 3, 2 * S, -1, False),
    (0, 1, 2, 3 * S, -1, False),
    (0, 1, 1, 4 * S, -1, False),
    (0, 1, 0, 5 * S, -1, False),
    (0, 1, 0, 5 * S, 1 * S, True),
    (3_000_000, 1, 2, 3 * S, -1, False),
    (3_100_000, 1, 1, 3_900_000, -1, False),
    (4_000_000, 1, 1, 4 * S, -1, False),
    (8_000_000, 1, 4, 1 * S, -1, False),
    (9_500_000, 1, 4, 1 * S, -1, False),
    (9_500_000, 0, 4, 1 * S, -1, False),  # quantity 0 peeks
    (9_500_000, 2, 2, 3 * S, -1, False),
    (9_500_000, 5, 2, 3 * S, 3 * S, True),
]


def test_redis_cell_golden_cases():
    quota = Quota(rate=1, period=1, burst=4)
    start = 1_700_000_000 * S
    tat: int | None = None
    for i, (offset, qty, remaining, reset, retry, limited) in enumerate(REDIS_CELL_CASES):
        decision, new_tat = gcra_step(tat, start + offset, quota, qty)
        assert decision.limit == 5
        got = (decision.remaining, decision.reset_after_us, decision.retry_after_us)
        assert got == (remaining, reset, retry), f"case {i}"
        assert decision.allowed is not limited, f"case {i}"
        if new_tat is not None:
            tat = new_tat


def test_a_burst_admits_burst_plus_one_then_the_steady_rate():
    """T-L1's model: L=100/60 s, B=10 → 11 at once, then one per 0.6 s."""
    quota = Quota(rate=100, period=60, burst=10)
    tat = None
    admitted = 0
    for _ in range(300):
        decision, new_tat = gcra_step(tat, 0, quota)
        if decision.allowed:
            admitted += 1
            tat = new_tat
    assert admitted == 11
    decision, _ = gcra_step(tat, 599_999, quota)
    assert not decision.allowed and decision.retry_after_us == 1
    decision, _ = gcra_step(tat, 600_000, quota)
    assert decision.allowed


def test_local_fallback_splits_a_quota_over_replicas():
    quota = Quota(rate=90, period=60, burst=29)
    third = quota.scaled(3)
    assert third.rate == 30 and third.limit == 10
    assert Quota(rate=10, burst=0).scaled(4).limit == 1
    assert quota.scaled(1) is quota


@pytest.mark.parametrize(
    ("rate", "period", "burst"), [(0, 1, 0), (1, 0, 0), (1, 1, -1)], ids=["rate", "period", "burst"]
)
def test_impossible_quotas_are_refused(rate, period, burst):
    with pytest.raises(ValueError, match="positive"):
        Quota(rate=rate, period=period, burst=burst)


quotas = st.builds(
    Quota,
    rate=st.integers(min_value=1, max_value=1000),
    period=st.sampled_from([0.1, 1.0, 2.5, 60.0]),
    burst=st.integers(min_value=0, max_value=50),
)
arrivals = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3 * S), st.integers(min_value=0, max_value=5)),
    min_size=1,
    max_size=200,
)


@settings(max_examples=500, deadline=None)
@given(quota=quotas, steps=arrivals)
def test_admitted_units_never_exceed_the_quota_in_any_interval(quota, steps):
    """In any interval of length t: admitted ≤ B + 1 + rate·t; remaining ≥ 0;
    retry_after is -1 exactly when admitted (for quantities the bucket can hold)."""
    now = 0
    tat = None
    admitted: list[tuple[int, int]] = []
    for gap, qty in steps:
        now += gap
        qty = min(qty, quota.limit)
        decision, new_tat = gcra_step(tat, now, quota, qty)
        assert decision.remaining >= 0
        assert (decision.retry_after_us == -1) == decision.allowed
        if decision.allowed:
            tat = new_tat
            admitted.append((now, qty))
    rate_per_us = quota.rate / (quota.period * MICROS)
    for i, (t0, _) in enumerate(admitted):
        total = 0
        for t1, qty in admitted[i:]:
            total += qty
            # emission_us is rounded to whole µs: allow that rounding, nothing more.
            bound = quota.limit + (t1 - t0) / quota.emission_us
            assert total <= bound + 1e-9, (total, bound, rate_per_us)


@settings(max_examples=300, deadline=None)
@given(
    quota=quotas,
    gaps=st.lists(st.integers(min_value=0, max_value=S), min_size=1, max_size=100),
    pause=st.integers(min_value=0, max_value=5 * S),
)
def test_reservations_keep_the_rate_and_respect_a_pause(quota, gaps, pause):
    """Pacing: sends are never closer than the bucket allows and never inside a pause."""
    now = 0
    tat = None
    sends: list[int] = []
    for gap in gaps:
        now += gap
        wait, new_tat = reserve_step(tat, now, quota, paused_until_us=pause, max_wait_us=10**12)
        assert wait >= 0
        tat = new_tat
        sends.append(now + wait)
    sends.sort()
    assert all(s >= pause for s in sends if pause > 0)
    for i, t0 in enumerate(sends):
        for j in range(i, len(sends)):
            assert j - i + 1 <= quota.limit + (sends[j] - t0) / quota.emission_us + 1e-9


def test_a_reservation_longer_than_the_caller_can_wait_charges_nothing():
    quota = Quota(rate=1, period=1, burst=0)
    wait, tat = reserve_step(None, 0, quota, max_wait_us=0)
    assert wait == 0 and tat == S
    wait, again = reserve_step(tat, 0, quota, max_wait_us=S // 2)
    assert wait == -S and again is None
    wait, _ = reserve_step(None, 0, None, paused_until_us=2 * S, max_wait_us=S)
    assert wait == -2 * S
