"""The typing contract: what type each result column has, and how a source's value becomes it.

A column's type is declared, never guessed from what its values look like:
1. by the report, with a tag on the column's name: `AS "amount [decimal]"`, `[decimal(2)]` (a fixed
   scale), `[date]`, `[timestamp]`, `[timestamptz]`, `[boolean]`, `[integer]`, `[float]`, `[text]`,
   `[binary]`;
2. else by the source's own metadata: a database column's declared type (`DATE`, `DECIMAL(12,2)`,
   `BOOLEAN`, ...), or the engine's type for an expression (SQLite: the storage class of its values).
A value that does not fit its column's type fails the whole result at once, naming the column and the
row; nothing is rounded, truncated or shifted on the way. The same rules serve report calls (Python
values) and exports (Arrow columns), so both give the same values.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from reportserver.domain.errors import ValueDoesNotFit

MAX_DECIMAL_DIGITS = 38  # what a Parquet/Arrow decimal128 holds; more digits fail loudly
_WIDE = Context(prec=2 * MAX_DECIMAL_DIGITS)  # room for any decimal that fits, so no step ever rounds


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"  # a wall-clock time with no zone, written as stored
    TIMESTAMPTZ = "timestamptz"  # an instant, written in UTC and marked as such
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class Column:
    """A result column: its name (tag removed) and its declared type; `type` None means the source's
    engine types it (SQLite: by the storage class of its values). `scale` is a decimal's declared scale."""

    name: str
    type: ColumnType | None = None
    scale: int | None = None
    # The source itself guarantees a decimal's places: it prints every value with exactly `scale` places
    # and at most 38 digits (PostgreSQL's numeric(p, s) with p <= 38), or as NaN or an infinity.
    fixed_places: bool = False
    # The engine's own name of its type ("real", "character", "uuid"), where the source says: not part of
    # what the column is to a report (not compared), but what a snapshot keeps it as (`snapshot_sql`).
    native: str = field(default="", compare=False)


_TAG = re.compile(r"^(?P<name>.*?)\s*\[(?P<tag>[A-Za-z]+)(?:\((?P<scale>\d{1,2})\))?\]$")
_TAGS = {
    "text": ColumnType.TEXT,
    "string": ColumnType.TEXT,
    "integer": ColumnType.INTEGER,
    "int": ColumnType.INTEGER,
    "float": ColumnType.FLOAT,
    "real": ColumnType.FLOAT,
    "double": ColumnType.FLOAT,
    "decimal": ColumnType.DECIMAL,
    "numeric": ColumnType.DECIMAL,
    "money": ColumnType.DECIMAL,
    "boolean": ColumnType.BOOLEAN,
    "bool": ColumnType.BOOLEAN,
    "date": ColumnType.DATE,
    "timestamp": ColumnType.TIMESTAMP,
    "datetime": ColumnType.TIMESTAMP,
    "timestamptz": ColumnType.TIMESTAMPTZ,
    "binary": ColumnType.BINARY,
    "blob": ColumnType.BINARY,
}
_DECLARED_SCALE = re.compile(r"\(\s*\d+\s*,\s*(\d+)\s*\)")


def tagged(name: str) -> tuple[str, ColumnType | None, int | None]:
    """`"amount [decimal(2)]"` -> ("amount", DECIMAL, 2); a name without a known tag is kept whole."""
    match = _TAG.match(name)
    if match is None or match.group("tag").lower() not in _TAGS:
        return name, None, None
    scale = match.group("scale")
    kind = _TAGS[match.group("tag").lower()]
    if scale is not None and kind is not ColumnType.DECIMAL:
        return name, None, None
    return match.group("name"), kind, int(scale) if scale is not None else None


