"""The typing contract (README, "How values are written"): one typed table, every path, every format.

The same SQLite table is read by a report call (`/api/call/`'s JSON) and exported through the native
(ADBC) and the row (fallback) read paths into every format; each output is read back with an
independent reader and compared with what the contract says that format writes for each type.
"""

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
import pyarrow.parquet as pq
import pypdf
import pytest
from reportserver.domain.calls import CallLimits, ReportRunner
from reportserver.domain.exports import render_queries
from reportserver.domain.ports import DataSource, ReadPlan
from reportserver.domain.reports import EXPORT_FORMATS, ReportQuery, parse_report
from reportserver.render import renderer_for
from reportserver.render.base import RenderContext
from reportserver.sources.registry import open_source
from reportserver.sources.sqlite import SqliteSource

from tests.fakes import MemoryCatalog
from tests.tables import contract_json, contract_text

SQL = """SELECT id, big, ratio, price, name, flag, day, at, at_utc AS "at_utc [timestamptz]", blob
         FROM typed ORDER BY id"""
COLUMNS = ["id", "big", "ratio", "price", "name", "flag", "day", "at", "at_utc", "blob"]
BIG = 2**60 + 1
ROWS: list[tuple[Any, ...]] = [
    (1, BIG, 0.1, "0.10", 'Zoë "quoted", comma\nnew line', 1, "2025-01-31", "2025-01-31 23:59:58", None, b"\x00\xff"),
    (
        2,
        -5,
        1e20,
        "-12345.67",
        "中文 ğ ß é",
        0,
        "1999-12-31",
        "2025-02-01 00:00:00.5",
        "2025-01-01 10:00:00+10:00",
        b"",
    ),
    (3, None, None, None, None, None, None, None, "2025-06-30T23:00:00Z", None),
]
# The contract's values for the rows above: what every format must say, each in its own way.
EXPECTED: list[dict[str, Any]] = [
    {
        "id": 1,
        "big": BIG,
        "ratio": 0.1,
        "price": Decimal("0.10"),
        "name": 'Zoë "quoted", comma\nnew line',
        "flag": True,
        "day": date(2025, 1, 31),
        "at": datetime(2025, 1, 31, 23, 59, 58),
        "at_utc": None,
        "blob": b"\x00\xff",
    },
    {
        "id": 2,
        "big": -5,
        "ratio": 1e20,
        "price": Decimal("-12345.67"),
        "name": "中文 ğ ß é",
        "flag": False,
        "day": date(1999, 12, 31),
        "at": datetime(2025, 2, 1, 0, 0, 0, 500_000),
        "at_utc": datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        "blob": b"",
    },
    {c: None for c in COLUMNS} | {"id": 3, "at_utc": datetime(2025, 6, 30, 23, 0, tzinfo=UTC)},
]
CONTEXT = RenderContext(title="Typed", generated_at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "typed.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE typed (id INTEGER, big INTEGER, ratio REAL, price DECIMAL(12,2), name TEXT, flag BOOLEAN,"
            " day DATE, at TIMESTAMP, at_utc TEXT, blob BLOB)"
        )
        connection.executemany("INSERT INTO typed VALUES (?,?,?,?,?,?,?,?,?,?)", ROWS)
    return path


def test_a_report_call_writes_each_type_as_the_contract_says(database: Path) -> None:
    report = parse_report({"name": "Typed", "data_source_id": "1", "queries": [{"sql": SQL}]})
    catalog = MemoryCatalog([report], [DataSource(id="1", database=str(database))])
    body = ReportRunner(catalog, open_source).call(report, {}, CallLimits(50_000, 5_000_000)).body
    records = json.loads(body, parse_float=Decimal)["records"]
    assert records == [{k: contract_json(v) for k, v in row.items()} for row in EXPECTED]
    assert b'"price":0.10' in body and f'"big":{BIG}'.encode() in body  # every digit, as numbers


