"""API Gateway's throttles as the local front door applies them: the token bucket, each method's
setting, each key's plan (read from API Gateway, here a dict)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.tokens import ApiToken
from reportserver.store.usage import UsagePlanKeys

from infra.local.template import Throttle
from infra.local.usage import MISS_RETRY_SECONDS, REFRESH_SECONDS, Throttles, TokenBucket, _PlanKey

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


class FakePlans(Throttles):
    """Throttles whose API Gateway is a dict: key value -> plan key (or an error to raise)."""

    def __init__(self, clock: list[float], methods: dict[tuple[str, str], Throttle] | None = None) -> None:
        super().__init__("local", "Prod", methods or {}, clock=lambda: clock[0])
        self.plans: dict[str, _PlanKey] | Exception = {}
        self.reads = 0

    def _read(self) -> dict[str, _PlanKey]:
        self.reads += 1
        if isinstance(self.plans, Exception):
            raise self.plans
        return dict(self.plans)


def test_buckets_of_keys_gone_from_the_plans_are_dropped_and_come_back_full() -> None:
    clock = [0.0]
    throttles = FakePlans(clock)
    throttles.plans = {"k1": _PlanKey("p", Throttle(1.0, 1)), "k2": _PlanKey("p", Throttle(1.0, 1))}
    assert throttles.admit_key("k1") is None and throttles.admit_key("k2") is None
    assert throttles.admit_key("k1") == "THROTTLED"
    throttles.plans = {"k1": _PlanKey("p", Throttle(1.0, 1))}
    clock[0] += REFRESH_SECONDS / 2
    assert throttles.admit_key("k2") is None  # still known until the next read
    clock[0] += REFRESH_SECONDS
    assert throttles.admit_key("k2") == "INVALID_API_KEY"  # read again: gone
    assert set(throttles._buckets) == {("p", "k1")}  # its bucket too


def test_unreadable_plans_keep_the_keys_read_last_and_are_not_read_on_every_request() -> None:
    clock = [0.0]
    throttles = FakePlans(clock)
    throttles.plans = {"k1": _PlanKey("p", Throttle(100.0, 100))}
    assert throttles.admit_key("k1") is None
    throttles.plans = ConnectionError("moto is gone")
    clock[0] += REFRESH_SECONDS
    assert throttles.admit_key("k1") is None  # the keys read last stand
    reads = throttles.reads
    assert throttles.admit_key("k1") is None and throttles.reads == reads  # not retried at once
    assert throttles.admit_key("unknown") == "INVALID_API_KEY"


def test_an_unknown_key_is_read_again_at_most_once_a_second() -> None:
    clock = [0.0]
    throttles = FakePlans(clock)
    assert throttles.admit_key("new") == "INVALID_API_KEY"
    reads = throttles.reads
    throttles.plans = {"new": _PlanKey("p", None)}
    assert throttles.admit_key("new") == "INVALID_API_KEY" and throttles.reads == reads
    clock[0] += MISS_RETRY_SECONDS
    assert throttles.admit_key("new") is None  # a plan without a throttle admits it


def test_the_most_specific_method_setting_applies() -> None:
    clock = [0.0]
    methods = {
        ("/*", "*"): Throttle(1.0, 3),
        ("/*", "POST"): Throttle(1.0, 2),
        ("/a", "*"): Throttle(1.0, 1),
        ("/a", "GET"): Throttle(1.0, 4),
    }
    throttles = FakePlans(clock, methods)

    def admitted(path: str, method: str) -> int:
        return sum(throttles.admit_method(path, method) for _ in range(10))

    assert (admitted("/a", "GET"), admitted("/a", "PUT"), admitted("/b", "POST"), admitted("/b", "GET")) == (4, 1, 2, 3)


def test_a_key_value_api_gateway_would_refuse_is_refused_before_any_call() -> None:
    token = ApiToken(
        name="t",
        secret_hash="h",
        groups=["*"],
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        created_by="t",
        usage_key="reportserver-has-a-hyphen-0000",
    )
    with pytest.raises(ValueError, match="letters and digits"):
        UsagePlanKeys("plan").add(token.name, token.owner_id, token.usage_key)
