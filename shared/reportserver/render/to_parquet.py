"""Parquet that keeps the column types (integers, floats, decimals with their scale, dates,
timestamps, text, booleans, binary); one row group per batch; a zip of one file per sheet for a
multi-sheet report. Written by Arrow's C++ Parquet writer."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet, member_name


def _write_sheet(sheet: Sheet, target: Any, progress: Progress, written: int) -> int:
    with pq.ParquetWriter(target, sheet.schema, compression="snappy") as writer:
        empty = True
        for batch in sheet.batches:
            if batch.num_rows:
                writer.write_batch(batch)
                written += batch.num_rows
                progress(written)
                empty = False
        if empty:
            writer.write_table(sheet.schema.empty_table())
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
