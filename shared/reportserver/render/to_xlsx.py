"""XLSX written directly as Office Open XML, streamed into the zip one batch at a time.

A general-purpose writer pays for a Python call per cell; this one builds each batch's cells as text
column by column in Arrow's C++ kernels and writes the batch as one buffer, so a million rows stay in
flat memory and go fast. What a person expects of a spreadsheet is here: numbers as numbers, dates and
timestamps as Excel dates with a display format, decimals with their scale, a bold frozen header row
with an autofilter, column widths from the data, and a sheet that continues on "<name> (2)" past
Excel's 1,048,576 rows.

Excel holds a number as a double and shows 15 significant digits, has no date before 1900-03-01 (its
serials count a 1900-02-29 that never was), and keeps at most 32,767 characters in a cell. A value it
cannot hold exactly is written as text with every digit (integers beyond 2**53, decimals with more
than 15 significant digits, dates and timestamps before 1900-03-01 in ISO form), text is cut at the
limit, and the header of a column where either happened carries a note saying so. Characters XML 1.0
forbids are removed from everything written (cells, headers, sheet names, the title).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc

from reportserver.domain.values import binary_text
from reportserver.render import columns
from reportserver.render.base import OutputKind, Progress, RenderContext, Sheet

MAX_ROWS = 1_048_576  # Excel's limit, header included
MAX_CELL_CHARS = 32_767  # Excel counts UTF-16 code units: a character beyond U+FFFF counts 2
MAX_SHEET_NAME = 31
MAX_DECIMAL_SCALE = 10
EXCEL_DIGITS = 15  # significant digits Excel keeps and shows
EXACT_INTEGER = 2**53  # beyond it a double skips integers
FIRST_SERIAL_DATE = date(1900, 3, 1)  # serial 61: from here on Excel's serials and the calendar agree
EXCEL_EPOCH = date(1899, 12, 30)
RESERVED_SHEET_NAMES = frozenset({"history"})  # Excel keeps "History" for change tracking
UTC_SUFFIX = " (UTC)"

NOTE_DIGITS = "Some values are text: they have more digits than Excel keeps (15 significant digits)."
NOTE_EARLY = "Some values are text: they are before 1900-03-01, the first date Excel holds."
NOTE_CUT = f"Some values were cut to Excel's {MAX_CELL_CHARS:,}-character limit."
NOTE_MILLIS = "Times are to the millisecond, the finest Excel keeps: finer digits are not in this file."
NOTE_ORDER = (NOTE_DIGITS, NOTE_EARLY, NOTE_CUT, NOTE_MILLIS)

# Cell styles (cellXfs): 0 general, 1 header, 2 date, 3 date-time, 4.. decimals with 0..10 places.
STYLE_HEADER, STYLE_DATE, STYLE_DATETIME, STYLE_DECIMAL0 = 1, 2, 3, 4

# RE2 patterns over a column's text. XML 1.0 forbids these characters (UTF-8 has no lone surrogates);
# a carriage return is allowed but a parser reads it as a line feed, so it is written as a reference.
_FORBIDDEN = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{FFFE}\x{FFFF}]"
_CONTROL = r"[\x{0}-\x{8}\x{B}-\x{1F}\x{FFFE}\x{FFFF}]"  # forbidden, or a carriage return
_SPECIAL = r"[&<>\x{0}-\x{8}\x{B}-\x{1F}\x{FFFE}\x{FFFF}]"  # anything text needs done to it
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SHEET_NAME_CHARS = re.compile(r"[\[\]:*?/\\]")

_TEXT_CELL = '<c t="inlineStr"><is><t xml:space="preserve">'
_TEXT_CELL_END = "</t></is></c>"


def _cells(column: pa.Array, notes: set[str]) -> pa.Array:
    """Each value as a cell element: numbers and dates as numbers with a style, text inline.

    Adds to `notes` why a value is not as the column's type would have it (text for exactness, cut)."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        cells = _text_cells(_cell_text(column, notes))
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        base64 = pa.array([None if v is None else binary_text(v) for v in column.to_pylist()], pa.string())
        cells = _text_cells(_cell_text(base64, notes))
    elif pa.types.is_boolean(kind):
        cells = columns.wrap('<c t="b"><v>', column.cast(pa.int8()).cast(pa.string()), "</v></c>")
    elif pa.types.is_date(kind):
        cells = _date_cells(column, notes)
    elif pa.types.is_timestamp(kind):
        cells = _timestamp_cells(column, notes)
    elif pa.types.is_decimal(kind):
        cells = _decimal_cells(column, notes)
    elif pa.types.is_integer(kind):
        cells = _integer_cells(column, notes)
    elif pa.types.is_floating(kind):
        cells = columns.wrap("<c><v>", columns.text(column), "</v></c>")  # NaN and infinities stay blank
    else:
        cells = _text_cells(_cell_text(columns.text(column), notes))
    return pc.fill_null(cells, "<c/>")


