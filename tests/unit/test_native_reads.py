"""The native (ADBC) read and the row read agree, or both refuse, on the values a review found them
to differ on; and an export that stops early never crashes the process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from reportserver.domain.errors import ValueDoesNotFit
from reportserver.domain.exports import render_queries
from reportserver.domain.ports import ReadPlan
from reportserver.domain.reports import ReportQuery
from reportserver.render import renderer_for
from reportserver.render.base import RenderContext
from reportserver.sources.sqlite import SqliteSource

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = RenderContext(title="Native", generated_at=datetime(2026, 12, 1, tzinfo=UTC))
FIRST_BATCH = 20_000  # past the driver's first batch (16,384 rows), where it fixed each column's type


def _table(tmp_path: Path, values: list[Any], kind: str = "") -> SqliteSource:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE t (id INTEGER, v {kind})")
        connection.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return SqliteSource(str(path))


def _export(source: SqliteSource, sql: str, tmp_path: Path, native: bool, fmt: str = "csv") -> bytes:
    target = tmp_path / f"out-{native}.{fmt}"
    plan_source = source if native else _RowsOnly(source)
    render_queries(plan_source, [ReportQuery(sql=sql, sheet_name="S")], {}, renderer_for(fmt), target, CONTEXT, print)
    return target.read_bytes()


class _RowsOnly:
    """The same source, read through typed rows only (the fallback path)."""

    def __init__(self, inner: SqliteSource) -> None:
        self._inner = inner

    def run_arrow(self, sql: str, params: Any, plan: ReadPlan | None = None) -> Any:
        plan = plan or ReadPlan()
        return self._inner.run_arrow(sql, params, ReadPlan(native=False, overrides=plan.overrides))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _both(source: SqliteSource, sql: str, tmp_path: Path, fmt: str = "csv") -> bytes:
    native, rows = _export(source, sql, tmp_path, True, fmt), _export(source, sql, tmp_path, False, fmt)
    assert native == rows
    return native


def test_decimals_written_with_a_plus_exponent_are_read_not_crashed_on(tmp_path: Path) -> None:
    # Found: doubles of 1e10 and more are '1e+10' in Arrow's text, and '+10' failed an int64 parse.
    source = _table(tmp_path, [6_000_000_000.25, 6_000_000_000.5], "DECIMAL(14,2)")
    assert b"12000000000.75" in _both(source, 'SELECT SUM(v) AS "total [decimal]" FROM t', tmp_path)
    text = _both(source, "SELECT '1e+5' AS \"v [decimal]\"", tmp_path)
    assert text.splitlines()[-1] == b"100000"


def test_whole_doubles_in_a_decimal_column_are_written_alike_on_both_paths(tmp_path: Path) -> None:
    # Found: the rows wrote 20.0 and 1.0,100.0 where the native read wrote 20 and 1,100.
    source = _table(tmp_path, [1.0, 100.0, 19.0], "REAL")
    assert _both(source, 'SELECT v AS "v [decimal]" FROM t ORDER BY id', tmp_path).splitlines()[1:] == [
        b"1",
        b"100",
        b"19",
    ]


def test_bytes_after_the_first_batch_of_text_are_written_as_binary_never_raw(tmp_path: Path) -> None:
    # Found: the native read put raw bytes into a text column, and xlsx and json files did not open.
    source = _table(tmp_path, ["x"] * FIRST_BATCH + [b"\xff\xfe\x00<"])
    assert _both(source, "SELECT v FROM t ORDER BY id", tmp_path).splitlines()[-1] == b'"//4APA=="'


def test_text_that_is_not_utf8_fails_naming_its_row_on_the_native_path(tmp_path: Path) -> None:
    source = _table(tmp_path, ["x", "y"])
    sql = "SELECT CASE id WHEN 1 THEN CAST(x'ff41' AS TEXT) ELSE v END AS \"v [text]\" FROM t ORDER BY id"
    with pytest.raises(ValueDoesNotFit) as refused:
        _export(source, sql, tmp_path, True)
    assert refused.value.message.startswith("Column 'v', row 2:")


def test_a_big_integer_after_the_first_batch_of_reals_is_never_rounded(tmp_path: Path) -> None:
    # Found: the driver turned 2^60 + 1 into a double (1.152921504606847e+18) in a column it typed REAL.
    source = _table(tmp_path, [0.5] * FIRST_BATCH + [2**60 + 1])
    for native in (True, False):
        with pytest.raises(ValueDoesNotFit) as refused:
            _export(source, "SELECT v FROM t ORDER BY id", tmp_path, native)
        assert refused.value.message.startswith(f"Column 'v', row {FIRST_BATCH + 1}: 1152921504606846977")


def test_many_decimals_widening_together_take_one_read_more(tmp_path: Path) -> None:
    # Found: each column widened in its own read: 17 such columns failed ("kept changing type").
    names = [f"c{i}" for i in range(17)]
    path = tmp_path / "wide.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE w (id INTEGER, {', '.join(f'{n} TEXT' for n in names)})")
        rows = [(i, *(["1.5"] * 17)) for i in range(FIRST_BATCH)] + [(FIRST_BATCH, *(["1.25"] * 17))]
        connection.executemany(f"INSERT INTO w VALUES ({', '.join('?' * 18)})", rows)
    sql = "SELECT " + ", ".join(f'{n} AS "{n} [decimal]"' for n in names) + " FROM w ORDER BY id"
    text = _both(SqliteSource(str(path)), sql, tmp_path)
    assert text.splitlines()[-1] == b",".join([b"1.25"] * 17)


@pytest.mark.parametrize(
    ("value", "tag", "expected"),
    [
        ("+5", "integer", b"5"),
        ("2025-01-01", "timestamptz", b'"2025-01-01 00:00:00Z"'),
    ],
)
def test_edge_values_read_alike_on_both_paths(tmp_path: Path, value: str, tag: str, expected: bytes) -> None:
    source = _table(tmp_path, [value], "TEXT")
    assert _both(source, f'SELECT v AS "v [{tag}]" FROM t', tmp_path).splitlines()[-1] == expected


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("\u0661\u0662\u0663", "integer"),  # Arabic-Indic digits: Python's \d took them, and the rows read 123
        ("\uff11\uff12\uff13", "decimal"),  # fullwidth digits
        ("9999-12-31T23:00:00-05:00", "timestamptz"),  # year 10000 in UTC
    ],
)
def test_values_outside_the_contract_are_refused_on_both_paths(tmp_path: Path, value: str, tag: str) -> None:
    source = _table(tmp_path, [value], "TEXT")
    for native in (True, False):
        with pytest.raises(ValueDoesNotFit):
            _export(source, f'SELECT v AS "v [{tag}]" FROM t', tmp_path, native)


def test_an_export_stopped_mid_read_does_not_crash_the_process(tmp_path: Path) -> None:
    # Found: a renderer that stopped early closed the connection under the read-ahead thread: SIGSEGV.
    script = textwrap.dedent(f"""
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "shared")!r}]
        from reportserver.domain.errors import OutOfTime
        from reportserver.domain.exports import render_queries
        from reportserver.domain.reports import ReportQuery
        from reportserver.render import renderer_for
        from reportserver.render.base import RenderContext
        from reportserver.sources.sqlite import SqliteSource
        import sqlite3
        sqlite3.connect({str(tmp_path / "e.sqlite")!r}).close()
        sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c"
        def progress(rows):
            if rows > 20000:
                raise OutOfTime("stop")
        context = RenderContext(title="t", generated_at=datetime.now(UTC))
        for attempt in range(3):
            try:
                render_queries(SqliteSource({str(tmp_path / "e.sqlite")!r}), [ReportQuery(sql=sql, sheet_name="S")],
                               {{}}, renderer_for("csv"), Path({str(tmp_path / "o.csv")!r}), context, progress)
            except OutOfTime:
                print("stopped", attempt)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["stopped", "0", "stopped", "1", "stopped", "2"]
