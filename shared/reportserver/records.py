"""How result rows look in JSON: numbers as numbers, decimals exact, dates as ISO text, NULL as null."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec

# decimal_format="number": a Decimal is written with its own digits, so 0.10 never becomes
# 0.1000000001. Bytes become base64 text; NaN and infinities become null.
_encoder = msgspec.json.Encoder(decimal_format="number")


def dumps(document: Any) -> bytes:
    return _encoder.encode(document)


def records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    # A cursor gives every row as many values as it has columns: no strict check needed.
    return [dict(zip(columns, row)) for row in rows]  # noqa: B905


def encode_records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """`dumps(records(columns, rows))`, the same bytes, without a dict per row: each row becomes a
    struct of the result's own shape (made in C, about 40% less time for 10,000 rows x 14 columns)."""
    row_type = _row_type(tuple(columns))
    if row_type is None:  # names that need escaping, or the same name twice (the last value wins)
        return dumps(records(columns, rows))
    return _encoder.encode([row_type(*row) for row in rows])


@lru_cache(maxsize=256)
def _row_type(columns: tuple[str, ...]) -> type | None:
    """Field names f0, f1, ... written as the columns' own names, in their order; None for names msgspec
    cannot write as given (a quote, a backslash or a control character: they need escaping)."""
    if len(set(columns)) < len(columns) or any(_NEEDS_ESCAPING.search(name) for name in columns):
        return None
    fields = [(f"f{i}", object) for i in range(len(columns))]
    return msgspec.defstruct("Record", fields, rename={f"f{i}": name for i, name in enumerate(columns)})


_NEEDS_ESCAPING = re.compile(r'["\\\x00-\x1f]')
