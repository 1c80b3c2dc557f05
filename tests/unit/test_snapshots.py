"""Data models' snapshots: the rows a refresh keeps read back as the live database gave them, through the
SQLite source's row path (calls) and its Arrow path (exports); what cannot be kept exactly is refused,
never kept changed; what a model may mark; and how a refresh is shown to whoever follows it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.errors import InvalidDefinition, InvalidParameter, ResultTooLarge, ValueDoesNotFit
from reportserver.domain.ports import CustomQuery, DataSource, QueryParameter, ReadAgain, ReadPlan, Row
from reportserver.domain.refreshes import Refresh, RefreshStatus
from reportserver.domain.snapshots import check_marks, column_difference, keeps_snapshot, kept_queries
from reportserver.domain.values import INT64_MAX, INT64_MIN, Column, ColumnType
from reportserver.sources.snapshot import SqliteSnapshot
from reportserver.sources.sqlite import SqliteSource

T = ColumnType
# The columns a live source gives (PostgreSQL's numeric(12,2), a plain numeric, ...), and values of each.
COLUMNS = [
    Column("money", T.DECIMAL, 2),
    Column("rate", T.DECIMAL),  # plain: every value with three places
    Column("mixed", T.DECIMAL),  # plain: values with their own places
    Column("name", T.TEXT),
    Column("day", T.DATE),
    Column("at", T.TIMESTAMP),
    Column("instant", T.TIMESTAMPTZ),
    Column("flag", T.BOOLEAN),
    Column("count", T.INTEGER),
    Column("ratio", T.FLOAT),
    Column("blob", T.BINARY),
]
_MOMENTS = {"min_value": datetime(2, 1, 1), "max_value": datetime(9998, 12, 31, 23, 59, 59, 999999)}
_OFFSETS = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59))
VALUES = [
    st.decimals(places=2, min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False),
    st.decimals(places=3, min_value=-(10**11), max_value=10**11, allow_nan=False, allow_infinity=False),
    st.integers(0, 6).flatmap(
        lambda places: st.decimals(places=places, min_value=-(10**8), max_value=10**8, allow_nan=False)
    ),
    st.text(),
    st.dates(),
    st.datetimes(**_MOMENTS),
    st.datetimes(**_MOMENTS, timezones=_OFFSETS),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False),
    st.binary(max_size=64),
]
ROWS = st.lists(st.tuples(*(st.none() | values for values in VALUES)), max_size=40)


def _kept(tmp: Path, columns: list[Column], rows: list[Row], name: str = "kept") -> Path:
    path = tmp / f"{name}.sqlite"
    snapshot = SqliteSnapshot(path, 10**8)
    try:
        snapshot.add_table(name, columns, iter([rows[:7], rows[7:]]))
        snapshot.finish()
    except BaseException:
        snapshot.discard()
        raise
    return path


def _called(path: Path, table: str = "kept") -> list[Row]:
    with SqliteSource(str(path)).run(f'SELECT * FROM "{table}"', {}, batch_size=13) as result:
        return [row for batch in result.batches for row in batch]


def _exported(path: Path, table: str = "kept") -> list[Row]:
    """The rows as an export reads them (Arrow), read again as the export worker does when asked."""
    plan = ReadPlan()
    for _ in range(5):
        try:
            with SqliteSource(str(path)).run_arrow(f'SELECT * FROM "{table}"', {}, plan) as result:
                return [tuple(r.values()) for batch in result.batches for r in batch.to_pylist()]
        except ReadAgain as again:
            plan = again.plan
    raise AssertionError("read again too many times")


def _written(value: Any) -> Any:
    """A value as its column's files and JSON write it: decimals with their places, instants in UTC."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


@given(rows=ROWS)
def test_every_kept_value_reads_back_as_the_live_database_gave_it(tmp_path_factory: Any, rows: list[Row]) -> None:
    # Given rows of every contract type, NULLs in any column, kept in a snapshot
    path = _kept(tmp_path_factory.mktemp("kept"), COLUMNS, rows)
    # When a call reads them back
    called = _called(path)
    # Then each value is the same: equal, and decimals with the same places where the column has one number
    # of places (money's declared two; rate's three, as every value has them)
    assert called == [tuple(row) for row in rows]
    for back, given_row in zip(called, rows, strict=True):
        for index in (0, 1):
            assert _written(back[index]) == _written(given_row[index])
    # ... and an export reads the very same values
    assert _exported(path) == called


_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: len(d.as_tuple().digits) <= 38)


@given(value=_DECIMALS)
def test_a_decimal_is_kept_exactly_or_refused_never_changed(tmp_path_factory: Any, value: Decimal) -> None:
    column = Column("amount", T.DECIMAL)
    tmp = tmp_path_factory.mktemp("decimal")
    try:
        path = _kept(tmp, [column], [(value,)])
    except ValueDoesNotFit as refused:
        assert refused.column == "amount" and refused.row == 1 and "exactly" in refused.message
        return
    ((back,),) = _called(path)
    assert back == value


