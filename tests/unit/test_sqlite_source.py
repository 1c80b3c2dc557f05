"""The SQLite source: typed values, batches, read-only access, bound values, failures without SQL text."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from reportserver.domain.errors import DataSourceFailed
from reportserver.sources.sqlite import SqliteSource, money


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


def test_money_gives_exact_decimals_through_a_decimal_alias(database: Path) -> None:
    found = rows(SqliteSource(str(database)), 'SELECT money(cents) AS "amount [decimal]" FROM t ORDER BY id')
    assert found == [(Decimal("19.99"),), (Decimal("-0.05"),), (Decimal("0.00"),)]
    assert money(None) is None


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
