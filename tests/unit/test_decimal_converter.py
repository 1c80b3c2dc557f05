"""The converter's fast path for a driver's own decimals gives what the general path gives, always."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.values import _UNFIT, Column, ColumnType, _to_decimal, _to_decimal_in_general

_DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=45),
        st.integers(-45, 5),
        st.booleans(),
    ),
)


@given(value=_DECIMALS, scale=st.one_of(st.none(), st.integers(0, 40)))
def test_the_fast_path_gives_the_general_paths_answer(value: Decimal, scale: int | None) -> None:
    column = Column("amount", ColumnType.DECIMAL, scale)
    fast, general = _to_decimal(value, column), _to_decimal_in_general(value, column)
    if general is _UNFIT:
        assert fast is _UNFIT
    else:
        assert fast is not _UNFIT and str(fast) == str(general)  # the same number, written the same way


def test_a_value_with_more_places_that_are_not_zeros_does_not_fit() -> None:
    column = Column("amount", ColumnType.DECIMAL, 2)
    assert _to_decimal(Decimal("12.3400000000000000"), column) == Decimal("12.34")
    assert str(_to_decimal(Decimal("12.3400000000000000"), column)) == "12.34"
    assert _to_decimal(Decimal("12.3450000000000000"), column) is _UNFIT
    assert str(_to_decimal(Decimal("-0.5"), column)) == "-0.50"
