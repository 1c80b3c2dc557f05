"""Parquet that keeps the column types: integers, floats, decimals (with their scale), dates,
timestamps, text, booleans and binary; one row group per batch; a zip of one file per sheet for a
multi-sheet report.

The type of each column is read from the first batch where it has a value; a column with no value
in the first batch is text; a later value of another type is converted to the column's type or, if
it cannot be, stored as text in a text column (decided in the first batch only).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reportserver.render.base import OutputKind, Progress, RenderContext, RenderFailed, Sheet
from reportserver.sources.base import Row

DECIMAL_PRECISION = 38
MIN_DECIMAL_SCALE = 2


def _arrow_type(values: list[Any]) -> pa.DataType:  # noqa: PLR0911 - one return per type reads best
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
        return pa.decimal128(DECIMAL_PRECISION, min(scale, 18))
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


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_string(kind):
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    elif pa.types.is_decimal(kind):
        quantum = Decimal(1).scaleb(-kind.scale)
        values = [v if v is None else Decimal(v).quantize(quantum) for v in values]
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as error:
        raise RenderFailed(
            f"A column changed its type part-way through the result ({error.__class__.__name__})"
        ) from None


def _write_sheet(sheet: Sheet, target: Any, progress: Progress, written: int) -> int:
    batches: Iterator[list[Row]] = iter(sheet.batches)
    first = next(batches, [])
    columns = list(zip(*first, strict=True)) if first else [() for _ in sheet.columns]
    schema = pa.schema(
        [pa.field(name, _arrow_type(list(values))) for name, values in zip(sheet.columns, columns, strict=True)]
    )
    with pq.ParquetWriter(target, schema, compression="snappy") as writer:
        pending: list[Row] | None = first
        while pending is not None:
            if pending:
                by_column = list(zip(*pending, strict=True))
                arrays = [_column(list(by_column[i]), field.type) for i, field in enumerate(schema)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                written += len(pending)
                progress(written)
            pending = next(batches, None)
        if not first:
            writer.write_table(schema.empty_table())
    return written


class ParquetRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        if sheet_count > 1:
            return OutputKind("zip", "application/zip")
        return OutputKind("parquet", "application/vnd.apache.parquet")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        written = 0
        if context.sheet_count == 1:
            for sheet in sheets:
                written = _write_sheet(sheet, str(target), progress, written)
            return written
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            for number, sheet in enumerate(sheets, start=1):
                safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in sheet.name).strip() or "sheet"
                with archive.open(f"{number:02d}-{safe[:60]}.parquet", "w", force_zip64=True) as entry:
                    written = _write_sheet(sheet, pa.PythonFile(entry, mode="w"), progress, written)
        return written


RENDERER = ParquetRenderer()