def _text_cells(text: pa.Array) -> pa.Array:
    return columns.wrap(_TEXT_CELL, text, _TEXT_CELL_END)


def _any_match(column: pa.Array, pattern: str) -> bool:
    """Whether any value holds a match of a one-character pattern: one scan of the column's text buffer
    (a character class cannot match across two values, and scanning one long value is twice as fast)."""
    text = columns.payload(column)
    size = len(text)
    if not size:
        return False
    data = text if isinstance(text, pa.Buffer) else pa.py_buffer(text)
    offsets = pa.array([0, size], pa.int64()).buffers()[1]
    whole = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, data])
    return bool(pc.match_substring_regex(whole, pattern)[0].as_py())


def _cell_text(column: pa.Array, notes: set[str]) -> pa.Array:
    """Text as a cell holds it, escaped for XML: forbidden characters removed, then cut to Excel's limit
    (cutting before escaping keeps entities whole and counts the characters Excel counts)."""
    special = _any_match(column, _SPECIAL)
    control = special and _any_match(column, _CONTROL)
    if control:
        column = pc.replace_substring_regex(column, _FORBIDDEN, "")
    if (pc.max(pc.binary_length(column)).as_py() or 0) > MAX_CELL_CHARS:
        column = _cut_long_text(column, notes)
    if not special:
        return column
    escaped = pc.replace_substring(column, "&", "&amp;")
    escaped = pc.replace_substring(pc.replace_substring(escaped, "<", "&lt;"), ">", "&gt;")
    return pc.replace_substring(escaped, "\r", "&#13;") if control else escaped


def _cut_long_text(column: pa.Array, notes: set[str]) -> pa.Array:
    # A value has no more UTF-16 units than UTF-8 bytes, so only values over the limit in bytes (rare)
    # can be too long; those few are measured and cut one by one.
    long = pc.fill_null(pc.greater(pc.binary_length(column), MAX_CELL_CHARS), False)
    values = column.filter(long).to_pylist()
    cut = [_cut_utf16(v, MAX_CELL_CHARS) for v in values]
    if cut == values:
        return column
    notes.add(NOTE_CUT)
    return pc.replace_with_mask(column, long, pa.array(cut, column.type))


