"""Snapshots of data models (seed 004's "refresh a semantic data input model"): what a model keeps, what a
snapshot is, and when a report may read one instead of the live database.

A model keeps the rows of its marked custom queries (all of them when the model itself is marked), each
as a table named after its query, in one SQLite file: a report's own SQL then reads the snapshot as it
reads the live database (`SELECT ... FROM orders` finds the kept query `orders`). A refresh makes a new
snapshot; the model's reports read the newest one, once each report has been shown to get the same
columns of the same types from it as from the live database, and to compute only what SQLite computes
as the live database does (`snapshot_sql`: a sum of decimals SQLite would add in floating point is
refused, never answered rounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec

from reportserver.domain.errors import InvalidParameter
from reportserver.domain.ports import CustomQuery, DataSource, Row
from reportserver.domain.values import Column, ColumnType

# The engines a snapshot is made from: a database a refresh reads with the same typed rows as a call.
SNAPSHOT_KINDS = ("postgresql", "sqlite")
SNAPSHOT_PREFIX = "snapshots/"  # where the files are, in the stack's bucket (each function's IAM names it)


class KeptColumn(msgspec.Struct, kw_only=True):
    name: str
    declared: str  # the column's declared type in the snapshot's SQLite table: how it reads back
    nulls: int | None = None  # how many of its values are NULL (None: not counted, a snapshot made before)
    native: str = ""  # its type on the live database ("integer", "character", "mood"...; "": not known)


class KeptTable(msgspec.Struct, kw_only=True):
    """One kept query in a snapshot: its rows as a table of its name."""

    name: str
    rows: int
    columns: list[KeptColumn] = msgspec.field(default_factory=list)


class Snapshot(msgspec.Struct, kw_only=True):
    """A model's snapshot: its file in S3, when its queries began to run on the live database (what its
    rows are as of), and the reports (id: version) shown to read the same columns from it."""

    model_id: str
    refresh_id: str
    key: str
    taken_at: datetime
    rows: int
    bytes: int
    tables: list[KeptTable]
    reports: dict[str, int] = msgspec.field(default_factory=dict)
    text_order: str | None = None  # how the live database ordered text (its collation), when it was taken

    def view(self) -> dict[str, Any]:
        return {
            "refreshId": self.refresh_id,
            "takenAt": self.taken_at,
            "rows": self.rows,
            "bytes": self.bytes,
            "tables": [{"name": t.name, "rows": t.rows} for t in self.tables],
        }

    def checked(self, report_id: int, version: int) -> bool:
        return self.reports.get(str(report_id)) == version


def kept_queries(model: DataSource) -> list[CustomQuery]:
    """The custom queries whose rows the model's snapshot holds."""
    return [q for q in model.custom_queries if model.snapshot or q.snapshot]


def keeps_snapshot(model: DataSource) -> bool:
    """Whether the model is marked for snapshots (itself, or one of its custom queries)."""
    return model.snapshot or any(q.snapshot for q in model.custom_queries)


def check_marks(model: DataSource) -> None:
    """A model may keep a snapshot of what a refresh can read again the same way each time: the rows of
    custom queries without parameters, on PostgreSQL or SQLite."""
    if not keeps_snapshot(model):
        return
    if model.kind not in SNAPSHOT_KINDS:
        raise InvalidParameter(
            "snapshot",
            f"Data model {model.number} is an Athena model: snapshots are kept of PostgreSQL and SQLite models "
            "(Athena reads its data from S3 already)",
        )
    for query in kept_queries(model):
        if query.parameters:
            raise InvalidParameter(
                "snapshot",
                f"Custom query '{query.name}' takes parameters, so it has no one set of rows to keep: a snapshot "
                "keeps only custom queries without parameters (unmark it, or the model)",
            )


def column_difference(live: Sequence[Column], kept: Sequence[Column]) -> str | None:
    """None when a statement gives the same columns from the snapshot as from the live database; else
    what differs, in words. A column SQLite types by its values (an expression: `count(*)`, `a || b`)
    passes only where the live database says whole number or text, which SQLite's values then are."""
    live_names, kept_names = [c.name for c in live], [c.name for c in kept]
    if live_names != kept_names:
        live_text, kept_text = ", ".join(live_names), ", ".join(kept_names)
        return f"its columns are {live_text} on the live database but {kept_text} on the snapshot"
    for mine, theirs in zip(live, kept, strict=True):
        if _same_type(mine, theirs):
            continue
        hint = ""
        if theirs.type is None and mine.type is ColumnType.DECIMAL:
            hint = f' (SQLite gives it no type): tag it with its places, AS "{mine.name} [decimal(2)]"'

        live_type, kept_type = _type_words(mine), _type_words(theirs)
        return f"column '{mine.name}' is {live_type} on the live database but {kept_type} on the snapshot{hint}"
    return None


def _same_type(live: Column, kept: Column) -> bool:
    if kept.type is None:
        return live.type in (ColumnType.TEXT, ColumnType.INTEGER)
    if live.type is not kept.type:
        return False
    # A plain numeric column kept with the one number of places all its values had reads back exactly.
    return live.type is not ColumnType.DECIMAL or live.scale is None or live.scale == kept.scale


def _type_words(column: Column) -> str:
    if column.type is None:
        return "untyped (each value's own type)"
    if column.type is ColumnType.DECIMAL and column.scale is not None:
        return f"decimal({column.scale})"
    return str(column.type)


class SnapshotFile(Protocol):
    """A snapshot being written on this machine's disk (`reportserver.sources.snapshot` writes SQLite)."""

    def add_table(self, name: str, columns: Sequence[Column], batches: Iterator[list[Row]]) -> KeptTable:
        """The rows as a table `name`, every value kept exactly (or the refresh fails, naming it)."""
        ...

    def describe(self, sql: str) -> list[Column]:
        """A statement's columns on the snapshot as written so far (`StatementRefused` if it does not prepare)."""
        ...

    def finish(self) -> int:
        """Close the file; its size in bytes."""
        ...


class SnapshotRecords(Protocol):
    """A model's current snapshot as report saves check against it (the catalog admin's port)."""

    def snapshot(self, model_id: str) -> Snapshot | None: ...

    def note_checked(self, snapshot: Snapshot, report_id: int, version: int) -> None:
        """The report (at `version`) reads `snapshot` as it reads the live database: it may read it now.
        Nothing is noted if the model's snapshot is no longer `snapshot` (a refresh checks it again)."""
        ...


# A statement's columns on a snapshot's tables (empty: their declared types are what a statement sees).
SnapshotDescriber = Callable[[list[KeptTable], str], list[Column]]


class SnapshotCopies(Protocol):
    """The call side's port: a model's current snapshot, and its copy on this container's disk."""

    def current(self, model_id: str) -> tuple[Snapshot, str] | None:
        """The model's newest snapshot and the path of its local copy (downloaded once); None if it has none."""
        ...
