"""The embedded SQLite source: read-only connections, typed columns, batches, a time budget."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from reportserver.domain.errors import DataSourceFailed
from reportserver.observability import logger
from reportserver.sources.base import DEFAULT_BATCH_SIZE, QueryResult, Row, unique_columns

# SQLite stores these as text; declared column types (or `AS "x [decimal]"` aliases) turn them
# back into typed values. Malformed stored text is passed through rather than failing the report.


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


def money(cents: int | None) -> str | None:
    """`money(sum(x_cents))`: exact decimal text from integer cents, for `AS "x [decimal]"`."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{fraction:02d}"


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
        connection.create_function("money", 1, money, deterministic=True)
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
