"""The local stack's Scheduler loop (`infra/local/scheduler.py`) with a clock the tests move: when each
kind of expression fires, in its zone and across clock changes, once per time; what a schedule's state,
dates, last change and ActionAfterCompletion do; what its target is sent; and that one bad schedule
stops nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.schedules import job_schedule

from infra.local.scheduler import DeliveryFailed, LocalScheduler, Schedule, trusts_scheduler

INPUT = json.dumps({"job_id": 7, "version": 2, "scheduled_time": "<aws.scheduler.scheduled-time>"})


def _schedule(expression: str, zone: str = "UTC", created: datetime | None = None, **changes: Any) -> Schedule:
    made = created or datetime(2026, 1, 1, tzinfo=UTC)
    name = changes.pop("name", "job-7")
    schedule = Schedule(
        arn=f"arn:aws:scheduler:us-east-1:123456789012:schedule/jobs/{name}",
        name=name,
        group="jobs",
        expression=expression,
        zone=zone,
        state="ENABLED",
        target={"Arn": "arn:aws:sqs:us-east-1:123456789012:runs", "RoleArn": "arn:aws:iam::1:role/r", "Input": INPUT},
        created=made,
        modified=made,
    )
    return replace(schedule, **changes)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Fakes:
    """Schedules held in a dict, targets that record what they are sent (or refuse it), one event log."""

    held: dict[str, Schedule] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    unreadable: bool = False

    def schedules(self) -> list[Schedule]:
        if self.unreadable:
            raise RuntimeError("moto is down")
        return list(self.held.values())

    def delete(self, schedule: Schedule) -> bool:
        self.events.append(("delete", schedule.name))
        return self.held.pop(schedule.name, None) is not None

    def send(self, schedule: Schedule, body: str) -> None:
        if schedule.name in self.refused:
            raise DeliveryFailed("AccessDenied: not allowed sqs:SendMessage")
        self.events.append(("send", body))

    def put(self, schedule: Schedule) -> None:
        self.held[schedule.name] = schedule

    def sent_times(self) -> list[str]:
        return [json.loads(body)["scheduled_time"] for kind, body in self.events if kind == "send"]


def _loop(fakes: Fakes, start: datetime, log: list[str] | None = None) -> tuple[LocalScheduler, Clock]:
    clock = Clock(start)
    return LocalScheduler(fakes, fakes, clock, log=(log if log is not None else []).append), clock


def _run(loop: LocalScheduler, clock: Clock, until: datetime, step: timedelta) -> None:
    while clock.now < until:
        clock.now = min(clock.now + step, until)
        loop.tick()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _walls(zone: str, *texts: str) -> list[str]:
    """Wall times in a zone (ISO, with fold=0: the first of a repeated time) as the UTC stamps sent."""
    return [_utc(datetime.fromisoformat(t).replace(tzinfo=ZoneInfo(zone))) for t in texts]


# Each clock change of 2026 in both zones, with a time of day it skips or repeats.
DST_CASES = [
    # New York forward on 8 March (02:00 -> 03:00): 02:30 never happens that day, and is skipped.
    ("America/New_York", "cron(30 2 * * ? *)", "2026-03-06", ["2026-03-07T02:30", "2026-03-09T02:30"]),
    # New York back on 1 November (02:00 -> 01:00): 01:30 happens twice, and fires the first time only.
    (
        "America/New_York",
        "cron(30 1 * * ? *)",
        "2026-10-31",
        ["2026-11-01T01:30", "2026-11-02T01:30", "2026-11-03T01:30"],
    ),
    # Sydney back on 5 April (03:00 -> 02:00): 02:30 happens twice.
    (
        "Australia/Sydney",
        "cron(30 2 * * ? *)",
        "2026-04-04",
        ["2026-04-05T02:30", "2026-04-06T02:30", "2026-04-07T02:30"],
    ),
    # Sydney forward on 4 October (02:00 -> 03:00): 02:30 is skipped.
    ("Australia/Sydney", "cron(30 2 * * ? *)", "2026-10-02", ["2026-10-03T02:30", "2026-10-05T02:30"]),
    # A time no change touches fires every day at that wall time, whatever the offset.
    (
        "Australia/Sydney",
        "cron(0 9 * * ? *)",
        "2026-04-04",
        ["2026-04-05T09:00", "2026-04-06T09:00", "2026-04-07T09:00"],
    ),
]


@pytest.mark.parametrize(("zone", "expression", "day", "walls"), DST_CASES)
def test_a_cron_in_its_zone_fires_once_for_each_wall_time_across_a_clock_change(
    zone: str, expression: str, day: str, walls: list[str]
) -> None:
    # Given a cron schedule made at 12:00 on the day before, in its zone
    created = datetime.fromisoformat(f"{day}T12:00").replace(tzinfo=ZoneInfo(zone))
    fakes = Fakes()
    fakes.put(_schedule(expression, zone, created))
    loop, clock = _loop(fakes, created)
    # When the loop ticks every five minutes for three days
    _run(loop, clock, created + timedelta(days=3, hours=-1), timedelta(minutes=5))
    # Then it fired for each of those wall times once (none skipped but the one the clocks skip)
    assert fakes.sent_times() == _walls(zone, *walls)


def test_a_one_time_schedule_fires_once_and_is_deleted_before_its_target_is_sent() -> None:
    # Given an at() schedule in Sydney that deletes itself after completing
    fakes = Fakes()
    fakes.put(_schedule("at(2026-03-01T07:30:00)", "Australia/Sydney", after_completion="DELETE"))
    loop, clock = _loop(fakes, datetime(2026, 2, 28, 20, 0, tzinfo=UTC))
    # When the clock passes 07:30 in Sydney (20:30 UTC the day before)
    _run(loop, clock, datetime(2026, 2, 28, 20, 29, tzinfo=UTC), timedelta(seconds=30))
    assert fakes.events == []
    _run(loop, clock, datetime(2026, 2, 28, 22, 0, tzinfo=UTC), timedelta(seconds=30))
    # Then it was deleted, then sent once, for its time
    assert fakes.events == [
        ("delete", "job-7"),
        ("send", INPUT.replace("<aws.scheduler.scheduled-time>", "2026-02-28T20:30:00Z")),
    ]
    assert fakes.held == {}


def test_a_one_time_schedule_kept_after_completion_never_fires_again() -> None:
    fakes = Fakes()
    fakes.put(_schedule("at(2026-03-01T07:30:00)", "UTC", after_completion="NONE"))
    loop, clock = _loop(fakes, datetime(2026, 3, 1, 7, 0, tzinfo=UTC))
    _run(loop, clock, datetime(2026, 3, 1, 12, 0, tzinfo=UTC), timedelta(minutes=1))
    assert fakes.sent_times() == ["2026-03-01T07:30:00Z"]
    assert "job-7" in fakes.held


def test_a_disabled_schedule_never_fires() -> None:
    fakes = Fakes()
    fakes.put(_schedule("cron(* * * * ? *)", state="DISABLED"))
    fakes.put(_schedule("at(2026-01-01T00:30:00)", state="DISABLED", name="once", after_completion="DELETE"))
    loop, clock = _loop(fakes, datetime(2026, 1, 1, tzinfo=UTC))
    _run(loop, clock, datetime(2026, 1, 1, 2, 0, tzinfo=UTC), timedelta(minutes=1))
    assert fakes.events == []
    # Enabled again at 02:00:10, it fires from then on (not the times it was disabled through)
    clock.now += timedelta(seconds=10)
    fakes.put(replace(fakes.held["job-7"], state="ENABLED", modified=clock.now))
    _run(loop, clock, datetime(2026, 1, 1, 2, 3, 30, tzinfo=UTC), timedelta(seconds=30))
    assert fakes.sent_times() == ["2026-01-01T02:01:00Z", "2026-01-01T02:02:00Z", "2026-01-01T02:03:00Z"]


def test_a_schedule_updated_after_firing_fires_at_its_new_time_and_never_twice_for_one_time() -> None:
    # Given a daily cron at 09:00, made at 07:00, that has fired
    fakes = Fakes()
    fakes.put(_schedule("cron(0 9 * * ? *)", created=datetime(2026, 5, 1, 7, 0, tzinfo=UTC)))
    loop, clock = _loop(fakes, datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    _run(loop, clock, datetime(2026, 5, 1, 9, 10, tzinfo=UTC), timedelta(minutes=1))
    assert fakes.sent_times() == ["2026-05-01T09:00:00Z"]
    # When it is changed at 09:10 to 09:30, then to a one-time 09:45
    fakes.put(replace(fakes.held["job-7"], expression="cron(30 9 * * ? *)", modified=clock.now))
    _run(loop, clock, datetime(2026, 5, 1, 9, 40, tzinfo=UTC), timedelta(minutes=1))
    fakes.put(replace(fakes.held["job-7"], expression="at(2026-05-01T09:45:00)", modified=clock.now))
    _run(loop, clock, datetime(2026, 5, 1, 10, 0, tzinfo=UTC), timedelta(minutes=1))
    # Then each fired at its new time
    assert fakes.sent_times() == ["2026-05-01T09:00:00Z", "2026-05-01T09:30:00Z", "2026-05-01T09:45:00Z"]
    # And one changed back to a time it fired for already does not fire it again
    fakes.put(replace(fakes.held["job-7"], expression="at(2026-05-01T09:30:00)", modified=clock.now))
    _run(loop, clock, datetime(2026, 5, 1, 10, 30, tzinfo=UTC), timedelta(minutes=1))
    assert len(fakes.sent_times()) == 3


def test_a_recurring_schedule_does_not_fire_the_times_before_it_was_made() -> None:
    fakes = Fakes()
    fakes.put(_schedule("cron(0 9 * * ? *)", created=datetime(2026, 5, 1, 9, 0, 30, tzinfo=UTC)))
    loop, clock = _loop(fakes, datetime(2026, 5, 1, 9, 0, 40, tzinfo=UTC))
    loop.tick()
    assert fakes.events == []
    _run(loop, clock, datetime(2026, 5, 2, 9, 1, tzinfo=UTC), timedelta(minutes=1))
    assert fakes.sent_times() == ["2026-05-02T09:00:00Z"]


def test_start_and_end_dates_bound_a_recurring_schedule_which_is_deleted_after_its_last_time() -> None:
    # Given an hourly rate from 10:00 to 13:00 that deletes itself when done
    start, end = datetime(2026, 6, 1, 10, 0, tzinfo=UTC), datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    fakes = Fakes()
    fakes.put(_schedule("rate(1 hour)", created=datetime(2026, 6, 1, 8, 20, tzinfo=UTC), start=start, end=end,
                        after_completion="DELETE"))  # fmt: skip
    loop, clock = _loop(fakes, datetime(2026, 6, 1, 8, 20, tzinfo=UTC))
    _run(loop, clock, datetime(2026, 6, 1, 16, 0, tzinfo=UTC), timedelta(minutes=1))
    # Then it fired at its start and each hour until its end (inclusive), and was deleted before the last
    assert fakes.sent_times() == [f"2026-06-01T{h}:00:00Z" for h in (10, 11, 12, 13)]
    assert fakes.events[-2][0] == "delete" and fakes.held == {}


def test_a_one_time_schedule_ignores_start_and_end_dates() -> None:
    fakes = Fakes()
    late = datetime(2026, 6, 2, tzinfo=UTC)
    fakes.put(_schedule("at(2026-06-01T10:00:00)", start=late, end=late + timedelta(days=1)))
    loop, clock = _loop(fakes, datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    _run(loop, clock, datetime(2026, 6, 1, 11, 0, tzinfo=UTC), timedelta(minutes=1))
    assert fakes.sent_times() == ["2026-06-01T10:00:00Z"]


def test_a_rate_fires_at_its_creation_then_every_period_in_real_time() -> None:
    # rate(1 day) across New York's spring change is 24 hours, not the same wall time
    made = datetime(2026, 3, 7, 14, 0, 0, tzinfo=UTC)
    fakes = Fakes()
    fakes.put(_schedule("rate(1 day)", "America/New_York", created=made))
    loop, clock = _loop(fakes, made)
    loop.tick()
    _run(loop, clock, made + timedelta(days=2, minutes=1), timedelta(minutes=10))
    assert fakes.sent_times() == ["2026-03-07T14:00:00Z", "2026-03-08T14:00:00Z", "2026-03-09T14:00:00Z"]


def test_every_scheduler_placeholder_is_filled_and_the_scheduled_time_is_utc() -> None:
    text = "arn=<aws.scheduler.schedule-arn> at=<aws.scheduler.scheduled-time> n=<aws.scheduler.attempt-number>"
    fakes = Fakes()
    made = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 08:30 on 2 July in Sydney
    schedule = _schedule("cron(0 9 * * ? *)", "Australia/Sydney", made, target={"Arn": "x", "Input": text + " <x>"})
    fakes.put(schedule)
    loop, clock = _loop(fakes, made)
    _run(loop, clock, datetime(2026, 7, 1, 23, 5, tzinfo=UTC), timedelta(minutes=1))
    ((kind, body),) = fakes.events
    assert kind == "send"
    assert body == f"arn={schedule.arn} at=2026-07-01T23:00:00Z n=1 <x>"


def test_missed_times_fire_only_the_latest_and_none_older_than_the_event_age() -> None:
    # Given an hourly cron whose target gives up on events older than ten minutes, and a minutely one
    made = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    fakes = Fakes()
    target = {"Arn": "q", "Input": INPUT, "RetryPolicy": {"MaximumEventAgeInSeconds": 600}}
    fakes.put(_schedule("cron(0 * * * ? *)", created=made, target=target, name="hourly"))
    fakes.put(_schedule("cron(* * * * ? *)", created=made, name="minutely"))
    loop, clock = _loop(fakes, made)
    # When the loop wakes after four and a half hours, five minutes past an hour: each fires its latest
    # time only (the hour is five minutes old), not the hours and minutes it slept through
    clock.now = datetime(2026, 1, 1, 5, 5, tzinfo=UTC)
    loop.tick()
    assert fakes.sent_times() == ["2026-01-01T05:00:00Z", "2026-01-01T05:05:00Z"]
    # When it next wakes 30 minutes past an hour: that hour is too old to fire; the minute is not
    clock.now = datetime(2026, 1, 1, 7, 30, tzinfo=UTC)
    loop.tick()
    assert fakes.sent_times()[2:] == ["2026-01-01T07:30:00Z"]


def test_an_at_made_just_after_its_time_still_fires_within_the_event_age() -> None:
    # A job's next run made at 12:00:59.9 for 12:01 may land in moto after 12:01: it must still fire
    fakes = Fakes()
    fakes.put(_schedule("at(2026-01-01T12:01:00)", created=datetime(2026, 1, 1, 12, 1, 0, 200_000, tzinfo=UTC)))
    loop, clock = _loop(fakes, datetime(2026, 1, 1, 12, 1, 3, tzinfo=UTC))
    loop.tick()
    assert fakes.sent_times() == ["2026-01-01T12:01:00Z"]
    # And one a day old does not
    fakes.put(_schedule("at(2025-12-30T12:01:00)", name="old", created=clock.now))
    assert loop.tick() == []
    assert len(fakes.sent_times()) == 1


def test_one_bad_schedule_stops_neither_the_others_nor_the_loop() -> None:
    fakes = Fakes()
    fakes.put(_schedule("cron(0 9 * * ? 2027)", name="bad"))  # a year the jobs' reading refuses
    fakes.put(_schedule("cron(0 9 * * ? *)", name="refused"))
    fakes.put(_schedule("cron(0 9 * * ? *)", name="good"))
    fakes.refused.add("refused")
    log: list[str] = []
    loop, clock = _loop(fakes, datetime(2026, 1, 1, 8, 59, tzinfo=UTC), log)
    clock.now = datetime(2026, 1, 1, 9, 0, 30, tzinfo=UTC)
    firings = {f.name: f for f in loop.tick()}
    # The good one is delivered; the refused one is logged, not delivered; the bad one is skipped, saying why
    assert firings["good"].delivered and firings["good"].error is None
    assert not firings["refused"].delivered and "AccessDenied" in str(firings["refused"].error)
    assert not firings["bad"].delivered and "year" in str(firings["bad"].error)
    assert len(fakes.sent_times()) == 1
    # And a refused delivery is not retried at the next tick; a failure to read is a tick that does nothing
    clock.now += timedelta(seconds=5)
    assert [f.name for f in loop.tick()] == ["bad"]
    fakes.unreadable = True
    assert loop.tick() == []
    # Each said so in the log, the bad schedule once (not at every tick), the failed read too
    assert [line.split(" ", 1)[0] for line in log] == ["jobs/bad", "jobs/refused", "jobs/good", "could"]


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ],
}
CONTEXT = {
    "aws:sourceaccount": "123456789012",
    "aws:sourcearn": "arn:aws:scheduler:us-east-1:123456789012:schedule-group/jobs",
}


def _statement(**changes: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [TRUST["Statement"][0] | changes]}


@pytest.mark.parametrize(
    ("document", "trusted"),
    [
        (TRUST, True),
        (_statement(Condition={}), True),
        (_statement(Action=["sts:*"]), True),
        (_statement(Principal={"Service": ["events.amazonaws.com", "scheduler.amazonaws.com"]}), True),
        (
            _statement(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:scheduler:*:123456789012:schedule-group/*"}}),
            True,
        ),
        (_statement(Principal={"Service": "lambda.amazonaws.com"}), False),
        (_statement(Principal={"AWS": "arn:aws:iam::123456789012:root"}), False),
        (_statement(Effect="Deny"), False),
        (_statement(Action="sts:TagSession"), False),
        (_statement(Condition={"StringEquals": {"aws:SourceAccount": "999999999999"}}), False),
        (
            _statement(
                Condition={
                    "ArnEquals": {"aws:SourceArn": "arn:aws:scheduler:us-east-1:123456789012:schedule-group/other"}
                }
            ),
            False,
        ),
        (_statement(Condition={"StringEquals": {"aws:PrincipalTag/team": "x"}}), False),  # not known here: not met
        (_statement(Condition={"NumericLessThan": {"aws:SourceAccount": "1"}}), False),
    ],
)
def test_only_a_role_that_trusts_scheduler_is_assumed_for_a_target(document: dict[str, Any], trusted: bool) -> None:
    assert trusts_scheduler(document, CONTEXT) is trusted


# The zones' clock changes of 2026 that the property starts near (either direction, both hemispheres,
# a half-hour change in Lord Howe).
CHANGES_2026 = [
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 4, 16, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 10, 3, 16, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
]


@given(
    change=st.sampled_from(CHANGES_2026),
    before=st.integers(min_value=60, max_value=36 * 60),
    minutes=st.sets(st.sampled_from([0, 15, 30, 45, 59]), min_size=1, max_size=3),
    hours=st.sets(st.integers(min_value=0, max_value=23), min_size=1, max_size=6),
    weekdays=st.none() | st.sets(st.integers(min_value=1, max_value=7), min_size=1, max_size=7),
    gaps=st.lists(st.integers(min_value=1, max_value=240), min_size=1, max_size=40),
)
def test_the_loop_fires_a_crons_times_as_the_domain_says_once_each_the_latest_of_each_wait(
    change: tuple[str, datetime],
    before: int,
    minutes: set[int],
    hours: set[int],
    weekdays: set[int] | None,
    gaps: list[int],
) -> None:
    # Given a cron schedule made some hours before a clock change in its zone (at :30 past a minute)
    zone, moment = change
    made = moment - timedelta(minutes=before, seconds=-30)
    fields = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))}"
    days = "* * ?" if weekdays is None else f"? * {','.join(map(str, sorted(weekdays)))}"
    expression = f"cron({fields} {days} *)"
    fakes = Fakes()
    fakes.put(_schedule(expression, zone, created=made))
    loop, clock = _loop(fakes, made)
    # When the loop wakes after each gap (of minutes; many times can pass between two wakes)
    ticks = []
    for gap in gaps:
        clock.now += timedelta(minutes=gap)
        ticks.append(clock.now)
        loop.tick()
    # Then it fired, for each wait, the latest of the runs the domain's rule has in it whose wall time
    # the cron names (Scheduler skips a time the clocks skip: the domain's rule runs it past the change)
    tz = ZoneInfo(zone)
    rule = job_schedule(expression, made.astimezone(tz).replace(tzinfo=None, second=0), zone, made)

    def named(run: datetime) -> bool:
        wall = run.astimezone(tz)
        weekday = wall.isoweekday() % 7 + 1  # cron's day-of-week: 1 is Sunday
        return wall.minute in minutes and wall.hour in hours and (weekdays is None or weekday in weekdays)

    runs = []
    for run in rule.runs_after(made):
        if run > ticks[-1]:
            break
        runs.append(run)
    expected, previous = [], made
    for tick in ticks:
        inside = [r for r in runs if previous < r <= tick and named(r)]
        if inside:
            expected.append(_utc(inside[-1]))
        previous = tick
    fired = fakes.sent_times()
    assert fired == expected
    assert len(set(fired)) == len(fired)
