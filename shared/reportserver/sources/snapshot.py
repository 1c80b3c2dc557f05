"""A data model's snapshot as a SQLite file: each kept query's typed rows as a table, every value kept so
that the SQLite source (`reportserver.sources.sqlite`) reads back what the live database gave.

Each column is declared with the type the SQLite source reads it as (`reportserver.domain.values`), and
its values stored in the form that reads back unchanged and that SQL compares as the live database does:

- decimal: `DECIMAL(38,s)` (NUMERIC affinity, so `amount > :min` compares numbers): a whole value as an
  INTEGER, any other as a REAL when the REAL holds exactly that number (up to about 15 significant
  digits); a value a REAL would round is refused, naming its column and row, never kept rounded. A
  decimal column without declared places whose values all have the same places is declared with them,
  so that 12.50 reads back as 12.50; with mixed places each value reads back equal, not always with
  its trailing zeros.
- integer `INTEGER`; float `REAL` (NaN refused: SQLite stores it as NULL; -0.0 reads back as 0.0);
  boolean `BOOLEAN` (1 or 0); binary `BLOB`; text `TEXT`;
- date `DATE` ('YYYY-MM-DD'); timestamp `TIMESTAMP` ('YYYY-MM-DD HH:MM:SS[.ffffff]', as the source binds
  a parameter, so comparisons of the texts compare the times); timestamptz `TIMESTAMPTZ` (in UTC, '+00:00');
- a column its engine types by its values (SQLite's expressions): no declared type, the values as given.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from reportserver.domain.errors import InvalidDefinition, ResultTooLarge, ValueDoesNotFit
from reportserver.domain.ports import Row
from reportserver.domain.snapshots import KeptColumn, KeptTable
from reportserver.domain.values import Column, ColumnType, decimal_scale
from reportserver.sources.sqlite import SqliteSource

_DECLARED = {
    ColumnType.TEXT: "TEXT",
    ColumnType.INTEGER: "INTEGER",
    ColumnType.FLOAT: "REAL",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.TIMESTAMPTZ: "TIMESTAMPTZ",
    ColumnType.BINARY: "BLOB",
}
_STAGING = "staging_"  # a table's name while its rows are written (SQLite cannot change a declared type)


def declared(column: Column, scale: int | None = None) -> str:
    """The declared type a column is kept with; `scale` for a decimal column without declared places."""
    if column.type is None:
        return ""
    if column.type is ColumnType.DECIMAL:
        places = column.scale if column.scale is not None else scale
        # REAL affinity (the word REAL): a whole value stays a REAL, never turned into an INTEGER that SQLite
        # would divide as an integer. The reader still reads DECIMAL, with its places.
        return "DECIMAL REAL" if places is None else f"DECIMAL REAL(38,{places})"
    return _DECLARED[column.type]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteSnapshot:
    """A new snapshot file at `path`; at most `max_bytes`. One table per kept query."""

    def __init__(self, path: Path, max_bytes: int, query_timeout_seconds: float = 60.0) -> None:
        path.unlink(missing_ok=True)
        self._path = path
        self._max_bytes = max_bytes
        self._timeout = query_timeout_seconds
        self._connection = sqlite3.connect(path, isolation_level=None)
        # A file made once and read many times: no journal is needed to write it (a failure discards it).
        self._connection.execute("PRAGMA journal_mode = OFF")
        self._connection.execute("PRAGMA synchronous = OFF")
        self._names: set[str] = set()

    def add_table(self, name: str, columns: Sequence[Column], batches: Iterator[list[Row]]) -> KeptTable:
        folded = name.casefold()
        if folded.startswith(("sqlite_", _STAGING)) or folded in self._names:
            raise InvalidDefinition(
                f"The snapshot cannot hold a table named '{name}': SQLite reserves the name, or another kept "
                "query's name differs from it only in case"
            )
        self._names.add(folded)
        names = [c.name for c in columns]
        if len({n.casefold() for n in names}) != len(names):
            raise InvalidDefinition(
                f"Custom query '{name}' has columns whose names differ only in case, which SQLite takes as one: "
                "give them distinct names"
            )
        staging = _quoted(_STAGING + name)
        encoders = [_encoder(c) for c in columns]
        places: list[set[int]] = [set() for _ in columns]
        plain = [i for i, c in enumerate(columns) if c.type is ColumnType.DECIMAL and c.scale is None]
        self._create(staging, columns, {})
        insert = f"INSERT INTO {staging} VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 - a quoted name
        rows = 0
        for batch in batches:
            encoded = []
            for offset, row in enumerate(batch, start=rows + 1):
                encoded.append(tuple(encode(value, offset) for encode, value in zip(encoders, row, strict=True)))
                for index in plain:
                    if row[index] is not None:
                        places[index].add(decimal_scale(row[index]))
            self._connection.execute("BEGIN")
            self._connection.executemany(insert, encoded)
            self._connection.execute("COMMIT")
            rows += len(batch)
            self._check_size()
        # A plain decimal column whose values all had the same places is declared with them.
        scales = {i: next(iter(places[i])) for i in plain if len(places[i]) == 1}
        final = _quoted(name)
        if scales:
            self._create(final, columns, scales)
            self._connection.execute(f"INSERT INTO {final} SELECT * FROM {staging}")  # noqa: S608 - quoted names
            self._connection.execute(f"DROP TABLE {staging}")
            self._check_size()
        else:
            self._connection.execute(f"ALTER TABLE {staging} RENAME TO {final}")
        nulls = self._nulls(final, columns)
        kept = [
            KeptColumn(name=c.name, declared=declared(c, scales.get(i)), nulls=nulls[i], native=c.native)
            for i, c in enumerate(columns)
        ]
        return KeptTable(name=name, rows=rows, columns=kept)

    def _nulls(self, table: str, columns: Sequence[Column]) -> tuple[int, ...]:
        """How many NULLs each column holds (a column without any orders alike on both engines:
        `snapshot_sql`), counted by SQLite in one pass over the table written."""
        counts = ", ".join(f"count(*) - count({_quoted(c.name)})" for c in columns)
        return tuple(self._connection.execute(f"SELECT {counts} FROM {table}").fetchone())  # noqa: S608 - quoted

    def _create(self, table: str, columns: Sequence[Column], scales: dict[int, int]) -> None:
        definitions = ", ".join(
            f"{_quoted(c.name)} {declared(c, scales.get(i))}".rstrip() for i, c in enumerate(columns)
        )
        self._connection.execute(f"CREATE TABLE {table} ({definitions})")

    def _check_size(self) -> None:
        pages = self._connection.execute("PRAGMA page_count").fetchone()[0]
        size = self._connection.execute("PRAGMA page_size").fetchone()[0]
        if pages * size > self._max_bytes:
            raise ResultTooLarge(
                f"The snapshot is over its limit of {self._max_bytes // (1024 * 1024)} MB: keep fewer rows or "
                "columns (a kept query may filter and aggregate)"
            )

    def describe(self, sql: str) -> list[Column]:
        return SqliteSource(str(self._path), self._timeout).describe(sql)

    def finish(self) -> int:
        self._connection.close()
        return self._path.stat().st_size

    def discard(self) -> None:
        self._connection.close()
        self._path.unlink(missing_ok=True)


def describe_on(tables: list[KeptTable], sql: str) -> list[Column]:
    """A statement's columns on a snapshot's tables, from an empty copy of them: the declared types are
    all a statement's columns come from (`StatementRefused` if it does not prepare there)."""
    with TemporaryDirectory(prefix="snapshot-schema-") as folder:
        path = Path(folder) / "schema.sqlite"
        with sqlite3.connect(path) as connection:
            for table in tables:
                columns = ", ".join(f"{_quoted(c.name)} {c.declared}".rstrip() for c in table.columns)
                connection.execute(f"CREATE TABLE {_quoted(table.name)} ({columns})")
        connection.close()
        return SqliteSource(str(path)).describe(sql)


