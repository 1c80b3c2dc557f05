"""Parquet that keeps the column types (integers, floats, decimals with their scale, dates,
timestamps, text, booleans, binary); row groups of about 64Ki rows; a zip of one file per sheet for a
multi-sheet report. Written by Arrow's C++ Parquet writer.

Dictionary encoding only where values repeat often (text, dates, booleans): tried on every column, the
writer builds a dictionary of each number and timestamp column only to drop it once it outgrows its
page. A million rows x 12 columns: 0.80 s and 84 MB with dictionaries everywhere and a row group per
batch, 0.46 s and 71 MB like this."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet, member_name

ROW_GROUP_ROWS = 65_536


def _repeating(kind: pa.DataType) -> bool:
    textual = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    return textual or pa.types.is_date(kind) or pa.types.is_boolean(kind)


def _write_sheet(sheet: Sheet, target: Any, progress: Progress, written: int) -> int:
    dictionary = [f.name for f in sheet.schema if _repeating(f.type)]
    with pq.ParquetWriter(target, sheet.schema, compression="snappy", use_dictionary=dictionary) as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        empty = True
        for batch in sheet.batches:
            if batch.num_rows:
                pending.append(batch)
                rows += batch.num_rows
                written += batch.num_rows
                progress(written)
                empty = False
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=sheet.schema))
                pending, rows = [], 0
        if pending or empty:  # an empty sheet is a file with its columns and no rows
            writer.write_table(pa.Table.from_batches(pending, schema=sheet.schema))
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
                with archive.open(member_name(number, sheet.name, "parquet"), "w", force_zip64=True) as entry:
                    written = _write_sheet(sheet, pa.PythonFile(entry, mode="w"), progress, written)
        return written


RENDERER = ParquetRenderer()
