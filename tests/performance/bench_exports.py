"""Benchmark: exports of 1,000,000 rows x 12 columns per format, against what a user would pick.

    make bench-exports     (or: python tests/performance/bench_exports.py [--rows N] [--formats csv,xlsx])

Each measurement runs in a fresh process, so its peak RSS is its own, and every side imports all the
libraries it uses before its clock starts. "ours" runs without pandas, as the worker's layer does.

- **ours**: the worker's path without S3 and DynamoDB: the data source opened as the worker opens it
  (`open_source` with the data source's default settings, its default query time limit included),
  `render_queries` streaming typed batches into the format's renderer, which writes the file.
- **pandas**: the naive way: `pandas.read_sql` then `to_csv`, `to_json(orient="records")`,
  `to_parquet`, `to_excel` (openpyxl) or `to_html`; for pdf, fpdf2 with a cell per value.
- **arrow** (csv, parquet): the strongest library path: the ADBC SQLite driver read as one Arrow
  table, then `pyarrow.csv.write_csv` or `pyarrow.parquet.write_table`.
- **xlsxwriter** (xlsx): XlsxWriter in `constant_memory` mode, rows from `sqlite3` with date and
  timestamp converters (`fromisoformat`), dates written as dates with a number format. Its zip uses
  zlib's default level; ours level 1 (files about 5% larger, written faster).
- **fpdf2 table()** (pdf): fpdf2's own table API, a row per result row.

Every side reads the same table from the same file; the seconds include the read. Where a side is too
slow to run at the full count (see SIDE_ROWS), it runs fewer rows and the ratio compares rows/second.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
DATABASE = ROOT / ".local" / "bench-1m.sqlite"
TABLE_ROWS = 1_000_000
FORMATS = ("csv", "json", "parquet", "xlsx", "html", "pdf")
# Which sides run for which format, and at most how many rows each (the others run the full count).
SIDES = {
    "csv": ("ours", "arrow", "pandas"),
    "json": ("ours", "pandas"),
    "parquet": ("ours", "arrow", "pandas"),
    "xlsx": ("ours", "xlsxwriter", "pandas"),
    "html": ("ours", "pandas"),
    "pdf": ("ours", "fpdf2 table()", "pandas"),
}
SIDE_ROWS = {
    ("ours", "pdf"): 100_000,  # PDFs are capped (MAX_PDF_ROWS); 100k is the yardstick
    ("pandas", "pdf"): 100_000,
    ("pandas", "xlsx"): 200_000,  # openpyxl: about 6,000 rows/s, and the frame and workbook in memory
    ("fpdf2 table()", "pdf"): 5_000,  # about 180 rows/s: 100,000 rows would take 9 minutes a run
}
FONTS = ROOT / "shared/reportserver/render/fonts"
SELECT = "SELECT * FROM facts ORDER BY id LIMIT :n"

SCHEMA = """CREATE TABLE facts (
    id INTEGER PRIMARY KEY, customer_id INTEGER, quantity INTEGER, ratio REAL, weight REAL,
    price DECIMAL(12,2), total DECIMAL(14,2), code TEXT, description TEXT, day DATE, at TIMESTAMP, note TEXT)"""
WORDS = ("alpha", "beta", "gamma", "delta", "Zoë", "Müller", "straße", "ğüşıö", "中文", "report", "export", "row")


def build_table(path: Path, rows: int = TABLE_ROWS) -> None:
    """Integers, floats, decimals, short and long strings, dates, timestamps, some NULLs."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1)
    scratch = path.with_suffix(".building")
    scratch.unlink(missing_ok=True)
    with sqlite3.connect(scratch) as connection:
        connection.execute(SCHEMA)

        def generate() -> Any:
            for i in range(1, rows + 1):
                cents = rng.randrange(0, 10_000_000)
                at = start + timedelta(seconds=rng.randrange(0, 63_000_000))
                yield (
                    i,
                    rng.randrange(1, 50_000),
                    rng.randrange(1, 100),
                    rng.random(),
                    None if i % 11 == 0 else rng.uniform(0, 1000),
                    f"{cents // 100}.{cents % 100:02d}",
                    None if i % 7 == 0 else f"{cents * 3 // 100}.{cents * 3 % 100:02d}",
                    f"C{rng.randrange(10_000):05d}",
                    " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 16))),
                    at.date().isoformat(),
                    at.isoformat(sep=" "),
                    None if i % 3 else rng.choice(WORDS),
                )

        connection.executemany("INSERT INTO facts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", generate())
    scratch.replace(path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(kind: str) -> None:
    """Every library the side uses, imported before its clock starts."""
    if kind == "ours":
        import adbc_driver_sqlite.dbapi
        import pyarrow
        from reportserver.domain import exports  # noqa: F401
        from reportserver.render import renderer_for
        from reportserver.sources import registry  # noqa: F401

        for export_format in FORMATS:
            renderer_for(export_format)  # each renderer's module and its libraries
    elif kind == "pandas":
        import fpdf
        import openpyxl  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet
    elif kind == "arrow":
        import adbc_driver_sqlite.dbapi  # noqa: F401
        import pyarrow.csv
        import pyarrow.parquet  # noqa: F401
    elif kind == "xlsxwriter":
        import xlsxwriter  # noqa: F401
    elif kind == "fpdf2 table()":
        import fpdf  # noqa: F401


def run_ours(export_format: str, rows: int, target: Path) -> int:
    from reportserver.domain.exports import render_queries
    from reportserver.domain.ports import DataSource
    from reportserver.domain.reports import ReportQuery
    from reportserver.render import renderer_for
    from reportserver.render.base import RenderContext
    from reportserver.sources.registry import open_source

    context = RenderContext(title="Benchmark", generated_at=datetime.now(UTC), sheet_count=1, parameters={"n": rows})
    source = open_source(DataSource(id="1", database=str(DATABASE)))  # the worker's default settings
    return render_queries(
        source,
        [ReportQuery(sheet_name="Facts", sql=SELECT)],
        {"n": rows},
        renderer_for(export_format),
        target,
        context,
        lambda _rows: None,
    )


def run_pandas(export_format: str, rows: int, target: Path) -> int:
    import pandas as pd

    with sqlite3.connect(DATABASE) as connection:
        frame = pd.read_sql(SELECT, connection, params={"n": rows})
    if export_format == "csv":
        frame.to_csv(target, index=False)
    elif export_format == "json":
        frame.to_json(target, orient="records", date_format="iso")
    elif export_format == "parquet":
        frame.to_parquet(target, index=False)
    elif export_format == "xlsx":
        frame.to_excel(target, index=False, engine="openpyxl")
    elif export_format == "html":
        frame.to_html(target, index=False)
    elif export_format == "pdf":
        _pdf_cell_by_cell(frame, target)
    return len(frame)


def _pdf_cell_by_cell(frame: Any, target: Path) -> None:
    """What a user would write with fpdf2: a cell per value, a header row per page."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="A4")
    pdf.add_font("Sans", fname=str(FONTS / "DejaVuSans.ttf"))
    pdf.set_font("Sans", size=6)
    width = (pdf.w - 20) / len(frame.columns)
    pdf.add_page()
    for row in frame.itertuples(index=False):
        if pdf.get_y() > pdf.h - 20:
            pdf.add_page()
        for value in row:
            pdf.cell(width, 4, str(value)[:30], border=0)
        pdf.ln(4)
    pdf.output(str(target))


def run_arrow(export_format: str, rows: int, target: Path) -> int:
    import adbc_driver_sqlite.dbapi
    import pyarrow.csv
    import pyarrow.parquet

    with adbc_driver_sqlite.dbapi.connect(str(DATABASE)) as connection, connection.cursor() as cursor:
        cursor.execute(SELECT.replace(":n", "?"), (rows,))
        table = cursor.fetch_arrow_table()
    if export_format == "csv":
        pyarrow.csv.write_csv(table, target)
    else:
        pyarrow.parquet.write_table(table, target)
    return table.num_rows


def run_xlsxwriter(export_format: str, rows: int, target: Path) -> int:
    import xlsxwriter

    written = 0
    # Dates and timestamps as XlsxWriter takes them, parsed by fromisoformat: Python 3.12's default
    # converters warn on every value (deprecated), about 5% of this side's time.
    sqlite3.register_converter("DATE", lambda raw: date.fromisoformat(raw.decode()))
    sqlite3.register_converter("TIMESTAMP", lambda raw: datetime.fromisoformat(raw.decode()))
    with sqlite3.connect(DATABASE, detect_types=sqlite3.PARSE_DECLTYPES) as connection:
        cursor = connection.execute(SELECT, {"n": rows})
        book = xlsxwriter.Workbook(str(target), {"constant_memory": True})
        sheet = book.add_worksheet("Facts")
        names = [d[0] for d in cursor.description]
        formats = {"day": book.add_format({"num_format": "yyyy-mm-dd"})}
        formats["at"] = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        by_column = [formats.get(name) for name in names]
        sheet.write_row(0, 0, names)
        for written, row in enumerate(cursor, start=1):
            for column, value in enumerate(row):
                sheet.write(written, column, value, by_column[column])
        book.close()
    return written


def run_fpdf_table(export_format: str, rows: int, target: Path) -> int:
    from fpdf import FPDF

    written = 0
    with sqlite3.connect(DATABASE) as connection:
        cursor = connection.execute(SELECT, {"n": rows})
        pdf = FPDF(orientation="L", format="A4")
        pdf.add_font("Sans", fname=str(FONTS / "DejaVuSans.ttf"))
        pdf.add_font("Sans", style="B", fname=str(FONTS / "DejaVuSans-Bold.ttf"))
        pdf.set_font("Sans", size=6)
        pdf.add_page()
        with pdf.table(line_height=3, text_align="LEFT", repeat_headings=1) as table:
            table.row([d[0] for d in cursor.description])
            for written, row in enumerate(cursor, start=1):  # noqa: B007
                cells = table.row()
                for value in row:
                    cells.cell("" if value is None else str(value))
        pdf.output(str(target))
    return written


RUNS = {
    "ours": run_ours,
    "pandas": run_pandas,
    "arrow": run_arrow,
    "xlsxwriter": run_xlsxwriter,
    "fpdf2 table()": run_fpdf_table,
}


class NoPandas(importlib.abc.MetaPathFinder):
    """Refuses to import pandas: as in the worker's layer, which has none."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(name)


def one(kind: str, export_format: str, rows: int) -> None:
    """The child process: one measurement, printed as JSON."""
    if kind == "ours":
        # As in the worker's layer, which has no pandas: the ADBC driver imports pandas (about 40 MB)
        # whenever it can, and it is installed here only for the other sides.
        sys.meta_path.insert(0, NoPandas())
    load(kind)
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"out.{export_format}"
        started = time.perf_counter()
        written = RUNS[kind](export_format, rows, target)
        seconds = time.perf_counter() - started
        size = target.stat().st_size
    assert written == rows, (kind, written, rows)
    figures = {"kind": kind, "format": export_format, "rows": rows, "seconds": seconds, "bytes": size}
    figures.update(rows_per_second=rows / seconds, peak_rss_mb=peak_rss_mb())
    print(json.dumps(figures))


def measure(kind: str, export_format: str, rows: int, repeats: int) -> dict[str, Any]:
    return measure_children(__file__, kind, export_format, rows, repeats)


def measure_children(
    script: str, kind: str, export_format: str, rows: int, repeats: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`script --one kind format rows` in a fresh process `repeats` times (each its own peak RSS): the
    median time, the highest peak RSS, and every run's seconds."""
    runs = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, script, "--one", kind, export_format, str(rows)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=3600,
        ).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    best = {**runs[0]}
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["rows_per_second"] = rows / best["seconds"]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["runs"] = [round(r["seconds"], 2) for r in runs]
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=TABLE_ROWS)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--small", type=int, default=100_000, help="a second size, to show RSS does not grow")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "FORMAT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], args.one[1], int(args.one[2]))
        return 0
    if not DATABASE.exists():
        print(f"building {DATABASE} ({TABLE_ROWS:,} rows x 12 columns) ...", flush=True)
        DATABASE.parent.mkdir(parents=True, exist_ok=True)
        build_table(DATABASE)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; table {DATABASE}\n")
    print(f"median of {args.repeats} run(s) each; ratio = our rows/s over the side's\n")
    print(f"{'format':<8} {'side':<14} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9} {'file':>9}  ratio")
    for export_format in args.formats.split(","):
        our_rows = min(args.rows, SIDE_ROWS.get(("ours", export_format), args.rows))
        results = [measure("ours", export_format, min(args.small, our_rows // 5), args.repeats)]
        results.append(measure("ours", export_format, our_rows, args.repeats))
        for kind in SIDES[export_format][1:]:
            rows = min(args.rows, SIDE_ROWS.get((kind, export_format), args.rows))
            results.append(measure(kind, export_format, rows, args.repeats))
        ours = results[1]
        for row in results:
            ratio = "" if row["kind"] == "ours" else f"  {ours['rows_per_second'] / row['rows_per_second']:.1f}x"
            print(
                f"{export_format:<8} {row['kind']:<14} {row['rows']:>9,} {row['seconds']:>8.2f} "
                f"{row['rows_per_second']:>10,.0f} {row['peak_rss_mb']:>7.0f}MB {row['bytes'] / 1e6:>7.1f}MB{ratio}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