def declared_type(sql_type: str | None) -> tuple[ColumnType | None, int | None]:  # noqa: PLR0911 - a table
    """A database column's declared SQL type as a contract type (None: let the engine's type decide)."""
    if not sql_type:
        return None, None
    upper = sql_type.strip().upper()
    first = re.split(r"[\s(]", upper, maxsplit=1)[0]
    if "BOOL" in first:
        return ColumnType.BOOLEAN, None
    if first in ("TIMESTAMPTZ",) or (first == "TIMESTAMP" and "WITH TIME ZONE" in upper):
        return ColumnType.TIMESTAMPTZ, None
    if first in ("DATETIME", "TIMESTAMP"):
        return ColumnType.TIMESTAMP, None
    if first == "DATE":
        return ColumnType.DATE, None
    if first in ("DECIMAL", "NUMERIC", "MONEY", "NUMBER"):
        scale = _DECLARED_SCALE.search(upper)
        return ColumnType.DECIMAL, int(scale.group(1)) if scale else None
    if "INT" in first:
        return ColumnType.INTEGER, None
    if any(word in first for word in ("CHAR", "CLOB", "TEXT", "STRING")):
        return ColumnType.TEXT, None
    if first in ("BLOB", "BINARY", "VARBINARY", "BYTEA"):
        return ColumnType.BINARY, None
    if any(word in first for word in ("REAL", "FLOA", "DOUB")):
        return ColumnType.FLOAT, None
    return None, None


def resolve(name: str, sql_type: str | None) -> Column:
    """The column a result's name and declared SQL type make: the report's tag wins over the source."""
    plain, kind, scale = tagged(name)
    if kind is None:
        kind, scale = declared_type(sql_type)
    return Column(plain, kind, scale)


# The text forms a source may hand over for dates and times: ISO 8601 with a space or a T, seconds
# optional, at most microseconds (finer digits would be dropped, so they do not fit).
# ASCII digits only ([0-9], never \d: Python's \d takes Arabic-Indic and fullwidth digits too); the same
# patterns check values in Python (rows) and in Arrow (native reads).
DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?$"
TIMESTAMPTZ_TEXT = TIMESTAMP_TEXT.removesuffix("$") + r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?$"
DECIMAL_TEXT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
INTEGER_TEXT = r"^[+-]?[0-9]{1,19}$"
TRUE_TEXT = frozenset({"true", "t", "1"})
FALSE_TEXT = frozenset({"false", "f", "0"})
_DATE = re.compile(DATE_TEXT)
_TIMESTAMP = re.compile(TIMESTAMP_TEXT)
_TIMESTAMPTZ = re.compile(TIMESTAMPTZ_TEXT)
_DECIMAL = re.compile(DECIMAL_TEXT)
_INTEGER = re.compile(INTEGER_TEXT)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def decimal_scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def plain_decimal(value: Decimal) -> Decimal:
    """`1E+3` as `1000`: the same value, written without an exponent (a positive exponent only)."""
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1), context=_WIDE) if isinstance(exponent, int) and exponent > 0 else value


def check_decimal_digits(value: Decimal) -> bool:
    digits = value.as_tuple()
    exponent = digits.exponent if isinstance(digits.exponent, int) else 0
    return max(len(digits.digits), -exponent if exponent < 0 else len(digits.digits) + exponent) <= MAX_DECIMAL_DIGITS


class Converter:
    """Turns one column's raw values (as a DB-API driver gives them) into the contract's Python values."""

    def __init__(self, column: Column) -> None:
        self.column = column
        self._convert = _CONVERTERS.get(column.type) if column.type is not None else None

    def __call__(self, value: Any, row: int) -> Any:
        if value is None:
            return None
        if self._convert is None:  # typed by the engine: the driver's value is the value
            return value
        try:
            converted = self._convert(value, self.column)
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            converted = _UNFIT
        if converted is _UNFIT:
            raise ValueDoesNotFit(self.column.name, row, _describe(self.column), value)
        return converted


_UNFIT = object()


def _describe(column: Column) -> str:
    if column.type is ColumnType.DECIMAL and column.scale is not None:
        return f"decimal with at most {column.scale} decimal places"
    return str(column.type)


def _to_text(value: Any, _column: Column) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return _UNFIT


