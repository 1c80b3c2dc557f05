"""Arrow columns to text, a whole batch at a time in C++: the building blocks of the text formats.

Each function takes a typed column and returns a string column with one fragment per row (NULL
where the value is NULL, for the caller to fill); rows are then joined element-wise, and a batch's
text leaves as one buffer. No Python code runs per value, which is what makes the exports fast.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.domain.values import binary_text

CONTROL = "[\x00-\x1f]"
XML_ILLEGAL = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"  # what XML 1.0 forbids (UTF-8 has no surrogates)
JSON_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def text(column: pa.Array) -> pa.Array:
    """The plain text of each value, as the typing contract writes it for people (csv, html, pdf):
    timestamps with a space and no trailing .000000, instants in UTC marked `Z`, floats as their
    shortest text (not-a-number and infinities as NULL), binary as base64."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        zoned = kind.tz is not None
        if zoned:
            column = column.cast(pa.timestamp(kind.unit, tz="UTC")).cast(pa.timestamp(kind.unit))
        written = _timestamp_text(column)
        return pc.binary_join_element_wise(written, "Z", "") if zoned else written
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_finite(column), column.cast(pa.string()), pa.scalar(None, pa.string()))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.array([None if v is None else binary_text(v) for v in column.to_pylist()], type=pa.string())
    return column.cast(pa.string())


_FRACTION_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def _timestamp_text(column: pa.Array) -> pa.Array:
    """Naive timestamps as Arrow writes them, without a fraction of zeros: a batch of whole seconds is
    written as seconds; else Arrow writes every value with the unit's digits after its one '.', so the
    literal '.000000' (for microseconds) can only be a fraction of zeros. (A regex did the same in 2.7
    times as long.)"""
    digits = _FRACTION_DIGITS[column.type.unit]
    if not digits:
        return column.cast(pa.string())
    try:
        return column.cast(pa.timestamp("s")).cast(pa.string())  # refused if a value has a fraction
    except pa.ArrowInvalid:
        return pc.replace_substring(column.cast(pa.string()), "." + "0" * digits, "")


def is_textual(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)


def is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def wrap(before: str, column: pa.Array, after: str) -> pa.Array:
    return pc.binary_join_element_wise(before, column, after, "")


def join(columns: list[pa.Array], separator: str) -> pa.Array:
    return pc.binary_join_element_wise(*columns, separator)


def _contains(column: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring(column, pattern)).as_py())


def json_string(column: pa.Array) -> pa.Array:
    # Most batches hold no backslash, quote or control character: look before rewriting every value.
    escaped = pc.replace_substring(column, "\\", "\\\\") if _contains(column, "\\") else column
    escaped = pc.replace_substring(escaped, '"', '\\"') if _contains(escaped, '"') else escaped
    if pc.any(pc.match_substring_regex(escaped, CONTROL)).as_py():
        for char in map(chr, range(32)):
            escaped = pc.replace_substring(escaped, char, JSON_ESCAPES.get(char, f"\\u{ord(char):04x}"))
    return wrap('"', escaped, '"')


def json_value(column: pa.Array) -> pa.Array:
    """Each value as JSON, as a report call writes it: numbers as numbers (decimals with their digits,
    non-finite floats as null), text quoted, dates and times ISO 8601 with a T (instants with a Z),
    binary as base64 text."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return wrap('"', pc.replace_substring(text(column), " ", "T"), '"')
    if pa.types.is_date(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return wrap('"', text(column), '"')
    if is_textual(kind):
        return json_string(text(column))
    return text(column)


def xml_escape(column: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(column, "&", "&amp;")
    escaped = pc.replace_substring(pc.replace_substring(escaped, "<", "&lt;"), ">", "&gt;")
    if pc.any(pc.match_substring_regex(escaped, XML_ILLEGAL)).as_py():
        escaped = pc.replace_substring_regex(escaped, XML_ILLEGAL, "")
    return escaped


def html_escape(column: pa.Array) -> pa.Array:
    escaped = xml_escape(column)
    return pc.replace_substring(pc.replace_substring(escaped, '"', "&quot;"), "'", "&#x27;")


def payload(rows: pa.Array) -> Any:
    """The text of every row of a string column without nulls, back to back, as one buffer (no copy)."""
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    buffers = rows.buffers()
    width = pa.int64() if pa.types.is_large_string(rows.type) else pa.int32()
    offsets = pa.Array.from_buffers(width, len(rows) + 1, [None, buffers[1]], offset=rows.offset)
    start, end = offsets[0].as_py(), offsets[len(rows)].as_py()
    return buffers[2][start:end] if end > start else b""
