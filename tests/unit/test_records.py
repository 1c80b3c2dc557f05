"""JSON encoding of result rows."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from reportserver import records


def test_values_keep_their_json_types_and_decimals_their_digits() -> None:
    row = {
        "n": 7,
        "f": 1.5,
        "d": Decimal("0.10"),
        "big": Decimal("12345678901234567.89"),
        "day": date(2025, 1, 2),
        "at": datetime(2025, 1, 2, 3, 4, 5),
        "none": None,
        "b": True,
        "text": "中文 ß",
        "blob": b"\x00\x01",
    }
    encoded = records.dumps(row)
    assert b'"d":0.10' in encoded and b'"big":12345678901234567.89' in encoded
    assert json.loads(encoded) == {
        "n": 7,
        "f": 1.5,
        "d": 0.1,
        "big": 12345678901234567.89,
        "day": "2025-01-02",
        "at": "2025-01-02T03:04:05",
        "none": None,
        "b": True,
        "text": "中文 ß",
        "blob": "AAE=",
    }


def test_non_finite_floats_become_null() -> None:
    assert records.dumps([float("nan"), float("inf")]) == b"[null,null]"


def test_records_pair_columns_with_values() -> None:
    assert records.records(["a", "b"], [(1, 2), (3, None)]) == [{"a": 1, "b": 2}, {"a": 3, "b": None}]


@given(
    st.lists(
        st.sampled_from(["a", "a_2", "b", 'q"', "\\", "\x01", "é"]) | st.text(max_size=8), min_size=1, max_size=6
    ).flatmap(
        lambda names: st.tuples(
            st.just(names),
            st.lists(
                st.tuples(
                    *[
                        st.one_of(
                            st.none(),
                            st.integers(),
                            st.text(),
                            st.booleans(),
                            st.decimals(allow_nan=False, allow_infinity=False),
                            st.floats(),
                            st.dates(),
                        )
                        for _ in names
                    ]
                ),
                max_size=5,
            ),
        )
    )
)
def test_records_encode_as_dicts_of_their_columns_would(table: tuple[list[str], list[tuple[Any, ...]]]) -> None:
    names, rows = table
    assert records.encode_records(names, rows) == records.dumps(records.records(names, rows))


def test_the_same_column_name_twice_encodes_as_the_dict_path_does() -> None:
    # Found: a struct cannot have two fields of one name, and the report call answered 500.
    assert records.encode_records(["a", "a"], [(1, 2)]) == b'[{"a":2}]'
