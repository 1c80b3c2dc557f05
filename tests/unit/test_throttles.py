"""API Gateway's token bucket as the local front door applies it (per token, and per stage)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from infra.local.template import Throttle
from infra.local.usage import TokenBucket

throttles = st.builds(
    Throttle, rate=st.floats(min_value=0.5, max_value=1000, allow_nan=False), burst=st.integers(1, 500)
)
gaps = st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=400)


@given(throttles, gaps)
def test_no_window_admits_more_than_the_burst_plus_its_refill(throttle: Throttle, gaps: list[float]) -> None:
    bucket = TokenBucket(throttle, 0.0)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now):
            admitted.append(now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            # Requests admitted in [start, end]: at most a full bucket plus what refilled meanwhile.
            window = admitted[j] - start
            assert j - i + 1 <= throttle.burst + math.floor(window * throttle.rate + 1e-6)


@given(throttles, st.integers(1, 300))
def test_requests_at_the_rate_are_always_admitted(throttle: Throttle, count: int) -> None:
    bucket = TokenBucket(throttle, 0.0)
    assert all(bucket.take(i / throttle.rate) for i in range(count))


@given(throttles)
def test_a_full_burst_at_once_then_nothing_until_it_refills(throttle: Throttle) -> None:
    bucket = TokenBucket(throttle, 10.0)
    assert all(bucket.take(10.0) for _ in range(throttle.burst))
    assert not bucket.take(10.0)
    assert bucket.take(10.0 + 1 / throttle.rate)


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket = TokenBucket(Throttle(rate=1.0, burst=1), 100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.5)
