"""The SQLite source: declared types, batches, read-only access, bound values, failures without SQL text."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from reportserver.domain.errors import DataSourceFailed, InvalidParameter, ValueDoesNotFit
from reportserver.domain.ports import ReadAgain, ReadPlan
from reportserver.domain.values import Column, ColumnType
from reportserver.sources.sqlite import SqliteSource

QUERY_FAILED = "The report's query failed on its data source"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE t (id INTEGER, price DECIMAL(10,2), day DATE, at TIMESTAMP, name TEXT, cents INTEGER,
                            flag BOOLEAN);
            INSERT INTO t VALUES (1, '0.10', '2025-01-31', '2025-01-31 23:59:58', 'Zoë', 1999, 1),
                                 (2, NULL, NULL, NULL, NULL, -5, 0),
                                 (3, '2.20', '2025-02-01', '2025-02-01 00:00:00.5', 'x', 0, NULL);
        """)
    return path


def rows(source: SqliteSource, sql: str, params: dict[str, object] | None = None, batch: int = 5000) -> list[tuple]:
    with source.run(sql, params or {}, batch_size=batch) as result:
        return [row for b in result.batches for row in b]


def test_declared_types_come_back_typed(database: Path) -> None:
    found = rows(SqliteSource(str(database)), "SELECT id, price, day, at, name, flag FROM t ORDER BY id")
    assert found[0] == (1, Decimal("0.1"), date(2025, 1, 31), datetime(2025, 1, 31, 23, 59, 58), "Zoë", True)
    assert found[1] == (2, None, None, None, None, False)
    assert found[2][3] == datetime(2025, 2, 1, 0, 0, 0, 500_000)


def test_the_source_describes_columns_from_tags_and_declared_types_before_any_row(database: Path) -> None:
    columns = SqliteSource(str(database)).describe(
        'SELECT id, price, day, name, cents AS "amount [decimal(2)]", name || day AS mixed, flag FROM t'
    )
    assert columns == [
        Column("id", ColumnType.INTEGER),
        Column("price", ColumnType.DECIMAL, 2),
        Column("day", ColumnType.DATE),
        Column("name", ColumnType.TEXT),
        Column("amount", ColumnType.DECIMAL, 2),
        Column("mixed", None),
        Column("flag", ColumnType.BOOLEAN),
    ]


MONEY = "printf('%.2f', cents / 100.0)"


def test_cents_read_as_exact_decimals_through_a_decimal_alias(database: Path) -> None:
    found = rows(SqliteSource(str(database)), f'SELECT {MONEY} AS "amount [decimal]" FROM t ORDER BY id')
    assert found == [(Decimal("19.99"),), (Decimal("-0.05"),), (Decimal("0.00"),)]


def test_rows_arrive_in_batches_with_unique_column_names(database: Path) -> None:
    with SqliteSource(str(database)).run("SELECT id, id FROM t ORDER BY id", {}, batch_size=2) as result:
        assert result.names == ["id", "id_2"]
        assert [len(b) for b in result.batches] == [2, 1]


def test_values_are_bound_never_pasted(database: Path) -> None:
    source = SqliteSource(str(database))
    assert rows(source, "SELECT id FROM t WHERE name = :name", {"name": "' OR 1=1 --"}) == []
    assert rows(source, "SELECT id FROM t WHERE name = :name", {"name": "Zoë"}) == [(1,)]


def test_number_parameters_compare_as_numbers_with_computed_numbers(database: Path) -> None:
    # Found: the value was bound as text, and SQLite's text never compares <= a computed number.
    source = SqliteSource(str(database))
    sql = "SELECT id FROM t WHERE cents / 100.0 >= :min ORDER BY id"
    assert rows(source, sql, {"min": Decimal("10")}) == [(1,)]
    assert rows(source, sql, {"min": Decimal("-0.05")}) == [(1,), (2,), (3,)]
    assert rows(source, sql, {"min": Decimal("19.991")}) == []


