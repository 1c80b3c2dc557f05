"""Result columns as Arrow record batches typed by the contract (`reportserver.domain.values`).

Two producers, one set of rules: `RowBatches` builds batches from a source's typed Python rows (any
`Source`); `NativeBatches` types the columns a native Arrow reader (ADBC) returns, casting each from
the engine's storage type to its declared type in C++, and checking every value on the way: a value
that does not fit fails naming its column and row, and a decimal is never rounded. Columns the
declaration leaves to the engine take the engine's type; should that change part-way, or a decimal
need more places than the first batches had, the producer raises `ReadAgain` with the plan for a read
that holds every value.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Generator, Iterator
from datetime import date, datetime
from decimal import Decimal
from queue import Empty, Queue
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.domain.errors import DataSourceFailed, QueryTookTooLong, ValueDoesNotFit
from reportserver.domain.ports import ReadAgain, ReadPlan, Row
from reportserver.domain.values import (
    DATE_TEXT,
    DECIMAL_TEXT,
    INTEGER_TEXT,
    MAX_DECIMAL_DIGITS,
    TIMESTAMP_TEXT,
    TIMESTAMPTZ_TEXT,
    Column,
    ColumnType,
    Converter,
    binary_text,
    decimal_scale,
)

EXACT_FLOAT_INTEGER = 2**53


def arrow_type(kind: ColumnType, scale: int | None) -> pa.DataType:
    """The one Arrow type of each contract type: what every renderer receives."""
    return {
        ColumnType.TEXT: pa.string(),
        ColumnType.INTEGER: pa.int64(),
        ColumnType.FLOAT: pa.float64(),
        ColumnType.DECIMAL: pa.decimal128(MAX_DECIMAL_DIGITS, scale or 0),
        ColumnType.BOOLEAN: pa.bool_(),
        ColumnType.DATE: pa.date32(),
        ColumnType.TIMESTAMP: pa.timestamp("us"),
        ColumnType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
        ColumnType.BINARY: pa.binary(),
    }[kind]


def _storage_kind(value: Any) -> ColumnType:
    """The contract type of a value the engine typed (an undeclared column's value)."""
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INTEGER
    if isinstance(value, float):
        return ColumnType.FLOAT
    if isinstance(value, bytes):
        return ColumnType.BINARY
    return ColumnType.TEXT


def _joined(kinds: set[ColumnType]) -> ColumnType:
    """The type that holds values of all these engine types: integers and floats are floats, else text."""
    if len(kinds) == 1:
        return next(iter(kinds))
    return ColumnType.FLOAT if kinds <= {ColumnType.INTEGER, ColumnType.FLOAT} else ColumnType.TEXT


def as_text(value: Any) -> str:
    """A value of any type as text, for a column that ended up text (mixed engine types)."""
    if isinstance(value, bytes):
        return binary_text(value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Typing:
    """Each column's type for this read: the declared one, or what the plan forced on it, or (for a
    column the engine types, and a decimal without a declared scale) what the first values show."""

    def __init__(self, declared: list[Column], plan: ReadPlan) -> None:
        self.declared = declared
        self.plan = plan
        self.planned = [_planned(c, plan) for c in declared]
        # None: not known until values arrive (an engine-typed column, a decimal's scale).
        self.types: list[tuple[ColumnType, int | None] | None] = []
        for column in self.planned:
            known = column.type is not None and not (column.type is ColumnType.DECIMAL and column.scale is None)
            self.types.append((column.type, column.scale) if known and column.type is not None else None)

    def grows_scale(self, index: int) -> bool:
        """A decimal whose scale the data decides: a later value with more places means a new read."""
        column = self.declared[index]
        return column.type is ColumnType.DECIMAL and column.scale is None

    def learn_scales(self, needed: dict[int, int]) -> None:
        """Decimals whose values need these places: fixed now, or (when a batch has more places than the
        column was fixed with) one new read that widens every such column of the batch at once."""
        plan, wider = self.plan, []
        for index, scale in needed.items():
            known = self.types[index]
            if known is None:
                self.types[index] = (ColumnType.DECIMAL, scale)
            elif known[1] is not None and scale > known[1]:
                name = self.declared[index].name
                plan = plan.with_override(name, ColumnType.DECIMAL, scale, native=True)
                wider.append(f"{name!r} ({scale} places)")
        if wider:
            raise ReadAgain(plan, "decimal columns with more places than their first values: " + ", ".join(wider))

    def learn_kind(self, index: int, kind: ColumnType, native: bool) -> None:
        """An engine-typed column's values are of `kind`: fix its type, or ask for the joined one."""
        known = self.types[index]
        if known is None:
            self.types[index] = (kind, None)
        elif _joined({known[0], kind}) is not known[0]:  # the type it has does not hold these values
            name = self.declared[index].name
            joined = _joined({known[0], kind})
            raise ReadAgain(
                self.plan.with_override(name, joined, None, native=native),
                f"column {name!r} holds {known[0]} and {kind} values",
            )

    def schema(self) -> pa.Schema:
        """Fixed at the first batch; a column with no value yet is text until one says otherwise."""
        return pa.schema(
            [
                pa.field(c.name, arrow_type(*(t or (c.type or ColumnType.TEXT, c.scale))))
                for c, t in zip(self.planned, self.types, strict=True)
            ]
        )


class RowBatches:
    """Typed Python rows (already converted to their declared types) to record batches."""

    def __init__(self, columns: list[Column], plan: ReadPlan) -> None:
        self._typing = _Typing(columns, plan)
        self._schema: pa.Schema | None = None
        self._defaulted: set[int] = set()
        self._rows = 0

    def batches(self, row_batches: Iterator[list[Row]]) -> Iterator[pa.RecordBatch]:
        for rows in row_batches:
            if not rows:
                continue
            values = list(zip(*rows, strict=True))
            self._learn(values)
            if self._schema is None:
                self._fix_schema()
            arrays = [self._array(i, list(v)) for i, v in enumerate(values)]
            self._rows += len(rows)
            yield pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def schema(self) -> pa.Schema:
        return self._schema or self._typing.schema()

    def _fix_schema(self) -> None:
        """The schema is fixed by the first batch: a decimal with no value yet has scale 0 (a later value
        with places asks for a new read), an engine-typed column with no value yet is text."""
        typing = self._typing
        for i, known in enumerate(typing.types):
            if known is None and typing.grows_scale(i):
                typing.types[i] = (ColumnType.DECIMAL, 0)
            elif known is None:
                self._defaulted.add(i)
        self._schema = typing.schema()

    def _learn(self, values: list[tuple[Any, ...]]) -> None:
        typing = self._typing
        scales = {}
        for i, column in enumerate(typing.planned):
            present = [v for v in values[i] if v is not None]
            if not present:
                continue
            if typing.grows_scale(i):
                scales[i] = max(decimal_scale(v) for v in present)
            elif typing.declared[i].type is None:
                kind = _joined({_storage_kind(v) for v in present})
                if i in self._defaulted:  # text only because its first batch had no value
                    self._defaulted.discard(i)
                    if kind is not ColumnType.TEXT:
                        name = column.name
                        raise ReadAgain(
                            typing.plan.with_override(name, kind, None, native=False),
                            f"column {name!r} has its first values after the first batch",
                        )
                typing.learn_kind(i, kind, native=False)
        typing.learn_scales(scales)

    def _array(self, index: int, values: list[Any]) -> pa.Array:
        target = (self._schema or self._typing.schema()).field(index).type
        declared = self._typing.declared[index]
        if declared.type is None and pa.types.is_string(target):
            values = [v if v is None or isinstance(v, str) else as_text(v) for v in values]
        elif declared.type is None and pa.types.is_floating(target):
            values = [None if v is None else self._exact_float(index, row, v) for row, v in enumerate(values)]
        elif pa.types.is_decimal(target):
            fits_decimal(declared.name, values, target.scale, self._rows)
            # Through text: Arrow infers a precision from a Decimal object and may refuse one that fits.
            return pa.array([None if v is None else str(v) for v in values], type=pa.string()).cast(target)
        return pa.array(values, type=target)

    def _exact_float(self, index: int, row: int, value: Any) -> float:
        number = float(value)
        if isinstance(value, int) and int(number) != value:
            name = self._typing.declared[index].name
            raise ValueDoesNotFit(name, self._rows + row + 1, "float (an integer a float cannot hold exactly)", value)
        return number


def _planned(column: Column, plan: ReadPlan) -> Column:
    override = plan.overrides.get(column.name)
    return Column(column.name, *override) if override else column


class NativeBatches:
    """Types the batches of a native Arrow reader: each column cast from its storage type to its
    declared type, every value checked; engine-typed columns keep the reader's type."""

    def __init__(self, columns: list[Column], first: pa.RecordBatch, plan: ReadPlan) -> None:
        self._typing = _Typing(columns, plan)
        self._rows = 0
        first = _unwrapped(first)
        scales = {}
        for i, column in enumerate(self._typing.planned):
            stored = first.column(i)
            if self._typing.grows_scale(i):
                scales[i] = _needed_scale(stored, column, 0)
            elif column.type is None and stored.null_count < len(stored):
                self._typing.learn_kind(i, _kind_of_arrow(stored.type), native=True)
        self._typing.learn_scales(scales)
        self._defaulted = {i for i, t in enumerate(self._typing.types) if t is None}
        self.schema = self._typing.schema()

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = _unwrapped(batch)
        typing = self._typing
        scales = {}
        for i in range(batch.num_columns):
            stored, target = batch.column(i), self.schema.field(i).type
            if typing.grows_scale(i) and _float_decimal(stored, target.scale) is None:
                scales[i] = _needed_scale(stored, typing.planned[i], self._rows)
        typing.learn_scales(scales)
        arrays = [self._cast(i, batch.column(i)) for i in range(batch.num_columns)]
        self._rows += batch.num_rows
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _cast(self, index: int, stored: pa.Array) -> pa.Array:
        typing = self._typing
        column = typing.planned[index]
        target = self.schema.field(index).type
        declared = typing.declared[index].type
        if declared is not None:
            return _CASTS[declared](stored, target, column, self._rows)
        if stored.null_count == len(stored):
            return pa.nulls(len(stored), target)
        kind = _kind_of_arrow(stored.type)
        if index in self._defaulted:
            self._defaulted.discard(index)
            if kind is not ColumnType.TEXT:
                raise ReadAgain(
                    typing.plan.with_override(column.name, kind, None, native=True),
                    f"column {column.name!r} has its first values after the first batch",
                )
        typing.learn_kind(index, kind, native=False)
        if pa.types.is_floating(stored.type) and _holds_big_whole_numbers(stored):
            # The driver fixed the column as REAL from its first batch and converts later INTEGERs to
            # doubles: past 2^53 it drops digits, so the rows decide (an exact float, or a clear refusal).
            raise ReadAgain(ReadPlan(native=False, overrides=typing.plan.overrides), f"column {column.name!r}")
        if pa.types.is_string(stored.type) and not _valid_utf8(stored):
            # Bytes in a column the driver typed as text (a BLOB after its first batch, or text that is not
            # UTF-8): the rows decide (binary written as base64, or a clear refusal).
            raise ReadAgain(ReadPlan(native=False, overrides=typing.plan.overrides), f"column {column.name!r}")
        return stored if stored.type == target else stored.cast(target)


def _unwrapped(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A driver's extension columns as their storage: PostgreSQL's numeric arrives from ADBC as an opaque
    type stored as its exact text, which the decimal cast reads."""
    if not any(isinstance(field.type, pa.BaseExtensionType) for field in batch.schema):
        return batch
    arrays = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _holds_big_whole_numbers(stored: pa.Array) -> bool:
    """Some value is a whole number at or past 2^53, where a double may stand for another integer."""
    big = pc.and_(pc.greater_equal(pc.abs(stored), EXACT_FLOAT_INTEGER), pc.equal(pc.trunc(stored), stored))
    return bool(pc.any(big).as_py())


def _valid_utf8(stored: pa.Array) -> bool:
    try:
        stored.validate(full=True)  # checks every string's UTF-8
    except pa.ArrowInvalid:
        return False
    return True


def _checked_text(stored: pa.Array, column: Column, offset: int) -> pa.Array:
    """Text that is not UTF-8 (SQLite stores what it is given) fails naming its row, never a broken file."""
    if not _valid_utf8(stored):
        for index, value in enumerate(stored.cast(pa.binary()).to_pylist()):
            if value is not None:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueDoesNotFit(column.name, offset + index + 1, "text (UTF-8)", value) from None
    return stored


def _kind_of_arrow(kind: pa.DataType) -> ColumnType:
    if pa.types.is_integer(kind):
        return ColumnType.INTEGER
    if pa.types.is_floating(kind):
        return ColumnType.FLOAT
    if pa.types.is_binary(kind):
        return ColumnType.BINARY
    return ColumnType.TEXT


def _unfit(column: Column, stored: pa.Array, offset: int, bad: pa.Array, expected: str | None = None) -> None:
    """Raise for the first value where `bad` is true; a NULL value always fits."""
    bad = pc.and_(pc.is_valid(stored), pc.fill_null(bad, False))
    if not pc.any(bad).as_py():
        return
    index = pc.index(bad, True).as_py()
    value = stored[index].as_py()
    raise ValueDoesNotFit(column.name, offset + index + 1, expected or str(column.type), value)


def _first_failure(
    column: Column, stored: pa.Array, offset: int, convert: Callable[[Any, int], Any], expected: str
) -> None:
    """Find the value a vectorised cast refused, with the row path's converter, and name it."""
    for index, value in enumerate(stored.to_pylist()):
        convert(value, offset + index + 1)
    raise DataSourceFailed(f"Column '{column.name}' has a value that is not a {expected}")


def _trimmed_text(stored: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(stored)


def _scale_of_text(text: pa.Array, significant: bool = False) -> pa.Array:
    """The decimal places each decimal text needs (plain or with an exponent); `significant`: without
    its trailing zeros (168087.450000 fits 2 places exactly: PostgreSQL's numeric division gives such)."""
    fraction_pattern = r"(?P<f>\d*?)0*" if significant else r"(?P<f>\d*)"
    parts = pc.extract_regex(text, r"^[+-]?\d*(?:\." + fraction_pattern + r")?(?:[eE](?P<e>[+-]?\d+))?$")
    fraction = pc.utf8_length(parts.field("f"))  # trailing zeros are places the value was given with
    given = pc.replace_substring(parts.field("e"), "+", "")  # Arrow's integer parse refuses "+10"
    exponent = pc.cast(pc.if_else(pc.equal(given, ""), "0", given), pa.int64())
    return pc.max_element_wise(pc.subtract(fraction.cast(pa.int64()), exponent), 0)


def _decimal_text(stored: pa.Array, column: Column, offset: int) -> pa.Array:
    """A column's values as decimal text, checked: strings as given, doubles as their shortest text."""
    if pa.types.is_string(stored.type) or pa.types.is_large_string(stored.type):
        text = _trimmed_text(stored)
        _unfit(column, stored, offset, pc.invert(pc.match_substring_regex(text, DECIMAL_TEXT)))
        return text
    if pa.types.is_floating(stored.type):
        _unfit(column, stored, offset, pc.invert(pc.is_finite(stored)))
        return stored.cast(pa.string())
    if pa.types.is_integer(stored.type):
        return stored.cast(pa.string())
    _unfit(column, stored, offset, pc.is_valid(stored))
    return stored.cast(pa.string())


def _needed_scale(stored: pa.Array, column: Column, offset: int) -> int:
    text = _decimal_text(stored, column, offset)
    scales = _scale_of_text(text)
    return int(pc.max(scales).as_py() or 0) if len(scales) else 0


def fits_decimal(name: str, values: list[Any], scale: int, offset: int) -> None:
    """Every value fits a decimal of 38 digits with `scale` places (its whole digits plus the column's
    places), or the first that does not is named: a column cannot hold 10^30 and 10^-10 exactly."""
    for row, value in enumerate(values):
        if value is not None and _whole_digits(Decimal(value)) + scale > MAX_DECIMAL_DIGITS:
            expected = f"decimal of at most {MAX_DECIMAL_DIGITS} digits with the column's {scale} places"
            raise ValueDoesNotFit(name, offset + row + 1, expected, value)


def _whole_digits(value: Decimal) -> int:
    return max(value.adjusted() + 1, 0) if value else 0


# Below this magnitude (in units of the last place) a double's rounding interval is narrower than a
# quarter of one unit, so at most one decimal with that many places lies in it.
_EXACT_UNITS = 2.0**50


def _float_decimal(stored: pa.Array, scale: int) -> pa.Array | None:
    """Doubles as decimals with `scale` places, in C++, when every value's shortest text has at most
    `scale` places; else None (the text path then decides, and names a value that does not fit).

    For each double x, n = round(x * 10^scale) is a candidate; n / 10^scale is one IEEE division of two
    exact values, so it is correctly rounded, and it equals x only when the decimal n / 10^scale lies in
    x's rounding interval. Under `_EXACT_UNITS` that interval holds one such decimal at most, and the
    shortest text of x, having no more digits, is that same decimal: the value the text path gives."""
    if scale > 15 or not pa.types.is_floating(stored.type):
        return None
    stored = stored.cast(pa.float64())
    unit = 10.0**scale
    units = pc.round(pc.multiply(stored, unit))
    exact = pc.and_(pc.equal(pc.divide(units, unit), stored), pc.less(pc.abs(units), _EXACT_UNITS))
    if not pc.all(pc.fill_null(exact, True)).as_py():
        return None
    return _with_places(units.cast(pa.int64()), scale)


def _with_places(units: pa.Array, scale: int) -> pa.Array:
    """Whole numbers n (int64) as the decimals n x 10^-scale, exactly."""
    whole = units.cast(pa.decimal128(MAX_DECIMAL_DIGITS, 0))
    # The same 128-bit integers read with `scale` places: n units of 10^-scale.
    return pa.Array.from_buffers(
        pa.decimal128(MAX_DECIMAL_DIGITS, scale), len(whole), whole.buffers(), whole.null_count, whole.offset
    )


NOT_A_NUMBER_UNITS = 2**63 - 1  # a source's mark for NaN in a column of units: no decimal of 18 digits


def decimal_from_units(units: pa.Array, column: Column, scale: int, offset: int) -> pa.Array:
    """A decimal column that its source sends as int64 units of its last place (a value of at most 18
    digits times 10^scale), NaN marked as `NOT_A_NUMBER_UNITS`: the decimals, or the NaN named."""
    nan = pc.fill_null(pc.equal(units, NOT_A_NUMBER_UNITS), False)
    if pc.any(nan).as_py():
        raise ValueDoesNotFit(column.name, offset + pc.index(nan, True).as_py() + 1, _expected_decimal(scale), "NaN")
    return _with_places(units, scale)


def _to_decimal(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if stored.type == target:  # a source's own decimals of the column's scale (PostgreSQL's units)
        return stored
    if column.fixed_places and column.scale == target.scale and pa.types.is_string(stored.type):
        # Every value is exactly `scale` places and at most 38 digits, or NaN (the driver writes 'nan';
        # each way of writing NaN or an infinity has an n): refused here. The cast refuses a value with
        # more places, so even a broken promise fails loudly.
        special = pc.match_substring(stored, "n", ignore_case=True)
        _unfit(column, stored, offset, special, _expected_decimal(target.scale))
        return stored.cast(target)
    fast = _float_decimal(stored, target.scale)
    if fast is not None:
        return fast
    text = _decimal_text(stored, column, offset)
    if column.scale is not None:
        places = _scale_of_text(text, significant=True)
        _unfit(column, stored, offset, pc.greater(places, target.scale), _expected_decimal(column.scale))
    _fits_precision(column, stored, text, target.scale, offset)
    try:
        return text.cast(target)  # Arrow refuses to drop places; the whole digits were checked above
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        fits_decimal(column.name, text.to_pylist(), target.scale, offset)
        raise


def _fits_precision(column: Column, stored: pa.Array, text: pa.Array, scale: int, offset: int) -> None:
    """Check every value's whole digits plus the column's places against 38 BEFORE casting: Arrow's
    text-to-decimal cast does not check it, and wraps a value over the precision into another number
    (pyarrow 26: "10617743837959886305905" at 26 places reads as 0.121150675...)."""
    parts = pc.extract_regex(text, r"^[+-]?0*(?P<w>\d*)(?:\.\d*)?(?P<x>[eE][+-]?\d+)?$")
    if pc.any(pc.not_equal(parts.field("x"), "")).as_py():  # exponents (rare): count them exactly
        fits_decimal(column.name, text.to_pylist(), scale, offset)
        return
    whole = pc.utf8_length(parts.field("w"))
    expected = f"decimal of at most {MAX_DECIMAL_DIGITS} digits with the column's {scale} places"
    _unfit(column, stored, offset, pc.greater(pc.add(whole, scale), MAX_DECIMAL_DIGITS), expected)


def _expected_decimal(scale: int) -> str:
    return f"decimal with at most {scale} decimal places"


def _to_integer(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if pa.types.is_integer(stored.type):
        return stored.cast(target)
    if pa.types.is_floating(stored.type):
        exact = pc.and_(pc.equal(pc.trunc(stored), stored), pc.less_equal(pc.abs(stored), EXACT_FLOAT_INTEGER))
        _unfit(column, stored, offset, pc.invert(exact))
        return stored.cast(target)
    if pa.types.is_string(stored.type):
        _unfit(column, stored, offset, pc.invert(pc.match_substring_regex(stored, INTEGER_TEXT)))
        try:
            return pc.replace_substring_regex(stored, r"^\+", "").cast(target)  # "+5" is 5, as in the rows
        except pa.ArrowInvalid:
            _first_failure(column, stored, offset, Converter(column), "integer")
            raise
    _unfit(column, stored, offset, pc.is_valid(stored))
    return pa.nulls(len(stored), target)


def _to_float(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if pa.types.is_float32(stored.type):
        # PostgreSQL's real 0.1 is the float32 nearest 0.1; its shortest text, read as a double, is the
        # 0.1 the row path (which reads the server's text) gives, not 0.10000000149011612.
        return stored.cast(pa.string()).cast(target)
    if pa.types.is_floating(stored.type):
        return stored.cast(target)
    if pa.types.is_integer(stored.type):
        _unfit(column, stored, offset, pc.greater(pc.abs(stored), EXACT_FLOAT_INTEGER))
        return stored.cast(target)
    if pa.types.is_string(stored.type):
        _unfit(column, stored, offset, pc.invert(pc.match_substring_regex(stored, DECIMAL_TEXT)))
        return stored.cast(target)
    _unfit(column, stored, offset, pc.is_valid(stored))
    return pa.nulls(len(stored), target)


def _to_boolean(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if pa.types.is_boolean(stored.type):
        return stored
    if pa.types.is_integer(stored.type):
        _unfit(column, stored, offset, pc.invert(pc.is_in(stored, pa.array([0, 1], stored.type))))
        return pc.not_equal(stored, 0)
    if pa.types.is_string(stored.type):
        word = pc.utf8_lower(_trimmed_text(stored))
        truth = pc.is_in(word, pa.array(["true", "t", "1"]))
        known = pc.or_(truth, pc.is_in(word, pa.array(["false", "f", "0"])))
        _unfit(column, stored, offset, pc.invert(known))
        return pc.if_else(pc.is_valid(stored), truth, pa.scalar(None, pa.bool_()))
    _unfit(column, stored, offset, pc.is_valid(stored))
    return pa.nulls(len(stored), target)


def _parsed(
    stored: pa.Array, target: pa.DataType, column: Column, offset: int, pattern: str, text: pa.Array | None = None
) -> pa.Array:
    """ISO text checked against the contract's form, then parsed; a date Arrow or Python refuses
    (2025-02-30, year 0) names its row. A driver's own dates and times (PostgreSQL) are taken as they
    are, as the row path takes them: a date for a date, a wall-clock time for a timestamp, an instant or
    a wall-clock time (as UTC) for a timestamptz."""
    if pa.types.is_date32(stored.type) or pa.types.is_timestamp(stored.type):
        return _native_time(stored, target, column, offset)
    if not pa.types.is_string(stored.type):
        _unfit(column, stored, offset, pc.is_valid(stored))
        return pa.nulls(len(stored), target)
    _unfit(column, stored, offset, pc.invert(pc.match_substring_regex(stored, pattern)))
    try:
        parsed = (stored if text is None else text).cast(target)
    except pa.ArrowInvalid:
        _first_failure(column, stored, offset, Converter(column), str(column.type))
        raise
    # Arrow reads year 0, and an offset can carry 9999-12-31 into year 10000; the contract (and
    # Python) holds years 1 to 9999.
    years = pc.year(parsed)
    _unfit(column, stored, offset, pc.or_(pc.less(years, 1), pc.greater(years, 9999)))
    return parsed


def _native_time(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    kind = stored.type
    if pa.types.is_date32(target):
        fits = pa.types.is_date32(kind)
    elif target.tz is None:
        fits = pa.types.is_timestamp(kind) and kind.tz is None
    else:
        fits = pa.types.is_timestamp(kind)
    if not fits:
        _unfit(column, stored, offset, pc.is_valid(stored))
        return pa.nulls(len(stored), target)
    if pa.types.is_timestamp(kind) and kind.tz is None and target.tz is not None:
        stored = pc.assume_timezone(stored, "UTC")
    if not _within_years(stored):
        # Each value's raw count (days as int32, time units as int64), to see which one is null.
        raw = stored.cast(pa.int32() if pa.types.is_date32(kind) else pa.int64())
        for index, value in enumerate(raw.to_pylist()):
            try:
                year = pc.year(stored[index : index + 1]).to_pylist()[0]
            except pa.ArrowInvalid:
                year = 0
            if value is not None and not 1 <= (year or 0) <= 9999:
                raise ValueDoesNotFit(column.name, offset + index + 1, str(column.type), "a year outside 1-9999")
    return stored.cast(target)


_EPOCH_DAY = date(1970, 1, 1).toordinal()
_FIRST_DAY = date(1, 1, 1).toordinal() - _EPOCH_DAY
_DAYS = date(9999, 12, 31).toordinal() - date(1, 1, 1).toordinal() + 1
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _within_years(stored: pa.Array) -> bool:
    """Every date or time falls in the years 1 to 9999 (what the contract and Python hold), from its
    smallest and largest raw count (days, or the unit's ticks since 1970 in UTC): one pass, no calendar
    arithmetic per value. PostgreSQL's 'infinity' is the largest count there is."""
    if stored.null_count == len(stored):
        return True
    if pa.types.is_date32(stored.type):
        raw, unit = stored.cast(pa.int32()), 1
        first, end = _FIRST_DAY, _FIRST_DAY + _DAYS
    else:
        raw, unit = stored.cast(pa.int64()), _PER_SECOND[stored.type.unit] * 86_400
        first, end = _FIRST_DAY * unit, (_FIRST_DAY + _DAYS) * unit
    extremes = pc.min_max(raw)
    return first <= extremes["min"].as_py() and extremes["max"].as_py() < end


def _to_date(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    return _parsed(stored, target, column, offset, DATE_TEXT)


def _to_timestamp(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    text = pc.replace_substring(stored, " ", "T") if pa.types.is_string(stored.type) else None
    return _parsed(stored, target, column, offset, TIMESTAMP_TEXT, text)


def _to_timestamptz(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    text = None
    if pa.types.is_string(stored.type):
        spaced = pc.replace_substring(stored, " ", "T")
        # A time without an offset is UTC (as SQLite's date functions give it); mark it so for the cast.
        # A date alone is its midnight, as the rows read it.
        timed = pc.if_else(pc.match_substring(spaced, "T"), spaced, pc.binary_join_element_wise(spaced, "T00:00", ""))
        zoned = pc.match_substring_regex(timed, r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$")
        text = pc.if_else(zoned, timed, pc.binary_join_element_wise(timed, "Z", ""))
    return _parsed(stored, target, column, offset, TIMESTAMPTZ_TEXT, text)


def _to_text(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if pa.types.is_string(stored.type):
        return _checked_text(stored, column, offset)
    if pa.types.is_integer(stored.type):
        return stored.cast(target)
    if pa.types.is_floating(stored.type):  # Python's shortest text, as the row path writes it
        return pa.array([None if v is None else repr(v) for v in stored.to_pylist()], type=target)
    _unfit(column, stored, offset, pc.is_valid(stored))
    return pa.nulls(len(stored), target)


def _to_binary(stored: pa.Array, target: pa.DataType, column: Column, offset: int) -> pa.Array:
    if pa.types.is_binary(stored.type):
        return stored
    _unfit(column, stored, offset, pc.is_valid(stored))
    return pa.nulls(len(stored), target)


_CASTS: dict[ColumnType, Callable[[pa.Array, pa.DataType, Column, int], pa.Array]] = {
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


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


class QueryClock:
    """The time a query has spent in its driver, against its limit: rendering time never counts."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit = limit_seconds
        self.spent = 0.0
        self._since: float | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._since = time.monotonic()

    def stop(self) -> None:
        with self._lock:
            if self._since is not None:
                self.spent += time.monotonic() - self._since
                self._since = None

    def used(self) -> float:
        with self._lock:
            running = time.monotonic() - self._since if self._since is not None else 0.0
            return self.spent + running

    def over(self) -> bool:
        return self.used() > self.limit

    def remaining(self) -> float:
        return max(0.0, self.limit - self.used())


def prefetched(
    batches: Iterator[pa.RecordBatch], clock: QueryClock | None = None, depth: int = 2
) -> Generator[Any, None, None]:
    """Read the next batches in a thread while the caller renders this one.

    The native reader and Arrow's kernels release the GIL, so reading and rendering use both cores;
    the queue holds at most `depth` batches, so memory stays flat. An error in the reader is raised
    in the caller, where it happened in the sequence. With a `clock`, the time the reader spends in
    the driver is the query's: past its limit the caller stops waiting and the read fails with the
    time-limit message (a driver that cannot cancel finishes its current batch in the background and
    then stops).
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            iterator = iter(batches)
            while not stop.is_set():
                if clock is not None:
                    clock.start()
                try:
                    batch = next(iterator, None)
                finally:
                    if clock is not None:
                        clock.stop()
                if batch is None:
                    queue.put(("end", None))
                    return
                queue.put(("batch", batch))
        except BaseException as error:
            queue.put(("error", error))

    # The reader runs in the caller's context: whoever it acts as (an S3 read of Athena's results), its log keys.
    context = contextvars.copy_context()
    reader = threading.Thread(target=lambda: context.run(read), name="batch-reader", daemon=True)
    reader.start()
    try:
        while True:
            try:
                kind, item = queue.get(timeout=None if clock is None else clock.remaining() + 0.05)
            except Empty:
                if clock is not None and clock.over():
                    raise QueryTookTooLong() from None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue, then let it go
            try:
                queue.get_nowait()
            except Empty:
                reader.join(timeout=0.05)
                if clock is not None and clock.over():
                    break  # a driver that cannot cancel: leave it to end its batch on its own
