"""The embedded SQLite source: read-only connections, declared column types, batches, a time limit.

Column types come from the report's tags and from SQLite's own metadata: the declared type of each
result column (`sqlite3_column_decltype`, read by preparing the statement without running it), else
the storage class of its values. Values are bound by the driver, by position, from one lexer's reading
of the statement's `:name` variables.

A query's time limit counts only the time SQLite spends running it, never the time a renderer spends
between batches: the row path interrupts SQLite from its progress handler; the native (ADBC) path,
whose driver cannot cancel, stops waiting at the limit and fails the export, and its reader ends at
its next batch (the worker's Lambda timeout bounds a single batch that never ends).
"""

from __future__ import annotations

import ctypes
import logging
import sqlite3
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import quote

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
    ProcedureInfo,
    QueryResult,
    ReadAgain,
    ReadPlan,
    Row,
    TableInfo,
    unique_names,
)
from reportserver.domain.values import Column, Converter, resolve

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 16_384
PROGRESS_EVERY_OPS = 10_000
_SQLITE_OK = 0
_OPEN_READONLY_URI = 0x00000001 | 0x00000040  # SQLITE_OPEN_READONLY | SQLITE_OPEN_URI


class SqliteSource:
    def __init__(self, database: str, query_timeout_seconds: float = 25.0) -> None:
        self._uri = f"file:{quote(database)}?mode=ro"
        self._timeout = query_timeout_seconds

    def describe(self, sql: str) -> list[Column]:
        """The result's columns with their declared types, from preparing the statement (nothing runs)."""
        try:
            described = _declared_columns(self._uri, sql)
        except _Unavailable as error:
            log.error("sqlite open failed", extra={"error": str(error)})
            raise SourceUnavailable("The report's data source is not available") from None
        except sqlite3.Error as error:
            raise _failure(error) from None
        names = unique_names([resolve(name, kind).name for name, kind in described])
        return [
            Column(unique, column.type, column.scale)
            for unique, column in zip(names, (resolve(n, k) for n, k in described), strict=True)
        ]

    @contextmanager
    def one_moment(self) -> Iterator[SqliteSource]:
        """This source, for a snapshot's kept queries. Each statement reads the file as it is when it runs
        (one moment for all of them is PostgreSQL's `one_moment`; a SQLite model is a file kept as it is)."""
        yield self

    def text_order(self) -> str:
        """SQLite orders text by its bytes (BINARY), UTF-8's code point order."""
        return "binary"

    def _connect(self, clock: _Clock) -> sqlite3.Connection:
        connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
        connection.execute("PRAGMA query_only = ON")
        connection.set_progress_handler(clock.interrupt, PROGRESS_EVERY_OPS)
        return connection

    # -- what the database holds (seed 001's data model schema) --

    def tables(self) -> list[TableInfo]:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.tables(self, introspection.SQLITE)

    def columns(self, table: str) -> list[ColumnInfo] | None:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.columns(self, introspection.SQLITE, table)

    def procedures(self) -> list[ProcedureInfo]:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.procedures(self, introspection.SQLITE)

    def procedure_columns(self, name: str) -> list[ColumnInfo] | None:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.procedure_columns(self, introspection.SQLITE, name)

    @contextmanager
    def run(self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[QueryResult]:
        columns = self.describe(sql)
        positional, names = sqltext.positional(sql)
        clock = _Clock(self._timeout)
        try:
            connection = self._connect(clock)
        except sqlite3.Error as error:
            log.error("sqlite connect failed", extra={"error": str(error)})
            raise SourceUnavailable("The report's data source is not available") from None
        try:
            with clock.running():
                try:
                    # `?1`, `?2`... are numbered parameters: the sqlite3 module binds them by their number's text.
                    values = _values(params, names)
                    cursor = connection.execute(positional, {str(n): v for n, v in enumerate(values, start=1)})
                except sqlite3.Error as error:
                    raise _failure(error) from None
            yield QueryResult(columns=columns, batches=_typed_batches(cursor, columns, batch_size, clock))
        finally:
            connection.close()

    @contextmanager
    def run_arrow(self, sql: str, params: Mapping[str, Any], plan: ReadPlan | None = None) -> Iterator[ArrowResult]:
        """The result as Arrow batches: natively (ADBC, in C) when the plan allows, else from typed rows."""
        from reportserver.sources import arrow  # noqa: PLC0415 - pyarrow only on the export path

        plan = plan or ReadPlan()
        if plan.native and _adbc_available():
            with self._native(sql, params, plan) as result:
                yield result
            return
        with self.run(sql, params, batch_size=ARROW_BATCH_ROWS) as rows:
            batches = arrow.RowBatches(rows.columns, plan)
            iterator = batches.batches(rows.batches)
            first = next(iterator, None)

            def all_batches() -> Iterator[Any]:
                if first is not None:
                    yield first
                    yield from iterator

            yield ArrowResult(schema=batches.schema(), batches=all_batches())

    @contextmanager
    def _native(self, sql: str, params: Mapping[str, Any], plan: ReadPlan) -> Iterator[ArrowResult]:
        import adbc_driver_sqlite.dbapi as adbc  # noqa: PLC0415

        from reportserver.sources import arrow  # noqa: PLC0415

        columns = self.describe(sql)
        positional, names = sqltext.positional(sql)
        try:
            connection = adbc.connect(self._uri)
        except Exception as error:
            log.error("sqlite (adbc) connect failed", extra={"error": str(error)})
            raise SourceUnavailable("The report's data source is not available") from None
        cursor = connection.cursor()
        clock = arrow.QueryClock(self._timeout)
        read_ahead: Generator[Any, None, None] | None = None
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(ARROW_BATCH_ROWS)})
            values = _values(params, names)

            def first_read() -> tuple[Any, Any]:
                cursor.execute(positional, parameters=values or None)
                reader = cursor.fetch_record_batch()
                return reader, next(iter(reader), None)

            reader, first = _bounded(first_read, clock)
            if first is None:
                first = arrow.empty_batch(reader.schema)
            typing = arrow.NativeBatches(columns, first, plan)

            def batches() -> Iterator[Any]:
                yield typing.apply(first)
                for batch in _native_batches(reader, plan):
                    yield typing.apply(batch)

            read_ahead = arrow.prefetched(batches(), clock)
            yield ArrowResult(schema=typing.schema, batches=read_ahead)
        finally:
            if read_ahead is not None:
                # Stop the read-ahead thread first: it may be inside the driver, and closing the
                # connection under it crashes the process (a renderer that stopped early, a lost lease).
                read_ahead.close()
            if clock.over():
                # A reader past its limit may still be inside the driver: closing under it is unsafe,
                # so the connection closes when that read ends and the objects are collected.
                log.warning("sqlite (adbc) read abandoned at its time limit")
            else:
                cursor.close()
                connection.close()