def test_a_number_sqlite_cannot_compare_exactly_is_refused_not_rounded(database: Path) -> None:
    with pytest.raises(InvalidParameter) as raised:
        rows(
            SqliteSource(str(database)),
            "SELECT id FROM t WHERE cents >= :min",
            {"min": Decimal("0.12345678901234567891")},
        )
    assert raised.value.parameter == "min" and "more digits" in raised.value.message


def test_binding_by_position_survives_quoted_identifiers_comments_and_literals(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute('CREATE TABLE "odd:table" ("a:b" INTEGER, [c:d] TEXT, `e:f` TEXT)')
        connection.execute("INSERT INTO \"odd:table\" VALUES (1, 'x', 'y'), (2, ':z', 'w')")
    sql = """SELECT "a:b", [c:d] -- :comment
             FROM "odd:table" /* :block */ WHERE `e:f` <> ':literal' AND "a:b" >= :low AND [c:d] <> :skip"""
    source = SqliteSource(str(path))
    assert rows(source, sql, {"low": 1, "skip": "x"}) == [(2, ":z")]
    with source.run_arrow(sql, {"low": 1, "skip": "x"}) as result:
        assert [r for b in result.batches for r in b.to_pylist()] == [{"a:b": 2, "c:d": ":z"}]


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
    assert raised.value.message == QUERY_FAILED
    assert rows(SqliteSource(str(database)), "SELECT count(*) FROM t") == [(3,)]


SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


def test_a_query_over_its_time_limit_is_interrupted(database: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DataSourceFailed, match="longer than its time limit"):
        rows(SqliteSource(str(database), query_timeout_seconds=0.2), SLOW)
    assert time.monotonic() - started < 2


def test_a_native_read_over_its_time_limit_fails_at_the_limit(database: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DataSourceFailed, match="longer than its time limit"):
        arrow_rows(
            SqliteSource(str(database), query_timeout_seconds=0.3), SLOW.replace("FROM n", "FROM n LIMIT 30000000")
        )
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("native", [True, False])
def test_time_spent_rendering_between_batches_is_not_the_querys(tmp_path: Path, native: bool) -> None:
    path = tmp_path / "many.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE n (i INTEGER)")
        connection.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(50_000)])
    source = SqliteSource(str(path), query_timeout_seconds=0.5)
    seen = 0
    with source.run_arrow("SELECT i FROM n ORDER BY i", {}, ReadPlan(native=native)) as result:
        for batch in result.batches:
            seen += batch.num_rows
            time.sleep(0.25)  # a slow renderer: four batches take a second, twice the query's limit
    assert seen == 50_000


def test_a_missing_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DataSourceFailed, match="not available"):
        rows(SqliteSource(str(tmp_path / "absent.sqlite")), "SELECT 1")


def arrow_rows(
    source: SqliteSource, sql: str, params: dict[str, object] | None = None, native: bool = True
) -> tuple[list[str], list[dict[str, Any]]]:
    with source.run_arrow(sql, params or {}, ReadPlan(native=native)) as result:
        found = [row for batch in result.batches for row in batch.to_pylist()]
        return [f"{f.name}:{f.type}" for f in result.schema], found


def test_native_arrow_read_types_columns_from_tags_and_declared_types(database: Path) -> None:
    sql = f'SELECT id, {MONEY} AS "amount [decimal]", day, at, name, flag FROM t WHERE id <> :skip ORDER BY id'
    schema, found = arrow_rows(SqliteSource(str(database)), sql, {"skip": 3})
    assert schema == [
        "id:int64",
        "amount:decimal128(38, 2)",
        "day:date32[day]",
        "at:timestamp[us]",
        "name:string",
        "flag:bool",
    ]
    assert found[0] == {
        "id": 1,
        "amount": Decimal("19.99"),
        "day": date(2025, 1, 31),
        "at": datetime(2025, 1, 31, 23, 59, 58),
        "name": "Zoë",
        "flag": True,
    }
    assert found[1]["amount"] == Decimal("-0.05") and found[1]["day"] is None and found[1]["flag"] is False


