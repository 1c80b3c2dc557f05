"""The embedded SQLite source: read-only connections, typed columns, batches, a time budget."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from reportserver.domain.errors import DataSourceFailed
from reportserver.domain.reports import bind_variables
from reportserver.observability import logger
from reportserver.sources.base import (
    DEFAULT_BATCH_SIZE,
    ArrowResult,
    ColumnTypeChanged,
    QueryResult,
    Row,
    unique_columns,
)

ARROW_BATCH_ROWS = 16_384

# SQLite stores these as text; declared column types (or `AS "x [decimal]"` aliases) turn them
# back into typed values. Malformed stored text is passed through rather than failing the report.
# Money kept in integer cents reads exactly as `printf('%.2f', cents / 100.0) AS "amount [decimal]"`.


def _decimal(raw: bytes) -> Decimal | str | None:
    try:
        value = Decimal(raw.decode())
    except InvalidOperation:
        return raw.decode()
    return value if value.is_finite() else None  # JSON, xlsx and parquet have no NaN decimal


def _date(raw: bytes) -> date | str:
    text = raw.decode()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return text


def _timestamp(raw: bytes) -> datetime | str:
    text = raw.decode()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


for _name in ("DECIMAL", "NUMERIC", "MONEY"):
    sqlite3.register_converter(_name, _decimal)
sqlite3.register_converter("DATE", _date)
sqlite3.register_converter("TIMESTAMP", _timestamp)
sqlite3.register_converter("DATETIME", _timestamp)
sqlite3.register_adapter(Decimal, str)
sqlite3.register_adapter(date, date.isoformat)
sqlite3.register_adapter(datetime, lambda value: value.isoformat(sep=" "))

PROGRESS_EVERY_OPS = 10_000


class SqliteSource:
    def __init__(self, database: str, query_timeout_seconds: float = 25.0) -> None:
        self._uri = f"file:{quote(database)}?mode=ro"
        self._timeout = query_timeout_seconds

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._uri,
            uri=True,
            detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
            check_same_thread=False,
        )
        connection.execute("PRAGMA query_only = ON")
        deadline = time.monotonic() + self._timeout
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_EVERY_OPS)
        return connection

    @contextmanager
    def run(self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[QueryResult]:
        try:
            connection = self._connect()
        except sqlite3.Error as error:
            logger.error("sqlite connect failed", extra={"error": str(error)})
            raise DataSourceFailed("The report's data source is not available") from None
        try:
            try:
                cursor = connection.execute(sql, dict(params))
            except sqlite3.Error as error:
                raise _failure(error) from None
            columns = unique_columns([d[0] for d in cursor.description or ()])
            yield QueryResult(columns=columns, batches=_batches(cursor, batch_size))
        finally:
            connection.close()

    @contextmanager
    def run_arrow(
        self, sql: str, params: Mapping[str, Any], native: bool = True, text_columns: frozenset[str] = frozenset()
    ) -> Iterator[ArrowResult]:
        """The result as Arrow batches: read natively (ADBC, in C) when it can be, else from typed rows.

        A native read types each column from its first batch; should a later value change type (SQLite
        allows it), iterating raises `ColumnTypeChanged` and the caller may run again with native=False.
        """
        from reportserver.sources import arrow  # noqa: PLC0415 - pyarrow only on the export path

        if native and _adbc_available():
            with self._native(sql, params) as result:
                yield result
            return
        with self.run(sql, params, batch_size=ARROW_BATCH_ROWS) as rows:
            schema, batches = arrow.rows_to_batches(rows.columns, rows.batches, text_columns)
            yield ArrowResult(schema=schema, batches=batches)

    @contextmanager
    def _native(self, sql: str, params: Mapping[str, Any]) -> Iterator[ArrowResult]:
        import adbc_driver_sqlite.dbapi as adbc  # noqa: PLC0415

        from reportserver.sources import arrow  # noqa: PLC0415

        try:
            connection = adbc.connect(self._uri)
        except Exception as error:
            logger.error("sqlite (adbc) connect failed", extra={"error": str(error)})
            raise DataSourceFailed("The report's data source is not available") from None
        cursor = connection.cursor()
        watchdog = threading.Timer(self._timeout, _cancel, args=(cursor,))
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(ARROW_BATCH_ROWS)})
            # SQLite numbers :name parameters in order of first use; ADBC binds by that number.
            values = tuple(_native_value(params.get(name)) for name in bind_variables(sql))
            watchdog.start()
            try:
                cursor.execute(sql, parameters=values or None)
                reader = cursor.fetch_record_batch()
                first = next(iter(reader), None)
            except Exception as error:
                raise _native_failure(error, []) from None
            if first is None:
                first = arrow.empty_batch(reader.schema)
            plan = arrow.TypePlan(first)

            def batches() -> Iterator[Any]:
                yield plan.apply(first)
                try:
                    for batch in reader:
                        yield plan.apply(batch)
                except ColumnTypeChanged:
                    raise
                except Exception as error:
                    raise _native_failure(error, plan.names) from None

            yield ArrowResult(schema=plan.schema, batches=arrow.prefetched(batches()))
        finally:
            watchdog.cancel()
            cursor.close()
            connection.close()


def _cancel(cursor: Any) -> None:
    """Stop a query past its time budget, where the driver can (the Lambda timeout bounds it anyway)."""
    try:
        cursor.adbc_cancel()
    except Exception as error:
        logger.warning("the data source cannot cancel a running query", extra={"error": str(error)})


def _adbc_available() -> bool:
    try:
        import adbc_driver_sqlite  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _native_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _native_failure(error: Exception, names: list[str]) -> Exception:
    text = str(error)
    if "Type mismatch" in text:
        found = re.search(r"column (\d+)", text)
        index = int(found.group(1)) if found else -1
        return ColumnTypeChanged(names[index] if 0 <= index < len(names) else "?", text)
    logger.error("sqlite (adbc) query failed", extra={"error": text, "error_type": type(error).__name__})
    if "cancel" in text.lower() or "interrupt" in text.lower():
        return DataSourceFailed("The report's query took longer than its time limit")
    return DataSourceFailed("The report's query failed on its data source")


def _batches(cursor: sqlite3.Cursor, batch_size: int) -> Iterator[list[Row]]:
    try:
        while rows := cursor.fetchmany(batch_size):
            yield rows
    except sqlite3.Error as error:
        raise _failure(error) from None


def _failure(error: sqlite3.Error) -> DataSourceFailed:
    # The driver's message may quote SQL: it goes to the log, never to the caller.
    logger.error("sqlite query failed", extra={"error": str(error), "error_type": type(error).__name__})
    if isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted":
        return DataSourceFailed("The report's query took longer than its time limit")
    return DataSourceFailed("The report's query failed on its data source")
