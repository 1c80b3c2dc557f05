"""Job schedules (`domain.schedules`): recurrence rules on the job's wall clock, across daylight-saving
changes in both directions, their EventBridge Scheduler expressions, and the refusals on save."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.schedules import JobSchedule, _changes_at, job_schedule, scheduler_fire_times

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The changes of 2026: New York forward on 8 March and back on 1 November (at 02:00); Sydney back on
# 5 April (03:00 -> 02:00) and forward on 4 October (02:00 -> 03:00).
CHANGES = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
]


def _runs(schedule: JobSchedule, since: datetime, days: int) -> list[datetime]:
    until = since + timedelta(days=days)
    runs = []
    for moment in schedule.runs_after(since):
        if moment >= until:
            break
        runs.append(moment)
    return runs


@pytest.mark.parametrize(("zone", "day"), CHANGES)
@pytest.mark.parametrize("time_of_day", ["00:30", "01:30", "02:00", "02:30", "03:00", "03:30", "09:00", "23:30"])
def test_a_daily_job_runs_once_on_every_day_around_a_clock_change(zone: str, day: date, time_of_day: str) -> None:
    # Given a daily job at a time that the change may skip or repeat
    hour, minute = map(int, time_of_day.split(":"))
    schedule = job_schedule(f"FREQ=DAILY;BYHOUR={hour};BYMINUTE={minute}", "2026-01-01T00:00:00", zone, NOW)
    # When its runs from three days before the change to three days after are listed
    since = datetime.combine(day - timedelta(days=3), datetime.min.time(), ZoneInfo(zone))
    runs = _runs(schedule, since, 7)
    # Then each of the seven local days has exactly one run, never two, none skipped
    local_days = [r.astimezone(ZoneInfo(zone)).date() for r in runs]
    assert local_days == [day + timedelta(days=n) for n in range(-3, 4)], runs
    assert runs == sorted(set(runs))
    for run in runs:  # at the wall time asked for, or as far past a skipped hour as the time was into it
        wall = run.astimezone(ZoneInfo(zone))
        assert (wall.hour, wall.minute) in {(hour, minute), (hour + 1, minute)}


def test_a_skipped_wall_time_runs_as_far_past_the_change_and_a_repeated_one_runs_the_first_time() -> None:
    zone = ZoneInfo("America/New_York")
    schedule = job_schedule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2026-01-01T00:00", "America/New_York", NOW)
    forward = next(schedule.runs_after(datetime(2026, 3, 8, 0, 0, tzinfo=zone)))
    assert forward.astimezone(zone).isoformat() == "2026-03-08T03:30:00-04:00"
    back = job_schedule("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "2026-01-01T00:00", "America/New_York", NOW)
    runs = _runs(back, datetime(2026, 11, 1, 0, 0, tzinfo=zone), 1)
    assert [r.astimezone(zone).isoformat() for r in runs] == ["2026-11-01T01:30:00-04:00"]  # not again at -05:00


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["America/New_York", "Australia/Sydney", "Europe/London", "Australia/Lord_Howe", "UTC"]),
    st.sampled_from(["HOURLY", "DAILY", "WEEKLY", "MONTHLY"]),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 59]),
    st.integers(1, 3),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_runs_are_strictly_increasing_instants_on_the_rules_wall_times(
    zone: str, frequency: str, hour: int, minute: int, interval: int, since: datetime
) -> None:
    hours = "" if frequency == "HOURLY" else f";BYHOUR={hour}"
    rule = f"FREQ={frequency};INTERVAL={interval};BYMINUTE={minute}{hours}"
    schedule = job_schedule(rule, "2026-01-01T00:00:00", zone, NOW)
    instant = since.replace(tzinfo=ZoneInfo(zone))
    runs = _runs(schedule, instant, 70 if frequency != "HOURLY" else 3)
    assert runs == sorted(set(runs)) and all(r > instant for r in runs)
    for run in runs:
        wall = run.astimezone(ZoneInfo(zone))
        assert wall.minute == minute or zone == "Australia/Lord_Howe"  # its change is half an hour
    if frequency == "DAILY" and interval == 1:
        days = [r.astimezone(ZoneInfo(zone)).date() for r in runs]
        assert days == [days[0] + timedelta(days=n) for n in range(len(days))]  # none skipped, none twice


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "2026-01-01T00:00", "cron(0 9 * * ? *)"),
        ("FREQ=DAILY", "2026-01-01T07:45", "cron(45 7 * * ? *)"),
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=18;BYMINUTE=30", "2026-01-01T00:00", "cron(30 18 ? * MON,WED,FRI *)"),
        ("FREQ=WEEKLY", "2026-01-01T08:00", "cron(0 8 ? * THU *)"),  # 1 January 2026 is a Thursday
        ("FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=6", "2026-01-01T00:00", "cron(0 6 1,15 * ? *)"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=6", "2026-01-01T00:10", "cron(10 6 L * ? *)"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1;BYHOUR=9", "2026-01-01T00:00", "cron(0 9 ? * 2#1 *)"),
        ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17", "2026-01-01T00:00", "cron(0 17 ? * 6L *)"),
    ],
)
def test_a_rule_that_cron_says_exactly_is_one_recurring_schedule(rule: str, start: str, expected: str) -> None:
    expression = job_schedule(rule, start, "Australia/Sydney", NOW).scheduler_expression(NOW)
    assert expression is not None and expression.recurring
    assert (expression.expression, expression.zone) == (expected, "Australia/Sydney")


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=2;BYHOUR=9",  # every other day: cron cannot count days
        "FREQ=DAILY;COUNT=1000;BYHOUR=9",
        "FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=9",  # not in every month: RFC 5545 skips those months
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",  # in the hours where clocks change
        "FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=1;BYHOUR=9",
        "FREQ=DAILY;BYHOUR=9,17",
        "FREQ=DAILY;BYHOUR=9;BYMINUTE=0,30",
        "FREQ=DAILY;BYMONTH=1,7;BYHOUR=9",
        "FREQ=DAILY;UNTIL=20270101T000000Z;BYHOUR=9",
    ],
)
def test_any_other_rule_is_scheduled_one_run_at_a_time_at_its_next_wall_time(rule: str) -> None:
    # Started before now, so only the rule's shape keeps it from cron (the control case below gets one).
    schedule = job_schedule(rule, "2025-01-01T00:00", "America/New_York", NOW)
    expression = schedule.scheduler_expression(NOW)
    upcoming = schedule.next_run(NOW)
    assert expression is not None and upcoming is not None and not expression.recurring
    wall = upcoming.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)
    assert expression.expression == f"at({wall.isoformat(timespec='seconds')})"


def test_an_until_in_utc_is_the_same_instant_on_the_jobs_wall_clock() -> None:
    # 2026-03-10T13:00Z is 00:00 on 11 March in Sydney: the run at 00:00 that day is the last.
    schedule = job_schedule("FREQ=DAILY;BYHOUR=0;UNTIL=20260310T130000Z", "2026-03-01T00:00", "Australia/Sydney", NOW)
    runs = list(schedule.runs_after(NOW))
    assert runs[-1].astimezone(ZoneInfo("Australia/Sydney")).isoformat() == "2026-03-11T00:00:00+11:00"


def test_the_control_case_of_the_test_above_is_a_cron_expression() -> None:
    schedule = job_schedule("FREQ=DAILY;BYHOUR=9", "2025-01-01T00:00", "America/New_York", NOW)
    expression = schedule.scheduler_expression(NOW)
    assert expression is not None and expression.expression == "cron(0 9 * * ? *)"


@pytest.mark.parametrize(
    ("zone", "day", "time_of_day", "expected"),
    [
        # America/Nuuk skips 23:00-24:00 on the last Saturday of March: 23:30 runs at 22:30 that day, not on
        # Sunday (which would then have two runs and Saturday none).
        ("America/Nuuk", date(2026, 3, 28), "23:30", "2026-03-28T22:30:00-02:00"),
        ("Pacific/Easter", date(2026, 9, 5), "22:30", "2026-09-05T23:30:00-05:00"),
        ("America/Santiago", date(2026, 9, 6), "00:30", "2026-09-06T01:30:00-03:00"),
    ],
)
def test_a_skipped_time_late_or_early_in_the_day_runs_on_its_own_day(
    zone: str, day: date, time_of_day: str, expected: str
) -> None:
    hour, minute = map(int, time_of_day.split(":"))
    schedule = job_schedule(f"FREQ=DAILY;BYHOUR={hour};BYMINUTE={minute}", "2025-01-01T00:00", zone, NOW)
    since = datetime.combine(day - timedelta(days=3), datetime.min.time(), ZoneInfo(zone))
    runs = [r.astimezone(ZoneInfo(zone)) for r in _runs(schedule, since, 7)]
    assert [r.date() for r in runs] == [day + timedelta(days=n) for n in range(-3, 4)], runs
    assert runs[3].isoformat() == expected
    # and such a time is never a cron expression, whose skipped runs Scheduler would drop
    expression = schedule.scheduler_expression(NOW)
    assert expression is not None and not expression.recurring


def test_a_time_the_zones_clocks_never_change_at_is_a_cron_expression_there() -> None:
    expression = job_schedule("FREQ=DAILY;BYHOUR=9", "2025-01-01T00:00", "America/Nuuk", NOW).scheduler_expression(NOW)
    assert expression is not None and expression.expression == "cron(0 9 * * ? *)"


def test_a_rule_with_years_between_runs_still_has_its_next_run() -> None:
    schedule = job_schedule("FREQ=YEARLY;INTERVAL=6", "2026-06-01T09:00", "UTC", NOW)
    after_first = datetime(2026, 6, 2, tzinfo=UTC)
    assert schedule.next_run(after_first) == datetime(2032, 6, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MINUTELY;INTERVAL=7",  # begun years ago: read from near now, not walked from its start
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # never: searched to the horizon, not to year 9999
        "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
    ],
)
def test_a_rule_is_read_from_near_now_and_never_past_the_horizon(rule: str) -> None:
    started = time.perf_counter()
    try:
        schedule = job_schedule(rule, "2016-01-01T00:00", "Europe/London", NOW)
    except InvalidParameter:
        schedule = None
    else:
        runs = list(itertools.islice(schedule.runs_after(datetime(2026, 5, 1, tzinfo=UTC)), 5))
        assert len(runs) == 5 and runs == sorted(set(runs))
    assert time.perf_counter() - started < 2.0  # seconds to minutes each before
    assert (schedule is None) == ("BYMONTHDAY=30" in rule)


@pytest.mark.parametrize(
    ("rule", "start", "zone", "field"),
    [
        ("FREQ=DAILY", "2026-01-01T09:00", "Mars/Olympus", "timeZone"),
        ("FREQ=DAILY", "2026-01-01T09:00", "EST5EDT ", "timeZone"),
        ("FREQ=DAILY", "next tuesday", "UTC", "startDate"),
        ("", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=SOMETIMES", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("BYHOUR=9", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # no FREQ
        ("FREQ=DAILY;FREQ=WEEKLY", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;BYHOUR=25", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;DTSTART=20260101T000000", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY\nRRULE:FREQ=WEEKLY", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;COUNT=3", "2020-01-01T09:00", "UTC", "recurrenceRule"),  # all three runs are past
        ("FREQ=DAILY;UNTIL=20250101T000000Z", "2024-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # never
        ("FREQ=DAILY;UNTIL=tomorrow", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        # found in review: accepted, then a hang, a crash or a different rule
        ("FREQ=DAILY;INTERVAL=0", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;INTERVAL=-1", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=DAILY;COUNT=0", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=MINUTELY;COUNT=99999999", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=YEARLY;INTERVAL=11", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=SECONDLY", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # Scheduler runs to the minute
        ("FREQ=DAILY;BYSECOND=30", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # ran every day
        ("FREQ=DAILY;UNTIL=20270105", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # a date, not a date-time
        ("FREQ=DAILY;UNTIL=2027-12-31", "2026-01-01T09:00", "UTC", "recurrenceRule"),
        ("FREQ=MONTHLY;BYDAY=99MO", "2026-01-01T09:00", "UTC", "recurrenceRule"),  # was an IndexError: 500
        ("FREQ=DAILY;UNTIL=00010101T000000Z", "2026-01-01T09:00", "Pacific/Kiritimati", "recurrenceRule"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_naming_its_field(rule: str, start: str, zone: str, field: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        job_schedule(rule, start, zone, NOW)
    assert refused.value.parameter == field, refused.value


def test_a_job_that_starts_later_is_scheduled_one_run_at_a_time_until_it_has_started() -> None:
    # A cron expression would fire before the job's startDate.
    schedule = job_schedule("FREQ=DAILY;BYHOUR=9", "2026-06-01T09:00", "Australia/Sydney", NOW)
    early = schedule.scheduler_expression(NOW)
    assert early is not None and early.expression == "at(2026-06-01T09:00:00)"
    later = schedule.scheduler_expression(datetime(2026, 6, 2, tzinfo=UTC))
    assert later is not None and later.expression == "cron(0 9 * * ? *)"


# Scheduler's own expressions: cron(...) and rate(...), read as the rule of the same wall times

SCHEDULER_EXPRESSIONS = [
    # expression, its rule, its Scheduler expression at NOW, its first runs (Sydney wall clock)
    ("cron(0 9 * * ? *)", "FREQ=DAILY;BYMINUTE=0;BYHOUR=9", "cron(0 9 * * ? *)",
     ["Thu 2026-01-01 09:00", "Fri 2026-01-02 09:00", "Sat 2026-01-03 09:00"]),
    ("cron(30 7 ? * MON-FRI *)", "FREQ=WEEKLY;BYMINUTE=30;BYHOUR=7;BYDAY=MO,TU,WE,TH,FR",
     "cron(30 7 ? * MON,TUE,WED,THU,FRI *)",
     ["Thu 2026-01-01 07:30", "Fri 2026-01-02 07:30", "Mon 2026-01-05 07:30"]),
    ("cron(0 8 ? * 2#1 *)", "FREQ=MONTHLY;BYMINUTE=0;BYHOUR=8;BYDAY=1MO", "cron(0 8 ? * 2#1 *)",
     ["Mon 2026-01-05 08:00", "Mon 2026-02-02 08:00", "Mon 2026-03-02 08:00"]),
    ("cron(0 22 ? * 6L *)", "FREQ=MONTHLY;BYMINUTE=0;BYHOUR=22;BYDAY=-1FR", "cron(0 22 ? * 6L *)",
     ["Fri 2026-01-30 22:00", "Fri 2026-02-27 22:00", "Fri 2026-03-27 22:00"]),
    ("cron(0 18 L * ? *)", "FREQ=MONTHLY;BYMINUTE=0;BYHOUR=18;BYMONTHDAY=-1", "cron(0 18 L * ? *)",
     ["Sat 2026-01-31 18:00", "Sat 2026-02-28 18:00", "Tue 2026-03-31 18:00"]),
    ("cron(0 12 1,15 JAN,JUL ? *)", "FREQ=MONTHLY;BYMINUTE=0;BYHOUR=12;BYMONTH=1,7;BYMONTHDAY=1,15", "at(",
     ["Thu 2026-01-01 12:00", "Thu 2026-01-15 12:00", "Wed 2026-07-01 12:00"]),
    ("cron(*/20 9-10 * * ? *)", "FREQ=DAILY;BYMINUTE=0,20,40;BYHOUR=9,10", "at(",
     ["Thu 2026-01-01 09:00", "Thu 2026-01-01 09:20", "Thu 2026-01-01 09:40"]),
    ("rate(90 minutes)", "FREQ=MINUTELY;INTERVAL=90", "at(",
     ["Thu 2026-01-01 01:30", "Thu 2026-01-01 03:00", "Thu 2026-01-01 04:30"]),
    ("rate(1 day)", "FREQ=DAILY;INTERVAL=1", "at(",
     ["Fri 2026-01-02 00:00", "Sat 2026-01-03 00:00", "Sun 2026-01-04 00:00"]),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "rule", "scheduled", "first"), SCHEDULER_EXPRESSIONS)
def test_a_scheduler_expression_runs_at_the_wall_times_it_names_in_the_jobs_zone(
    expression: str, rule: str, scheduled: str, first: list[str]
) -> None:
    # Given the job starts at midnight on New Year's Day in Sydney, read at NOW (11:00 that day there)
    schedule = job_schedule(expression, "2026-01-01T00:00", "Australia/Sydney", NOW - timedelta(hours=11))
    assert schedule.rule == rule
    expression_now = schedule.scheduler_expression(NOW - timedelta(hours=11))
    assert expression_now is not None and expression_now.expression.startswith(scheduled)
    runs = itertools.islice(schedule.runs_after(NOW - timedelta(hours=11)), 3)
    assert [r.astimezone(ZoneInfo("Australia/Sydney")).strftime("%a %Y-%m-%d %H:%M") for r in runs] == first


BAD_EXPRESSIONS = [
    ("cron(0 9 * * * *)", "'?'"),
    ("cron(0 9 ? * ? *)", "'?'"),
    ("cron(0 9 * * ? 2027)", "year"),
    ("cron(61 9 * * ? *)", "minutes '61'"),
    ("cron(0 24 * * ? *)", "hours '24'"),
    ("cron(0 9 ? * 2#6 *)", "1 to 5"),
    ("cron(0 9 15W * ? *)", "W"),
    ("cron(0 9 * *)", "six fields"),
    ("cron(0 9 5-1 * ? *)", "range"),
    ("cron(0/0 9 * * ? *)", "step"),
    ("cron(0 9 ? FOO * *)", "month 'FOO'"),
    ("rate(0 minutes)", "at least 1"),
    ("rate(5 minute)", "rate(5 minutes)"),
    ("rate(1 weeks)", "rate("),
    ("rate(five minutes)", "at least 1"),
]


@pytest.mark.parametrize(("expression", "says"), BAD_EXPRESSIONS)
def test_a_bad_scheduler_expression_is_refused_naming_the_rule(expression: str, says: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        job_schedule(expression, "2026-01-01T00:00", "UTC", NOW)
    assert refused.value.parameter == "recurrenceRule"
    assert says in refused.value.message


@settings(max_examples=80, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    days=st.sets(st.integers(1, 7), min_size=1),
    zone=st.sampled_from(["UTC", "Australia/Sydney", "America/New_York", "Europe/London", "Asia/Kolkata"]),
    since=st.datetimes(datetime(2026, 1, 1), datetime(2030, 1, 1)),
)
def test_a_weekday_cron_runs_once_on_each_of_its_days_and_at_its_time_where_that_time_exists(
    minute: int, hour: int, days: set[int], zone: str, since: datetime
) -> None:
    names = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
    expression = f"cron({minute} {hour} ? * {','.join(names[d - 1] for d in sorted(days))} *)"
    now = since.replace(tzinfo=UTC)
    schedule = job_schedule(expression, "2025-01-01T00:00", zone, now)
    tz = ZoneInfo(zone)
    runs = list(itertools.islice(schedule.runs_after(now), 15))
    weekdays = {(d - 2) % 7 for d in days}  # cron's 1 = Sunday; Python's 0 = Monday
    local_days = [r.astimezone(tz).date() for r in runs]
    # One run a day, only on the named weekdays, and no named weekday skipped between two runs
    assert len(set(local_days)) == len(local_days)
    assert all(d.weekday() in weekdays for d in local_days)
    for before, after in itertools.pairwise(local_days):
        between = [before + timedelta(days=k) for k in range(1, (after - before).days)]
        assert not any(d.weekday() in weekdays for d in between)
    # At the named wall time, unless that time does not exist on that day
    for run in runs:
        wall = datetime.combine(run.astimezone(tz).date(), datetime.min.time()).replace(hour=hour, minute=minute)
        exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
        if exists:
            assert run.astimezone(tz).replace(tzinfo=None) == wall


RATES = [
    ("rate(1 hour)", timedelta(hours=1)),
    ("rate(90 minutes)", timedelta(minutes=90)),
    ("rate(1 day)", timedelta(days=1)),
]


@pytest.mark.parametrize(("rate", "step"), RATES)
@pytest.mark.parametrize(("zone", "day"), CHANGES)
def test_a_rate_counts_real_time_across_a_clock_change_as_schedulers_does(
    rate: str, step: timedelta, zone: str, day: date
) -> None:
    # Given a rate started two days before a clock change, on the job's clock
    start = datetime.combine(day - timedelta(days=2), datetime.min.time())
    now = start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    schedule = job_schedule(rate, start.isoformat(), zone, now)
    # Then its runs are the same real time apart before, across and after the change
    runs = _runs(schedule, now - timedelta(seconds=1), 5)
    assert runs[0] == now
    assert all(after - before == step for before, after in itertools.pairwise(runs))


def test_a_start_far_from_now_or_with_seconds_is_refused_naming_startdate() -> None:
    for start in ("2026-01-01T09:00:30", "1990-01-01T00:00", "2040-01-01T00:00", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(InvalidParameter) as refused:
            job_schedule("FREQ=DAILY", start, "UTC", NOW)
        assert refused.value.parameter == "startDate", start


def test_a_rule_walked_minute_by_minute_is_refused_rather_than_searched() -> None:
    for rule in ("FREQ=MINUTELY;BYSETPOS=1", "FREQ=HOURLY;BYWEEKNO=1"):
        started = time.perf_counter()
        with pytest.raises(InvalidParameter) as refused:
            job_schedule(rule, "2020-01-01T00:00", "UTC", NOW)
        assert "DAILY or longer" in refused.value.message
        assert time.perf_counter() - started < 0.5


def _fired(expression: str, zone: str, since: datetime, count: int, anchor: datetime | None = None) -> list[str]:
    times = itertools.islice(scheduler_fire_times(expression, zone, since, anchor), count)
    return [t.astimezone(ZoneInfo(zone)).isoformat() for t in times]


def test_schedulers_cron_skips_a_time_the_clocks_skip_and_fires_a_repeated_one_once() -> None:
    # As Scheduler documents it: 02:30 on New York's spring-forward day never fires (a job's rule runs it at
    # 03:30); 01:30 on its fall-back day fires at its first occurrence only
    spring = _fired("cron(30 2 * * ? *)", "America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC), 2)
    assert spring == ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    fall = _fired("cron(30 1 * * ? *)", "America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC), 2)
    assert fall == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_scheduler_at_fires_its_wall_time_once_and_rate_counts_from_its_anchor() -> None:
    since = datetime(2026, 6, 1, tzinfo=UTC)
    assert _fired("at(2026-06-02T07:30:00)", "Australia/Sydney", since, 5) == ["2026-06-02T07:30:00+10:00"]
    assert _fired("at(2026-05-31T07:30:00)", "Australia/Sydney", since, 5) == []  # before `since`
    anchor = datetime(2026, 5, 31, 23, 50, tzinfo=UTC)
    assert _fired("rate(25 minutes)", "UTC", since, 2, anchor) == [
        "2026-06-01T00:15:00+00:00",
        "2026-06-01T00:40:00+00:00",
    ]
    assert _fired("rate(2 hours)", "UTC", anchor, 1, anchor) == ["2026-05-31T23:50:00+00:00"]  # from the anchor itself


def test_what_is_not_a_scheduler_expression_is_refused() -> None:
    for text in ("FREQ=DAILY", "rate(0 minutes)", "cron(0 9 * * ?)", "every day"):
        with pytest.raises(InvalidParameter):
            next(scheduler_fire_times(text, "UTC", NOW))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["America/New_York", "Australia/Sydney", "Europe/London", "Australia/Lord_Howe"]),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]),
    st.sampled_from(["* * ?", "? * MON-FRI", "1,15 * ?", "? * 6L"]),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_a_cron_at_a_time_no_clock_change_touches_fires_when_the_jobs_rule_runs(
    zone: str, hour: int, minute: int, days: str, since: datetime
) -> None:
    # Where the jobs give Scheduler a cron (a time of day the zone never skips or repeats), Scheduler's
    # times and the job's runs are one and the same
    expression = f"cron({minute} {hour} {days} *)"
    instant = since.replace(tzinfo=ZoneInfo(zone))
    fired = list(itertools.islice(scheduler_fire_times(expression, zone, instant), 30))
    runs = list(
        itertools.islice(
            job_schedule(expression, "2026-01-01T00:00", zone, NOW).runs_after(instant - timedelta(microseconds=1)), 30
        )
    )
    if not _changes_at(zone, hour * 60 + minute, 2026):
        assert fired == runs
    assert fired == sorted(set(fired)) and all(t >= instant for t in fired)
