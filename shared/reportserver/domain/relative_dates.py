"""Calculated parameter values of a job (seed 001's `source: calculated`): a small language of dates
relative to the run, evaluated on the job's wall clock at run time (issue 10).

    today | yesterday | tomorrow | now
    first day of (this | last | previous | next) (week | month | quarter | year)
    last day of  (this | last | previous | next) (week | month | quarter | year)
    any of these, then any number of `+ N unit` or `- N unit`, unit one of
    day(s), week(s), month(s), quarter(s), year(s); and hour(s), minute(s) after `now` only

Weeks start on Monday (ISO 8601). Months are calendar months: a month after 31 January is 28 (or 29)
February, never 3 March; each step is taken in turn, so "+ 1 month + 1 month" from 31 January is 28
March while "+ 2 months" is 31 March. Hours and minutes are real time (90 minutes before 02:00 on the
night clocks go forward is 00:30), days and longer are the wall clock's. Words are case-insensitive,
spaces may repeat, digits are ASCII. `now` is a date-time on the job's wall clock (to the second),
everything else a date. "last" and "previous" mean the same.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reportserver.domain.errors import InvalidParameter

MAX_EXPRESSION = 200
MAX_AMOUNT = 10_000
_BASE = re.compile(
    r"^(?:(?P<word>today|yesterday|tomorrow|now)"
    r"|(?P<edge>first|last)\s+day\s+of\s+(?P<which>this|last|previous|next)\s+(?P<period>week|month|quarter|year))"
)
_STEP = re.compile(
    r"^\s*(?P<sign>[+-])\s*(?P<amount>[0-9]{1,5})\s*(?P<unit>day|week|month|quarter|year|hour|minute)s?", re.ASCII
)
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def evaluate(expression: str, now: datetime, zone: str) -> date | datetime:
    """The expression's value at `now` (aware) on the wall clock of `zone`; InvalidParameter names what
    it cannot read."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidParameter("timeZone", f"Unknown timeZone {str(zone)[:60]!r}") from None
    text = " ".join(expression.lower().split()) if isinstance(expression, str) else ""
    if not text or len(text) > MAX_EXPRESSION or not text.isascii():
        raise _refused(expression, "give a date such as 'today - 7 days' or 'first day of last month'")
    base = _BASE.match(text)
    if base is None:
        raise _refused(expression, "it must start with today, yesterday, tomorrow, now, or 'first/last day of ...'")
    try:
        value: date | datetime = _base(base, now.astimezone(tz).replace(microsecond=0))
        rest = text[base.end() :]
        while rest.strip():
            step = _STEP.match(rest)
            if step is None:
                raise _refused(expression, f"cannot read {rest.strip()!r}: steps are '+ N unit' or '- N unit'")
            value = _moved(value, step, expression)
            rest = rest[step.end() :]
    except (OverflowError, ValueError) as error:
        if isinstance(error, InvalidParameter):
            raise
        raise _refused(expression, "the date falls outside the years 1 to 9999") from None
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


def _base(found: re.Match[str], wall: datetime) -> date | datetime:
    """`wall` is aware, in the job's zone: `now` keeps it so until the end, for real-time steps."""
    word = found.group("word")
    today = wall.date()
    if word is not None:
        return {"today": today, "yesterday": today - timedelta(days=1), "tomorrow": today + timedelta(days=1)}.get(
            word, wall
        )
    shift = {"this": 0, "last": -1, "previous": -1, "next": 1}[found.group("which")]
    first, following = _period(today, found.group("period"), shift)
    return first if found.group("edge") == "first" else following - timedelta(days=1)


def _period(today: date, period: str, shift: int) -> tuple[date, date]:
    """The first day of the period `shift` periods from today's, and the first day of the one after it."""
    if period == "week":
        first = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
        return first, first + timedelta(weeks=1)
    months = _MONTHS[period]
    index = today.year * 12 + today.month - 1  # months since year 0
    start = {"month": index, "quarter": index - index % 3, "year": today.year * 12}[period] + shift * months
    return _month_start(start), _month_start(start + months)


def _month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _moved(value: date | datetime, step: re.Match[str], expression: str) -> date | datetime:
    amount = int(step.group("amount")) * (1 if step.group("sign") == "+" else -1)
    if abs(amount) > MAX_AMOUNT:
        raise _refused(expression, f"{abs(amount)} is more than {MAX_AMOUNT}")
    unit = step.group("unit")
    if unit in ("hour", "minute"):
        if not isinstance(value, datetime):
            raise _refused(expression, f"{unit}s apply to 'now' only: a date has no time")
        zone = value.tzinfo
        return (value.astimezone(UTC) + timedelta(**{f"{unit}s": amount})).astimezone(zone)  # real time
    if isinstance(value, datetime):  # the wall clock's days: the same time of day, on that day
        wall = value.replace(tzinfo=None)
        if unit in ("day", "week"):
            return (wall + timedelta(**{f"{unit}s": amount})).replace(tzinfo=value.tzinfo, fold=0)
        return _plus_months(wall, amount * _MONTHS[unit]).replace(tzinfo=value.tzinfo, fold=0)
    if unit in ("day", "week"):
        return value + timedelta(**{f"{unit}s": amount})
    return _plus_months(value, amount * _MONTHS[unit])


_Day = TypeVar("_Day", date, datetime)


def _plus_months(value: _Day, months: int) -> _Day:
    """Calendar months: the same day, or the month's last when it has fewer days (31 January + 1 month)."""
    from dateutil.relativedelta import relativedelta  # noqa: PLC0415 - only where jobs run

    moved: _Day = value + relativedelta(months=months)
    return moved


def _refused(expression: object, why: str) -> InvalidParameter:
    return InvalidParameter("parameters", f"Cannot calculate {str(expression)[:80]!r}: {why}")
