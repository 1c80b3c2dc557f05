"""The PostgreSQL source: read-only transactions, the server's own column types, batches, a time limit.

Report calls use psycopg (its C build): `:name` becomes `$n` (one lexer, `reportserver.sqltext`), values
are bound by the server's extended protocol (`RawCursor`: no client-side placeholder parsing, so a `%`
in the SQL is just a `%`), rows stream in chunks (libpq's chunked-rows mode), and each column's type is
the server's for it (`numeric(12,2)` is a decimal with 2 places). Exports use ADBC's PostgreSQL driver,
which reads `COPY (query) TO STDOUT` in PostgreSQL's binary format straight into Arrow. COPY takes no
parameters, and ADBC reads a parameterised statement whole into memory; so for an export the values are
bound by the driver into transaction-local settings (`set_config('reportserver.p1', $1, true)`), and the
statement reads them back with `current_setting('reportserver.p1')::<the type the server inferred for
that parameter>`: still bound, never pasted, and the result streams in batches. A numeric(p, s) of at
most 18 digits is sent as bigint units of its last place (ADBC gives numeric as text, slowly), and read
back as the exact decimals.

Every query runs in a `READ ONLY` transaction that is rolled back (never committed: a `set_config` in a
report's SQL is undone with it), on a session whose `statement_timeout` is the data source's limit. A
report call's time limit is cancelled on the server by `statement_timeout`; an export's counts only the
time spent waiting on the driver (never rendering) and cancels the running statement on the server
when it is over. Connections are kept for the next warm invocation (one idle connection per data
source and driver); one that fails is dropped.

A type outside the contract (json, uuid, intervals, arrays, enums, times of day...) reads as the text
PostgreSQL prints for it, on both paths (an export with such a column reads its rows through psycopg).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import select
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

from reportserver import sqltext
from reportserver.domain.errors import DataSourceFailed, QueryTookTooLong, SourceUnavailable, StatementRefused
from reportserver.domain.ports import (
    DEFAULT_BATCH_SIZE,
    ArrowResult,
    ColumnInfo,
    ProcedureInfo,
    QueryResult,
    ReadPlan,
    Row,
    TableInfo,
    unique_names,
)
from reportserver.domain.values import MAX_DECIMAL_DIGITS, Column, ColumnType, Converter, tagged

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 16_384
EXPORT_STATEMENT_CEILING_SECONDS = 900  # an export's statement never outlives the worker (Lambda's maximum)
PARAMETER_SETTING = "reportserver.p"

# The server's type OIDs that are contract types (pg_type.oid is fixed for built-in types).
_CONTRACT_OIDS: dict[int, ColumnType] = {
    16: ColumnType.BOOLEAN,
    17: ColumnType.BINARY,
    18: ColumnType.TEXT,  # "char"
    19: ColumnType.TEXT,  # name
    20: ColumnType.INTEGER,
    21: ColumnType.INTEGER,
    23: ColumnType.INTEGER,
    25: ColumnType.TEXT,
    700: ColumnType.FLOAT,
    701: ColumnType.FLOAT,
    1042: ColumnType.TEXT,  # char(n)
    1043: ColumnType.TEXT,  # varchar
    1082: ColumnType.DATE,
    1114: ColumnType.TIMESTAMP,
    1184: ColumnType.TIMESTAMPTZ,
    1700: ColumnType.DECIMAL,
}
# The contract types' own names (a column of any other type is named by its OID: an enum, a uuid...).
_CONTRACT_TYPE_NAMES = {
    16: "boolean",
    17: "bytea",
    18: '"char"',
    19: "name",
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    700: "real",
    701: "double precision",
    1042: "character",
    1043: "character varying",
    1082: "date",
    1114: "timestamp without time zone",
    1184: "timestamp with time zone",
    1700: "numeric",
}
_NUMERIC_OID = 1700
_TEXT_OID = 25


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where and as whom to connect; `password` is read from Secrets Manager by the caller."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    ssl_mode: str = "require"
    connect_timeout_seconds: int = 10

    def conninfo(self) -> str:
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "sslmode": self.ssl_mode,
            "connect_timeout": str(self.connect_timeout_seconds),
            "application_name": "reportserver",
        }
        return " ".join(f"{key}='{_escaped(value)}'" for key, value in parts.items())

    def uri(self) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{_uri_host(self.host)}:"
            f"{self.port}/{quote(self.database, safe='')}?sslmode={self.ssl_mode}"
            f"&connect_timeout={self.connect_timeout_seconds}&application_name=reportserver"
        )


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _uri_host(host: str) -> str:
    return f"[{quote(host, safe=':')}]" if ":" in host else quote(host, safe="")


_T = TypeVar("_T")


class _Idle:
    """At most one idle connection per data source and driver, kept across warm invocations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, str], Any] = {}

    def take(self, key: tuple[str, str]) -> Any | None:
        with self._lock:
            return self._connections.pop(key, None)

    def give(self, key: tuple[str, str], connection: Any) -> None:
        with self._lock:
            spare = self._connections.pop(key, None)
            self._connections[key] = connection
        if spare is not None:
            _close_quietly(spare)


IDLE = _Idle()


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # a connection being dropped may already be broken
        connection.close()