def test_a_nan_is_refused_where_sqlite_would_keep_a_null(tmp_path: Path) -> None:
    with pytest.raises(ValueDoesNotFit, match="Column 'ratio', row 2"):
        _kept(tmp_path, [Column("ratio", T.FLOAT)], [(1.5,), (float("nan"),)])


def test_a_plain_decimal_column_keeps_its_values_places_when_they_all_have_the_same(tmp_path: Path) -> None:
    column = Column("rate", T.DECIMAL)
    same = _called(_kept(tmp_path, [column], [(Decimal("1.50"),), (None,), (Decimal("-2.00"),)], "same"), "same")
    assert [str(v) for (v,) in same if v is not None] == ["1.50", "-2.00"]
    mixed = _called(_kept(tmp_path, [column], [(Decimal("1.50"),), (Decimal("2.125"),)], "mixed"), "mixed")
    assert mixed == [(Decimal("1.5"),), (Decimal("2.125"),)]  # equal values; the places are the values' own


def test_sql_compares_kept_decimals_dates_and_times_as_the_live_database_does(tmp_path: Path) -> None:
    columns = [Column("amount", T.DECIMAL, 2), Column("day", T.DATE), Column("at", T.TIMESTAMP)]
    rows = [
        (Decimal("10.00"), date(2025, 1, 9), datetime(2025, 1, 9, 9, 0)),
        (Decimal("9.50"), date(2025, 1, 10), datetime(2025, 1, 9, 10, 0, 0, 500)),
        (Decimal("100.01"), date(2025, 1, 10), datetime(2025, 1, 10)),  # "100.01" < "9.9" as text
    ]
    path = _kept(tmp_path, columns, rows)
    source = SqliteSource(str(path))
    sql = "SELECT amount FROM kept WHERE amount > :min AND day >= :day AND at > :at ORDER BY amount"
    params = {"min": Decimal("9.9"), "day": date(2025, 1, 1), "at": datetime(2025, 1, 9, 9, 0)}
    with source.run(sql, params) as result:
        assert [row for batch in result.batches for row in batch] == [(Decimal("100.01"),)]


def test_names_sqlite_would_take_as_one_are_refused(tmp_path: Path) -> None:
    snapshot = SqliteSnapshot(tmp_path / "names.sqlite", 10**8)
    snapshot.add_table("Orders", [Column("id", T.INTEGER)], iter([]))
    with pytest.raises(InvalidDefinition, match="differs from it only in case"):
        snapshot.add_table("orders", [Column("id", T.INTEGER)], iter([]))
    with pytest.raises(InvalidDefinition, match="SQLite reserves"):
        snapshot.add_table("sqlite_stat1", [Column("id", T.INTEGER)], iter([]))
    with pytest.raises(InvalidDefinition, match="differ only in case"):
        snapshot.add_table("t", [Column("Id", T.INTEGER), Column("id", T.INTEGER)], iter([]))


def test_a_snapshot_over_its_limit_fails_saying_so(tmp_path: Path) -> None:
    snapshot = SqliteSnapshot(tmp_path / "big.sqlite", 64 * 1024)
    rows: Iterator[list[Row]] = iter([[(("x" * 1000),) for _ in range(100)]])
    with pytest.raises(ResultTooLarge, match="over its limit"):
        snapshot.add_table("big", [Column("text", T.TEXT)], rows)


# What a model may mark


def _model(kind: str = "postgresql", snapshot: bool = False, *queries: CustomQuery) -> DataSource:
    extra: dict[str, Any] = {"host": "db.example.com", "user": "u"} if kind == "postgresql" else {}
    if kind == "athena":
        extra = {"workgroup": "primary", "output_location": "s3://bkt/results/", "catalog": "c", "region": "eu-west-1"}
    return DataSource(id="7", database="shop", kind=kind, snapshot=snapshot, custom_queries=list(queries), **extra)  # type: ignore[arg-type]


_PLAIN = CustomQuery(name="orders", query="SELECT * FROM orders")
_X = QueryParameter(name="x")
_MARKED = CustomQuery(name="orders", query="SELECT * FROM orders", snapshot=True)
_WITH_PARAMETER = CustomQuery(
    name="by_day", query="SELECT * FROM orders WHERE day = :day", parameters=[QueryParameter(name="day")]
)


def test_a_model_keeps_its_marked_queries_or_all_of_them_when_it_is_marked_itself() -> None:
    unmarked = _model("postgresql", False, _PLAIN)
    assert not keeps_snapshot(unmarked) and kept_queries(unmarked) == []
    assert kept_queries(_model("postgresql", False, _PLAIN, _MARKED)) == [_MARKED]
    assert kept_queries(_model("postgresql", True, _PLAIN)) == [_PLAIN] and keeps_snapshot(_model("sqlite", True))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_model("athena", True), "Athena model"),
        (_model("postgresql", True, _PLAIN, _WITH_PARAMETER), "'by_day' takes parameters"),
        (_model("sqlite", False, CustomQuery(name="q", query="SELECT :x", snapshot=True, parameters=[_X])), "q"),
    ],
)
def test_what_a_snapshot_cannot_keep_is_refused_when_marked(model: DataSource, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message) as refused:
        check_marks(model)
    assert refused.value.parameter == "snapshot"