def _to_integer(value: Any, _column: Column) -> Any:
    if isinstance(value, bool):
        return _UNFIT
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else _UNFIT
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
        return number if INT64_MIN <= number <= INT64_MAX else _UNFIT
    return _UNFIT


def _to_float(value: Any, _column: Column) -> Any:
    if isinstance(value, bool):
        return _UNFIT
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        number = float(value)
        return number if int(number) == value else _UNFIT  # an integer a float cannot hold exactly
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    return _UNFIT


_UNITS = [Decimal(1).scaleb(-places) for places in range(MAX_DECIMAL_DIGITS + 1)]


def _to_decimal(value: Any, column: Column) -> Any:
    if type(value) is Decimal and column.scale is not None and column.scale <= MAX_DECIMAL_DIGITS and value.is_finite():
        # A driver's own decimal (PostgreSQL's numeric): the steps below in one pass, same answers.
        _sign, digits, exponent = value.as_tuple()
        if isinstance(exponent, int) and exponent <= 0 and max(len(digits), -exponent) <= MAX_DECIMAL_DIGITS:
            placed = value.quantize(_UNITS[column.scale], context=_WIDE)
            return placed if exponent >= -column.scale or placed == value else _UNFIT
    return _to_decimal_in_general(value, column)


def _to_decimal_in_general(value: Any, column: Column) -> Any:  # noqa: PLR0911 - one return per kind of value
    if isinstance(value, bool):
        return _UNFIT
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # A REAL holds a binary fraction; its shortest decimal text is the number that was stored.
        if not math.isfinite(value):
            return _UNFIT
        text = repr(value)  # written as Arrow writes a double: 20.0 is 20, a whole number has no places
        number = Decimal(text[:-2] if text.endswith(".0") else text)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = Decimal(value.strip())
    elif isinstance(value, Decimal):
        number = value
    else:
        return _UNFIT
    if not number.is_finite() or not check_decimal_digits(number):
        return _UNFIT
    number = plain_decimal(number)
    if column.scale is not None:
        # Written with the declared places, as the column's files write it: 0.1 in DECIMAL(12,2) is 0.10.
        # More places fit only when they are zeros (168087.450000 is 168087.45 exactly): nothing rounds.
        placed = number.quantize(Decimal(1).scaleb(-column.scale), context=_WIDE)
        if decimal_scale(number) > column.scale and placed != number:
            return _UNFIT
        return placed
    return number


def _to_boolean(value: Any, _column: Column) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_TEXT:
            return True
        if word in FALSE_TEXT:
            return False
    return _UNFIT


def _to_date(value: Any, _column: Column) -> Any:
    if type(value) is date:  # a driver's own date (PostgreSQL); a datetime is not a date here
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return date.fromisoformat(value)
    return _UNFIT


def _to_timestamp(value: Any, _column: Column) -> Any:
    if isinstance(value, datetime):  # a driver's own: a wall-clock time fits, an instant does not
        return value if value.tzinfo is None else _UNFIT
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        return datetime.fromisoformat(value)
    return _UNFIT


def _to_timestamptz(value: Any, _column: Column) -> Any:
    if isinstance(value, datetime):  # a driver's own; one without a zone is UTC, as text without an offset
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str) or not _TIMESTAMPTZ.fullmatch(value):
        return _UNFIT
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # A time without an offset in an instant column is UTC: SQLite's own date functions work in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _to_binary(value: Any, _column: Column) -> Any:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else _UNFIT


_CONVERTERS = {
    ColumnType.TEXT: _to_text,
    ColumnType.INTEGER: _to_integer,
    ColumnType.FLOAT: _to_float,
    ColumnType.DECIMAL: _to_decimal,
    ColumnType.BOOLEAN: _to_boolean,
    ColumnType.DATE: _to_date,
    ColumnType.TIMESTAMP: _to_timestamp,
    ColumnType.TIMESTAMPTZ: _to_timestamptz,
    ColumnType.BINARY: _to_binary,
}


def binary_text(value: bytes) -> str:
    """The one text form of binary values in every output: base64 (RFC 4648, standard alphabet)."""
    return base64.b64encode(value).decode("ascii")