@pytest.mark.parametrize("native", [True, False])
def test_text_that_looks_like_a_date_stays_text_unless_declared(database: Path, native: bool) -> None:
    # Found: any text column whose first batch looked like ISO dates was typed as a date.
    schema, found = arrow_rows(
        SqliteSource(str(database)), "SELECT '2025-02-30' AS code, '0000-00-00' AS other", native=native
    )
    assert schema == ["code:string", "other:string"] and found == [{"code": "2025-02-30", "other": "0000-00-00"}]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("bad", ["0000-00-00", "2025-02-30", "not a date", "2025-01-31 10:00:00"])
def test_a_value_that_does_not_fit_its_declared_date_fails_naming_column_and_row(
    tmp_path: Path, native: bool, bad: str
) -> None:
    path = tmp_path / "d.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE d (id INTEGER, day DATE)")
        connection.executemany("INSERT INTO d VALUES (?, ?)", [(i, "2025-01-01") for i in range(1, 20_000)])
        connection.execute("INSERT INTO d VALUES (20000, ?)", (bad,))
    with pytest.raises(ValueDoesNotFit) as raised:
        arrow_rows(SqliteSource(str(path)), "SELECT id, day FROM d ORDER BY id", native=native)
    assert raised.value.column == "day" and raised.value.row == 20_000
    assert raised.value.message.startswith(f"Column 'day', row 20000: {bad!r} is not a date")


@pytest.mark.parametrize("native", [True, False])
def test_a_later_decimal_with_more_places_is_never_rounded(tmp_path: Path, native: bool) -> None:
    # Found: the scale came from the first batch, and 1.239 after 20,000 rows of 1.10 exported as 1.24.
    path = tmp_path / "dec.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE m (id INTEGER, v TEXT)")
        connection.executemany("INSERT INTO m VALUES (?, '1.10')", [(i,) for i in range(20_000)])
        connection.execute("INSERT INTO m VALUES (20000, '1.239')")
    source = SqliteSource(str(path))
    sql = 'SELECT v AS "v [decimal]" FROM m ORDER BY id'
    with pytest.raises(ReadAgain) as again:
        arrow_rows(source, sql, native=native)
    assert again.value.plan.overrides == {"v": (ColumnType.DECIMAL, 3)}
    with source.run_arrow(sql, {}, again.value.plan) as result:
        values = [v for batch in result.batches for v in batch.column(0).to_pylist()]
        assert str(result.schema.field(0).type) == "decimal128(38, 3)"
    assert values[-1] == Decimal("1.239") and values[0] == Decimal("1.10") and len(values) == 20_001


@pytest.mark.parametrize("native", [True, False])
def test_a_decimal_over_its_declared_scale_fails_naming_the_row(tmp_path: Path, native: bool) -> None:
    path = tmp_path / "dec.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE m (id INTEGER, v TEXT)")
        connection.executemany("INSERT INTO m VALUES (?, ?)", [(1, "1.10"), (2, "1.239")])
    with pytest.raises(ValueDoesNotFit) as raised:
        arrow_rows(SqliteSource(str(path)), 'SELECT v AS "v [decimal(2)]" FROM m ORDER BY id', native=native)
    assert raised.value.message == "Column 'v', row 2: '1.239' is not a decimal with at most 2 decimal places"


@pytest.mark.parametrize("native", [True, False])
def test_timezone_aware_timestamps_keep_their_instant_in_utc(database: Path, native: bool) -> None:
    # Found: '+10:00' times were shifted to UTC and then written as if they had no zone.
    sql = "SELECT '2025-01-01 10:00:00+10:00' AS \"at [timestamptz]\", '2025-01-01 10:00:00' AS \"naive [timestamptz]\""
    schema, found = arrow_rows(SqliteSource(str(database)), sql, native=native)
    assert schema == ["at:timestamp[us, tz=UTC]", "naive:timestamp[us, tz=UTC]"]
    assert found == [{"at": datetime(2025, 1, 1, tzinfo=UTC), "naive": datetime(2025, 1, 1, 10, tzinfo=UTC)}]