def test_an_unmarked_model_may_hold_anything() -> None:
    check_marks(_model("postgresql", False, _PLAIN, _WITH_PARAMETER))
    check_marks(_model("athena", False))


@pytest.mark.parametrize(
    ("live", "kept", "words"),
    [
        ([Column("a", T.DECIMAL, 2)], [Column("a", T.DECIMAL, 2)], None),
        ([Column("a", T.DECIMAL)], [Column("a", T.DECIMAL, 3)], None),  # a plain numeric kept with its places
        ([Column("n", T.INTEGER)], [Column("n", None)], None),  # count(*)
        ([Column("t", T.TEXT)], [Column("t", None)], None),  # a || b
        ([Column("s", T.DECIMAL)], [Column("s", None)], "column 's' is decimal on the live database"),  # sum()
        ([Column("a", T.DECIMAL, 2)], [Column("a", T.DECIMAL, 3)], "decimal(2) on the live database"),
        ([Column("f", T.FLOAT)], [Column("f", None)], "column 'f' is float"),
        ([Column("b", T.BOOLEAN)], [Column("b", T.INTEGER)], "column 'b' is boolean"),
        ([Column("a", T.TEXT)], [Column("b", T.TEXT)], "its columns are a on the live database but b"),
    ],
)
def test_a_report_reads_a_snapshot_only_where_it_gets_the_same_columns(
    live: list[Column], kept: list[Column], words: str | None
) -> None:
    difference = column_difference(live, kept)
    assert difference is None if words is None else (difference is not None and words in difference)


# How a refresh is shown


def test_a_refresh_running_past_its_lease_is_shown_failed_saying_why() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    refresh = Refresh(id="r", model_id="7", requested_at=now, requested_by="token 't'")
    refresh.status, refresh.started_at, refresh.lease_until = RefreshStatus.RUNNING, now, now + timedelta(minutes=16)
    assert refresh.view(now + timedelta(minutes=15))["status"] == "running"
    late = refresh.view(now + timedelta(minutes=17))
    assert late["status"] == "failed" and "stopped before it finished" in late["error"]
    assert late["statusUrl"] == "/api/datamodels/7/refreshes/r" and late["dataModelId"] == 7


def test_a_complete_refresh_shows_what_it_kept_and_how_long_it_took() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    refresh = Refresh(id="r", model_id="7", requested_at=now, requested_by="token 't'", status=RefreshStatus.COMPLETE)
    refresh.started_at, refresh.finished_at, refresh.taken_at = now, now + timedelta(seconds=2.5), now
    view = refresh.view(now + timedelta(hours=1))
    assert view["tookSeconds"] == 2.5 and view["snapshotTakenAt"] == now and view["status"] == "complete"
    refresh.status = RefreshStatus.FAILED
    assert refresh.view(now)["snapshotTakenAt"] is None


def test_a_snapshot_divides_whole_decimals_and_compares_instants_as_the_live_database_does(tmp_path: Path) -> None:
    """Two silent wrong answers a review found: 7.00 / 2 gave 3 (whole decimals kept as INTEGER), and
    `at <= :until` missed the row at that very instant (an offset in the kept text, none in the bound one)."""
    path = tmp_path / "s.sqlite"
    snapshot = SqliteSnapshot(path, 10**8)
    columns = [Column("id", ColumnType.INTEGER), Column("amount", ColumnType.DECIMAL, 2),
               Column("qty", ColumnType.INTEGER), Column("at", ColumnType.TIMESTAMPTZ)]  # fmt: skip
    rows = [
        (1, Decimal("7.00"), 2, datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))),
        (2, Decimal("7.50"), 2, datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
        (3, Decimal("9.00"), 0, datetime(2024, 1, 1, 9, 0, 0, 500000, tzinfo=UTC)),
    ]
    snapshot.add_table("orders", columns, iter([rows]))
    snapshot.finish()
    source = SqliteSource(str(path))
    with source.run('SELECT id, amount / qty AS "unit [decimal(2)]" FROM orders WHERE qty > 0 ORDER BY id', {}) as r:
        assert [tuple(row) for batch in r.batches for row in batch] == [(1, Decimal("3.50")), (2, Decimal("3.75"))]
    with source.run("SELECT id FROM orders WHERE amount / 2 > 3.4 ORDER BY id", {}) as r:
        assert [row[0] for batch in r.batches for row in batch] == [1, 2, 3]
    until = datetime(2024, 1, 1, 9, 0)  # as a report's timestamptz parameter is bound: UTC, no offset
    with source.run("SELECT id FROM orders WHERE at <= :until ORDER BY id", {"until": until}) as r:
        assert [row[0] for batch in r.batches for row in batch] == [1, 2]
    with source.run("SELECT id FROM orders WHERE at = :t ORDER BY id", {"t": until}) as r:
        assert [row[0] for batch in r.batches for row in batch] == [1, 2]