class PostgresSource:
    def __init__(self, target: PostgresTarget, query_timeout_seconds: float = 25.0) -> None:
        self._target = target
        self._timeout = query_timeout_seconds
        self._key = target.conninfo()

    # -- the row path (report calls, choices, the report view; exports with types outside Arrow's) --

    def _session(self, statement_timeout: float) -> Any:
        """A connection of this source's, idle and with its session settings, kept or new. A kept one the
        server has dropped since (a restart, an idle timeout, a terminated backend: the server says so
        on the socket) is closed and a new one opened, before any statement is sent on it."""
        connection = IDLE.take(self._idle_key(statement_timeout))
        if connection is not None and _settled(connection):
            return connection
        if connection is not None:
            log.info("postgresql kept connection was dropped by the server; reconnecting")
            _close_quietly(connection)
        return self._connect(statement_timeout)

    def _connect(self, statement_timeout: float) -> Any:
        import psycopg  # noqa: PLC0415 - only where a PostgreSQL source runs

        started = time.monotonic()
        try:
            connection = psycopg.connect(self._key, autocommit=True)
        except psycopg.OperationalError as error:
            raise _unavailable(error, time.monotonic() - started, self._target.password) from None
        try:
            connection.prepare_threshold = None  # the reset deallocates every prepared statement
            _set_session(connection, statement_timeout)
            _text_outside_contract(connection)
            _integers_as_bigint(connection)
            connection.execute("BEGIN READ ONLY")  # parked: the next statement runs in this transaction
        except psycopg.Error as error:
            _close_quietly(connection)
            raise _failure(error) from None
        return connection

    def _idle_key(self, statement_timeout: float) -> tuple[str, str]:
        return (self._key, f"psycopg/{statement_timeout}")

    def _first_use(self, statement_timeout: float, use: Callable[[Any], _T]) -> tuple[Any, _T]:
        """A session and the result of its first use; the session is released if that fails. Nothing is
        run twice: a statement that fails, for whatever reason, fails the call."""
        connection = self._session(statement_timeout)
        try:
            return connection, use(connection)
        except BaseException:
            self._release(connection, statement_timeout)
            raise

    def describe(self, sql: str) -> list[Column]:
        """The result's columns and their types, from preparing the statement on the server (nothing runs):
        a typo or an unknown table fails here."""
        positional, _names = sqltext.positional(sql, sqltext.Dialect.POSTGRES)
        import psycopg  # noqa: PLC0415

        try:
            connection, described = self._first_use(self._timeout, lambda c: _described(c, positional))
        except psycopg.Error as error:
            raise _failure(error) from None
        self._release(connection, self._timeout)
        return described[0]

    def _release(self, connection: Any, statement_timeout: float) -> None:
        import psycopg  # noqa: PLC0415

        # Each statement runs inside a READ ONLY transaction block opened before it (a `DO` block cannot
        # commit in one, nor VACUUM or ALTER SYSTEM run): rolling it back undoes whatever the statement
        # set, a role or a session setting included. What a rollback keeps goes too (advisory locks,
        # prepared statements), and the connection is parked in a new READ ONLY transaction for the next.
        # Sent, not waited for: its answer is read when the connection is next taken (`_settled`), so the
        # round trip is off the request's path.
        pgconn = connection.pgconn
        try:
            pgconn.send_query(RESET_AND_PARK)
            while pgconn.flush():
                select.select([], [pgconn.socket], [], 1.0)
        except (psycopg.Error, OSError):
            _close_quietly(connection)
            return
        IDLE.give(self._idle_key(statement_timeout), connection)

    # -- one moment of the database (a snapshot's kept queries) --

    @contextmanager
    def one_moment(self) -> Iterator[PostgresSource]:
        """This source with every statement in one REPEATABLE READ transaction (read only) on a connection
        of its own: a snapshot's kept queries all see the database as it was at one moment, so orders and
        their lines agree however the database changes while they are read."""
        import psycopg  # noqa: PLC0415

        connection = self._connect(self._timeout)  # new: parked in its READ ONLY transaction
        try:
            connection.execute("ROLLBACK")
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except psycopg.Error as error:
            _close_quietly(connection)
            raise _failure(error) from None
        try:
            yield _OneMoment(self._target, self._timeout, connection)
        finally:
            _close_quietly(connection)  # never given back: its transaction is this moment's

    def text_order(self) -> str | None:
        """How the database orders text: its default collation's name (`C`, `en_US.UTF-8`), `icu:<locale>`
        for an ICU collation; None if the server does not say."""
        # to_jsonb: the provider columns exist from PostgreSQL 15 on, and naming a missing one would fail
        sql = (
            "SELECT d.datcollate::text AS collation, to_jsonb(d) ->> 'datlocprovider' AS provider,"
            " coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale') AS locale"
            " FROM pg_database AS d WHERE d.datname = current_database()"
        )
        with self.run(sql, {}) as result:
            rows = [row for batch in result.batches for row in batch]
        if len(rows) != 1:
            return None
        collation, provider, locale = rows[0]
        if provider == "i":
            default = f"icu:{locale}"
        elif provider == "b":  # PostgreSQL 17's builtin provider: C and C.UTF-8 order by code point
            default = str(locale)
        elif collation is None:
            return None
        else:
            default = str(collation)
        # A table's or view's column may have a collation of its own; a non-deterministic one makes
        # different texts equal. Either is said after the default (which then no longer names an order).
        columns = (
            "SELECT coalesce(bool_or(a.attcollation NOT IN (100, 950, 951)), false) AS other,"  # default, C, POSIX
            " coalesce(bool_or(NOT (to_jsonb(co) ->> 'collisdeterministic')::boolean), false) AS varies"
            " FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_collation AS co ON co.oid = a.attcollation"
            " WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attcollation <> 0"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
        )
        with self.run(columns, {}) as result:
            other, varies = next(row for batch in result.batches for row in batch)
        if varies:
            return f"{default}; columns with a non-deterministic collation"
        if other:
            return f"{default}; columns with a collation of their own"
        return default

    # -- what the database holds (seed 001's data model schema) --

    def tables(self) -> list[TableInfo]:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.tables(self, introspection.POSTGRES)

    def columns(self, table: str) -> list[ColumnInfo] | None:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.columns(self, introspection.POSTGRES, table)

    def procedures(self) -> list[ProcedureInfo]:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.procedures(self, introspection.POSTGRES)

    def procedure_columns(self, name: str) -> list[ColumnInfo] | None:
        from reportserver.sources import introspection  # noqa: PLC0415 - the admin function only

        return introspection.procedure_columns(self, introspection.POSTGRES, name)

    @contextmanager
    def run(self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[QueryResult]:
        with self._run(sql, params, batch_size, self._timeout, None) as result:
            yield result

    @contextmanager
    def _run(
        self,
        sql: str,
        params: Mapping[str, Any],
        batch_size: int,
        statement_timeout: float,
        driver_limit: float | None,
    ) -> Iterator[QueryResult]:
        """Rows through psycopg, the statement limited by `statement_timeout` on the server and, with a
        `driver_limit`, by the time spent waiting on the driver (an export's rows: the renderer's time
        between batches does not count), cancelled on the server past it."""
        import psycopg  # noqa: PLC0415

        positional, names = sqltext.positional(sql, sqltext.Dialect.POSTGRES)
        # Numbers bind exactly (a Decimal as numeric, never through a float), dates and times as themselves.
        values = tuple(params.get(name) for name in names)
        watchdog = _Watchdog(driver_limit)

        def start(connection: Any) -> tuple[Any, list[Row], list[Field]]:
            cursor = psycopg.RawCursor(connection)
            rows = cursor.stream(positional, values, size=batch_size)
            first = watchdog.timed(connection, lambda: list(_take(rows, batch_size)))
            if cursor.description is None:  # no rows: the statement's columns from its description
                return rows, first, _fields(connection, positional, values)
            fields = [
                (d.name, d.type_code, *_numeric_shape(d.type_code, d.precision, d.scale)) for d in cursor.description
            ]
            return rows, first, fields

        try:
            connection, (rows, first, fields) = self._first_use(statement_timeout, start)
        except psycopg.Error as error:
            raise _failure(error) from None
        columns = _columns(fields)
        converters = _row_converters(fields, columns)

        def fetch() -> list[Row]:
            return watchdog.timed(connection, lambda: list(_take(rows, batch_size)))

        try:
            yield QueryResult(columns=columns, batches=_typed_batches(first, fetch, converters, batch_size))
        finally:
            # A stream left part-read holds the connection's lock (the rollback would wait for it forever):
            # closing it cancels the statement and reads what is left.
            with contextlib.suppress(Exception):
                rows.close()
            if watchdog.fired:  # a cancel was sent on it: it is not used again
                _close_quietly(connection)
            else:
                self._release(connection, statement_timeout)

    # -- the export path (Arrow) --

    @contextmanager
    def run_arrow(self, sql: str, params: Mapping[str, Any], plan: ReadPlan | None = None) -> Iterator[ArrowResult]:
        """The result as Arrow batches: natively (ADBC, binary COPY) when every column is of a type Arrow
        reads as the contract's, else from typed rows."""
        from reportserver.sources import arrow  # noqa: PLC0415 - pyarrow only on the export path

        plan = plan or ReadPlan()
        positional, names = sqltext.positional(sql, sqltext.Dialect.POSTGRES)
        import psycopg  # noqa: PLC0415

        settings = [_text(params.get(name)) for name in names]

        def statement_of(connection: Any) -> tuple[str, list[Column], list[Field]]:
            """The statement the export runs (each value read back from its setting as the type it has on
            the call path: described with the types psycopg sends, the server's guess for text and NULL)
            and its columns."""
            typed = _parameter_oids([params.get(n) for n in names])
            columns, fields, types = _described(connection, positional, typed)
            # A null is no setting (a setting cannot hold one): it is `NULL::<type>` in the statement.
            nulls = {number for number, value in enumerate(settings, 1) if value is None}
            return _settings_statement(sql, types, nulls), columns, fields

        try:
            connection, (statement, columns, fields) = self._first_use(EXPORT_STATEMENT_CEILING_SECONDS, statement_of)
        except psycopg.Error as error:
            raise _failure(error) from None
        self._release(connection, EXPORT_STATEMENT_CEILING_SECONDS)
        if plan.native and all(oid in _CONTRACT_OIDS for _name, oid, _places, _digits in fields):
            units = _units(fields, columns, plan)
            if units:
                statement = _in_units(statement, len(fields), units)
            with self._native(statement, settings, columns, plan, units) as result:
                yield result
            return
        with self._rows_for_export(sql, params) as rows:
            batches = arrow.RowBatches(rows.columns, plan)
            iterator = batches.batches(rows.batches)
            first = next(iterator, None)

            def all_batches() -> Iterator[Any]:
                if first is not None:
                    yield first
                    yield from iterator

            yield ArrowResult(schema=batches.schema(), batches=all_batches())

    @contextmanager
    def _rows_for_export(self, sql: str, params: Mapping[str, Any]) -> Iterator[QueryResult]:
        with self._run(sql, params, ARROW_BATCH_ROWS, EXPORT_STATEMENT_CEILING_SECONDS, self._timeout) as result:
            yield result

    def _adbc(self) -> tuple[Any, bool]:
        """An export connection, kept (True) or new."""
        connection = IDLE.take((self._key, "adbc"))
        if connection is not None:
            return connection, True
        return self._adbc_connect(), False

    def _adbc_connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc  # noqa: PLC0415

        started = time.monotonic()
        try:
            connection = adbc.connect(self._target.uri())
        except Exception as error:
            raise _unavailable(error, time.monotonic() - started, self._target.password) from None
        try:
            cursor = connection.cursor()
            cursor.execute(_SESSION_SETTINGS, parameters=(f"{EXPORT_STATEMENT_CEILING_SECONDS}s",))
            cursor.fetchall()
            cursor.close()
            connection.commit()
        except Exception as error:
            _close_quietly(connection)
            raise _unavailable(error, 0.0, self._target.password) from None
        return connection

    @contextmanager
    def _native(
        self, statement: str, settings: list[str | None], columns: list[Column], plan: ReadPlan, units: dict[int, int]
    ) -> Iterator[ArrowResult]:
        from reportserver.sources import arrow  # noqa: PLC0415

        connection, kept = self._adbc()
        cursor = connection.cursor()
        clock = arrow.QueryClock(self._timeout)
        read_ahead = None
        healthy = False
        busy = threading.Lock()  # held by the reader thread while it is inside the driver
        started, finished = threading.Event(), threading.Event()

        def read_first() -> tuple[Any, Any]:
            return _first_native_read(cursor, settings, statement, started)

        try:
            try:
                reader, first = _bounded(_holding(busy, read_first), clock)
            except DataSourceFailed:
                # A kept connection that failed its very first command (before the report's statement was
                # sent) was dropped by the server: once more on a new one. Never after: nothing runs twice.
                if not kept or started.is_set() or clock.over() or not _quiet(cursor, busy, cancel=False):
                    raise
                busy.release()
                log.info("postgresql (adbc) kept connection was dropped by the server; reconnecting")
                _close_quietly(connection)
                connection = self._adbc_connect()
                cursor = connection.cursor()
                reader, first = _bounded(_holding(busy, read_first), clock)
            if first is None:
                first = arrow.empty_batch(reader.schema)
            decimals = _Decimals(columns, units)
            first = decimals.of(first)
            typing = arrow.NativeBatches(columns, first, plan)

            def batches() -> Iterator[Any]:
                yield typing.apply(first)
                for batch in _native_batches(reader, busy):
                    yield typing.apply(decimals.of(batch))
                finished.set()

            read_ahead = arrow.prefetched(batches(), clock)
            yield ArrowResult(schema=typing.schema, batches=read_ahead)
            healthy = True
        finally:
            complete = finished.is_set()
            if not complete:  # stopped early (an error, a limit, a consumer that had enough): stop the server
                _cancel(cursor)
            if read_ahead is not None:
                read_ahead.close()
            healthy = healthy and complete and not clock.over()
            self._end_native(connection, cursor, busy, healthy=healthy, cancel=not complete)

    def _end_native(self, connection: Any, cursor: Any, busy: threading.Lock, healthy: bool, cancel: bool) -> None:
        """A reader thread still inside the driver (a query past its limit) owns the connection: the
        statement is cancelled on the server until the thread is out; touching the connection before
        then would run two commands on it at once (libpq then waits forever)."""
        if not _quiet(cursor, busy, cancel=cancel):
            log.warning("postgresql (adbc) reader did not stop after cancel; its connection is abandoned")
            threading.Thread(target=_close_when_free, args=(connection, busy), daemon=True).start()
            return
        try:
            cursor.close()
            connection.rollback()
            if healthy:  # a session's advisory locks outlive the rollback: none stays on a kept connection
                unlock = connection.cursor()
                unlock.execute("SELECT pg_advisory_unlock_all()")
                unlock.fetchall()
                unlock.close()
                connection.rollback()
        except Exception:
            healthy = False
        finally:
            busy.release()
        if healthy:
            IDLE.give((self._key, "adbc"), connection)
        else:
            _close_quietly(connection)


SETTLE_SECONDS = 5.0  # how long a kept connection's reset may take to answer before it is given up


def _settled(connection: Any) -> bool:
    """A kept connection's reset, read back (waiting at most SETTLE_SECONDS): every part of it done, the
    connection parked in its READ ONLY transaction, and the server not since gone. Else it is not used."""
    import psycopg  # noqa: PLC0415

    if connection.closed:
        return False
    pgconn, done = connection.pgconn, (psycopg.pq.ExecStatus.COMMAND_OK, psycopg.pq.ExecStatus.TUPLES_OK)
    deadline = time.monotonic() + SETTLE_SECONDS
    settled = True
    try:
        while True:
            while pgconn.is_busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
                    return False
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            settled = settled and result.status in done
    except (psycopg.Error, OSError):
        return False
    return (
        settled
        and pgconn.status == psycopg.pq.ConnStatus.OK
        and connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        and not _dropped(connection)
    )


def _dropped(connection: Any) -> bool:
    """Whether the server has spoken on an idle connection since it was kept: on an idle connection it
    says something only when it ends it (a terminated backend, a shutdown), so the connection is not
    used again. No round trip."""
    try:
        readable, _w, _x = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_SESSION_SETTINGS = (
    "SELECT set_config('statement_timeout', $1, false), set_config('TimeZone', 'UTC', false),"
    " set_config('DateStyle', 'ISO', false), set_config('IntervalStyle', 'iso_8601', false),"
    " set_config('extra_float_digits', '1', false), set_config('default_transaction_read_only', 'on', false)"
)


def _set_session(connection: Any, statement_timeout: float) -> None:
    """Session settings for every statement on this connection: its time limit, UTC, ISO dates, floats
    printed in their shortest exact form, and read-only transactions by default."""
    _raw(connection).execute(_SESSION_SETTINGS, (_milliseconds(statement_timeout),))


def _milliseconds(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


RESET_AND_PARK = b"ROLLBACK; SELECT pg_advisory_unlock_all(); DEALLOCATE ALL; BEGIN READ ONLY"


def _integers_as_bigint(connection: Any) -> None:
    """A Python int binds as bigint, on both paths (psycopg's default picks the smallest type that holds
    the value, and `:x << 20` of 1 as smallint is 0)."""
    from psycopg.types.numeric import Int8Dumper  # noqa: PLC0415

    connection.adapters.register_dumper(int, Int8Dumper)


def _raw(connection: Any) -> Any:
    import psycopg  # noqa: PLC0415

    return psycopg.RawCursor(connection)


def _text_outside_contract(connection: Any) -> None:
    """Every type outside the contract loads as the text the server prints for it (json stays its text,
    a uuid its canonical form), as the export path reads it; numeric loads exactly (Decimal)."""
    from psycopg.types.string import TextLoader  # noqa: PLC0415

    adapters = connection.adapters
    for info in adapters.types:
        if info.oid not in _CONTRACT_OIDS:
            adapters.register_loader(info.oid, TextLoader)
        array_oid = getattr(info, "array_oid", 0)
        if array_oid:  # arrays of any type, contract types' included, are their text: {1,2}
            adapters.register_loader(array_oid, TextLoader)


def _described(
    connection: Any, positional: str, parameter_oids: list[int] | None = None
) -> tuple[list[Column], list[Field], list[str]]:
    """Prepare the statement unnamed: its result's columns and fields, and its parameters' types."""
    fields, parameter_types = _description(connection, positional, parameter_oids)
    return _columns(fields), fields, parameter_types


def _description(
    connection: Any, positional: str, parameter_oids: list[int] | None = None
) -> tuple[list[Field], list[str]]:
    """The prepared statement's result fields as the server describes them, and its parameters' types."""
    import psycopg  # noqa: PLC0415

    pgconn = connection.pgconn
    result = pgconn.prepare(b"", positional.encode(), param_types=parameter_oids or None)
    if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise _not_prepared(result.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY))
    described = pgconn.describe_prepared(b"")
    if described.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise DataSourceFailed("The report's query failed on its data source")
    fields: list[Field] = [
        (
            (described.fname(i) or b"").decode(),
            described.ftype(i),
            *_shape_from_modifier(described.ftype(i), described.fmod(i)),
        )
        for i in range(described.nfields)
    ]
    if described.nfields == 0:
        raise DataSourceFailed("The report's statement returns no rows: a report runs one SELECT")
    parameter_types = [_type_name(connection, described.param_type(i)) for i in range(described.nparams)]
    return fields, parameter_types


def _fields(connection: Any, positional: str, values: tuple[Any, ...]) -> list[Field]:
    """The statement's result fields as the server describes them (a statement that gave no rows)."""
    return _description(connection, positional, _parameter_oids(list(values)))[0]


_TYPE_NAMES: dict[int, str] = {}
_FIRST_USER_OID = 16384  # below it, a type's OID is the same on every server; above, it is one database's


def _type_name(connection: Any, oid: int) -> str:
    if oid in _TYPE_NAMES:
        return _TYPE_NAMES[oid]
    # With -1 (no modifier), not NULL: `character` and `bit` without a length read as char(1) and bit(1),
    # and would cut a bound 'ABC' to 'A'; `bpchar` and `"bit"` keep it whole.
    row = _raw(connection).execute("SELECT format_type($1::oid, -1)", (oid,)).fetchone()
    name = row[0] if row else "text"
    if oid < _FIRST_USER_OID:
        _TYPE_NAMES[oid] = name
    return name


def _shape_from_modifier(oid: int, modifier: int) -> tuple[int | None, int | None]:
    """numeric(p, s) carries p and s in its type modifier: ((p << 16) | (s & 0x7ff)) + 4, s an 11-bit
    signed number (-1000 to 1000 since PostgreSQL 15); plain numeric has none."""
    if oid != _NUMERIC_OID or modifier < 4:
        return None, None
    packed = modifier - 4
    return _numeric_shape(oid, (packed >> 16) & 0xFFFF, ((packed & 0x7FF) ^ 1024) - 1024)


def _numeric_shape(oid: int, precision: int | None, scale: int | None) -> tuple[int | None, int | None]:
    """A numeric(p, s) column's places and digits as the server prints its values: every value has
    exactly max(s, 0) places (a negative s rounds to tens, hundreds...: whole numbers) and at most
    max(p, s) - min(s, 0) digits. (None, None) for any other column, plain numeric's included."""
    if oid != _NUMERIC_OID or precision is None or scale is None or precision <= 0:
        return None, None
    return max(scale, 0), max(precision, scale) - min(scale, 0)


# A result column: name, type OID, and for numeric(p, s) the places and digits of its values.
Field = tuple[str, int, int | None, int | None]


def _columns(fields: list[Field]) -> list[Column]:
    """The report's tag wins over the server's type; a type outside the contract is text. A report's
    statement describes the same fields on every call: each set is resolved once per container."""
    return list(_resolved_columns(tuple(fields)))


@functools.lru_cache(maxsize=256)
def _resolved_columns(fields: tuple[Field, ...]) -> tuple[Column, ...]:
    resolved = []
    for name, oid, places, digits in fields:
        plain, kind, tag_scale = tagged(name)
        native = _CONTRACT_TYPE_NAMES.get(oid, f"oid {oid}")
        if kind is None:
            fixed = digits is not None and digits <= MAX_DECIMAL_DIGITS
            contract = _CONTRACT_OIDS.get(oid, ColumnType.TEXT)
            resolved.append(Column(plain, contract, places, fixed_places=fixed, native=native))
        else:
            resolved.append(Column(plain, kind, tag_scale, native=native))
    names = unique_names([c.name for c in resolved])
    return tuple(
        Column(unique, c.type, c.scale, c.fixed_places, c.native) for unique, c in zip(names, resolved, strict=True)
    )


# Contract types whose value psycopg loads is already the contract's value (nothing to check).
_AS_LOADED = frozenset(
    {
        ColumnType.TEXT,
        ColumnType.INTEGER,
        ColumnType.FLOAT,
        ColumnType.BOOLEAN,
        ColumnType.DATE,
        ColumnType.TIMESTAMP,
        ColumnType.BINARY,
    }
)


def _row_converters(fields: list[Field], columns: list[Column]) -> list[Callable[[Any, int], Any] | None]:
    """Per column: None where psycopg's value is the contract's as loaded (the server typed the column);
    a check for NaN and infinities on numeric(p, s); the full conversion for what a report's tag types."""
    converters: list[Callable[[Any, int], Any] | None] = []
    for (name, _oid, _scale, _fixed), column in zip(fields, columns, strict=True):
        if tagged(name)[1] is not None or (column.type not in _AS_LOADED and not column.fixed_places):
            converters.append(Converter(column))
        elif column.fixed_places:
            converters.append(_FiniteDecimal(column))
        else:
            converters.append(None)
    return converters


class _OneMoment(PostgresSource):
    """A source whose statements all run on one connection, in the transaction it was given."""

    def __init__(self, target: PostgresTarget, query_timeout_seconds: float, connection: Any) -> None:
        super().__init__(target, query_timeout_seconds)
        self._connection = connection

    def _session(self, statement_timeout: float) -> Any:
        return self._connection

    def _release(self, connection: Any, statement_timeout: float) -> None:
        """Kept for the next statement: the transaction ends with the moment (`one_moment`)."""


class _FiniteDecimal:
    """numeric(p, s) as psycopg loads it: exactly s places in at most 38 digits, unless NaN or infinite."""

    def __init__(self, column: Column) -> None:
        self._refuse = Converter(column)  # which refuses a NaN or an infinity, naming column and row

    def __call__(self, value: Any, row: int) -> Any:
        if value is None or value.is_finite():
            return value
        return self._refuse(value, row)


def _take(rows: Iterator[Any], count: int) -> Iterator[Any]:
    for _ in range(count):
        row = next(rows, None)
        if row is None:
            return
        yield row


def _typed_batches(
    first: list[Row],
    fetch: Callable[[], list[Row]],
    converters: list[Callable[[Any, int], Any] | None],
    batch_size: int,
) -> Iterator[list[Row]]:
    import psycopg  # noqa: PLC0415

    checked = [(i, convert) for i, convert in enumerate(converters) if convert is not None]
    row_number = 0
    batch = first
    while batch:
        if checked:
            batch = [_converted(row, checked, row_number + offset + 1) for offset, row in enumerate(batch)]
        yield batch
        row_number += len(batch)
        if len(batch) < batch_size:
            return
        try:
            batch = fetch()
        except psycopg.Error as error:
            raise _failure(error) from None


class _Watchdog:
    """Counts the time spent waiting on the driver; past its limit, cancels the statement on the server
    (from a timer thread: the read is blocked in libpq) and the read fails as over its time limit."""

    def __init__(self, limit: float | None) -> None:
        self._limit = limit
        self._spent = 0.0
        self.fired = False

    def timed(self, connection: Any, read: Callable[[], _T]) -> _T:
        if self._limit is None:
            return read()
        remaining = self._limit - self._spent
        if remaining <= 0:
            raise QueryTookTooLong()

        def fire() -> None:
            self.fired = True
            with contextlib.suppress(Exception):
                connection.cancel_safe(timeout=5.0)

        timer = threading.Timer(remaining, fire)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            return read()
        finally:
            timer.cancel()
            timer.join()  # a cancel being sent has been sent before anything else uses the connection
            self._spent += time.monotonic() - started


def _converted(row: Row, checked: list[tuple[int, Callable[[Any, int], Any]]], number: int) -> Row:
    values = list(row)
    for i, convert in checked:
        values[i] = convert(values[i], number)
    return tuple(values)


def _text(value: Any) -> str | None:
    """A bound value as the text PostgreSQL reads for its type (for the export path's settings)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _parameter_oids(values: list[Any]) -> list[int]:
    """The type each value binds as on the call path (psycopg's dumpers, ints as bigint); 0 (for the
    server to infer) for text and NULL, which psycopg sends untyped."""
    return [_oid_of(value) for value in values]


_PARAMETER_OIDS = {bool: 16, int: 20, Decimal: 1700, float: 701, date: 1082, bytes: 17}


def _oid_of(value: Any) -> int:
    if isinstance(value, datetime):
        return 1184 if value.tzinfo is not None else 1114  # timestamptz, timestamp
    return _PARAMETER_OIDS.get(type(value), 0)


def _settings_statement(sql: str, parameter_types: list[str], nulls: Collection[int] = ()) -> str:
    """Each `:name` (numbered by first use, as `sqltext.positional` numbers them) becomes its transaction
    setting read back as the type the server inferred for that parameter; a null one, `NULL` of that type."""
    order: dict[str, int] = {}
    pieces: list[str] = []
    last = 0
    for variable in sqltext.variables(sql, sqltext.Dialect.POSTGRES):
        number = order.setdefault(variable.name, len(order) + 1)
        kind = parameter_types[number - 1]
        # A scalar subquery (an InitPlan): the setting is read and cast once, not once per row scanned.
        value = "NULL" if number in nulls else f"(SELECT current_setting('{PARAMETER_SETTING}{number}'))"
        pieces += [sql[last : variable.start], f"({value}::{kind})"]
        last = variable.end
    pieces.append(sql[last:])
    return "".join(pieces)


# numeric(p, s) columns of at most this many digits are exported as whole units of their last place.
UNITS_DIGITS = 18


def _units(fields: list[Field], columns: list[Column], plan: ReadPlan) -> dict[int, int]:
    """The export's numeric(p, s) columns of at most 18 digits, by position, with their places: read as
    bigint units of their last place (`_in_units`). ADBC gives numeric as text, which is slow to make
    and to parse: a million rows with two such columns read in 2.4-2.5 s as text, 1.6-1.7 s as units."""
    return {
        index: column.scale
        for index, ((_name, _oid, _places, digits), column) in enumerate(zip(fields, columns, strict=True))
        # fixed_places: the server's numeric(p, s), not a report's tag (`_columns` decided it)
        if column.fixed_places
        and column.scale is not None
        and digits is not None
        and digits <= UNITS_DIGITS
        and column.name not in plan.overrides
    }


def _in_units(statement: str, count: int, units: dict[int, int]) -> str:
    """The statement with each of `units`' columns as its value times 10^places, a bigint: exact, since
    every value of numeric(p, s) has at most `places` places and under 10^18 units. NaN (the one value
    numeric(p, s) holds that is no number) becomes the mark `arrow.NOT_A_NUMBER_UNITS`, which no value
    reaches, and the reader refuses it by row; NULL stays NULL. The statement's columns are renamed by
    position (`q(c1, ...)`): its own names may repeat."""
    from reportserver.sources.arrow import NOT_A_NUMBER_UNITS  # noqa: PLC0415 - pyarrow only on exports

    names = [f"c{index + 1}" for index in range(count)]
    outputs = ", ".join(
        f"CASE WHEN q.{name} = 'NaN' THEN {NOT_A_NUMBER_UNITS} ELSE (q.{name} * 1{'0' * units[index]})::int8 END"
        if index in units
        else f"q.{name}"
        for index, name in enumerate(names)
    )
    # A statement may end with ';' (the last thing in it: a comment after one is a second statement at
    # save), which a subquery cannot hold; the line break ends a `--` comment on its last line. OFFSET 0
    # keeps the planner from folding the statement into this one, which would copy each column's
    # expression (a subquery, a function) into both places that name it: it runs once per row, as written.
    inner = re.sub(r"[\s;]+$", "", statement)
    return f"SELECT {outputs} FROM (SELECT * FROM ({inner}\n) AS s OFFSET 0) AS q({', '.join(names)})"  # noqa: S608


class _Decimals:
    """The export's batches with `_in_units`' columns as the decimals they stand for."""

    def __init__(self, columns: list[Column], units: dict[int, int]) -> None:
        self._columns = columns
        self._units = units
        self._rows = 0

    def of(self, batch: Any) -> Any:
        if not self._units:
            return batch
        import pyarrow as pa  # noqa: PLC0415

        from reportserver.sources import arrow  # noqa: PLC0415

        arrays = list(batch.columns)
        for index, places in self._units.items():
            arrays[index] = arrow.decimal_from_units(arrays[index], self._columns[index], places, self._rows)
        self._rows += batch.num_rows
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _bounded(read: Callable[[], Any], clock: Any) -> Any:
    """The first read (where the server does a sorting query's work) in the reader thread, so that the
    caller stops waiting at the query's limit; the statement is then cancelled on the server."""
    from reportserver.sources import arrow  # noqa: PLC0415

    def once() -> Iterator[Any]:
        try:
            yield read()
        except Exception as error:
            raise _native_failure(error) from None

    return next(arrow.prefetched(once(), clock))


def _holding(busy: threading.Lock, call: Callable[[], _T]) -> Callable[[], _T]:
    def held() -> _T:
        with busy:
            return call()

    return held


CANCEL_GRACE_SECONDS = 10.0  # how long a cancelled statement may take to give its connection back


def _quiet(cursor: Any, busy: threading.Lock, cancel: bool) -> bool:
    """Whether the connection is free of the reader thread (then held by the caller, who releases it).
    With `cancel`, the running statement is cancelled on the server, again every quarter second (a
    cancel that arrives between two of the reader's statements cancels nothing)."""
    deadline = time.monotonic() + CANCEL_GRACE_SECONDS
    while True:
        if cancel:
            _cancel(cursor)
        if busy.acquire(timeout=0.25):
            return True
        if time.monotonic() > deadline:
            return False


def _close_when_free(connection: Any, busy: threading.Lock) -> None:
    with busy:
        _close_quietly(connection)


NATIVE_BATCH_BYTES = 2 * 1024 * 1024  # the driver's default (16 MiB) keeps several times that per batch in flight


def _first_native_read(
    cursor: Any, settings: list[str | None], statement: str, started: threading.Event
) -> tuple[Any, Any]:
    """In a read-only transaction: the bound values set as transaction settings, the statement, and its
    first batch (the server has done a sorting query's work by then). `started` once the connection has
    answered its first command."""
    cursor.execute("SET TRANSACTION READ ONLY")
    started.set()
    bound = [(n, value) for n, value in enumerate(settings, 1) if value is not None]
    if bound:
        assignments = ", ".join(
            f"set_config('{PARAMETER_SETTING}{n}', ${place}, true)" for place, (n, _value) in enumerate(bound, 1)
        )
        cursor.execute(f"SELECT {assignments}", parameters=tuple(value for _n, value in bound))
        cursor.fetchall()
    cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(NATIVE_BATCH_BYTES)})
    cursor.execute(statement)
    reader = cursor.fetch_record_batch()
    return reader, next(iter(reader), None)


