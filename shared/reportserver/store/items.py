"""The one codec between the domain's records and what DynamoDB stores, for every table.

Items are the records' fields as DynamoDB attributes, with every time as one fixed-width UTC text
(`stamp`), so that comparing the texts (in a key condition, say) compares the times, and NULLs left
out. Catalog definitions (reports, data sources) are kept whole as JSON text in one attribute, made
from the same builtins. Reading accepts any RFC 3339 time, so items written before this format (ISO
times with an offset) still read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def stamp(moment: datetime) -> str:
    """A time as fixed-width UTC text (microseconds, "Z"); a naive time is refused, never guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a stored time needs its time zone: {moment.isoformat()}")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def attribute(value: Any) -> Any:
    """A value as DynamoDB stores it: records as maps, times stamped (floats refused: DynamoDB keeps
    numbers as decimals, and a float would not come back as the same number)."""
    return _builtins(value, floats=False)


def _builtins(value: Any, *, floats: bool) -> Any:
    return _stamped(msgspec.to_builtins(value, builtin_types=(datetime, Decimal)), floats)


def _stamped(value: Any, floats: bool) -> Any:
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, float) and not floats:
        raise TypeError("DynamoDB keeps numbers as decimals: store a Decimal or an int, never a float")
    if isinstance(value, dict):
        return {k: _stamped(v, floats) for k, v in value.items()}
    if isinstance(value, list):
        return [_stamped(v, floats) for v in value]
    return value


def to_item(record: msgspec.Struct, **extra: Any) -> dict[str, Any]:
    """A record's fields as an item, with the store's own attributes (keys, ttl) added; the fields
    that are None are left out (a sparse index sees only the items that have its key)."""
    item: dict[str, Any] = attribute(record) | attribute(extra)
    return {k: v for k, v in item.items() if v is not None}


def from_item(item: dict[str, Any], kind: type[T], store_only: tuple[str, ...] = ()) -> T:
    """The record an item holds; the store's own attributes are named in `store_only` and dropped."""
    fields = {k: _plain(v) for k, v in item.items() if k not in store_only}
    return msgspec.convert(fields, kind, strict=False)


def _plain(value: Any) -> Any:
    """DynamoDB gives every number back as a Decimal: whole ones become ints."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        raise TypeError(f"a stored number with a fraction ({value}) has no field to go to exactly")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_document(record: msgspec.Struct) -> str:
    """A definition as JSON text, for an attribute that keeps it whole (times stamped as in items)."""
    return msgspec.json.encode(_builtins(record, floats=True)).decode("utf-8")


def from_document(text: str | bytes, kind: type[T]) -> T:
    return msgspec.json.decode(text, type=kind)