def _bounded(read: Any, clock: Any) -> Any:
    """The first read (where SQLite does most of a sorting query's work) in the reader thread, so that
    the caller stops waiting at the query's limit even though the driver cannot be interrupted."""
    from reportserver.sources import arrow  # noqa: PLC0415

    def once() -> Iterator[Any]:
        try:
            yield read()
        except Exception as error:
            raise _native_failure(error) from None

    return next(arrow.prefetched(once(), clock))


def _native_batches(reader: Any, plan: ReadPlan) -> Iterator[Any]:
    try:
        yield from reader
    except Exception as error:
        if "Type mismatch" in str(error):
            # The driver fixed a column's type from its first batch and a later value has another:
            # read it again through rows, where each column's type holds every value.
            raise ReadAgain(ReadPlan(native=False, overrides=plan.overrides), "a column changed type") from None
        raise _native_failure(error) from None


class _Clock:
    """The row path's query clock: counts the time inside SQLite calls, and interrupts past the limit."""

    def __init__(self, limit: float) -> None:
        from time import monotonic  # noqa: PLC0415

        self._monotonic = monotonic
        self._limit = limit
        self._spent = 0.0
        self._since: float | None = None
        self.expired = False

    @contextmanager
    def running(self) -> Iterator[None]:
        self._since = self._monotonic()
        try:
            yield
        finally:
            self._spent += self._monotonic() - self._since
            self._since = None

    def interrupt(self) -> int:
        if self._since is not None and self._spent + self._monotonic() - self._since > self._limit:
            self.expired = True
            return 1
        return 0


def _typed_batches(
    cursor: sqlite3.Cursor, columns: list[Column], batch_size: int, clock: _Clock
) -> Iterator[list[Row]]:
    converters = [Converter(c) for c in columns]
    typed = any(c.type is not None for c in columns)
    row_number = 0
    while True:
        with clock.running():
            try:
                rows = cursor.fetchmany(batch_size)
            except sqlite3.Error as error:
                raise _failure(error) from None
        if not rows:
            return
        if typed:
            rows = [
                tuple(convert(value, row_number + offset + 1) for convert, value in zip(converters, row, strict=True))
                for offset, row in enumerate(rows)
            ]
        row_number += len(rows)
        yield rows


