"""Where the CPU of a 1M-row PostgreSQL export to Parquet goes: ours, the ADBC read alone, and DuckDB's COPY.

    python tests/performance/bench_postgres_cpu.py [--repeats 5]

Uses the table `make bench-postgres` builds in `.local/bench-pg` (run that once first). In one process,
alternating the sides, each run's wall time, this process's CPU time (user + system, all its threads)
and the whole machine's busy CPU time (from /proc/stat: the server's backends too); medians. On a
machine with few cores an export is bound by the sum of the client's and the server's CPU, not by the
wall time of any one step.

- **ours**: the worker's path (`bench_postgres_exports.run_ours`) writing Parquet.
- **adbc read**: ADBC's `fetch_record_batch` of the statement ours sends (numeric(p, s) as whole units),
  the batches counted and dropped: the driver's decoding and the server's COPY, nothing of ours.
- **duckdb COPY**: `COPY (SELECT * FROM pg.public.facts) TO ... (FORMAT parquet)` on 1 thread and on all.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from infra.local.postgres import LocalPostgres  # noqa: E402
from tests.performance import bench_postgres_exports as exports  # noqa: E402

UNITS = (
    "SELECT id, customer_id, quantity, ratio, (price * 100)::int8 AS price, (total * 100)::int8 AS total, code, "
    "description, day, at, created_at, paid FROM facts WHERE id <= 1000000"
)


def machine_cpu() -> float:
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def measured(run: Callable[[], object]) -> tuple[float, float, float]:
    machine, own, started = machine_cpu(), time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - started, time.process_time() - own, machine_cpu() - machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import adbc_driver_postgresql.dbapi as adbc
    import duckdb

    with LocalPostgres(exports.FOLDER) as local, tempfile.TemporaryDirectory() as scratch:
        pg = local.connection
        os.environ[exports.CONNECTION_ENV] = json.dumps(pg.as_dict())
        exports.ensure_table(pg)
        exports.warm_table(pg)
        exports.load("ours")
        uri = f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}?sslmode=disable"
        extension = exports.duckdb_extension()
        target = Path(scratch) / "out.parquet"

        def ours() -> None:
            assert exports.run_ours("parquet", 1_000_000, target) == 1_000_000

        def adbc_read() -> None:
            with adbc.connect(uri) as connection, connection.cursor() as cursor:
                cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(2 * 1024 * 1024)})
                cursor.execute(UNITS)
                assert sum(batch.num_rows for batch in cursor.fetch_record_batch()) == 1_000_000

        def duck(threads: int) -> Callable[[], None]:
            def run() -> None:
                connection = duckdb.connect()
                connection.execute(f"LOAD '{extension}'")
                connection.execute(f"SET threads = {threads}")
                connection.execute(f"ATTACH '{pg.conninfo()}' AS pg (TYPE postgres, READ_ONLY)")
                connection.execute(
                    f"COPY (SELECT * FROM pg.public.facts WHERE id <= 1000000) TO '{target}' (FORMAT parquet)"
                )
                connection.close()

            return run

        sides = {
            "ours": ours,
            "adbc read": adbc_read,
            "duckdb COPY, 1 thread": duck(1),
            f"duckdb COPY, {os.cpu_count()} threads": duck(os.cpu_count() or 1),
        }
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
        for run in sides.values():
            run()  # once before the clock: connections, caches
        for _ in range(args.repeats):
            for name, run in sides.items():
                figures[name].append(measured(run))
    print(f"1,000,000 rows x 12 columns to Parquet; medians of {args.repeats}; {os.cpu_count()} cores\n")
    print(f"{'side':<24} {'wall s':>7} {'own CPU s':>10} {'machine CPU s':>14}")
    for name, runs in figures.items():
        wall, own, machine = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{name:<24} {wall:>7.2f} {own:>10.2f} {machine:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