def _cut_utf16(text: str, limit: int) -> str:
    """At most `limit` UTF-16 code units of `text` (Excel's measure), never half a surrogate pair."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    kept = units[: 2 * limit]
    if 0xD800 <= int.from_bytes(kept[-2:], "little") <= 0xDBFF:  # the first half of a pair
        kept = kept[:-2]
    return kept.decode("utf-16-le")


def _integer_cells(column: pa.Array, notes: set[str]) -> pa.Array:
    digits = column.cast(pa.string())
    cells = columns.wrap("<c><v>", digits, "</v></c>")
    bounds = pc.min_max(column).as_py()
    if bounds["min"] is None or (bounds["min"] >= -EXACT_INTEGER and bounds["max"] <= EXACT_INTEGER):
        return cells
    beyond = pc.greater(column, EXACT_INTEGER)
    if pa.types.is_signed_integer(column.type):
        beyond = pc.or_(beyond, pc.less(column, -EXACT_INTEGER))
    notes.add(NOTE_DIGITS)
    return pc.if_else(beyond, _text_cells(digits), cells)


def _decimal_cells(column: pa.Array, notes: set[str]) -> pa.Array:
    kind = column.type
    text = column.cast(pa.string())
    style = STYLE_DECIMAL0 + min(max(kind.scale, 0), MAX_DECIMAL_SCALE)
    cells = columns.wrap(f'<c s="{style}"><v>', text, "</v></c>")
    long = _long_decimals(column, text)
    if long is None:
        return cells
    notes.add(NOTE_DIGITS)
    return pc.if_else(long, _text_cells(_plain_decimals(text, long)), cells)


def _long_decimals(column: pa.Array, text: pa.Array) -> pa.Array | None:
    """Which values have more significant digits than Excel keeps; None when none do (the usual case)."""
    scale = column.type.scale
    bounds = pc.min_max(column).as_py()
    below = Decimal(10) ** (EXCEL_DIGITS - scale)  # a smaller magnitude has at most 15 digits in all
    if bounds["min"] is None or (-below < bounds["min"] and bounds["max"] < below):
        return None
    # Arrow writes a value below 1e-6 with an exponent ("1.500E-7"): only possible from 7 places on.
    mantissa = pc.replace_substring_regex(text, "E.*", "") if scale > 6 else text
    significant = pc.utf8_trim(mantissa, "-0.")  # "-0.0012300" -> "123", "100.50" -> "100.5"
    count = pc.subtract(pc.binary_length(significant), pc.count_substring(significant, "."))
    long = pc.greater(count, EXCEL_DIGITS)
    return long if pc.any(long).as_py() else None


def _plain_decimals(text: pa.Array, long: pa.Array) -> pa.Array:
    """A long decimal's text with every digit and no exponent (the few Arrow writes with one)."""
    exponent = pc.fill_null(pc.and_(long, pc.match_substring(text, "E")), False)
    if not pc.any(exponent).as_py():
        return text
    plain = [format(Decimal(v), "f") for v in text.filter(exponent).to_pylist()]
    return pc.replace_with_mask(text, exponent, pa.array(plain, pa.string()))


def _date_cells(column: pa.Array, notes: set[str]) -> pa.Array:
    dates = column.cast(pa.date32()) if pa.types.is_date64(column.type) else column
    days = dates.cast(pa.int32())
    serials = pc.subtract(days, (EXCEL_EPOCH - date(1970, 1, 1)).days).cast(pa.string())
    cells = columns.wrap(f'<c s="{STYLE_DATE}"><v>', serials, "</v></c>")
    first = (FIRST_SERIAL_DATE - date(1970, 1, 1)).days
    earliest = pc.min(days).as_py()
    if earliest is None or earliest >= first:
        return cells
    notes.add(NOTE_EARLY)
    return pc.if_else(pc.less(days, first), _text_cells(dates.cast(pa.string())), cells)


def _timestamp_cells(column: pa.Array, notes: set[str]) -> pa.Array:
    """Timestamps as Excel date-times to the millisecond (Excel's resolution: rounding up could carry
    9999-12-31 23:59:59.9999 into a year Excel has not); an instant as its UTC wall time."""
    kind = column.type
    wall = column.cast(pa.timestamp(kind.unit)) if kind.tz is not None else column
    floored = pc.floor_temporal(wall, unit="millisecond")
    if pc.any(pc.not_equal(floored, wall)).as_py():
        notes.add(NOTE_MILLIS)  # a value with microseconds: say the cell does not hold them
    millis = floored.cast(pa.timestamp("ms")).cast(pa.int64())
    epoch_millis = (EXCEL_EPOCH - date(1970, 1, 1)).days * 86_400_000  # exact in a double
    days = pc.divide(pc.subtract(millis, epoch_millis).cast(pa.float64()), 86_400_000.0)
    cells = columns.wrap(f'<c s="{STYLE_DATETIME}"><v>', days.cast(pa.string()), "</v></c>")
    first = pa.scalar(datetime(FIRST_SERIAL_DATE.year, FIRST_SERIAL_DATE.month, FIRST_SERIAL_DATE.day), wall.type)
    earliest = pc.min(wall)
    if not earliest.is_valid or pc.greater_equal(earliest, first).as_py():
        return cells
    notes.add(NOTE_EARLY)
    iso = columns.text(wall)  # YYYY-MM-DD HH:MM:SS[.ffffff]
    return pc.if_else(pc.less(wall, first), _text_cells(iso), cells)


