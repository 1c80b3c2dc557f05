"""When a job runs: an iCalendar recurrence rule (RFC 5545) in the job's time zone, its next runs as
instants, and the EventBridge Scheduler expression that fires them (issue 10, seed 001's jobs).

A rule is evaluated on the job's wall clock (python-dateutil's `rrule`): "every day at 09:00" in
Australia/Sydney is 09:00 there in summer and in winter. Across a daylight-saving change a wall time
that does not exist (02:30 on the night clocks go forward) runs as far past the change as it was into
the gap (03:30), or as far before it when that would be the next day (23:30 in America/Nuuk, whose
clocks skip 23:00-24:00); one that happens twice (01:30 on the night clocks go back) runs the first time
only. The instants are strictly increasing and each run stays on its day: none is repeated, no day is
skipped.

EventBridge Scheduler has no recurrence rules. A rule that a Scheduler cron expression says exactly
(one time of day that the zone's clocks never skip or repeat; every day, some weekdays, some days of the
month, or the n-th weekday of the month; no interval, count or end) becomes `cron(...)` with the job's
time zone; any other is scheduled one run at a time, `at(...)` of the next run, and the next schedule
is made when a run starts. Runs are to the minute, as Scheduler's are: no SECONDLY rule, no BYSECOND.

Scheduler's own `cron(...)` and `rate(...)` are accepted as rules too. A cron expression is read as the
rule of the same wall times, so a clock change treats it as any rule here (where Scheduler's own cron
would skip a time the clocks skip: a job never loses a day); a rate counts real time from the job's
start, as Scheduler's rates do (`rate(1 day)` is 24 hours, also across a change).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from reportserver.domain.errors import InvalidParameter

# How far ahead a rule is searched for a next run: a rule with none within it "never runs again". The
# largest intervals are bounded to fit in it (a yearly rule runs at least every ten years).
HORIZON = timedelta(days=366 * 10)
MAX_INTERVAL = {"YEARLY": 10, "MONTHLY": 120, "WEEKLY": 520, "DAILY": 3650, "HOURLY": 87_600, "MINUTELY": 5_256_000}
MAX_COUNT = 10_000  # a counted rule is read from its start: this bounds that reading
_STEP = {"WEEKLY": timedelta(weeks=1), "DAILY": timedelta(days=1), "HOURLY": timedelta(hours=1),
         "MINUTELY": timedelta(minutes=1)}  # fmt: skip
_CRON_WEEKDAY_NUMBERS = {"MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7, "SUN": 1}
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_RULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY",
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
        """The runs strictly after `instant` (aware), as UTC instants, in order, each once, up to
        `HORIZON` after it."""
        zone = ZoneInfo(self.zone)
        # From a little before: a wall time in a skipped hour may land on either side of where it reads.
        after = instant.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
        last = instant.astimezone(UTC)
        for wall in self._rule_from(after, after + HORIZON).xafter(after, inc=False):
            moment = _instant(wall, zone)
            if moment > last:
                last = moment
                yield moment

    def _rule_from(self, after: datetime, horizon: datetime) -> Any:
        """The rule, read from close before `after` rather than from its start (a minutely rule begun a
        year ago would otherwise be walked through half a million past runs), and ended at `horizon`
        (a rule that matches nothing, such as 30 February, would otherwise be searched to year 9999)."""
        from dateutil.rrule import rrulestr  # noqa: PLC0415 - only where jobs are saved or run

        rule = rrulestr(self.rule, dtstart=self.start)
        parts = _parts(self.rule)
        if "COUNT" in parts:
            return rule  # counted from its start; MAX_COUNT bounds it
        start = self.start
        step = _STEP.get(parts["FREQ"])
        if step is not None and "BYSETPOS" not in parts and "BYWEEKNO" not in parts and start < after:
            period = step * int(parts.get("INTERVAL", "1"))
            start += period * ((after - start) // period)  # whole periods: the rule's phase is kept
        until = min(rule._until, horizon) if rule._until is not None else horizon
        return rule.replace(dtstart=start, until=until)

    def next_run(self, instant: datetime) -> datetime | None:
        """The first run after `instant`, or None if the rule has none within `HORIZON`."""
        for moment in self.runs_after(instant):
            return moment if moment - instant <= HORIZON else None
        return None

    def scheduler_expression(self, now: datetime) -> SchedulerExpression | None:
        """A cron expression where one says the rule exactly; else `at()` of the next run (None: no more runs)."""
        started = self.start.replace(tzinfo=ZoneInfo(self.zone), fold=0) <= now
        # A job that has not started: a cron expression would fire before its start.
        cron = _as_cron(self.rule, self.start, self.zone, now.year) if started else None
        if cron is not None:
            return SchedulerExpression(cron, self.zone)
        upcoming = self.next_run(now)
        if upcoming is None:
            return None
        wall = upcoming.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        return SchedulerExpression(f"at({wall.isoformat(timespec='seconds')})", self.zone)


def job_schedule(rule: str, start: str | datetime, zone: str, now: datetime) -> JobSchedule:
    """A job's schedule from seed 001's `recurrenceRule`, `startDate` and `timeZone`: each checked, a
    refusal (400) naming the field; a rule that would never run again after `now` is refused too. The
    start is within `HORIZON` of `now`, to the minute. A Scheduler `rate(...)` counts real time, as
    Scheduler's does: it is evaluated in UTC from the start's instant."""
    if now.tzinfo is None:
        raise TypeError("now must be an aware datetime")
    tz = _zone(zone)
    first = _start(start, tz, now)
    try:
        translated = _from_scheduler_expression(rule) if isinstance(rule, str) else None
        if translated is not None and translated.startswith("FREQ=") and rule.strip().lower().startswith("rate("):
            first = first.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)
            tz = "UTC"
        text = _until_on_the_wall_clock(_rule_text(translated or rule), tz)
        schedule = JobSchedule(text, first, tz)
        upcoming = schedule.next_run(now)
    except InvalidParameter:
        raise
    except (ValueError, TypeError, OverflowError, IndexError) as error:
        raise InvalidParameter("recurrenceRule", f"Invalid recurrenceRule: {error}") from None
    if upcoming is None:
        raise InvalidParameter("recurrenceRule", "The recurrenceRule never runs again (after now, within ten years)")
    return schedule


def scheduler_fire_times(
    expression: str, zone: str, since: datetime, anchor: datetime | None = None
) -> Iterator[datetime]:
    """When EventBridge Scheduler invokes a schedule of `expression` in `zone`: its times from `since`
    (aware, inclusive) on, as UTC instants, in order, each once (a recurring expression's are endless).

    As Scheduler documents them: `cron(...)` on the zone's wall clock, where a time the clocks skip is
    skipped and a time they repeat fires once, the first time (a job's rule instead runs a skipped time
    past the change; a job is given cron only for times no change touches, where the two agree);
    `rate(...)` in real time from `anchor` (the schedule's StartDate, else its creation), the first at
    `anchor` itself; `at(...)` once, at that wall time in the zone. A cron expression is read as the
    jobs' rules read it (its year '*'; no W), so a refusal is an `InvalidParameter`."""
    text = expression.strip()
    tz = ZoneInfo(zone)
    if text.startswith("at(") and text.endswith(")"):
        moment = _instant(datetime.fromisoformat(text[3:-1]), tz)
        if moment >= since:
            yield moment
        return
    rule = _from_scheduler_expression(text)
    if rule is None:
        raise InvalidParameter("scheduleExpression", f"Not a Scheduler expression: {text[:40]!r}")
    if text.lower().startswith("rate("):
        parts = _parts(rule)
        period = _STEP[parts["FREQ"]] * int(parts["INTERVAL"])
        origin = (anchor or since).astimezone(UTC)
        moment = origin + period * max(0, -((origin - since) // period))  # the first at or after `since`
        while True:
            yield moment
            moment += period
    after = (since.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)).replace(second=0, microsecond=0)
    walls = JobSchedule(rule, after, zone)._rule_from(after, after + HORIZON).xafter(after, inc=True)
    for wall in walls:
        moment = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if moment.astimezone(tz).replace(tzinfo=None) == wall and moment >= since:  # else skipped, or before
            yield moment


_RATE_UNITS = {"minute": "MINUTELY", "hour": "HOURLY", "day": "DAILY"}
_CRON_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CRON_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # cron's day-of-week 1-7


def _from_scheduler_expression(text: str) -> str | None:
    """A Scheduler `rate(...)` or `cron(...)` expression as the recurrence rule that runs at the same wall
    times in the job's time zone (None: the text is no such expression, read as an RRULE). A rate counts
    from the job's start; a cron is the rule of every combination of its fields, as Scheduler reads it."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered.startswith("rate(") and lowered.endswith(")"):
        words = lowered[5:-1].split()
        if len(words) != 2 or not words[0].isascii() or not words[0].isdigit() or int(words[0]) < 1:
            raise InvalidParameter("recurrenceRule", "A rate is rate(<n> minutes|hours|days), n at least 1")
        unit = _RATE_UNITS.get(words[1].removesuffix("s"))
        if unit is None or (words[1].endswith("s") != (int(words[0]) != 1)):
            raise InvalidParameter("recurrenceRule", "A rate is rate(1 minute), rate(5 minutes), rate(2 hours), ...")
        return f"FREQ={unit};INTERVAL={int(words[0])}"
    if lowered.startswith("cron(") and lowered.endswith(")"):
        return _cron_rule(stripped[5:-1].split())
    return None


def _cron_rule(fields: list[str]) -> str:
    """Scheduler's cron (minutes hours day-of-month month day-of-week year) as an RRULE."""
    if len(fields) != 6:
        raise InvalidParameter(
            "recurrenceRule", "A cron expression has six fields: minutes hours day-of-month month day-of-week year"
        )
    minutes, hours, monthdays, months, weekdays, years = (f.upper() for f in fields)
    if "W" in monthdays.replace("?", ""):
        raise InvalidParameter("recurrenceRule", "cron's W (the weekday nearest a day) is not supported: use an RRULE")
    if years != "*":
        raise InvalidParameter("recurrenceRule", "A cron expression's year must be '*' here (a job runs every year)")
    if (monthdays == "?") == (weekdays == "?"):
        raise InvalidParameter(
            "recurrenceRule", "A cron expression has '?' in one of day-of-month and day-of-week, not both"
        )
    parts = [f"BYMINUTE={_cron_values(minutes, 0, 59, 'minutes')}", f"BYHOUR={_cron_values(hours, 0, 23, 'hours')}"]
    if months != "*":
        parts.append(f"BYMONTH={_cron_values(months, 1, 12, 'month', _CRON_MONTHS)}")
    frequency = "DAILY"
    if monthdays not in ("?", "*"):
        frequency = "MONTHLY"
        parts.append(f"BYMONTHDAY={'-1' if monthdays == 'L' else _cron_values(monthdays, 1, 31, 'day-of-month')}")
    if weekdays not in ("?", "*"):
        days = _cron_weekdays(weekdays)
        frequency = "MONTHLY" if days[0] in "-12345" else "WEEKLY"  # the n-th weekday of a month, or every one
        parts.append(f"BYDAY={days}")
    return ";".join([f"FREQ={frequency}", *parts])


def _cron_weekdays(text: str) -> str:
    """Day-of-week: 1-7 (Sunday first) or SUN-SAT, lists and ranges; `2#1` (the first Monday), `6L` (the
    last Friday)."""
    if "#" in text:
        day, _hash, nth = text.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise InvalidParameter("recurrenceRule", "In cron's day-of-week, d#n takes n from 1 to 5")
        return f"{nth}{_CRON_DAYS[int(_cron_values(day, 1, 7, 'day-of-week', _CRON_DAYS)) - 1][:2]}"
    if text.endswith("L") and len(text) > 1:
        return f"-1{_CRON_DAYS[int(_cron_values(text[:-1], 1, 7, 'day-of-week', _CRON_DAYS)) - 1][:2]}"
    numbers = _cron_values(text, 1, 7, "day-of-week", _CRON_DAYS).split(",")
    return ",".join(_CRON_DAYS[int(n) - 1][:2] for n in numbers)


def _cron_values(text: str, low: int, high: int, field: str, names: tuple[str, ...] = ()) -> str:
    """A cron field (`*`, `5`, `1,15`, `1-5`, `*/15`, `10/20`, names for months and days) as the sorted
    list of the values it stands for."""

    def number(word: str) -> int:
        if word in names:
            return names.index(word) + 1
        if not word.isascii() or not word.isdigit() or not low <= int(word) <= high:
            raise InvalidParameter("recurrenceRule", f"Invalid cron {field} '{word[:20]}': give {low}-{high}")
        return int(word)

    values: set[int] = set()
    for item in text.split(","):
        span, slash, step_text = item.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _dash, end = span.partition("-")
            first, last = number(start), number(end)
        else:
            first = number(span)
            last = high if slash else first
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) < 1:
                raise InvalidParameter("recurrenceRule", f"Invalid cron {field} step '{step_text[:20]}'")
            step = int(step_text)
        if first > last:
            raise InvalidParameter("recurrenceRule", f"Invalid cron {field} range '{span[:20]}'")
        values.update(range(first, last + 1, step))
    return ",".join(str(v) for v in sorted(values))


_NO_PLACE = frozenset({"localtime", "Factory", "posixrules"})  # tzdata's files that name no zone of a place


def _zone(name: str) -> str:
    if not isinstance(name, str) or name not in _zones() or name in _NO_PLACE:
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


def _start(value: str | datetime, zone: str, now: datetime) -> datetime:
    """The start on the job's wall clock, to the minute (Scheduler's runs are): a naive date-time is one
    already; an aware one (or one with an offset or Z) is converted to the zone. Within `HORIZON` of
    `now` either way: a rule read from a start centuries ago is walked through every run since."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidParameter("startDate", f"Invalid startDate {value!r}: give an ISO date-time") from None
    if moment.second or moment.microsecond:
        raise InvalidParameter("startDate", "startDate is to the minute: its seconds are 0")
    try:
        instant = moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None else moment
        if abs(instant.astimezone(UTC) - now) > HORIZON:
            raise InvalidParameter("startDate", "startDate is within ten years of now")
        return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise InvalidParameter("startDate", "startDate is within ten years of now") from None


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
    _check_values(_parts(text))
    return text


def _check_values(parts: dict[str, str]) -> None:
    """What dateutil would take but RFC 5545 or Scheduler does not: runs to the minute, an interval and a
    count of at least one (and at most what `HORIZON` and `MAX_COUNT` hold), no day 0 of a month, an
    UNTIL that is a date-time."""
    frequency = parts["FREQ"]
    if frequency not in MAX_INTERVAL:
        allowed = ", ".join(MAX_INTERVAL)
        raise InvalidParameter("recurrenceRule", f"FREQ={frequency} is not a job's frequency; allowed: {allowed}")
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= MAX_INTERVAL[frequency]:
        limit = MAX_INTERVAL[frequency]
        raise InvalidParameter("recurrenceRule", f"INTERVAL must be a whole number from 1 to {limit} for {frequency}")
    count = parts.get("COUNT", "1")
    if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
        raise InvalidParameter("recurrenceRule", f"COUNT must be a whole number from 1 to {MAX_COUNT}")
    if frequency in ("MINUTELY", "HOURLY") and ("BYSETPOS" in parts or "BYWEEKNO" in parts):
        # dateutil walks such a rule minute by minute from its start (44 s for a minutely rule begun in 2020).
        raise InvalidParameter(
            "recurrenceRule", f"BYSETPOS and BYWEEKNO are for DAILY or longer rules, not {frequency}"
        )
    if any(day.lstrip("+-") in {"0", "00"} for day in parts.get("BYMONTHDAY", "").split(",")):
        raise InvalidParameter("recurrenceRule", "BYMONTHDAY cannot be 0 (1 to 31, or -1 for the last day)")
    if _no_such_day(parts):
        # dateutil searches such a rule to year 9999 (seconds of work per save): refused here instead.
        raise InvalidParameter("recurrenceRule", "The recurrenceRule never runs: no BYMONTH month has its BYMONTHDAY")
    until = parts.get("UNTIL")
    if until is not None and not (len(until.rstrip("Z")) == 15 and until[8] == "T"):
        raise InvalidParameter("recurrenceRule", f"Invalid UNTIL {until!r}: a date-time such as 20271231T230000Z")


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _no_such_day(parts: dict[str, str]) -> bool:
    """BYMONTHDAY days that none of the BYMONTH months has (30 February)."""
    try:
        days = [abs(int(d)) for d in parts.get("BYMONTHDAY", "").split(",") if d]
        months = [int(m) for m in parts.get("BYMONTH", "").split(",") if m]
    except ValueError:
        return False  # dateutil names what it cannot read
    if not days or not months or not all(1 <= m <= 12 for m in months):
        return False
    return min(days) > max(_MONTH_DAYS[m - 1] for m in months)


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


def _as_cron(rule: str, start: datetime, zone: str, year: int) -> str | None:  # noqa: PLR0911 - one return per shape of rule
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
    if _changes_at(zone, hour * 60 + minute, year):
        return None  # a time the zone's clocks skip or repeat: each run placed here, by the rules above
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


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A run's wall time as an instant. A time that happens twice is its first (fold=0). A time that never
    happens (in the gap clocks skip) is read with the offset before the change, which lands as far past the
    gap as the time was into it, unless that is the next day: then with the offset after it, as far before."""
    moment = wall.replace(tzinfo=zone, fold=0)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return moment.astimezone(UTC)  # the wall time exists
    later = moment.astimezone(UTC)
    if later.astimezone(zone).date() == wall.date():
        return later
    return wall.replace(tzinfo=zone, fold=1).astimezone(UTC)


CHANGE_YEARS = 10  # how far ahead a zone's clock changes are looked for, to decide a cron expression


def _changes_at(zone: str, minute_of_day: int, year: int) -> bool:
    """Whether the zone's clocks skip or repeat this time of day on some day of CHANGE_YEARS from `year`."""
    return minute_of_day in _changed_minutes(zone, year)


@functools.lru_cache(maxsize=64)
def _changed_minutes(zone: str, year: int) -> frozenset[int]:
    """The wall times (minutes of the day) that the zone's clock changes skip or repeat in CHANGE_YEARS
    from `year`: each day's offset at midnight UTC against the next, and a day that differs read half
    hour by half hour (every change so far is on a whole or half hour of UTC)."""
    tz = ZoneInfo(zone)
    day = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + CHANGE_YEARS, 1, 1, tzinfo=UTC)
    minutes: set[int] = set()
    offset = day.astimezone(tz).utcoffset()
    while day < end:
        following = day + timedelta(days=1)
        if following.astimezone(tz).utcoffset() != offset:
            moment = day
            while moment < following:
                moment += timedelta(minutes=30)
                now_offset = moment.astimezone(tz).utcoffset()
                if now_offset != offset and now_offset is not None and offset is not None:
                    shift = int(abs((now_offset - offset).total_seconds()) // 60)
                    wall = moment.astimezone(tz)  # the first wall time after the change
                    first = wall.hour * 60 + wall.minute - (shift if now_offset > offset else 0)
                    minutes.update(minute % 1440 for minute in range(first, first + shift))
                    offset = now_offset
        day = following
    return frozenset(minutes)
