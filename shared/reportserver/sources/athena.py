"""Amazon Athena: a report's statement as a query execution in the data model's workgroup.

Values are bound by Athena (`ExecutionParameters`, one per `?`): each is sent as the SQL literal of its
type (a string quoted with its quotes doubled, a decimal as its exact digits, a date as DATE '...'),
and Athena substitutes it as a value, never as statement text. The query is polled with back-off and
stopped on the server (`StopQueryExecution`) at the model's time limit.

Columns are typed from the result's metadata (`ColumnInfo`: `decimal(p, s)`, `bigint`, `date`...),
through the same contract as every source. Calls page through `GetQueryResults`; exports stream the
result's CSV file from S3 in blocks (pyarrow's CSV reader, every column read as text and cast to its
declared type with every value checked) and never hold it whole.

Athena itself refuses writes in a `SELECT` statement's place only as far as the workgroup's IAM and
Lake Formation rights allow: the report's statement is checked at save (one read statement), and the
role the functions run as should be granted reads only (see the README).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from reportserver import sqltext
from reportserver.domain.errors import (
    DataSourceFailed,
    InvalidParameter,
    QueryTookTooLong,
    SourceUnavailable,
    StatementRefused,
)
from reportserver.domain.ports import (
    DEFAULT_BATCH_SIZE,
    ArrowResult,
    ColumnInfo,
    DataSource,
    ProcedureInfo,
    QueryResult,
    ReadPlan,
    Row,
    TableInfo,
    unique_names,
)
from reportserver.domain.values import Column, ColumnType, Converter, tagged

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
CSV_BLOCK_BYTES = 4 << 20  # pyarrow reads the result file this much at a time
PAGE_ROWS = 1000  # GetQueryResults' most a page

_INTEGERS = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOATS = frozenset({"double", "float", "real"})
_TEXT = frozenset({"varchar", "char", "string"})


class AthenaClients(Protocol):
    def athena(self, region: str) -> Any: ...

    def s3(self) -> Any: ...


def literal(value: Any) -> str:  # noqa: PLR0911 - one return per kind of value
    """A bound value as the SQL literal Athena substitutes for its `?`."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DataSourceFailed("A number parameter must be finite")
        return format(value, "f")  # exact digits, never an exponent (1E+2 would be a double)
    if isinstance(value, datetime):
        # Milliseconds where they say it all: Athena's engine v2 reads no more than three places.
        places = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec=places)}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, float):
        raise DataSourceFailed("A float parameter cannot be bound exactly")
    return "'" + str(value).replace("'", "''") + "'"


MAX_PARAMETER_LENGTH = 1024  # what Athena takes of each ExecutionParameter


def _parameter(name: str, value: Any) -> str:
    """A value's literal, within Athena's limit; past it the caller hears which parameter (400), as it
    would for any other value the source cannot take."""
    text = literal(value)
    if len(text) > MAX_PARAMETER_LENGTH:
        raise InvalidParameter(
            name, f"Parameter '{name}' is too long for this report's data source (Athena takes 1,024 characters)"
        )
    return text


def column_of(info: Mapping[str, Any]) -> Column:  # noqa: PLR0911 - one return per kind of type
    """A result column typed from Athena's `ColumnInfo` (a tag on its name wins, as everywhere)."""
    name, kind, scale = tagged(str(info.get("Label") or info.get("Name") or ""))
    if kind is not None:
        return Column(name, kind, scale)
    athena_type = str(info.get("Type", "")).lower()
    base = athena_type.split("(", 1)[0].strip()
    if base in _INTEGERS:
        return Column(name, ColumnType.INTEGER)
    if base in _FLOATS:
        return Column(name, ColumnType.FLOAT)
    if base == "decimal":
        return Column(name, ColumnType.DECIMAL, int(info.get("Scale") or 0))
    if base == "boolean":
        return Column(name, ColumnType.BOOLEAN)
    if base == "date":
        return Column(name, ColumnType.DATE)
    if athena_type == "timestamp":
        return Column(name, ColumnType.TIMESTAMP)
    # text, and what has no column type of its own here (a zoned timestamp, arrays, maps, rows, JSON,
    # binary as Athena prints it): the text Athena gives, never a guess
    return Column(name, ColumnType.TEXT)