def _native_batches(reader: Any, busy: threading.Lock) -> Iterator[Any]:
    batches = iter(reader)
    while True:
        with busy:
            try:
                batch = next(batches, None)
            except Exception as error:
                raise _native_failure(error) from None
        if batch is None:
            return
        yield batch


def _cancel(cursor: Any) -> None:
    try:
        cursor.adbc_cancel()
    except Exception:
        log.warning("postgresql (adbc) cancel failed")


def _unavailable(error: Exception, waited: float, password: str) -> SourceUnavailable:
    """A source that cannot be reached, or refuses the login: the message says which, never the
    server's own text (it may name the user or the host's addresses)."""
    text = str(error)
    logged = _without_secrets(text.replace(password, "***") if password else text)
    log.error("postgresql connect failed", extra={"error": logged, "waited_seconds": round(waited, 3)})
    lowered = text.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        reason = "the server refused the user name or password"
    elif "does not exist" in lowered and "database" in lowered:
        reason = "the database does not exist on the server"
    elif "could not translate host name" in lowered or "name or service not known" in lowered:
        reason = "the host name is unknown"
    elif "timeout" in lowered or "timed out" in lowered:
        reason = "the server did not answer in time"
    elif "connection refused" in lowered:
        reason = "the server refused the connection (is it running, and on this port?)"
    elif "ssl" in lowered:
        reason = "the TLS connection could not be made"
    else:
        reason = "the server could not be reached"
    return SourceUnavailable(f"The report's data source is not available: {reason}")


def _without_secrets(text: str) -> str:
    return text.split("password=", maxsplit=1)[0] if "password=" in text else text


def _not_prepared(message: bytes | None) -> StatementRefused:
    detail = (message or b"the statement does not prepare").decode(errors="replace")
    log.error("postgresql prepare failed", extra={"error": detail})
    return StatementRefused(detail)


def _failure(error: Exception) -> DataSourceFailed:
    """The driver's message may quote SQL: it goes to the log, never to the caller."""
    import psycopg  # noqa: PLC0415

    log.error("postgresql query failed", extra={"error": str(error), "error_type": type(error).__name__})
    if isinstance(error, psycopg.errors.QueryCanceled):
        return QueryTookTooLong()
    if isinstance(error, psycopg.OperationalError):
        return SourceUnavailable("The report's data source is not available: the connection was lost")
    return DataSourceFailed("The report's query failed on its data source")


def _native_failure(error: Exception) -> Exception:
    if isinstance(error, DataSourceFailed):
        return error
    text = str(error)
    log.error("postgresql (adbc) query failed", extra={"error": text, "error_type": type(error).__name__})
    if "57014" in text or "canceling statement" in text:
        return QueryTookTooLong()
    return DataSourceFailed("The report's query failed on its data source")
