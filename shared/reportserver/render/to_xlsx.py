"""XLSX written directly as Office Open XML, streamed into the zip one batch at a time.

A general-purpose writer pays for a Python call per cell; this one builds each batch's rows as text
with a formatter per value type, so a million rows stay in flat memory and go fast. What a person
expects of a spreadsheet is here: numbers as numbers, dates and timestamps as Excel dates with a
display format, decimals with their scale, a bold frozen header row with an autofilter, column widths
from the data, and a sheet that continues on "<name> (2)" past Excel's 1,048,576 rows.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet
from reportserver.sources.base import Row

MAX_ROWS = 1_048_576  # Excel's limit, header included
MAX_CELL_CHARS = 32_767
MAX_SHEET_NAME = 31
EXCEL_EPOCH_ORDINAL = date(1899, 12, 30).toordinal()
MAX_DECIMAL_SCALE = 10
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Cell styles (cellXfs): 0 general, 1 header, 2 date, 3 date-time, 4.. decimals with 0..10 places.
STYLE_HEADER, STYLE_DATE, STYLE_DATETIME, STYLE_DECIMAL0 = 1, 2, 3, 4


def _text(value: str) -> str:
    if len(value) > MAX_CELL_CHARS:
        value = value[:MAX_CELL_CHARS]
    if ILLEGAL_XML.search(value):
        value = ILLEGAL_XML.sub("", value)
    return f'<c t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c>'


def _integer(value: int) -> str:
    return f"<c><v>{value}</v></c>"


def _float(value: float) -> str:
    if not math.isfinite(value):
        return "<c/>"  # no NaN or infinity in a spreadsheet cell: leave it blank
    return f"<c><v>{value!r}</v></c>"


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        return "<c/>"
    exponent = value.as_tuple().exponent
    scale = min(-exponent, MAX_DECIMAL_SCALE) if isinstance(exponent, int) and exponent < 0 else 0
    return f'<c s="{STYLE_DECIMAL0 + scale}"><v>{value}</v></c>'


def _date(value: date) -> str:
    return f'<c s="{STYLE_DATE}"><v>{value.toordinal() - EXCEL_EPOCH_ORDINAL}</v></c>'


def _datetime(value: datetime) -> str:
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    serial = value.toordinal() - EXCEL_EPOCH_ORDINAL + seconds / 86400
    return f'<c s="{STYLE_DATETIME}"><v>{serial!r}</v></c>'


def _boolean(value: bool) -> str:
    return f'<c t="b"><v>{int(value)}</v></c>'


def _bytes(value: bytes) -> str:
    return _text(value.hex())


CELL: dict[type, Callable[[Any], str]] = {
    str: _text,
    int: _integer,
    float: _float,
    Decimal: _decimal,
    date: _date,
    datetime: _datetime,
    bool: _boolean,
    bytes: _bytes,
    type(None): lambda _value: "<c/>",
}


def _cell(value: Any) -> str:
    writer = CELL.get(type(value))
    if writer is None:
        return _text(str(value))
    return writer(value)


def _rows_xml(batch: list[Row]) -> str:
    cell = _cell
    return "".join(["<row>" + "".join([cell(v) for v in row]) + "</row>" for row in batch])


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    if isinstance(value, float):
        return min(len(f"{value:,.2f}"), 20)
    return min(len(str(value)), 60)


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

    def __init__(self, batches: Iterator[list[Row]], progress: Progress, written: int) -> None:
        self._batches = batches
        self._progress = progress
        self._pending: list[Row] = []
        self.written = written

    def peek(self) -> list[Row]:
        if not self._pending:
            self._pending = next((b for b in self._batches if b), [])
        return self._pending

    def has_more(self) -> bool:
        return bool(self.peek())

    def fill(self, part: IO[bytes]) -> int:
        """Write rows into one sheet part until the batches end or the part is full; return its rows."""
        room = MAX_ROWS - 1
        rows = 0
        while rows < room:
            batch = self.peek()
            if not batch:
                break
            take = min(len(batch), room - rows)
            part.write(_rows_xml(batch[:take]).encode("utf-8"))
            self._pending = batch[take:]
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
        first = rows.peek()
        widths = [
            max(len(c), *(_width(r[i]) for r in first[:200])) if first else len(c) for i, c in enumerate(sheet.columns)
        ]
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
