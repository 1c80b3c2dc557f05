"""Result rows as Arrow record batches: the form every export renderer takes.

Two producers: `rows_to_batches` turns typed Python rows (any `Source`) into batches with a schema
fixed by the first batch; `TypePlan` types the columns a native Arrow reader (ADBC) returns, from
`AS "name [type]"` tags and from ISO date and timestamp text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from queue import Empty, Queue
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.sources.base import ColumnTypeChanged, Row, unique_columns

DECIMAL_PRECISION = 38
MIN_DECIMAL_SCALE = 2
MAX_DECIMAL_SCALE = 18
TAG = re.compile(r"^(?P<name>.*?)\s*\[(?P<tag>[A-Za-z]+)\]$")
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"


def arrow_type_of(values: list[Any]) -> pa.DataType:  # noqa: PLR0911 - one return per type reads best
    """The column type that holds every value given (text when they disagree, or when all are NULL)."""
    present = [v for v in values if v is not None]
    if not present:
        return pa.string()
    kinds = {type(v) for v in present}
    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds <= {int, Decimal}:
        scale = max(MIN_DECIMAL_SCALE, *(_scale(v) for v in present if isinstance(v, Decimal)))
        return pa.decimal128(DECIMAL_PRECISION, min(scale, MAX_DECIMAL_SCALE))
    if kinds <= {datetime}:
        return pa.timestamp("us")
    if kinds <= {date}:
        return pa.date32()
    if kinds <= {bytes}:
        return pa.binary()
    return pa.string()


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _array(name: str, values: list[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_string(kind):
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    elif pa.types.is_decimal(kind):
        quantum = Decimal(1).scaleb(-kind.scale)
        values = [v if v is None else Decimal(v).quantize(quantum) for v in values]
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
        raise ColumnTypeChanged(name, str(error)) from None


def rows_to_batches(
    columns: list[str], row_batches: Iterator[list[Row]], text_columns: frozenset[str] = frozenset()
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Typed Python rows to record batches; the first batch fixes each column's type (the named
    columns are text whatever they hold)."""
    first = next((b for b in row_batches if b), [])
    by_column = list(zip(*first, strict=True)) if first else [() for _ in columns]
    schema = pa.schema(
        [
            pa.field(n, pa.string() if n in text_columns else arrow_type_of(list(v)))
            for n, v in zip(columns, by_column, strict=True)
        ]
    )

    def batches() -> Iterator[pa.RecordBatch]:
        pending: list[Row] | None = first
        while pending is not None:
            if pending:
                values = list(zip(*pending, strict=True))
                arrays = [_array(f.name, list(values[i]), f.type) for i, f in enumerate(schema)]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            pending = next(row_batches, None)

    return schema, batches()


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


class TypePlan:
    """How to type each column of a natively read result, decided once from its first batch."""

    def __init__(self, first: pa.RecordBatch) -> None:
        self.names: list[str] = []
        self._casts: list[Any] = []
        for name, column in zip(first.schema.names, first.columns, strict=True):
            tagged = TAG.match(name)
            tag = tagged.group("tag").lower() if tagged else ""
            self.names.append(tagged.group("name") if tagged else name)
            self._casts.append(_cast_for(tag, column))
        self.names = unique_columns(self.names)
        fields = []
        for name, cast, column in zip(self.names, self._casts, first.columns, strict=True):
            fields.append(pa.field(name, cast(column).type if cast else column.type))
        self.schema = pa.schema(fields)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        try:
            arrays = [cast(col) if cast else col for cast, col in zip(self._casts, batch.columns, strict=True)]
            arrays = [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, self.schema, strict=True)]
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise ColumnTypeChanged(_named(self.names, str(error)), str(error)) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _named(names: list[str], detail: str) -> str:
    found = re.search(r"column (\d+)", detail)
    return names[int(found.group(1))] if found and int(found.group(1)) < len(names) else "?"


def _cast_for(tag: str, column: pa.Array) -> Any:  # noqa: PLR0911 - one return per tag reads best
    if tag in ("decimal", "numeric", "money"):
        return _to_decimal
    if tag == "date":
        return _to_date
    if tag in ("timestamp", "datetime"):
        return _to_timestamp
    if tag in ("boolean", "bool"):
        return lambda a: pc.not_equal(a.cast(pa.int64()), 0) if not pa.types.is_boolean(a.type) else a
    if pa.types.is_string(column.type) and column.null_count < len(column):
        present = column.drop_null()
        if pc.all(pc.match_substring_regex(present, ISO_DATE)).as_py():
            return _to_date
        if pc.all(pc.match_substring_regex(present, ISO_TIMESTAMP)).as_py():
            return _to_timestamp
    return None


def _to_decimal(array: pa.Array) -> pa.Array:
    if pa.types.is_decimal(array.type):
        return array
    text = array if pa.types.is_string(array.type) else array.cast(pa.string())
    return text.cast(pa.decimal128(DECIMAL_PRECISION, _text_scale(text)))


def _text_scale(text: pa.Array) -> int:
    fractions = pc.utf8_length(pc.extract_regex(text.drop_null(), r"\.(?P<f>\d+)$").field("f"))
    longest = pc.max(fractions).as_py() if len(fractions) else None
    return min(max(longest or 0, MIN_DECIMAL_SCALE), MAX_DECIMAL_SCALE)


def _to_date(array: pa.Array) -> pa.Array:
    if pa.types.is_date(array.type):
        return array
    return pc.utf8_slice_codeunits(array, 0, 10).cast(pa.date32())


def _to_timestamp(array: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(array.type):
        return array
    return pc.replace_substring(array, " ", "T").cast(pa.timestamp("us"))


def prefetched(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Read the next batches in a thread while the caller renders this one.

    The native reader and Arrow's kernels release the GIL, so reading and rendering use both cores;
    the queue holds at most `depth` batches, so memory stays flat. An error in the reader is raised
    in the caller, where it happened in the sequence.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                queue.put(("batch", batch))
            queue.put(("end", None))
        except BaseException as error:
            queue.put(("error", error))

    reader = threading.Thread(target=read, name="batch-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue, then let it finish
            try:
                queue.get_nowait()
            except Empty:
                reader.join(timeout=0.05)
