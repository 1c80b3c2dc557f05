"""How result rows look in JSON: numbers as numbers, decimals exact, dates as ISO text, NULL as null."""

from __future__ import annotations

from collections.abc import Sequence
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
