"""When a job runs: an iCalendar recurrence rule (RFC 5545) in the job's time zone, its next runs as
instants, and the EventBridge Scheduler expression that fires them (issue 10, seed 001's jobs).

A rule is evaluated on the job's wall clock (python-dateutil's `rrule`): "every day at 09:00" in
Australia/Sydney is 09:00 there in summer and in winter. Across a daylight-saving change a wall time
that does not exist (02:30 on the night clocks go forward) runs at the same distance past the change
(03:30), and one that happens twice (01:30 on the night clocks go back) runs the first time only; the
instants are strictly increasing, so no run is repeated and no day is skipped.

EventBridge Scheduler has no recurrence rules. A rule that a Scheduler cron expression says exactly
(one time of day; every day, some weekdays, some days of the month, or the n-th weekday of the month;
no interval, count or end) becomes `cron(...)` with the job's time zone; any other is scheduled one run
at a time, `at(...)` of the next instant, and the next schedule is made when a run starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from reportserver.domain.errors import InvalidParameter

# How far ahead a rule is searched for a next run: a rule with none within it "never runs again".
HORIZON = timedelta(days=366 * 5)
# Clocks change between midnight and 03:00 in the zones that change them; a run at such a time is
# scheduled one at a time (`at()`), so that what a skipped or repeated hour does is decided here.
EARLIEST_CRON_HOUR = 4
_CRON_WEEKDAY_NUMBERS = {"MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7, "SUN": 1}
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_RULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY",
     "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST"}
)  # fmt: skip


@dataclass(frozen=True)
class SchedulerExpression:
    """What EventBridge Scheduler is given: `cron(...)` (recurring) or `at(...)` (one run), in `zone`."""

    expression: str
    zone: str

    @property
    def recurring(self) -> bool:
        return self.expression.startswith("cron(")


@dataclass(frozen=True)
class JobSchedule:
    """A job's recurrence rule from its start, in its time zone."""

    rule: str  # the RRULE's parts, without "RRULE:"
    start: datetime  # the first possible run, on the job's wall clock (naive)
    zone: str

    def runs_after(self, instant: datetime) -> Iterator[datetime]:
        """The runs strictly after `instant` (aware), as UTC instants, in order, each once."""
        from dateutil.rrule import rrulestr  # noqa: PLC0415 - only where jobs are saved or run

        zone = ZoneInfo(self.zone)
        # From a little before: a wall time in a skipped hour lands later than it reads.
        after = instant.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
        last = instant.astimezone(UTC)
        for wall in rrulestr(self.rule, dtstart=self.start).xafter(after, inc=False):
            # fold=0: a wall time that happens twice is its first; one that never happens is read with the
            # offset before the change, which lands as far past it as the wall time was.
            moment = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if moment > last:
                last = moment
                yield moment

    def next_run(self, instant: datetime) -> datetime | None:
        """The first run after `instant`, or None if the rule has none within `HORIZON`."""
        for moment in self.runs_after(instant):
            return moment if moment - instant <= HORIZON else None
        return None

    def scheduler_expression(self, now: datetime) -> SchedulerExpression | None:
        """A cron expression where one says the rule exactly; else `at()` of the next run (None: no more runs)."""
        started = self.start.replace(tzinfo=ZoneInfo(self.zone), fold=0) <= now
        cron = _as_cron(self.rule, self.start) if started else None  # a cron would fire before the start
        if cron is not None:
            return SchedulerExpression(cron, self.zone)
        upcoming = self.next_run(now)
        if upcoming is None:
            return None
        wall = upcoming.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        return SchedulerExpression(f"at({wall.isoformat(timespec='seconds')})", self.zone)


def job_schedule(rule: str, start: str | datetime, zone: str, now: datetime) -> JobSchedule:
    """A job's schedule from seed 001's `recurrenceRule`, `startDate` and `timeZone`: each checked, a
    refusal (400) naming the field; a rule that would never run again after `now` is refused too."""
    tz = _zone(zone)
    first = _start(start, tz)
    text = _until_on_the_wall_clock(_rule_text(rule), tz)
    schedule = JobSchedule(text, first, zone)
    try:
        upcoming = schedule.next_run(now)
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidParameter("recurrenceRule", f"Invalid recurrenceRule: {error}") from None
    if upcoming is None:
        raise InvalidParameter("recurrenceRule", "The recurrenceRule never runs again (after now, within five years)")
    return schedule