def _rows_xml(batch: pa.RecordBatch, notes: list[set[str]]) -> Any:
    cells = [_cells(c, n) for c, n in zip(batch.columns, notes, strict=True)]
    return columns.payload(columns.wrap("<row>", columns.join(cells, ""), "</row>"))


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _xml_text(text: str) -> str:
    """A str as XML element content: forbidden characters removed, a carriage return kept as one."""
    return escape(_FORBIDDEN_CHARS.sub("", text)).replace("\r", "&#13;")


def _header_names(schema: pa.Schema) -> list[str]:
    """Each column's header: its name, and for an instant the zone its values are written in."""
    return [f.name + (UTC_SUFFIX if pa.types.is_timestamp(f.type) and f.type.tz else "") for f in schema]


def _widths(names: list[str], batch: pa.RecordBatch | None) -> list[int]:
    """Column widths from the header and the first rows (a constant-memory writer sees no more)."""
    widths = [len(n) for n in names]
    if batch is None or not batch.num_rows:
        return widths
    sample = batch.slice(0, 500)
    for i, column in enumerate(sample.columns):
        kind = column.type
        if pa.types.is_timestamp(kind):
            longest = 19
        elif pa.types.is_date(kind):
            longest = 10
        elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            longest = -(-(pc.max(pc.binary_length(column)).as_py() or 0) // 3) * 4  # base64
        else:
            longest = pc.max(pc.utf8_length(columns.text(column))).as_py() or 0
        widths[i] = min(max(widths[i], longest), 60)
    return widths


@dataclass
class _WrittenSheet:
    name: str
    columns: int
    rows: int  # data rows, header excluded
    noted: bool = False  # has a comments part


@dataclass
class _Workbook:
    sheets: list[_WrittenSheet] = field(default_factory=list)
    taken: set[str] = field(default_factory=lambda: set(RESERVED_SHEET_NAMES))

    def unique_name(self, wanted: str, number: int = 1) -> str:
        """A name Excel accepts for a new sheet, `wanted` as far as the rules allow, " (n)" added when
        taken (Excel compares names without case)."""
        base = _sheet_name_base(wanted)
        while True:
            suffix = f" ({number})" if number > 1 else ""
            name = _cut_utf16(base, MAX_SHEET_NAME - len(suffix)).rstrip("'") + suffix
            if name.casefold() not in self.taken:
                self.taken.add(name.casefold())
                return name
            number += 1


def _sheet_name_base(wanted: str) -> str:
    # No []:*?/\, no character XML forbids (nor a tab or line break, which a name attribute would turn
    # into a space), no apostrophe first or last, not blank.
    name = re.sub(r"[\t\n\r]", " ", _FORBIDDEN_CHARS.sub("", wanted))
    name = _SHEET_NAME_CHARS.sub("_", name).strip("'")
    return name if name.strip() else "Sheet"


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

    def fill(self, part: IO[bytes], notes: list[set[str]]) -> int:
        """Write rows into one sheet part until the batches end or the part is full; return its rows."""
        room = MAX_ROWS - 1
        rows = 0
        while rows < room:
            batch = self.peek()
            if batch is None:
                break
            take = min(batch.num_rows, room - rows)
            part.write(_rows_xml(batch.slice(0, take), notes))
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
                self._start_part(archive, book, book.unique_name("Sheet1"), [], [], lambda _part, _notes: 0)
            _write_package(archive, book, context)
        return written

    def _write_sheet(
        self, archive: zipfile.ZipFile, book: _Workbook, sheet: Sheet, progress: Progress, written: int
    ) -> int:
        rows = _SheetRows(iter(sheet.batches), progress, written)
        headers = _header_names(sheet.schema)
        widths = _widths(headers, rows.peek())
        self._start_part(archive, book, book.unique_name(sheet.name), headers, widths, rows.fill)
        continuation = 2
        while rows.has_more():
            # Past Excel's row limit the sheet goes on in "<name> (2)", header repeated.
            name = book.unique_name(sheet.name, continuation)
            self._start_part(archive, book, name, headers, widths, rows.fill)
            continuation += 1
        return rows.written

    @staticmethod
    def _start_part(
        archive: zipfile.ZipFile,
        book: _Workbook,
        name: str,
        headers: list[str],
        widths: list[int],
        fill: Callable[[IO[bytes], list[set[str]]], int],
    ) -> None:
        number = len(book.sheets) + 1
        notes: list[set[str]] = [set() for _ in headers]
        with archive.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as part:
            part.write(_sheet_head(headers, widths).encode("utf-8"))
            rows = fill(part, notes) if headers else 0
            # Known only now that the rows are written: which headers carry a note.
            noted = {i: "\n".join(n for n in NOTE_ORDER if n in reasons) for i, reasons in enumerate(notes) if reasons}
            part.write(_sheet_tail(len(headers), rows, bool(noted)).encode("utf-8"))
        if noted:
            _write_notes(archive, number, noted)
        book.sheets.append(_WrittenSheet(name, len(headers), rows, bool(noted)))


def _sheet_head(headers: list[str], widths: list[int]) -> str:
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{min(max(w, 8), 60) + 2}" customWidth="1"/>'
        for i, w in enumerate(widths, start=1)
    )
    header = "".join(
        f'<c t="inlineStr" s="{STYLE_HEADER}"><is><t xml:space="preserve">'
        f"{_xml_text(_cut_utf16(_FORBIDDEN_CHARS.sub('', h), MAX_CELL_CHARS))}</t></is></c>"
        for h in headers
    )
    pane = (
        (
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        )
        if headers
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
        + (f"<row>{header}</row>" if headers else "")
    )