@pytest.mark.parametrize("native", [True, False])
def test_an_offset_in_a_timestamp_without_zone_does_not_fit(database: Path, native: bool) -> None:
    with pytest.raises(ValueDoesNotFit, match="is not a timestamp"):
        arrow_rows(
            SqliteSource(str(database)), "SELECT '2025-01-01 10:00:00+10:00' AS \"at [timestamp]\"", native=native
        )


def test_typed_rows_and_native_reads_give_the_same_values(database: Path) -> None:
    sql = f'SELECT id, price, {MONEY} AS "amount [decimal]", day, at, name, flag FROM t ORDER BY id'
    source = SqliteSource(str(database))
    assert arrow_rows(source, sql) == arrow_rows(source, sql, native=False)


def test_a_column_that_changes_type_asks_for_a_read_that_holds_every_value(tmp_path: Path) -> None:
    path = tmp_path / "mixed.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE m (v)")
        connection.executemany("INSERT INTO m VALUES (?)", [(i,) for i in range(70_000)] + [("text",)])
    source = SqliteSource(str(path))
    with pytest.raises(ReadAgain) as native:
        arrow_rows(source, "SELECT v FROM m")
    assert native.value.plan == ReadPlan(native=False)
    with pytest.raises(ReadAgain) as rows_read:
        arrow_rows(source, "SELECT v FROM m", native=False)
    assert rows_read.value.plan.overrides == {"v": (ColumnType.TEXT, None)}
    with source.run_arrow("SELECT v FROM m", {}, rows_read.value.plan) as result:
        found = [r for b in result.batches for r in b.to_pylist()]
        assert str(result.schema.field(0).type) == "string"
    assert len(found) == 70_001 and found[-1] == {"v": "text"} and found[0] == {"v": "0"}


def test_native_reads_are_read_only_too(database: Path) -> None:
    with pytest.raises(DataSourceFailed):
        arrow_rows(SqliteSource(str(database)), "DELETE FROM t")
    assert rows(SqliteSource(str(database)), "SELECT count(*) FROM t") == [(3,)]


@pytest.mark.parametrize("native", [True, False])
def test_a_decimal_column_that_cannot_hold_both_values_exactly_is_refused_not_wrapped(
    tmp_path: Path, native: bool
) -> None:
    # Found by the property test: pyarrow's text-to-decimal cast wraps a value whose whole digits and
    # the column's places pass 38 digits into another number (10617743837959886305905 -> 0.1211...).
    path = tmp_path / "wide.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE w (id INTEGER, v TEXT)")
        connection.executemany("INSERT INTO w VALUES (?, ?)", [(1, "10617743837959886305905"), (2, "9.99E-24")])
    with pytest.raises(ValueDoesNotFit) as raised:
        arrow_rows(SqliteSource(str(path)), 'SELECT v AS "v [decimal]" FROM w ORDER BY id', native=native)
    assert raised.value.column == "v" and raised.value.row == 1


@pytest.mark.parametrize(
    ("names", "unique"),
    [
        (["id", "id"], ["id", "id_2"]),
        (["a", "a", "a_2"], ["a", "a_3", "a_2"]),  # found: a, a_2, a_2, and the report call answered 500
        (["a_2", "a", "a"], ["a_2", "a", "a_3"]),
        (["x", "x", "x"], ["x", "x_2", "x_3"]),
    ],
)
def test_result_column_names_are_made_unique_without_colliding(names: list[str], unique: list[str]) -> None:
    from reportserver.domain.ports import unique_names

    assert unique_names(names) == unique
    assert len(set(unique_names(names))) == len(names)


def test_a_number_with_more_digits_than_28_is_refused_not_rounded_to_fit(database: Path) -> None:
    # Found: normalize() rounded 1.00000000000000000000000000001 to 1 in Decimal's 28-digit context.
    source = SqliteSource(str(database))
    with pytest.raises(InvalidParameter, match="more digits than this data source compares exactly"):
        rows(source, "SELECT :v", {"v": Decimal("1.00000000000000000000000000001")})