def _zone(name: str) -> str:
    if not isinstance(name, str) or name not in _zones():
        raise InvalidParameter("timeZone", f"Unknown timeZone {name!r}: give an IANA name such as 'Australia/Sydney'")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParameter("timeZone", f"Unknown timeZone {name!r}") from None
    return name


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES  # noqa: PLW0603 - read once per container
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def _start(value: str | datetime, zone: str) -> datetime:
    """The start on the job's wall clock: a naive date-time is one already; an aware one (or one with an
    offset or Z) is converted to the zone."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidParameter("startDate", f"Invalid startDate {value!r}: give an ISO date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _rule_text(rule: str) -> str:
    """The rule's parts, checked: each part once and known, FREQ among them; DTSTART and the like are
    the job's own fields, never the rule's."""
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidParameter("recurrenceRule", "A recurrenceRule is required, e.g. FREQ=WEEKLY;BYDAY=MO")
    text = rule.strip()
    text = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
    if "\n" in text or "\r" in text:
        raise InvalidParameter("recurrenceRule", "One RRULE line only; the start is the job's startDate")
    names = []
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if not equals or not value:
            raise InvalidParameter("recurrenceRule", f"Invalid recurrenceRule part {part!r}: expected NAME=VALUE")
        names.append(name.upper())
    unknown = [n for n in names if n not in _RULE_PARTS]
    if unknown:
        allowed = ", ".join(sorted(_RULE_PARTS))
        raise InvalidParameter("recurrenceRule", f"Unknown recurrenceRule part {unknown[0]!r}; allowed: {allowed}")
    if "FREQ" not in names or len(names) != len(set(names)):
        raise InvalidParameter("recurrenceRule", "A recurrenceRule has one FREQ and each part once")
    if "COUNT" in names and "UNTIL" in names:
        raise InvalidParameter("recurrenceRule", "COUNT and UNTIL cannot be used together (RFC 5545)")
    return text  # the parts' values are checked when the rule is first evaluated (`job_schedule`)


def _until_on_the_wall_clock(rule: str, zone: str) -> str:
    """RFC 5545 writes UNTIL in UTC (`...T000000Z`) when the start has a time zone; the rule is evaluated
    on the job's wall clock, so such an UNTIL becomes that wall time."""
    pieces = []
    for part in rule.split(";"):
        name, _eq, value = part.partition("=")
        if name.upper() == "UNTIL" and value.upper().endswith("Z"):
            try:
                instant = datetime.strptime(value.upper(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                raise InvalidParameter("recurrenceRule", f"Invalid UNTIL {value!r}: e.g. 20271231T230000Z") from None
            value = instant.astimezone(ZoneInfo(zone)).strftime("%Y%m%dT%H%M%S")
        pieces.append(f"{name}={value}")
    return ";".join(pieces)


def _parts(rule: str) -> dict[str, str]:
    return {name.upper(): value.upper() for name, _eq, value in (p.partition("=") for p in rule.split(";"))}


def _as_cron(rule: str, start: datetime) -> str | None:  # noqa: PLR0911 - one return per shape of rule
    """The Scheduler cron expression (minutes hours day-of-month month day-of-week year) that fires
    exactly the rule's runs, or None. Only rules with no end, no interval and one time of day: the time
    is BYHOUR/BYMINUTE or the start's, and a rule that starts later than now is scheduled one run at a time
    until its start has passed (the caller's `at()`)."""
    parts = _parts(rule)
    if set(parts) - {"FREQ", "BYDAY", "BYMONTHDAY", "BYHOUR", "BYMINUTE", "BYSETPOS", "WKST"}:
        return None  # INTERVAL, COUNT, UNTIL, BYMONTH, BYSECOND...: one run at a time
    if start.second or "," in parts.get("BYHOUR", "") or "," in parts.get("BYMINUTE", ""):
        return None
    hour = int(parts.get("BYHOUR", start.hour))
    minute = int(parts.get("BYMINUTE", start.minute))
    if hour < EARLIEST_CRON_HOUR:
        return None  # the hours where clocks change: each run placed here, by the rules above
    frequency = parts["FREQ"]
    days = parts.get("BYDAY")
    if frequency == "DAILY" and not days and "BYMONTHDAY" not in parts and "BYSETPOS" not in parts:
        return f"cron({minute} {hour} * * ? *)"
    if frequency == "WEEKLY" and "BYMONTHDAY" not in parts and "BYSETPOS" not in parts:
        weekdays = _weekdays(days or _WEEKDAYS[start.weekday()][:2])
        return f"cron({minute} {hour} ? * {weekdays} *)" if weekdays else None
    if frequency == "MONTHLY":
        if "BYMONTHDAY" in parts and not days and "BYSETPOS" not in parts:
            monthdays = parts["BYMONTHDAY"].split(",")
            if all(d.isdigit() and 1 <= int(d) <= 28 for d in monthdays):  # 29-31 are not in every month
                return f"cron({minute} {hour} {','.join(monthdays)} * ? *)"
            return f"cron({minute} {hour} L * ? *)" if monthdays == ["-1"] else None
        nth = _nth_weekday(days, parts.get("BYSETPOS"))
        if nth is not None and "BYMONTHDAY" not in parts:
            return f"cron({minute} {hour} ? * {nth} *)"
    return None


def _weekdays(days: str) -> str | None:
    names = []
    for day in days.split(","):
        if len(day) != 2 or not day.isalpha():
            return None  # "1MO" in a weekly rule has no cron form
        matches = [w for w in _WEEKDAYS if w.startswith(day)]
        if len(matches) != 1:
            return None
        names.append(matches[0])
    return ",".join(names)


def _nth_weekday(days: str | None, position: str | None) -> str | None:
    """`BYDAY=MO;BYSETPOS=1` or `BYDAY=1MO` (the first Monday) as cron's `2#1`; the last one (-1) as
    `2L`. Cron holds one such day."""
    if not days or "," in days:
        return None
    order, day = (position, days) if position is not None else (days[:-2] or None, days[-2:])
    weekday = _weekdays(day)
    if order is None or weekday is None:
        return None
    number = _CRON_WEEKDAY_NUMBERS[weekday]  # cron's day-of-week: 1 is Sunday
    if order.lstrip("+") in {"1", "2", "3", "4", "5"}:
        return f"{number}#{order.lstrip('+')}"
    return f"{number}L" if order == "-1" else None


def describe(schedule: JobSchedule) -> dict[str, Any]:
    """The schedule as a job's view shows it."""
    return {"recurrenceRule": schedule.rule, "startDate": schedule.start.isoformat(), "timeZone": schedule.zone}