class AthenaSource:
    def __init__(self, definition: DataSource, clients: AthenaClients) -> None:
        self._definition = definition
        self._clients = clients
        self._timeout = definition.query_timeout_seconds

    @property
    def _athena(self) -> Any:
        return self._clients.athena(self._definition.region)

    def _start(self, sql: str, params: Mapping[str, Any]) -> str:
        statement, order = sqltext.by_occurrence(sql, sqltext.Dialect.TRINO)
        request: dict[str, Any] = {
            "QueryString": statement,
            "QueryExecutionContext": {"Database": self._definition.database, "Catalog": self._definition.catalog},
            "WorkGroup": self._definition.workgroup,
            "ResultConfiguration": {"OutputLocation": self._definition.output_location},
        }
        if order:
            request["ExecutionParameters"] = [_parameter(name, params.get(name)) for name in order]
        try:
            return str(self._athena.start_query_execution(**request)["QueryExecutionId"])
        except Exception as error:
            raise _failure(error, "start") from None

    def _finished(self, execution_id: str) -> dict[str, Any]:
        """Poll until the execution ends (back-off from 50 ms to 1 s); past the time limit it is stopped
        on the server and the call fails."""
        deadline = time.monotonic() + self._timeout
        pause = FIRST_POLL_SECONDS
        while True:
            try:
                execution = self._athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            except Exception as error:
                self._stop(execution_id)
                raise _failure(error, "poll") from None
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                return dict(execution)
            if state in ("FAILED", "CANCELLED"):
                reason = str(execution["Status"].get("StateChangeReason", state))
                log.error("athena query failed", extra={"execution_id": execution_id, "reason": reason})
                raise StatementRefused(reason)
            if time.monotonic() + pause > deadline:
                self._stop(execution_id)
                raise QueryTookTooLong()
            time.sleep(pause)
            pause = min(pause * 2, MAX_POLL_SECONDS)

    def _stop(self, execution_id: str) -> None:
        try:
            self._athena.stop_query_execution(QueryExecutionId=execution_id)
            log.info("athena query stopped", extra={"execution_id": execution_id})
        except Exception as error:
            log.error("athena stop failed", extra={"execution_id": execution_id, "error": str(error)})

    def _pages(self, execution_id: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
            if token:
                request["NextToken"] = token
            try:
                page = self._athena.get_query_results(**request)
            except Exception as error:
                raise _failure(error, "results") from None
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def describe(self, sql: str) -> list[Column]:
        """The result's columns, from running the statement with every parameter NULL and no rows asked
        for (Athena prepares nothing without running it): an unknown table fails here."""
        names = sqltext.names(sql, sqltext.Dialect.TRINO)
        inner = sql.rstrip().rstrip(";")
        # The report's own statement (checked at save: one read statement), wrapped to ask for no rows.
        wrapped = f"SELECT * FROM (\n{inner}\n) AS described LIMIT 0"  # noqa: S608
        execution_id = self._start(wrapped, dict.fromkeys(names))
        self._finished(execution_id)
        first = next(self._pages(execution_id))
        return _columns(first)

    @contextmanager
    def run(self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[QueryResult]:
        execution_id = self._start(sql, params)
        self._finished(execution_id)
        pages = self._pages(execution_id)
        first = next(pages)
        columns = _columns(first)
        converters = [Converter(c) for c in columns]

        def batches() -> Iterator[list[Row]]:
            number = 0
            batch: list[Row] = []
            for index, page in enumerate(_chain(first, pages)):
                rows = page["ResultSet"]["Rows"]
                for position, row in enumerate(rows):
                    if index == 0 and position == 0:
                        continue  # a SELECT's first row is its header
                    number += 1
                    values = [cell.get("VarCharValue") for cell in row["Data"]]
                    batch.append(tuple(convert(v, number) for convert, v in zip(converters, values, strict=True)))
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
            if batch:
                yield batch

        yield QueryResult(columns=columns, batches=batches())

    @contextmanager
    def run_arrow(self, sql: str, params: Mapping[str, Any], plan: ReadPlan | None = None) -> Iterator[ArrowResult]:
        """The result file from S3 as Arrow batches, read a block at a time."""
        import pyarrow as pa  # noqa: PLC0415 - the export path only
        from pyarrow import csv  # noqa: PLC0415

        from reportserver.sources import arrow  # noqa: PLC0415

        execution_id = self._start(sql, params)
        execution = self._finished(execution_id)
        columns = _columns(next(self._pages(execution_id)))  # the metadata (and no more of the rows)
        location = execution["ResultConfiguration"]["OutputLocation"]
        bucket, _, key = location.removeprefix("s3://").partition("/")
        try:
            body = self._clients.s3().get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as error:
            raise _failure(error, "result file") from None
        names = [f"c{i}" for i in range(len(columns))]  # the file's own header is skipped
        try:
            reader = csv.open_csv(
                pa.PythonFile(body, mode="r"),
                read_options=csv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES),
                parse_options=csv.ParseOptions(newlines_in_values=True),
                convert_options=csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    null_values=[""],
                    strings_can_be_null=True,  # an empty unquoted field is NULL ...
                    quoted_strings_can_be_null=False,  # ... and "" is the empty string, as Athena writes them
                ),
            )
        except (pa.ArrowInvalid, StopIteration):
            reader = None
        try:
            schema = pa.schema([(c.name, pa.string()) for c in columns])
            first = _renamed(next(iter(reader), None), schema) if reader is not None else None
            typing = arrow.NativeBatches(
                columns, first if first is not None else arrow.empty_batch(schema), plan or ReadPlan()
            )

            def batches() -> Iterator[Any]:
                if first is None:
                    return
                yield typing.apply(first)
                for batch in reader or ():
                    yield typing.apply(_renamed(batch, schema))

            yield ArrowResult(schema=typing.schema, batches=arrow.prefetched(batches()))
        finally:
            body.close()

    # -- what the database holds --

    def tables(self) -> list[TableInfo]:
        sql = (
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = :database ORDER BY table_name"
        )
        with self.run(sql, {"database": self._definition.database}) as result:
            rows = [r for batch in result.batches for r in batch]
        return [TableInfo(name=n, schema=s, type="view" if "VIEW" in str(t).upper() else "table") for s, n, t in rows]

    def columns(self, table: str) -> list[ColumnInfo] | None:
        sql = (
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = :database AND table_name = :table ORDER BY ordinal_position"
        )
        with self.run(sql, {"database": self._definition.database, "table": table}) as result:
            rows = [r for batch in result.batches for r in batch]
        if not rows:
            return None
        return [ColumnInfo(name=n, dataType=str(t), nullable=str(x).upper() != "NO") for n, t, x in rows]

    def procedures(self) -> list[ProcedureInfo]:
        return []  # Athena has no stored procedures

    def procedure_columns(self, name: str) -> list[ColumnInfo] | None:
        return None


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _columns(first_page: Mapping[str, Any]) -> list[Column]:
    infos = first_page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    typed = [column_of(info) for info in infos]
    names = unique_names([c.name for c in typed])
    return [Column(n, c.type, c.scale) for n, c in zip(names, typed, strict=True)]


def _renamed(batch: Any, schema: Any) -> Any:
    if batch is None:
        return None
    import pyarrow as pa  # noqa: PLC0415

    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _failure(error: Exception, step: str) -> DataSourceFailed:
    """An AWS error as the domain's: its code and message go to the log, never to the caller."""
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", type(error).__name__))
    detail = str(response.get("Error", {}).get("Message", ""))[:300]
    log.error("athena call failed", extra={"step": step, "error_code": code, "detail": detail})
    if code in ("InvalidRequestException",):
        return StatementRefused(detail or code)
    if code in ("TooManyRequestsException", "ThrottlingException", "InternalServerException"):
        return SourceUnavailable("The report's data source is busy or not available now")
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return SourceUnavailable("The report's data source is not available: access to Athena or its results is denied")
    return DataSourceFailed("The report's query failed on its data source")
