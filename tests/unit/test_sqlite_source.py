"""The SQLite source: typed values, batches, read-only access, bound values, failures without SQL text."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from reportserver.domain.errors import DataSourceFailed
from reportserver.sources.base import ColumnTypeChanged
from reportserver.sources.sqlite import SqliteSource


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE t (id INTEGER, price DECIMAL(10,2), day DATE, at TIMESTAMP, name TEXT, cents INTEGER);
            INSERT INTO t VALUES (1, '0.10', '2025-01-31', '2025-01-31 23:59:58', 'Zoë', 1999),
                                 (2, 'NaN', NULL, NULL, NULL, -5),
                                 (3, '2.20', 'not a date', '2025-02-01 00:00:00.5', 'x', 0);
        """)
    return path


def rows(source: SqliteSource, sql: str, params: dict[str, object] | None = None, batch: int = 5000) -> list[tuple]:
    with source.run(sql, params or {}, batch_size=batch) as result:
        return [row for b in result.batches for row in b]


def test_declared_types_come_back_typed(database: Path) -> None:
    found = rows(SqliteSource(str(database)), "SELECT id, price, day, at, name FROM t ORDER BY id")
    assert found[0] == (1, Decimal("0.10"), date(2025, 1, 31), datetime(2025, 1, 31, 23, 59, 58), "Zoë")
    assert found[1] == (2, None, None, None, None)
    assert found[2][2] == "not a date"


MONEY = "printf('%.2f', cents / 100.0)"


def test_cents_read_as_exact_decimals_through_a_decimal_alias(database: Path) -> None:
    found = rows(SqliteSource(str(database)), f'SELECT {MONEY} AS "amount [decimal]" FROM t ORDER BY id')
    assert found == [(Decimal("19.99"),), (Decimal("-0.05"),), (Decimal("0.00"),)]


def test_rows_arrive_in_batches_with_unique_column_names(database: Path) -> None:
    with SqliteSource(str(database)).run("SELECT id, id FROM t ORDER BY id", {}, batch_size=2) as result:
        assert result.columns == ["id", "id_2"]
        assert [len(b) for b in result.batches] == [2, 1]


def test_values_are_bound_never_pasted(database: Path) -> None:
    source = SqliteSource(str(database))
    assert rows(source, "SELECT id FROM t WHERE name = :name", {"name": "' OR 1=1 --"}) == []
    assert rows(source, "SELECT id FROM t WHERE name = :name", {"name": "Zoë"}) == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM t",
        "DROP TABLE t",
        "INSERT INTO t (id) VALUES (9)",
        "SELECT 1; DROP TABLE t",
        "SELECT * FROM missing_table",
        "SELEC oops",
    ],
)
def test_writes_and_bad_statements_fail_without_sql_in_the_message(database: Path, sql: str) -> None:
    with pytest.raises(DataSourceFailed) as raised:
        rows(SqliteSource(str(database)), sql)
    assert "t" not in raised.value.message.split("'")[1:2]  # no quoted SQL fragment
    assert "DROP" not in raised.value.message and "missing_table" not in raised.value.message
    assert rows(SqliteSource(str(database)), "SELECT count(*) FROM t") == [(3,)]


def test_a_query_over_its_time_budget_is_interrupted(database: Path) -> None:
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    with pytest.raises(DataSourceFailed, match="longer than its time limit"):
        rows(SqliteSource(str(database), query_timeout_seconds=0.2), slow)


def test_a_missing_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DataSourceFailed, match="not available"):
        rows(SqliteSource(str(tmp_path / "absent.sqlite")), "SELECT 1")


def arrow_rows(
    source: SqliteSource,
    sql: str,
    params: dict[str, object] | None = None,
    native: bool = True,
    text_columns: frozenset[str] = frozenset(),
) -> tuple[list[str], list[dict[str, object]]]:
    with source.run_arrow(sql, params or {}, native=native, text_columns=text_columns) as result:
        rows = [row for batch in result.batches for row in batch.to_pylist()]
        return [f"{f.name}:{f.type}" for f in result.schema], rows


def test_native_arrow_read_types_columns_from_tags_and_iso_text(database: Path) -> None:
    sql = f'SELECT id, {MONEY} AS "amount [decimal]", day, at, name FROM t WHERE id <> :skip ORDER BY id'
    schema, rows = arrow_rows(SqliteSource(str(database)), sql, {"skip": 3})
    assert schema == ["id:int64", "amount:decimal128(38, 2)", "day:date32[day]", "at:timestamp[us]", "name:string"]
    assert rows[0] == {
        "id": 1,
        "amount": Decimal("19.99"),
        "day": date(2025, 1, 31),
        "at": datetime(2025, 1, 31, 23, 59, 58),
        "name": "Zoë",
    }
    assert rows[1]["amount"] == Decimal("-0.05") and rows[1]["day"] is None


def test_native_arrow_read_binds_named_values_in_order_of_first_use(database: Path) -> None:
    sql = "SELECT id FROM t WHERE id >= :low AND name = :name OR id = :low + 1 ORDER BY id"
    assert arrow_rows(SqliteSource(str(database)), sql, {"name": "Zoë", "low": 1})[1] == [{"id": 1}, {"id": 2}]


def test_typed_rows_and_native_reads_give_the_same_values(database: Path) -> None:
    sql = f'SELECT id, {MONEY} AS "amount [decimal]", name FROM t ORDER BY id'
    assert (
        arrow_rows(SqliteSource(str(database)), sql)[1] == arrow_rows(SqliteSource(str(database)), sql, native=False)[1]
    )


def test_a_column_that_changes_type_is_reported_so_the_export_can_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "mixed.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE m (v)")
        connection.executemany("INSERT INTO m VALUES (?)", [(i,) for i in range(70_000)] + [("text",)])
    source = SqliteSource(str(path))
    with pytest.raises(ColumnTypeChanged):
        arrow_rows(source, "SELECT v FROM m")
    with pytest.raises(ColumnTypeChanged) as raised:
        arrow_rows(source, "SELECT v FROM m", native=False)
    assert raised.value.column == "v"
    schema, rows = arrow_rows(source, "SELECT v FROM m", native=False, text_columns=frozenset({"v"}))
    assert schema == ["v:string"] and len(rows) == 70_001 and rows[-1] == {"v": "text"} and rows[0] == {"v": "0"}


def test_native_reads_are_read_only_too(database: Path) -> None:
    with pytest.raises(DataSourceFailed):
        arrow_rows(SqliteSource(str(database)), "DELETE FROM t")
    assert rows(SqliteSource(str(database)), "SELECT count(*) FROM t") == [(3,)]
