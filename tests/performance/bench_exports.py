"""Benchmark: exports of 1,000,000 rows x 12 columns per format, against the naive pandas way.

    make bench-exports     (or: python tests/performance/bench_exports.py [--rows N] [--formats csv,xlsx])

Each measurement runs in a fresh process, so its peak RSS is its own; "ours" runs without pandas,
as the worker's layer does. "ours" is the worker's path
without S3 and DynamoDB: the SQLite source streams typed rows in batches into the format's renderer,
which writes the file. "pandas" is what a user would write: `pandas.read_sql` then `to_csv`,
`to_excel` (openpyxl), `to_json(orient="records")`, `to_parquet` or `to_html`. Both read the same
table from the same file; end-to-end seconds include the read. The naive xlsx and html runs use fewer
rows (they are slow); the comparison is by rows per second.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
DATABASE = ROOT / ".local" / "bench-1m.sqlite"
TABLE_ROWS = 1_000_000
FORMATS = ("csv", "json", "parquet", "xlsx", "html", "pdf")
NAIVE_ROWS = {"xlsx": 50_000, "html": 100_000, "pdf": 10_000}
OUR_MAX_ROWS = {"pdf": 100_000}  # PDFs are capped (MAX_PDF_ROWS); 100k is the yardstick
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


def run_ours(export_format: str, rows: int, target: Path) -> dict[str, Any]:
    from reportserver.domain.exports import render_queries
    from reportserver.domain.reports import ReportQuery
    from reportserver.render import renderer_for
    from reportserver.render.base import RenderContext
    from reportserver.sources.sqlite import SqliteSource

    renderer = renderer_for(export_format)
    import adbc_driver_sqlite.dbapi  # noqa: F401 - loaded before the clock, as pandas is for its side
    import pyarrow  # noqa: F401

    started = time.perf_counter()
    context = RenderContext(title="Benchmark", generated_at=datetime.now(UTC), sheet_count=1, parameters={"n": rows})
    source = SqliteSource(str(DATABASE), query_timeout_seconds=900)
    written = render_queries(
        source,
        [ReportQuery(sheet_name="Facts", sql=SELECT)],
        {"n": rows},
        renderer,
        target,
        context,
        lambda _rows: None,
    )
    seconds = time.perf_counter() - started
    assert written == rows, (written, rows)
    return {"seconds": seconds, "bytes": target.stat().st_size}


def run_pandas(export_format: str, rows: int, target: Path) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
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
        _naive_pdf(frame, target)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": target.stat().st_size}


def _naive_pdf(frame: Any, target: Path) -> None:
    """What a user would write with fpdf2: a cell per value, a header row per page."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="A4")
    pdf.add_font("Sans", fname=str(ROOT / "shared/reportserver/render/fonts/DejaVuSans.ttf"))
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


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(name)


def one(kind: str, export_format: str, rows: int) -> None:
    """The child process: one measurement, printed as JSON."""
    if kind == "ours":
        # As in the worker's layer, which has no pandas: the ADBC driver imports pandas (about 40 MB)
        # whenever it can, and it is installed here only for the naive side.
        sys.meta_path.insert(0, _NoPandas())
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"out.{export_format}"
        figures = (run_ours if kind == "ours" else run_pandas)(export_format, rows, target)
    figures.update(
        kind=kind, format=export_format, rows=rows, rows_per_second=rows / figures["seconds"], peak_rss_mb=peak_rss_mb()
    )
    print(json.dumps(figures))


def measure(kind: str, export_format: str, rows: int, repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, __file__, "--one", kind, export_format, str(rows)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=3600,
        ).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    best = {**runs[0]}
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["rows_per_second"] = rows / best["seconds"]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
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
    print(f"{'format':<8} {'side':<7} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9} {'file':>9}  ratio")
    for export_format in args.formats.split(","):
        our_rows = min(args.rows, OUR_MAX_ROWS.get(export_format, args.rows))
        small = measure("ours", export_format, min(args.small, our_rows // 5), args.repeats)
        ours = measure("ours", export_format, our_rows, args.repeats)
        naive_rows = min(args.rows, NAIVE_ROWS.get(export_format, args.rows))
        naive = measure("pandas", export_format, naive_rows, args.repeats)
        ratio = ours["rows_per_second"] / naive["rows_per_second"]
        for row in (small, ours, naive):
            print(
                f"{export_format:<8} {row['kind']:<7} {row['rows']:>9,} {row['seconds']:>8.2f} "
                f"{row['rows_per_second']:>10,.0f} {row['peak_rss_mb']:>7.0f}MB {row['bytes'] / 1e6:>7.1f}MB"
                + (f"  {ratio:.1f}x" if row is ours else ""),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