def export(database: Path, export_format: str, native: bool, tmp_path: Path) -> Path:
    renderer = renderer_for(export_format)
    target = tmp_path / f"{'native' if native else 'rows'}.{renderer.output(1).extension}"
    source = SqliteSource(str(database))
    plan = ReadPlan(native=native)

    class Planned:  # the same source, made to read with the plan under test
        def run(self, *args: Any, **kwargs: Any) -> Any:
            return source.run(*args, **kwargs)

        def run_arrow(self, sql: str, params: Any, _plan: Any = None) -> Any:
            return source.run_arrow(sql, params, plan)

    written = render_queries(
        Planned(), [ReportQuery(sql=SQL, sheet_name="Typed")], {}, renderer, target, CONTEXT, lambda _: None
    )
    assert written == len(EXPECTED)
    return target


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_csv_writes_each_type_as_the_contract_says(database: Path, tmp_path: Path, native: bool) -> None:
    lines = list(csv.reader(io.StringIO(export(database, "csv", native, tmp_path).read_text("utf-8"), newline="")))
    assert lines[0] == COLUMNS
    assert lines[1:] == [[contract_text(row[c]) for c in COLUMNS] for row in EXPECTED]


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_json_writes_each_type_as_a_report_call_does(database: Path, tmp_path: Path, native: bool) -> None:
    raw = export(database, "json", native, tmp_path).read_bytes()
    data = json.loads(raw, parse_float=Decimal)["reports"][0]["data"]
    assert data == [{k: contract_json(v) for k, v in row.items()} for row in EXPECTED]
    assert b'"price":0.10' in raw and f'"big":{BIG}'.encode() in raw


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_parquet_keeps_each_type(database: Path, tmp_path: Path, native: bool) -> None:
    table = pq.read_table(export(database, "parquet", native, tmp_path))
    assert [str(f.type) for f in table.schema] == [
        "int64",
        "int64",
        "double",
        "decimal128(38, 2)",
        "string",
        "bool",
        "date32[day]",
        "timestamp[us]",
        "timestamp[us, tz=UTC]",
        "binary",
    ]
    assert table.to_pylist() == EXPECTED


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_html_writes_each_type_as_the_contract_says(database: Path, tmp_path: Path, native: bool) -> None:
    cells = _Cells()
    cells.feed(export(database, "html", native, tmp_path).read_text("utf-8"))
    assert cells.rows[0] == COLUMNS
    assert cells.rows[1:] == [[contract_text(row[c]) for c in COLUMNS] for row in EXPECTED]


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_pdf_shows_each_type_as_the_contract_says(database: Path, tmp_path: Path, native: bool) -> None:
    shown = "".join(p.extract_text() for p in pypdf.PdfReader(export(database, "pdf", native, tmp_path)).pages)
    for row in EXPECTED:
        for column in ("id", "big", "price", "flag", "day", "at", "at_utc", "blob"):
            assert contract_text(row[column]) in shown, (column, row[column])


@pytest.mark.parametrize("native", [True, False], ids=["native", "rows"])
def test_xlsx_holds_each_type_as_the_contract_says(database: Path, tmp_path: Path, native: bool) -> None:
    sheet = openpyxl.load_workbook(export(database, "xlsx", native, tmp_path))["Typed"]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    first, second, empty = values
    assert first[COLUMNS.index("big")] == str(BIG)  # beyond 2**53: text, every digit kept
    assert second[COLUMNS.index("big")] == -5
    assert first[COLUMNS.index("ratio")] == 0.1 and second[COLUMNS.index("ratio")] == 1e20
    assert first[COLUMNS.index("price")] == 0.1 and second[COLUMNS.index("price")] == -12345.67
    assert first[COLUMNS.index("flag")] is True and second[COLUMNS.index("flag")] is False
    assert first[COLUMNS.index("day")] == datetime(2025, 1, 31)
    assert second[COLUMNS.index("at")] == datetime(2025, 2, 1, 0, 0, 0, 500_000)
    assert second[COLUMNS.index("at_utc")] == datetime(2025, 1, 1, 0, 0)  # UTC wall time ...
    assert "(UTC)" in str(sheet.cell(1, COLUMNS.index("at_utc") + 1).value)  # ... and the header says so
    assert first[COLUMNS.index("blob")] == "AP8="
    assert empty[1:] == [None] * 7 + [datetime(2025, 6, 30, 23, 0), None]


@pytest.mark.parametrize("export_format", ["csv", "json", "html", "parquet"])
def test_native_and_row_paths_make_the_same_file(database: Path, tmp_path: Path, export_format: str) -> None:
    native = export(database, export_format, True, tmp_path)
    rows = export(database, export_format, False, tmp_path)
    assert native.read_bytes() == rows.read_bytes()


def test_native_and_row_paths_make_the_same_workbook(database: Path, tmp_path: Path) -> None:
    parts = []
    for native in (True, False):
        with zipfile.ZipFile(export(database, "xlsx", native, tmp_path)) as book:
            parts.append({name: book.read(name) for name in book.namelist()})
    assert parts[0] == parts[1]


def test_every_format_is_covered_by_a_contract_test() -> None:
    covered = {"csv", "json", "parquet", "html", "pdf", "xlsx"}
    assert covered == set(EXPORT_FORMATS)