def _filter_range(columns: int, rows: int) -> str:
    return f"A1:{_column_letter(columns - 1)}{rows + 1}"


def _sheet_tail(columns: int, rows: int, noted: bool) -> str:
    autofilter = f'<autoFilter ref="{_filter_range(columns, rows)}"/>' if columns else ""
    drawing = '<legacyDrawing r:id="rId1"/>' if noted else ""  # the notes' shapes (rels: rId1)
    return f"</sheetData>{autofilter}{drawing}</worksheet>"


def _write_notes(archive: zipfile.ZipFile, number: int, notes: dict[int, str]) -> None:
    """A sheet's header notes: the comments part, the VML shapes Excel draws them with, and the rels."""
    comments = "".join(
        f'<comment ref="{_column_letter(column)}1" authorId="0"><text><t xml:space="preserve">'
        f"{_xml_text(text)}</t></text></comment>"
        for column, text in notes.items()
    )
    archive.writestr(
        f"xl/comments{number}.xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<authors><author>reportserver</author></authors><commentList>{comments}</commentList></comments>"
        ),
    )
    shapes = "".join(
        f'<v:shape id="_x0000_s{1024 * number + i}" type="#_x0000_t202" style="position:absolute;'
        f'margin-left:59.25pt;margin-top:1.5pt;width:192pt;height:55.5pt;z-index:{i};visibility:hidden" '
        'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/>'
        '<v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
        '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div></v:textbox>'
        '<x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
        f"<x:Anchor>{column + 1}, 15, 0, 2, {column + 5}, 15, 4, 16</x:Anchor><x:AutoFill>False</x:AutoFill>"
        f"<x:Row>0</x:Row><x:Column>{column}</x:Column></x:ClientData></v:shape>"
        for i, column in enumerate(notes, start=1)
    )
    archive.writestr(
        f"xl/drawings/vmlDrawing{number}.vml",
        (
            '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:x="urn:schemas-microsoft-com:office:excel">'
            f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{number}"/></o:shapelayout>'
            '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
            '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
            f"{shapes}</xml>"
        ),
    )
    relationships = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    archive.writestr(
        f"xl/worksheets/_rels/sheet{number}.xml.rels",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{relationships}/vmlDrawing" Target="../drawings/vmlDrawing{number}.vml"/>'
            f'<Relationship Id="rId2" Type="{relationships}/comments" Target="../comments{number}.xml"/>'
            "</Relationships>"
        ),
    )


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
        + (
            f'<Override PartName="/xl/comments{i}.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.comments+xml"/>'
            if s.noted
            else ""
        )
        for i, s in enumerate(book.sheets, start=1)
    )
    vml = (
        '<Default Extension="vml" ContentType="application/vnd.openxmlformats-officedocument.vmlDrawing"/>'
        if any(s.noted for s in book.sheets)
        else ""
    )
    archive.writestr(
        "[Content_Types].xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>{vml}'
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
            f"<dc:title>{_xml_text(context.title)}</dc:title><dc:creator>reportserver</dc:creator>"
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
