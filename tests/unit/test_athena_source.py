"""The Athena source against a fake Athena: literals, paging, typing, failure and time limits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from reportserver.domain.errors import QueryTookTooLong, StatementRefused, ValueDoesNotFit
from reportserver.domain.ports import DataSource
from reportserver.domain.values import ColumnType
from reportserver.sources import athena
from reportserver.sources.athena import AthenaSource, column_of, literal

MODEL = DataSource(
    id="7",
    kind="athena",
    database="lake",
    catalog="AwsDataCatalog",
    workgroup="primary",
    output_location="s3://results-bucket/q/",
    region="eu-west-1",
    query_timeout_seconds=2,
)


def _info(name: str, kind: str, precision: int = 0, scale: int = 0) -> dict[str, Any]:
    return {"Name": name, "Label": name, "Type": kind, "Precision": precision, "Scale": scale}


class FakeAthena:
    """Athena as the source sees it: executions that end in a given state, results in pages."""

    def __init__(self, pages: list[list[list[str | None]]], columns: list[dict[str, Any]], states: list[str]) -> None:
        self.pages = pages
        self.columns = columns
        self.states = states
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []

    def athena(self, region: str) -> FakeAthena:
        assert region == "eu-west-1"
        return self

    def s3(self) -> Any:
        raise AssertionError("not on the rows path")

    def start_query_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"QueryExecutionId": f"q{len(self.started)}"}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {
            "QueryExecution": {
                "Status": {"State": state, "StateChangeReason": "line 1:15: Table 'lake.ordrs' does not exist"},
                "ResultConfiguration": {"OutputLocation": f"s3://results-bucket/q/{QueryExecutionId}.csv"},
            }
        }

    def get_query_results(self, QueryExecutionId: str, MaxResults: int, NextToken: str = "") -> dict[str, Any]:  # noqa: N803
        index = int(NextToken or 0)
        rows = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in self.pages[index]]
        page: dict[str, Any] = {"ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": self.columns}}}
        if index + 1 < len(self.pages):
            page["NextToken"] = str(index + 1)
        return page

    def stop_query_execution(self, QueryExecutionId: str) -> None:  # noqa: N803
        self.stopped.append(QueryExecutionId)


COLUMNS = [
    _info("id", "bigint"),
    _info("amount", "decimal", 12, 2),
    _info("day", "date"),
    _info("at", "timestamp"),
    _info("ok", "boolean"),
    _info("name", "varchar"),
    _info("ratio", "double"),
]
HEADER: list[str | None] = ["id", "amount", "day", "at", "ok", "name", "ratio"]


def _rows(source: AthenaSource, sql: str = "SELECT 1", params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with source.run(sql, params or {}, batch_size=2) as result:
        return [row for batch in result.batches for row in batch]


def test_rows_are_typed_from_the_results_metadata_exactly_across_pages() -> None:
    pages = [
        [HEADER, ["1", "1234567.89", "2025-07-01", "2025-07-01 10:00:00.123", "true", "a", "0.5"]],
        [["2", "0.10", None, None, "false", "", None]],
        [["3", "-5.00", "2026-01-31", "2026-01-31 23:59:59.000", None, None, "1e300"]],
    ]
    fake = FakeAthena(pages, COLUMNS, ["QUEUED", "RUNNING", "SUCCEEDED"])
    rows = _rows(AthenaSource(MODEL, fake))
    assert rows == [
        (1, Decimal("1234567.89"), date(2025, 7, 1), datetime(2025, 7, 1, 10, 0, 0, 123000), True, "a", 0.5),
        (2, Decimal("0.10"), None, None, False, "", None),
        (3, Decimal("-5.00"), date(2026, 1, 31), datetime(2026, 1, 31, 23, 59, 59), None, None, 1e300),
    ]
    # Only the first page's first row is the header
    assert len(rows) == 3


def test_a_value_that_does_not_fit_its_declared_column_fails_loudly() -> None:
    fake = FakeAthena([[HEADER, ["1", "1.234", None, None, None, None, None]]], COLUMNS, ["SUCCEEDED"])
    with pytest.raises(ValueDoesNotFit, match="amount"):
        _rows(AthenaSource(MODEL, fake))


def test_values_are_bound_as_athena_execution_parameters_one_per_use() -> None:
    fake = FakeAthena([[HEADER]], COLUMNS, ["SUCCEEDED"])
    sql = "SELECT * FROM t WHERE name = :name AND day >= :day AND (amount > :min OR :min IS NULL) -- :not_me"
    _rows(AthenaSource(MODEL, fake), sql, {"name": "O'Brien", "day": date(2025, 7, 1), "min": Decimal("12.50")})
    started = fake.started[0]
    assert started["QueryString"] == (
        "SELECT * FROM t WHERE name = ? AND day >= ? AND (amount > ? OR ? IS NULL) -- :not_me"
    )
    assert started["ExecutionParameters"] == ["'O''Brien'", "DATE '2025-07-01'", "12.50", "12.50"]
    assert started["WorkGroup"] == "primary"
    assert started["QueryExecutionContext"] == {"Database": "lake", "Catalog": "AwsDataCatalog"}
    assert started["ResultConfiguration"] == {"OutputLocation": "s3://results-bucket/q/"}


def test_a_failed_query_says_why_to_its_admin_only() -> None:
    fake = FakeAthena([[HEADER]], COLUMNS, ["RUNNING", "FAILED"])
    with pytest.raises(StatementRefused) as refused:
        _rows(AthenaSource(MODEL, fake))
    assert "does not exist" in refused.value.detail
    assert "ordrs" not in refused.value.message  # a caller hears only that the query failed


def test_a_query_past_its_time_limit_is_stopped_on_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(athena, "MAX_POLL_SECONDS", 0.1)
    fake = FakeAthena([[HEADER]], COLUMNS, ["RUNNING"])
    with pytest.raises(QueryTookTooLong):
        _rows(AthenaSource(MODEL, fake))
    assert fake.stopped == ["q1"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("integer", ColumnType.INTEGER),
        ("tinyint", ColumnType.INTEGER),
        ("real", ColumnType.FLOAT),
        ("char", ColumnType.TEXT),
        ("timestamp with time zone", ColumnType.TEXT),
        ("array(integer)", ColumnType.TEXT),
        ("varbinary", ColumnType.TEXT),
        ("json", ColumnType.TEXT),
    ],
)
def test_athena_types_map_to_the_contract(kind: str, expected: ColumnType) -> None:
    assert column_of(_info("c", kind)).type is expected


def test_a_tag_on_a_column_name_wins_over_athena_metadata() -> None:
    column = column_of(_info("total [decimal(4)]", "varchar"))
    assert (column.name, column.type, column.scale) == ("total", ColumnType.DECIMAL, 4)


@given(text=st.text(max_size=40))
def test_a_string_literal_reads_back_as_the_same_string(text: str) -> None:
    parsed = sqlglot.parse_one(f"SELECT {literal(text)}", dialect="athena")
    assert parsed.expressions[0].this == text


@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20))
def test_a_decimal_literal_is_its_exact_digits(value: Decimal) -> None:
    text = literal(value)
    assert "E" not in text.upper() and Decimal(text) == value


def test_a_time_is_sent_with_the_places_it_needs() -> None:
    assert literal(datetime(2025, 7, 1, 10, 0, 0)) == "TIMESTAMP '2025-07-01 10:00:00.000'"
    assert literal(datetime(2025, 7, 1, 10, 0, 0, 123000)) == "TIMESTAMP '2025-07-01 10:00:00.123'"
    assert literal(datetime(2025, 7, 1, 10, 0, 0, 123456)) == "TIMESTAMP '2025-07-01 10:00:00.123456'"
