"""CSV (RFC 4180: comma, double quotes, CRLF), UTF-8 with an optional BOM for Excel; a zip of one
CSV per sheet for a multi-sheet report."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet

WRITE_BUFFER_BYTES = 1024 * 1024


class CsvRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        if sheet_count > 1:
            return OutputKind("zip", "application/zip")
        return OutputKind("csv", "text/csv; charset=utf-8")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        encoding = "utf-8-sig" if context.options.get("csv_bom") else "utf-8"
        written = 0
        if context.sheet_count == 1:
            with target.open("w", encoding=encoding, newline="", buffering=WRITE_BUFFER_BYTES) as handle:
                for sheet in sheets:
                    written = _write_sheet(sheet, handle, progress, written)
            return written
        # Each sheet is read to its end before the next one starts: one open cursor at a time.
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for number, sheet in enumerate(sheets, start=1):
                entry = f"{number:02d}-{_safe_name(sheet.name)}.csv"
                with archive.open(entry, "w", force_zip64=True) as raw:
                    text = io.TextIOWrapper(raw, encoding=encoding, newline="", write_through=False)
                    written = _write_sheet(sheet, text, progress, written)
                    text.flush()
                    text.detach()
        return written


def _write_sheet(sheet: Sheet, handle: IO[str], progress: Progress, written: int) -> int:
    # csv.writer writes str() of each value: Decimal keeps its digits, dates are ISO, None is empty.
    writer = csv.writer(handle)
    writer.writerow(sheet.columns)
    for batch in sheet.batches:
        writer.writerows(batch)
        written += len(batch)
        progress(written)
    return written


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip()
    return cleaned[:60] or "sheet"


RENDERER = CsvRenderer()
