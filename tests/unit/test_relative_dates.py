"""Calculated parameter values (`domain.relative_dates`): dates relative to a job's run, on its wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.relative_dates import evaluate

# 23:30 UTC on 31 March 2026 is already 1 April in Sydney (10:30, +11:00).
RUN = datetime(2026, 3, 31, 23, 30, 15, 999, tzinfo=UTC)
NOWS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC))
ZONES = st.sampled_from(["UTC", "Australia/Sydney", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"])


@pytest.mark.parametrize(
    ("expression", "zone", "expected"),
    [
        ("today", "UTC", date(2026, 3, 31)),
        ("today", "Australia/Sydney", date(2026, 4, 1)),  # the job's day, not UTC's
        ("yesterday", "Australia/Sydney", date(2026, 3, 31)),
        ("Today - 7 days", "UTC", date(2026, 3, 24)),
        ("today  +1 week", "UTC", date(2026, 4, 7)),
        ("first day of last month", "UTC", date(2026, 2, 1)),
        ("last day of previous month", "UTC", date(2026, 2, 28)),
        ("first day of this month", "Australia/Sydney", date(2026, 4, 1)),
        ("last day of previous quarter", "UTC", date(2025, 12, 31)),
        ("last day of previous quarter", "Australia/Sydney", date(2026, 3, 31)),
        ("first day of next quarter", "UTC", date(2026, 4, 1)),
        ("first day of this week", "UTC", date(2026, 3, 30)),  # a Monday
        ("last day of last week", "UTC", date(2026, 3, 29)),  # a Sunday
        ("first day of this year - 1 year", "UTC", date(2025, 1, 1)),
        ("last day of next year", "UTC", date(2027, 12, 31)),
        ("today - 1 month", "UTC", date(2026, 2, 28)),  # 31 March - 1 month: the end of February
        ("today + 11 months", "UTC", date(2027, 2, 28)),
        ("now", "UTC", datetime(2026, 3, 31, 23, 30, 15)),
        ("now - 90 minutes", "Australia/Sydney", datetime(2026, 4, 1, 9, 0, 15)),
    ],
)
def test_an_expression_is_the_date_a_person_reads_in_it(expression: str, zone: str, expected: date) -> None:
    assert evaluate(expression, RUN, zone) == expected


@given(NOWS, ZONES)
def test_last_day_of_a_period_is_the_day_before_the_first_of_the_next(now: datetime, zone: str) -> None:
    for period in ("week", "month", "quarter", "year"):
        last = evaluate(f"last day of previous {period}", now, zone)
        first = evaluate(f"first day of this {period}", now, zone)
        today = evaluate("today", now, zone)
        assert isinstance(last, date) and isinstance(first, date) and isinstance(today, date)
        assert last + timedelta(days=1) == first <= today
        assert evaluate(f"first day of next {period}", now, zone) > today


@given(NOWS, ZONES)
def test_months_and_quarters_start_where_the_calendar_says(now: datetime, zone: str) -> None:
    today = now.astimezone(ZoneInfo(zone)).date()
    assert evaluate("first day of this month", now, zone) == today.replace(day=1)
    quarter = evaluate("first day of this quarter", now, zone)
    assert isinstance(quarter, date) and quarter.day == 1 and quarter.month in (1, 4, 7, 10)
    following = quarter.replace(year=quarter.year + (quarter.month == 10), month=(quarter.month + 2) % 12 + 1)
    assert quarter <= today < following
    assert evaluate("first day of this week", now, zone) == today - timedelta(days=today.weekday())


@given(NOWS, ZONES, st.integers(0, 3000))
def test_days_and_weeks_are_plain_arithmetic(now: datetime, zone: str, days: int) -> None:
    today = now.astimezone(ZoneInfo(zone)).date()
    assert evaluate(f"today - {days} days", now, zone) == today - timedelta(days=days)
    assert evaluate(f"today + {days} days - {days} days", now, zone) == today
    assert evaluate("today + 2 weeks", now, zone) == today + timedelta(weeks=2)


@given(NOWS, ZONES, st.integers(0, 240))
def test_a_month_step_keeps_the_day_or_ends_the_month(now: datetime, zone: str, months: int) -> None:
    today = now.astimezone(ZoneInfo(zone)).date()
    moved = evaluate(f"today + {months} months", now, zone)
    assert isinstance(moved, date)
    assert (moved.year * 12 + moved.month) - (today.year * 12 + today.month) == months
    assert moved.day == today.day or (moved.day < today.day and (moved + timedelta(days=1)).day == 1)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "someday",
        "today minus 7 days",
        "today - 7 fortnights",
        "today - days",
        "today - 99999 days",
        "today + 1 hour",  # a date has no time
        "first day of the month",
        "last day of last decade",
        "today - 7 days; DROP TABLE jobs",
        "today " + "+ 1 day " * 100,  # longer than an expression may be
        "today - 5000 years",  # before year 1
        "today - \u0663 days",  # an Arabic-Indic 3: digits are ASCII
    ],
)
def test_an_expression_it_cannot_read_is_refused_naming_it(expression: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        evaluate(expression, RUN, "UTC")
    assert refused.value.parameter == "parameters"
    assert f"Cannot calculate {expression[:80]!r}" in str(refused.value)  # it names the expression


@pytest.mark.parametrize(
    ("expression", "run", "expected"),
    [
        # Berlin's clocks go forward at 02:00 on 29 March 2026 (01:00 UTC): 90 real minutes before 03:30
        # CEST is 01:00 CET, not the 02:00 that never happened.
        ("now - 90 minutes", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 0)),
        # and back at 03:00 on 25 October (01:00 UTC): an hour before 02:30 CET is 02:30 CEST, on the wall
        ("now - 60 minutes", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 25, 2, 30)),
        ("now - 1 day", datetime(2026, 3, 29, 10, 0, tzinfo=UTC), datetime(2026, 3, 28, 12, 0)),  # same wall time
    ],
)
def test_hours_are_real_time_and_days_the_wall_clocks_across_a_change(
    expression: str, run: datetime, expected: datetime
) -> None:
    assert evaluate(expression, run, "Europe/Berlin") == expected


def test_month_steps_are_taken_in_turn_each_ending_at_the_months_last_day() -> None:
    end_of_january = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert evaluate("today + 1 month + 1 month", end_of_january, "UTC") == date(2026, 3, 28)
    assert evaluate("today + 2 months", end_of_january, "UTC") == date(2026, 3, 31)
    assert evaluate("today - 1 month", datetime(2026, 3, 31, 12, tzinfo=UTC), "UTC") == date(2026, 2, 28)


@pytest.mark.parametrize("zone", ["Nope/Zone", "", "../etc/passwd"])
def test_an_unknown_zone_is_refused_naming_it(zone: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        evaluate("today", RUN, zone)
    assert refused.value.parameter == "timeZone"


@pytest.mark.parametrize(
    ("expression", "run"),
    [("yesterday", datetime(1, 1, 1, 12, tzinfo=UTC)), ("tomorrow", datetime(9999, 12, 31, 12, tzinfo=UTC))],
)
def test_a_date_past_the_calendar_is_refused_not_crashed_on(expression: str, run: datetime) -> None:
    with pytest.raises(InvalidParameter):
        evaluate(expression, run, "UTC")
