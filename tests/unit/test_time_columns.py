"""Dates and times in C++: a timestamp's text (`render.columns.text`) and the check that every value
falls in the years 1 to 9999 (`sources.arrow`), against plain Python doing the same one value at a time."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st
from reportserver.render import columns
from reportserver.sources.arrow import _within_years

UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
DAY_ZERO = date(1970, 1, 1).toordinal()
FIRST, LAST = date(1, 1, 1).toordinal() - DAY_ZERO, date(9999, 12, 31).toordinal() - DAY_ZERO


def _ticks(unit: str) -> st.SearchStrategy[int]:
    """Counts of the unit since 1970 that Arrow can write: whole seconds, whole minutes, and any."""
    per_second = UNITS[unit]
    low, high = max(FIRST * 86_400 * per_second, -(2**63) + 1), min((LAST + 1) * 86_400 * per_second - 1, 2**63 - 1)
    whole = st.integers(low // per_second + 1, high // per_second - 1).map(lambda s: s * per_second)
    return st.one_of(whole, st.integers(low, high))


def _reference_text(column: pa.Array) -> list[str | None]:
    """Each value as Arrow writes it, a fraction of zeros dropped, one value at a time."""
    written = []
    for text in column.cast(pa.string()).to_pylist():
        whole, _dot, fraction = (text or "").partition(".")
        written.append(None if text is None else whole if fraction and set(fraction) == {"0"} else text)
    return written


@given(st.sampled_from(list(UNITS)), st.data())
def test_a_timestamps_text_drops_only_a_fraction_of_zeros(unit: str, data: st.DataObject) -> None:
    ticks = data.draw(st.lists(st.one_of(st.none(), _ticks(unit)), max_size=20))
    column = pa.array(ticks, type=pa.int64()).cast(pa.timestamp(unit))
    assert columns.text(column).to_pylist() == _reference_text(column)


@given(st.sampled_from(list(UNITS)), st.data())
def test_an_instants_text_is_its_utc_wall_clock_marked_z(unit: str, data: st.DataObject) -> None:
    ticks = data.draw(st.lists(st.one_of(st.none(), _ticks(unit)), max_size=20))
    naive = pa.array(ticks, type=pa.int64()).cast(pa.timestamp(unit))
    zoned = pc.assume_timezone(naive, "UTC")
    assert columns.text(zoned).to_pylist() == [None if t is None else t + "Z" for t in _reference_text(naive)]


def _in_years(days: int) -> bool:
    try:
        date.fromordinal(DAY_ZERO + days)  # Python's dates are the years 1 to 9999
    except (ValueError, OverflowError):
        return False
    return True


NEAR_EDGES = st.one_of(st.integers(FIRST - 3, FIRST + 3), st.integers(LAST - 3, LAST + 3), st.integers(FIRST, LAST))


@given(st.lists(st.one_of(st.none(), NEAR_EDGES, st.integers(-(2**31), 2**31 - 1)), max_size=12))
def test_dates_are_within_the_years_exactly_when_python_holds_them(days: list[int | None]) -> None:
    column = pa.array(days, type=pa.int32()).cast(pa.date32())
    assert _within_years(column) == all(_in_years(d) for d in days if d is not None)


@given(st.sampled_from(list(UNITS)), st.data())
def test_times_are_within_the_years_exactly_when_their_day_is(unit: str, data: st.DataObject) -> None:
    per_day = UNITS[unit] * 86_400
    edge = st.one_of(
        st.integers(-3, 3).map(lambda d: FIRST * per_day + d),
        st.integers(-3, 3).map(lambda d: (LAST + 1) * per_day + d),
        st.integers(-(2**63), 2**63 - 1),
    ).filter(lambda t: -(2**63) <= t < 2**63)
    ticks = data.draw(st.lists(st.one_of(st.none(), edge), max_size=12))
    column = pa.array(ticks, type=pa.int64()).cast(pa.timestamp(unit))
    expected = all(_in_years(t // per_day) for t in ticks if t is not None)
    assert _within_years(column) == expected
    assert _within_years(pc.assume_timezone(column, "UTC")) == expected
