"""Decimals typed in C++ (`sources.arrow`): doubles as the same values the text path gives, or none;
whole units of a last place as exactly the decimals they count."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.errors import ValueDoesNotFit
from reportserver.domain.values import Column, ColumnType
from reportserver.sources.arrow import NOT_A_NUMBER_UNITS, _float_decimal, decimal_from_units

DOUBLES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**12), 10**12).map(lambda cents: cents / 100),  # what money stored as REAL looks like
    st.decimals(-(10**9), 10**9, places=4, allow_nan=False).map(float),
)


def _places(value: float) -> int:
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


@given(st.lists(st.one_of(st.none(), DOUBLES), max_size=30), st.integers(0, 16))
def test_fast_decimals_are_the_shortest_text_of_each_double_or_not_given(
    values: list[float | None], scale: int
) -> None:
    # Given doubles and a column's scale
    stored = pa.array(values, type=pa.float64())
    # When they are typed in C++
    typed = _float_decimal(stored, scale)
    # Then each is the decimal of its shortest text (what the text path reads), or the fast path declines
    if typed is None:
        return
    assert typed.type == pa.decimal128(38, scale)
    expected = [None if v is None else Decimal(repr(v)) for v in values]
    assert typed.to_pylist() == expected
    assert all(_places(v) <= scale for v in values if v is not None)


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([0.1 + 0.2], 2),  # 0.30000000000000004 has 17 places: the text path names it
        ([1.239], 2),  # never rounded to 1.24
        ([2.0**60], 2),  # too large for one decimal in its rounding interval
        ([1e-7], 6),
    ],
)
def test_the_fast_path_declines_what_it_cannot_give_exactly(values: list[float], scale: int) -> None:
    assert _float_decimal(pa.array(values, type=pa.float64()), scale) is None


def test_money_stored_as_doubles_is_typed_fast_and_exact() -> None:
    values = [123.45, 0.1, None, 5.0, -2.5, 99999999.99]
    typed = _float_decimal(pa.array(values), 2)
    assert typed is not None
    assert typed.to_pylist() == [
        Decimal("123.45"),
        Decimal("0.10"),
        None,
        Decimal("5.00"),
        Decimal("-2.50"),
        Decimal("99999999.99"),
    ]


# -- decimals a source sends as int64 units of their last place (PostgreSQL's numeric(p, s), p <= 18) --

UNITS = st.integers(-(10**18) + 1, 10**18 - 1)


@given(st.lists(st.one_of(st.none(), UNITS), max_size=30), st.integers(0, 18))
def test_units_are_the_decimals_they_count_exactly(units: list[int | None], scale: int) -> None:
    # Given whole units of 10^-scale, as the export statement sends numeric(p, s)
    column = Column("amount", ColumnType.DECIMAL, scale, fixed_places=True)
    # When they are read back as decimals
    typed = decimal_from_units(pa.array(units, type=pa.int64()), column, scale, 0)
    # Then each is exactly units x 10^-scale, with the column's places
    assert typed.type == pa.decimal128(38, scale)
    assert typed.to_pylist() == [None if u is None else Decimal(u).scaleb(-scale) for u in units]


@given(st.lists(st.one_of(st.none(), UNITS), min_size=1, max_size=30), st.data())
def test_the_not_a_number_mark_is_refused_naming_its_row(units: list[int | None], data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(units) - 1))
    units[at] = NOT_A_NUMBER_UNITS
    column = Column("amount", ColumnType.DECIMAL, 2, fixed_places=True)
    with pytest.raises(ValueDoesNotFit) as unfit:
        decimal_from_units(pa.array(units, type=pa.int64()), column, 2, 100)
    assert unfit.value.row == 100 + units.index(NOT_A_NUMBER_UNITS) + 1
    assert "NaN" in str(unfit.value)
