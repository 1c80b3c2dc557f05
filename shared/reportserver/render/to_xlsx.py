"""XLSX written directly as Office Open XML, streamed into the zip one batch at a time.

A general-purpose writer pays for a Python call per cell; this one builds each batch's cells as text
column by column in Arrow's C++ kernels and writes the batch as one buffer, so a million rows stay in
flat memory and go fast. What a person
expects of a spreadsheet is here: numbers as numbers, dates and timestamps as Excel dates with a
display format, decimals with their scale, a bold frozen header row with an autofilter, column widths
from the data, and a sheet that continues on "<name> (2)" past Excel's 1,048,576 rows.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet

MAX_ROWS = 1_048_576  # Excel's limit, header included
MAX_CELL_CHARS = 32_767
MAX_SHEET_NAME = 31
MAX_DECIMAL_SCALE = 10

# Cell styles (cellXfs): 0 general, 1 header, 2 date, 3 date-time, 4.. decimals with 0..10 places.
STYLE_HEADER, STYLE_DATE, STYLE_DATETIME, STYLE_DECIMAL0 = 1, 2, 3, 4


def _cells(column: pa.Array) -> pa.Array:
    """Each value as a cell element: numbers and dates as numbers with a style, text inline."""
    kind = column.type
    if columns.is_textual(kind):
        text = pc.utf8_slice_codeunits(columns.xml_escape(columns.text(column)), 0, MAX_CELL_CHARS)
        cells = columns.wrap('<c t="inlineStr"><is><t xml:space="preserve">', text, "</t></is></c>")
    elif pa.types.is_boolean(kind):
        cells = columns.wrap('<c t="b"><v>', column.cast(pa.int8()).cast(pa.string()), "</v></c>")
    elif pa.types.is_date(kind):
        cells = columns.wrap(f'<c s="{STYLE_DATE}"><v>', columns.excel_serial(column), "</v></c>")
    elif pa.types.is_timestamp(kind):
        cells = columns.wrap(f'<c s="{STYLE_DATETIME}"><v>', columns.excel_serial(column), "</v></c>")
    elif pa.types.is_decimal(kind):
        style = STYLE_DECIMAL0 + min(max(kind.scale, 0), MAX_DECIMAL_SCALE)
        cells = columns.wrap(f'<c s="{style}"><v>', columns.text(column), "</v></c>")
    elif columns.is_numeric(kind):
        cells = columns.wrap("<c><v>", columns.text(column), "</v></c>")  # NaN and infinities stay blank
    else:
        cells = columns.wrap('<c t="inlineStr"><is><t>', columns.xml_escape(columns.text(column)), "</t></is></c>")
    return pc.fill_null(cells, "<c/>")


def _rows_xml(batch: pa.RecordBatch) -> Any:
    return columns.payload(columns.wrap("<row>", columns.join([_cells(c) for c in batch.columns], ""), "</row>"))


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _widths(names: list[str], batch: pa.RecordBatch | None) -> list[int]:
    """Column widths from the header and the first rows (a constant-memory writer sees no more)."""
    widths = [len(n) for n in names]
    if batch is None or not batch.num_rows:
        return widths
    sample = batch.slice(0, 500)
    for i, column in enumerate(sample.columns):
        if pa.types.is_timestamp(column.type):
            longest = 19
        elif pa.types.is_date(column.type):
            longest = 10
        else:
            longest = pc.max(pc.utf8_length(columns.text(column))).as_py() or 0
        widths[i] = min(max(widths[i], longest), 60)
    return widths


@dataclass
class _WrittenSheet:
    name: str
    columns: int
    rows: int  # data rows, header excluded


@dataclass
class _Workbook:
    sheets: list[_WrittenSheet] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    def unique_name(self, wanted: str) -> str:
        base = re.sub(r"[\[\]:*?/\\]", "_", wanted).strip("'") or "Sheet"
        base = base[:MAX_SHEET_NAME]
        name, number = base, 2
        while name.lower() in self.names:
            suffix = f" ({number})"
            name = base[: MAX_SHEET_NAME - len(suffix)] + suffix
            number += 1
        self.names.add(name.lower())
        return name


class _SheetRows:
    """One sheet's batches, handed out part by part: at most Excel's row limit per sheet part."""

    def __init__(self, batches: Iterator[pa.RecordBatch], progress: Progress, written: int) -> None:
        self._batches = batches
        self._progress = progress
        self._pending: pa.RecordBatch | None = None
        self.written = written

    def peek(self) -> pa.RecordBatch | None:
        if self._pending is None or not self._pending.num_rows:
            self._pending = next((b for b in self._batches if b.num_rows), None)
        return self._pending

    def has_more(self) -> bool:
        return self.peek() is not None

    def fill(self, part: IO[bytes]) -> int:
        """Write rows into one sheet part until the batches end or the part is full; return its rows."""
        room = MAX_ROWS - 1
        rows = 0
        while rows < room:
            batch = self.peek()
            if batch is None:
                break
            take = min(batch.num_rows, room - rows)
            part.write(_rows_xml(batch.slice(0, take)))
            self._pending = batch.slice(take)
            rows += take
            self.written += take
            self._progress(self.written)
        return rows


class XlsxRenderer:
    def output(self, sheet_count: int) -> OutputKind:
        return OutputKind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        book = _Workbook()
        written = 0
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for sheet in sheets:
                written = self._write_sheet(archive, book, sheet, progress, written)
            if not book.sheets:
                self._start_part(archive, book, book.unique_name("Sheet1"), [], [], lambda _part: 0)
            _write_package(archive, book, context)
        return written

    def _write_sheet(
        self, archive: zipfile.ZipFile, book: _Workbook, sheet: Sheet, progress: Progress, written: int
    ) -> int:
        rows = _SheetRows(iter(sheet.batches), progress, written)
        widths = _widths(sheet.columns, rows.peek())
        self._start_part(archive, book, book.unique_name(sheet.name), sheet.columns, widths, rows.fill)
        continuation = 2
        while rows.has_more():
            # Past Excel's row limit the sheet goes on in "<name> (2)", header repeated.
            name = book.unique_name(f"{sheet.name} ({continuation})")
            self._start_part(archive, book, name, sheet.columns, widths, rows.fill)
            continuation += 1
        return rows.written

    @staticmethod
    def _start_part(
        archive: zipfile.ZipFile,
        book: _Workbook,
        name: str,
        columns: list[str],
        widths: list[int],
        fill: Callable[[IO[bytes]], int],
    ) -> None:
        number = len(book.sheets) + 1
        with archive.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as part:
            part.write(_sheet_head(columns, widths).encode("utf-8"))
            rows = fill(part) if columns else 0
            part.write(_sheet_tail(len(columns), rows).encode("utf-8"))
        book.sheets.append(_WrittenSheet(name, len(columns), rows))


def _sheet_head(columns: list[str], widths: list[int]) -> str:
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{min(max(w, 8), 60) + 2}" customWidth="1"/>'
        for i, w in enumerate(widths, start=1)
    )
    header = "".join(f'<c t="inlineStr" s="{STYLE_HEADER}"><is><t>{escape(c)}</t></is></c>' for c in columns)
    pane = (
        (
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        )
        if columns
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheetViews><sheetView workbookViewId="0">{pane}</sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + "<sheetData>"
        + (f"<row>{header}</row>" if columns else "")
    )


def _filter_range(columns: int, rows: int) -> str:
    return f"A1:{_column_letter(columns - 1)}{rows + 1}"


def _sheet_tail(columns: int, rows: int) -> str:
    autofilter = f'<autoFilter ref="{_filter_range(columns, rows)}"/>' if columns else ""
    return f"</sheetData>{autofilter}</worksheet>"


def _write_package(archive: zipfile.ZipFile, book: _Workbook, context: RenderContext) -> None:
    sheets = "".join(
        f'<sheet name="{escape(s.name, {chr(34): "&quot;"})}" sheetId="{i}" r:id="rId{i}"/>'
        for i, s in enumerate(book.sheets, start=1)
    )
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"'{escape(s.name.replace(chr(39), chr(39) * 2))}'!$A$1:${_column_letter(s.columns - 1)}${s.rows + 1}"
        "</definedName>"
        for i, s in enumerate(book.sheets)
        if s.columns
    )
    archive.writestr(
        "xl/workbook.xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<bookViews><workbookView/></bookViews><sheets>{sheets}</sheets>"
            + (f"<definedNames>{filters}</definedNames>" if filters else "")
            + "</workbook>"
        ),
    )
    relations = "".join(
        f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        f'worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(book.sheets) + 1)
    )
    styles_id = len(book.sheets) + 1
    archive.writestr(
        "xl/_rels/workbook.xml.rels",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{relations}"
            f'<Relationship Id="rId{styles_id}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/styles" Target="styles.xml"/></Relationships>'
        ),
    )
    archive.writestr("xl/styles.xml", _STYLES)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(book.sheets) + 1)
    )
    archive.writestr(
        "[Content_Types].xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
            'core-properties+xml"/>'
            f"{overrides}</Types>"
        ),
    )
    archive.writestr(
        "_rels/.rels",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/></Relationships>'
        ),
    )
    created = context.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    archive.writestr(
        "docProps/core.xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{escape(context.title)}</dc:title><dc:creator>reportserver</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created></cp:coreProperties>'
        ),
    )


def _decimal_formats() -> tuple[str, str]:
    formats = "".join(
        f'<numFmt numFmtId="{170 + scale}" formatCode="#,##0{"." + "0" * scale if scale else ""}"/>'
        for scale in range(MAX_DECIMAL_SCALE + 1)
    )
    xfs = "".join(
        f'<xf numFmtId="{170 + scale}" fontId="0" fillId="0" borderId="0" applyNumberFormat="1"/>'
        for scale in range(MAX_DECIMAL_SCALE + 1)
    )
    return formats, xfs


_DECIMAL_NUMFMTS, _DECIMAL_XFS = _decimal_formats()
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    f'<numFmts count="{MAX_DECIMAL_SCALE + 3}">'
    '<numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd\\ hh:mm:ss"/>'
    f"{_DECIMAL_NUMFMTS}</numFmts>"
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    f'<cellXfs count="{4 + MAX_DECIMAL_SCALE + 1}">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    f"{_DECIMAL_XFS}</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)

RENDERER = XlsxRenderer()
