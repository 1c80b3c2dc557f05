"""The data-source interface every engine implements, and the data-source definition."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import msgspec

DEFAULT_BATCH_SIZE = 5000

Row = tuple[Any, ...]


class DataSource(msgspec.Struct, kw_only=True):
    """Where a report's queries run. Passwords never live here: only the name of a secret."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    database: Annotated[str, msgspec.Meta(min_length=1)]
    name: str = ""
    kind: Literal["sqlite"] = "sqlite"
    secret_name: str | None = None
    query_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=900)] = 25.0


@dataclass(slots=True)
class QueryResult:
    """Column names (unique, in order) and an iterator of row batches, consumed once."""

    columns: list[str]
    batches: Iterator[list[Row]]


@dataclass(slots=True)
class ArrowResult:
    """A result as Arrow record batches (typed, with a fixed schema), consumed once."""

    schema: Any  # pyarrow.Schema; not imported here so that the API functions never load pyarrow
    batches: Iterator[Any]  # of pyarrow.RecordBatch

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


class ColumnTypeChanged(Exception):
    """A column whose values changed type after the first batch fixed it (SQLite's dynamic typing)."""

    def __init__(self, column: str, detail: str) -> None:
        super().__init__(f"column {column!r} changed type: {detail}")
        self.column = column


class Source(Protocol):
    def run(
        self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AbstractContextManager[QueryResult]:
        """Run one statement with driver-bound values; the context closes the cursor and connection."""
        ...

    def run_arrow(
        self, sql: str, params: Mapping[str, Any], native: bool = True, text_columns: frozenset[str] = frozenset()
    ) -> AbstractContextManager[ArrowResult]:
        """The same as Arrow record batches (for exports); native=False reads through typed rows,
        with the named columns kept as text (for columns whose values change type)."""
        ...


def unique_columns(names: list[str]) -> list[str]:
    """`SELECT a.id, b.id` gives two columns named id: keep both as id and id_2."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique.append(name if count == 1 else f"{name}_{count}")
    return unique
