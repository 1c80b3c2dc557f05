"""Every renderer, read back with an independent reader and compared with the rows it was given."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pypdf
import pytest
from reportserver.domain.exports import render_queries
from reportserver.domain.reports import EXPORT_FORMATS, ReportQuery
from reportserver.render import renderer_for, supported_formats, to_xlsx
from reportserver.render.base import RenderContext, RenderFailed, Sheet
from reportserver.sources.sqlite import SqliteSource

from tests.tables import typed_batches

COLUMNS = ["id", "price", "ratio", "day", "at", "name", "active", "note"]
ROWS: list[tuple[Any, ...]] = [
    (1, Decimal("0.10"), 1.5, date(2025, 1, 31), datetime(2025, 1, 31, 23, 59, 58), "Zoë & <Müller>", True, None),
    (
        2,
        Decimal("-12345.67"),
        -0.25,
        date(2024, 2, 29),
        datetime(2024, 2, 29, 0, 0, 1),
        'quote " and , comma',
        False,
        "中文 ğ ß é",
    ),
    (3, None, None, None, None, "", None, "line\nbreak"),
]
CONTEXT = RenderContext(
    title="Test Report",
    generated_at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
    parameters={"region": "NSW", "date_from": "2025-01-01"},
)


def render(
    export_format: str,
    tmp_path: Path,
    sheets: list[tuple[str, list[tuple[Any, ...]]]] | None = None,
    batch: int = 2,
    **options: Any,
) -> tuple[Path, int, list[int]]:
    sheets = sheets or [("Data", ROWS)]
    renderer = renderer_for(export_format)
    kind = renderer.output(len(sheets))
    target = tmp_path / f"out.{kind.extension}"
    seen: list[int] = []
    context = RenderContext(CONTEXT.title, CONTEXT.generated_at, len(sheets), CONTEXT.parameters, options)
    made = []
    for name, rows in sheets:
        schema, batches = typed_batches(COLUMNS, rows or ROWS[:0], batch)
        made.append(Sheet(name, schema, batches))
    written = renderer.render(iter(made), target, context, seen.append)
    return target, written, seen


def test_every_export_format_has_a_renderer() -> None:
    assert supported_formats() == set(EXPORT_FORMATS)  # so no requested format lacks a renderer


def test_csv_is_rfc_4180_with_a_header_and_values_as_text(tmp_path: Path) -> None:
    target, written, progress = render("csv", tmp_path)
    raw = target.read_bytes()
    assert written == 3 and progress == [2, 3]
    assert raw.startswith(b"id,price,ratio,day,at,name,active,note\r\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[1] == ["1", "0.10", "1.5", "2025-01-31", "2025-01-31 23:59:58", "Zoë & <Müller>", "true", ""]
    assert rows[2][5] == 'quote " and , comma' and rows[2][7] == "中文 ğ ß é"
    assert rows[3][7] == "line\nbreak"


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "a=b"]


def _formula_rows() -> list[tuple[Any, ...]]:
    return [(i, Decimal("-1.5"), -2.5, None, None, text, None, None) for i, text in enumerate(FORMULAS)]


def test_csv_text_that_would_open_as_a_formula_starts_with_an_apostrophe(tmp_path: Path) -> None:
    # Found: cells starting with = + - @ tab or CR were written as they are, and ran as formulas in Excel.
    target, _, _ = render("csv", tmp_path, sheets=[("Data", _formula_rows())])
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))[1:]
    assert [r[5] for r in rows] == ["'" + t for t in FORMULAS[:6]] + ["plain", "a=b"]
    assert {(r[1], r[2]) for r in rows} == {("-1.5", "-2.5")}  # numbers are never changed


def test_csv_a_formula_after_batches_without_one_is_still_defused(tmp_path: Path) -> None:
    rows = [(i, Decimal("-1.5"), -2.5, None, None, "plain", None, None) for i in range(6)] + _formula_rows()[:1]
    target, _, _ = render("csv", tmp_path, sheets=[("Data", rows)], batch=2)
    written = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))[1:]
    assert [r[5] for r in written] == ["plain"] * 6 + ["'" + FORMULAS[0]]


def test_csv_binary_whose_base64_would_open_as_a_formula_is_neutralised_too(tmp_path: Path) -> None:
    # Found: bytes f8 0d 34 are "+A00" in base64, which a spreadsheet reads as a formula.
    schema = pa.schema([pa.field("blob", pa.binary()), pa.field("n", pa.float64())])
    batch = pa.RecordBatch.from_arrays([pa.array([b"\xf8\x0d\x34", b"ok"]), pa.array([-1.5, 2.5])], schema=schema)
    target = tmp_path / "b.csv"
    context = RenderContext(CONTEXT.title, CONTEXT.generated_at, 1, {}, {})
    renderer_for("csv").render(iter([Sheet("S", schema, iter([batch]))]), target, context, lambda _: None)
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))
    assert rows[1:] == [["'+A00", "-1.5"], ["b2s=", "2.5"]]


def test_csv_formulas_are_kept_as_they_are_when_the_export_asks(tmp_path: Path) -> None:
    target, _, _ = render("csv", tmp_path, sheets=[("Data", _formula_rows())], csv_neutralise_formulas=False)
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))[1:]
    assert [r[5] for r in rows] == FORMULAS


def test_xlsx_never_writes_a_formula(tmp_path: Path) -> None:
    target, _, _ = render("xlsx", tmp_path, sheets=[("Data", _formula_rows())])
    sheet = openpyxl.load_workbook(target)["Data"]
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert [c.value for c in sheet["F"][1:]] == FORMULAS  # text, exactly as it was


def test_csv_can_start_with_a_bom_for_excel(tmp_path: Path) -> None:
    target, _, _ = render("csv", tmp_path, csv_bom=True)
    assert target.read_bytes().startswith(b"\xef\xbb\xbfid,")


def test_json_keeps_types_and_exact_decimals(tmp_path: Path) -> None:
    target, written, _ = render("json", tmp_path)
    raw = target.read_bytes()
    document = json.loads(raw)
    data = document["reports"][0]["data"]
    assert written == 3 and document["reports"][0]["sheet_name"] == "Data"
    assert b'"price":0.10' in raw and b'"price":-12345.67' in raw
    assert data[0] == {
        "id": 1,
        "price": 0.1,
        "ratio": 1.5,
        "day": "2025-01-31",
        "at": "2025-01-31T23:59:58",
        "name": "Zoë & <Müller>",
        "active": True,
        "note": None,
    }
    assert data[2]["price"] is None


def test_xlsx_has_typed_cells_a_bold_frozen_filtered_header_and_widths(tmp_path: Path) -> None:
    target, written, _ = render("xlsx", tmp_path)
    book = openpyxl.load_workbook(target)
    sheet = book["Data"]
    values = [tuple(c.value for c in row) for row in sheet.iter_rows()]
    assert written == 3
    assert values[0] == tuple(COLUMNS)
    assert values[1] == (
        1,
        0.1,
        1.5,
        datetime(2025, 1, 31),
        datetime(2025, 1, 31, 23, 59, 58),
        "Zoë & <Müller>",
        True,
        None,
    )
    assert values[2][1] == -12345.67 and values[2][5] == 'quote " and , comma' and values[2][7] == "中文 ğ ß é"
    assert values[3] == (3, None, None, None, None, "", None, "line\nbreak")  # the source's empty text
    assert sheet["A1"].font.b is True
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:H4"
    assert sheet["D2"].number_format == "yyyy\\-mm\\-dd" and sheet["E2"].number_format == "yyyy\\-mm\\-dd\\ hh:mm:ss"
    assert sheet["B3"].number_format == "#,##0.00"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["A"].width


def test_xlsx_continues_on_a_second_sheet_past_the_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(to_xlsx, "MAX_ROWS", 3)  # header + 2 rows per sheet
    many = [(i, None, None, None, None, f"row {i}", None, None) for i in range(1, 6)]
    target, written, _ = render("xlsx", tmp_path, [("Data", many)], batch=3)
    book = openpyxl.load_workbook(target)
    assert written == 5
    assert book.sheetnames == ["Data", "Data (2)", "Data (3)"]
    ids = [row[0] for name in book.sheetnames for row in book[name].iter_rows(min_row=2, values_only=True)]
    assert ids == [1, 2, 3, 4, 5]
    assert [c.value for c in book["Data (3)"][1]] == COLUMNS


def test_xlsx_multi_sheet_report_is_one_workbook(tmp_path: Path) -> None:
    target, written, _ = render("xlsx", tmp_path, [("By category", ROWS[:2]), ("By region", ROWS[2:])])
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["By category", "By region"] and written == 3


def test_parquet_keeps_the_column_types(tmp_path: Path) -> None:
    target, written, _ = render("parquet", tmp_path)
    table = pq.read_table(target)
    assert written == 3
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("price").type == pa.decimal128(38, 2)
    assert table.schema.field("ratio").type == pa.float64()
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("at").type == pa.timestamp("us")
    assert table.schema.field("active").type == pa.bool_()
    assert table.to_pylist()[1] == dict(zip(COLUMNS, ROWS[1], strict=True))
    assert table.to_pylist()[2]["price"] is None


def test_parquet_row_groups_gather_batches_in_order_with_dictionaries_only_where_values_repeat(tmp_path: Path) -> None:
    at = datetime(2025, 1, 1, 12)
    many = [
        (i, Decimal(i).scaleb(-2), i / 4, date(2025, 1, 1 + i % 28), at, f"n{i % 7}", i % 2 == 0, None)
        for i in range(70_000)
    ]
    target, written, progress = render("parquet", tmp_path, [("Data", many)], batch=5_000)
    found = pq.ParquetFile(target)
    groups = [found.metadata.row_group(g) for g in range(found.metadata.num_row_groups)]
    assert written == 70_000 and progress[-1] == 70_000
    assert [g.num_rows for g in groups] == [65_000 + 5_000]  # batches gathered until a group holds 65,536 rows
    assert found.read().column("id").to_pylist() == list(range(70_000))
    first = groups[0]
    encoded = {first.column(c).path_in_schema: first.column(c).encodings for c in range(first.num_columns)}
    # Booleans have no dictionary in Parquet; numbers and timestamps are written plain.
    assert {name for name, codes in encoded.items() if "RLE_DICTIONARY" in codes} == {"day", "name", "note"}


def test_an_empty_parquet_sheet_has_its_columns_and_no_rows(tmp_path: Path) -> None:
    target, written, _ = render("parquet", tmp_path, [("By category", ROWS[:2]), ("Nothing", [])])
    with zipfile.ZipFile(target) as archive:
        empty = pq.read_table(io.BytesIO(archive.read("02-Nothing.parquet")))
    assert written == 2 and empty.num_rows == 0 and empty.schema.names == COLUMNS


def test_multi_sheet_parquet_is_a_zip_of_one_file_per_sheet(tmp_path: Path) -> None:
    target, _, _ = render("parquet", tmp_path, [("By category", ROWS[:2]), ("By region", ROWS[2:])])
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["01-By category.parquet", "02-By region.parquet"]
        assert pq.read_table(io.BytesIO(archive.read("02-By region.parquet"))).num_rows == 1


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.scripts = 0
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def test_html_is_a_standalone_page_with_escaped_cells_and_the_report_header(tmp_path: Path) -> None:
    target, written, _ = render("html", tmp_path)
    page = target.read_text(encoding="utf-8")
    parser = _Cells()
    parser.feed(page)
    assert written == 3 and parser.scripts == 0 and "<link" not in page
    assert parser.cells[: len(COLUMNS)] == COLUMNS
    assert "Zoë & <Müller>" in parser.cells and "Zoë &amp; &lt;Müller&gt;" in page
    assert "<h1>Test Report</h1>" in page and "2026-11-22 12:00:00 UTC" in page and "NSW" in page
    assert '<td class="n">0.10</td>' in page


def _empty_file_columns(export_format: str, target: Path) -> list[str]:
    """The column names an empty export's file shows, read back with the format's own reader."""
    if export_format == "xlsx":
        return [c.value for c in openpyxl.load_workbook(target)["Data"][1]]
    if export_format == "csv":
        rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
        assert len(rows) == 1
        return rows[0]
    if export_format == "json":
        sheet = json.loads(target.read_bytes())["reports"][0]
        assert sheet["data"] == [] and sheet["sheet_name"] == "Data"
        return list(sheet["columns"])
    if export_format == "html":
        parser = _Cells()
        parser.feed(target.read_text(encoding="utf-8"))
        return parser.cells  # the header cells and no others
    if export_format == "parquet":
        table = pq.read_table(target)
        assert table.num_rows == 0
        return table.column_names
    text = pypdf.PdfReader(target).pages[0].extract_text()
    assert "No rows." in text
    return [name for name in COLUMNS if name in text]


@pytest.mark.parametrize("export_format", ["xlsx", "csv", "json", "html", "parquet", "pdf"])
def test_an_empty_result_still_makes_a_valid_file_with_the_header(tmp_path: Path, export_format: str) -> None:
    target, written, _ = render(export_format, tmp_path, [("Data", [])])
    assert written == 0
    assert _empty_file_columns(export_format, target) == COLUMNS


def test_an_export_of_a_column_that_changes_type_falls_back_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "mixed.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE m (id INTEGER, v)")
        connection.executemany("INSERT INTO m VALUES (?, ?)", [(i, i) for i in range(70_000)] + [(70_000, "text")])
    target = tmp_path / "out.csv"
    written = render_queries(
        SqliteSource(str(path)),
        [ReportQuery(sql="SELECT id, v FROM m ORDER BY id")],
        {},
        renderer_for("csv"),
        target,
        CONTEXT,
        lambda _rows: None,
    )
    lines = target.read_text(encoding="utf-8").splitlines()
    assert written == 70_001 and len(lines) == 70_002
    # The column became text, and Arrow quotes every text value (RFC 4180 allows it; Excel reads it).
    assert lines[1] == '0,"0"' and lines[-1] == '70000,"text"'


def pdf_text(target: Path) -> tuple[int, list[str]]:
    reader = pypdf.PdfReader(target)
    return len(reader.pages), [page.extract_text() for page in reader.pages]


def test_pdf_has_title_parameters_time_headers_and_unicode_text(tmp_path: Path) -> None:
    target, written, _ = render("pdf", tmp_path)
    pages, texts = pdf_text(target)
    first = texts[0]
    assert written == 3 and pages == 1
    assert "Test Report" in first and "region: NSW" in first and "2026-11-22 12:00:00 UTC" in first
    assert all(name in first for name in COLUMNS)
    for value in ("Zoë & <Müller>", "中文", "ğ ß é", "-12345.67", "2025-01-31 23:59:58", "0.10"):
        assert value in first, value
    assert "Page 1 of 1" in first


def test_pdf_repeats_the_column_headers_and_numbers_every_page(tmp_path: Path) -> None:
    many = [(i, Decimal(i) / 100, None, date(2025, 1, 1), None, f"row {i}", None, None) for i in range(1, 301)]
    target, written, _ = render("pdf", tmp_path, [("Data", many)], batch=64)
    pages, texts = pdf_text(target)
    assert written == 300 and pages > 3
    for number, text in enumerate(texts, start=1):
        assert "price" in text and "active" in text, number
        assert f"Page {number} of {pages}" in text
    assert "row 300" in texts[-1] and "row 1" in texts[0]


def test_pdf_right_aligns_numbers_and_dates_and_goes_landscape_when_wide(tmp_path: Path) -> None:
    from reportserver.render.pdf_document import PdfDocument
    from reportserver.render.to_pdf import _Layout

    target, _, _ = render("pdf", tmp_path)
    page = pypdf.PdfReader(target).pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)  # eight columns: landscape
    _, batches = typed_batches(COLUMNS, ROWS, batch=len(ROWS))
    pdf = PdfDocument("t")
    try:
        layout = _Layout(pdf, COLUMNS, next(batches), landscape=True)
        pdf.set_font("Sans", size=7.5)
        assert layout.right == [True, True, True, True, True, False, False, False]
        price = COLUMNS.index("price")
        short, long = (layout.place(pdf, price, t) + pdf.text_width(t) for t in ("0.10", "-12345.67"))
        assert short == pytest.approx(long)  # numbers end at the same right edge
        name = COLUMNS.index("name")
        assert layout.place(pdf, name, "a") == layout.place(pdf, name, "a much longer name")  # text starts left
    finally:
        pdf.close_fonts()


def test_pdf_refuses_more_rows_than_a_reader_can_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reportserver.render import to_pdf

    monkeypatch.setattr(to_pdf, "MAX_PDF_ROWS", 2)
    with pytest.raises(RenderFailed, match="at most 2 rows; export this report as xlsx or csv"):
        render("pdf", tmp_path)