def _values(params: Mapping[str, Any], names: list[str]) -> tuple[Any, ...]:
    return tuple(_bound(name, params.get(name)) for name in names)


def _bound(name: str, value: Any) -> Any:
    """A bound value as SQLite compares it right: integers as INTEGER, other numbers as REAL (so that
    `price / 100.0 >= :min` compares numbers, never text with a number), dates and times as the ISO
    text SQLite's date functions read, booleans as 1 and 0. A number SQLite cannot hold as it was
    given (more digits than a REAL keeps) is refused rather than compared as something else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and -(2**63) <= value < 2**63:
            return int(value)
        as_float = float(value)
        # Compared as numbers (1.50 equals 1.5), never through normalize(), which rounds to 28 digits.
        if Decimal(repr(as_float)) != value:
            raise InvalidParameter(
                name, f"Parameter '{name}' has more digits than this data source compares exactly (about 15)"
            )
        return as_float
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


@cache
def _adbc_available() -> bool:
    try:
        import adbc_driver_sqlite  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _native_failure(error: Exception) -> Exception:
    if isinstance(error, DataSourceFailed):
        return error
    text = str(error)
    log.error("sqlite (adbc) query failed", extra={"error": text, "error_type": type(error).__name__})
    return DataSourceFailed("The report's query failed on its data source")


def _failure(error: sqlite3.Error) -> DataSourceFailed:
    # The driver's message may quote SQL: it goes to the log, never to the caller.
    log.error("sqlite query failed", extra={"error": str(error), "error_type": type(error).__name__})
    if isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted":
        return QueryTookTooLong()
    return DataSourceFailed("The report's query failed on its data source")


class _Sqlite:
    """The few C functions of SQLite's own library that tell a prepared statement's column types;
    the `sqlite3` module does not expose them. The library is the one the `sqlite3` module uses."""

    def __init__(self) -> None:
        import _sqlite3  # noqa: PLC0415

        library = ctypes.CDLL(_sqlite3.__file__)
        self.open = library.sqlite3_open_v2
        self.open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_char_p]
        self.close = library.sqlite3_close_v2
        self.close.argtypes = [ctypes.c_void_p]
        self.prepare = library.sqlite3_prepare_v2
        self.prepare.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_char_p),
        ]
        self.finalize = library.sqlite3_finalize
        self.finalize.argtypes = [ctypes.c_void_p]
        self.count = library.sqlite3_column_count
        self.count.argtypes = [ctypes.c_void_p]
        self.name = library.sqlite3_column_name
        self.name.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.name.restype = ctypes.c_char_p
        self.decltype = library.sqlite3_column_decltype
        self.decltype.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.decltype.restype = ctypes.c_char_p
        self.errmsg = library.sqlite3_errmsg
        self.errmsg.argtypes = [ctypes.c_void_p]
        self.errmsg.restype = ctypes.c_char_p


class _Unavailable(sqlite3.OperationalError):
    """The database file cannot be opened (missing, unreadable)."""


@cache
def _library() -> _Sqlite:
    return _Sqlite()


def _declared_columns(uri: str, sql: str) -> list[tuple[str, str | None]]:
    lib = _library()
    handle = ctypes.c_void_p()
    try:
        if lib.open(uri.encode(), ctypes.byref(handle), _OPEN_READONLY_URI, None) != _SQLITE_OK:
            raise _Unavailable((lib.errmsg(handle) or b"cannot open").decode())
        statement = ctypes.c_void_p()
        if lib.prepare(handle, sql.encode(), -1, ctypes.byref(statement), None) != _SQLITE_OK:
            detail = (lib.errmsg(handle) or b"cannot prepare").decode(errors="replace")
            log.error("sqlite prepare failed", extra={"error": detail})
            raise StatementRefused(detail)
        try:
            return [
                (
                    (lib.name(statement, i) or b"").decode(),
                    None if (kind := lib.decltype(statement, i)) is None else kind.decode(),
                )
                for i in range(lib.count(statement))
            ]
        finally:
            lib.finalize(statement)
    finally:
        lib.close(handle)
