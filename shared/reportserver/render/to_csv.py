"""CSV (RFC 4180: comma, double quotes, CRLF), UTF-8 with an optional BOM for Excel; a zip of one
CSV per sheet for a multi-sheet report. Written by Arrow's C++ CSV writer, batch by batch."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet, member_name

BOM = b"\xef\xbb\xbf"
# What makes a spreadsheet read a cell as a formula (OWASP, "CSV injection"), and what defuses it.
FORMULA_START = r"^[=+\-@\t\r]"
DEFUSED = "'"


def _header(names: list[str], neutralise: bool) -> bytes:
    line = io.StringIO()
    if neutralise:
        names = [DEFUSED + n if n[:1] in ("=", "+", "-", "@", "\t", "\r") else n for n in names]
    csv.writer(line, lineterminator="\r\n").writerow(names)  # quoted only where a name needs it
    return line.getvalue().encode("utf-8")


def _neutralised(batch: pa.RecordBatch, source: pa.Schema) -> pa.RecordBatch:
    """Cells that would open as formulas, with an apostrophe first: in text columns, and in binary ones
    (their base64 may start with '+'); numbers, dates and timestamps never start a formula."""
    textual = [pa.types.is_string(f.type) or pa.types.is_binary(f.type) for f in source]
    if not any(textual):
        return batch
    arrays = []
    for column, guarded in zip(batch.columns, textual, strict=True):
        if guarded:
            risky = pc.match_substring_regex(column, FORMULA_START)
            if pc.any(risky).as_py():
                arrays.append(pc.if_else(risky, pc.binary_join_element_wise(DEFUSED, column, ""), column))
            else:  # as in most batches: no copy of the column
                arrays.append(column)
        else:
            arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _rewritten(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_binary(kind) or pa.types.is_floating(kind)


def _as_written(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps, floats and binary as the typing contract writes them (`columns.text`); every other
    type as Arrow writes it (which is the contract's text for it)."""
    if not any(_rewritten(f.type) for f in batch.schema):
        return batch
    arrays = [columns.text(c) if _rewritten(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _write_sheet(sheet: Sheet, handle: IO[bytes], bom: bool, neutralise: bool, progress: Progress, written: int) -> int:
    handle.write((BOM if bom else b"") + _header(sheet.columns, neutralise))
    options = pcsv.WriteOptions(include_header=False, eol="\r\n", batch_size=8192)
    writer: pcsv.CSVWriter | None = None
    try:
        for batch in sheet.batches:
            shaped = _as_written(batch)
            if neutralise:
                shaped = _neutralised(shaped, batch.schema)
            if writer is None:
                writer = pcsv.CSVWriter(handle, shaped.schema, write_options=options)
            writer.write_batch(shaped)
            written += batch.num_rows
            progress(written)
    finally:
        if writer is not None:
            writer.close()
    return written


class CsvRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        if sheet_count > 1:
            return OutputKind("zip", "application/zip")
        return OutputKind("csv", "text/csv; charset=utf-8")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        bom = bool(context.options.get("csv_bom"))
        neutralise = bool(context.options.get("csv_neutralise_formulas", True))
        written = 0
        if context.sheet_count == 1:
            with target.open("wb") as handle:
                for sheet in sheets:
                    written = _write_sheet(sheet, handle, bom, neutralise, progress, written)
            return written
        # Each sheet is read to its end before the next one starts: one open cursor at a time.
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for number, sheet in enumerate(sheets, start=1):
                with archive.open(member_name(number, sheet.name, "csv"), "w", force_zip64=True) as entry:
                    written = _write_sheet(sheet, entry, bom, neutralise, progress, written)
        return written


RENDERER = CsvRenderer()