Encoder = Callable[[Any, int], Any]


def _encoder(column: Column) -> Encoder:  # noqa: PLR0911 - one encoder per type reads best
    kind = column.type
    if kind is ColumnType.DECIMAL:
        return lambda value, row: None if value is None else _exact_number(column, value, row)
    if kind is ColumnType.FLOAT or kind is None:
        return lambda value, row: _refuse_nan(column, value, row)
    if kind is ColumnType.BOOLEAN:
        return lambda value, _row: None if value is None else int(value)
    if kind is ColumnType.DATE:
        return lambda value, _row: None if value is None else value.isoformat()
    if kind is ColumnType.TIMESTAMP:
        return lambda value, _row: None if value is None else value.isoformat(sep=" ")
    if kind is ColumnType.TIMESTAMPTZ:
        # UTC without an offset: compared as text with a bound parameter, which is written so (an offset in
        # one and not the other would put 09:00 after 09:00)
        return lambda value, _row: (
            None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        )
    return lambda value, _row: value


def _refuse_nan(column: Column, value: Any, row: int) -> Any:
    if isinstance(value, float) and math.isnan(value):
        raise ValueDoesNotFit(column.name, row, "number a snapshot keeps (SQLite has no NaN)", value)
    if isinstance(value, date | datetime | Decimal):  # an engine-typed value of a type SQLite has not
        raise ValueDoesNotFit(column.name, row, "value SQLite stores as it is", value)
    return value


def _exact_number(column: Column, value: Decimal, row: int) -> float:
    """A decimal as the one SQLite REAL that is exactly it. Never an INTEGER, even when whole: SQLite
    divides two integers as integers (7.00 / 2 would be 3, not 3.50), and a column mixing both would
    divide some rows one way and some the other."""
    number = float(value)
    if not math.isfinite(number) or Decimal(repr(number)) != value:
        raise ValueDoesNotFit(
            column.name, row, "decimal a snapshot keeps exactly (about 15 significant digits: SQLite's REAL)", value
        )
    return number
