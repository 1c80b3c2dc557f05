"""The ports the domain owns and the adapters implement: data sources and the typed results they give.

Sources (`reportserver.sources`) implement `Source`; the domain never imports them. A result's columns
are typed by the contract in `reportserver.domain.values`, for rows (report calls) and for Arrow
batches (exports) alike.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec

from reportserver.domain.values import Column, ColumnType

if TYPE_CHECKING:  # pyarrow is for the worker only; the API functions import this module
    import pyarrow as pa

DEFAULT_BATCH_SIZE = 5000

Row = tuple[Any, ...]


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
ENCRYPTED_SSL_MODES = ("require", "verify-ca", "verify-full")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def is_host(host: str) -> bool:
    """A DNS name or an IP address, and nothing that a connection string or URL would read as more (a
    path, a port, a list of hosts, a parameter)."""
    if _HOST_NAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """An address of this machine: `localhost`, or a loopback IP address written as one (a name such as
    `127.0.0.1.example.com` is not: it resolves wherever its owner wants)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


DATA_SOURCE_ID = r"^[1-9][0-9]{0,11}$"  # a data model's number (seed 001's ids), as text
QUERY_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
ParameterType = Literal["string", "integer", "number", "date", "datetime", "boolean"]


class QueryParameter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A custom query's parameter (seed 001): its type, and the value it is tried with (`isNull`: NULL)."""

    name: Annotated[str, msgspec.Meta(pattern=QUERY_NAME_PATTERN)]
    type: ParameterType = "string"
    value: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    isNull: bool = False  # noqa: N815 - seed 001's name


class CustomQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A named SQL query kept with its data model (seed 001's custom SQL queries)."""

    name: Annotated[str, msgspec.Meta(pattern=QUERY_NAME_PATTERN)]
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    parameters: list[QueryParameter] = msgspec.field(default_factory=list)
    # Its rows are kept in the model's snapshot, as a table named after it (`reportserver.domain.snapshots`).
    snapshot: bool = False


class DataSource(msgspec.Struct, kw_only=True):
    """Where a report's queries run, and how long one query may take there (seed 001's data model).

    `sqlite`: `database` is a file path (the embedded default and the demo). `postgresql`: `database` is
    the database's name on `host`:`port`, reached as `user` with the password held in Secrets Manager
    under `password_secret` (never in this definition); TLS (`ssl_mode` require or stricter) is
    required except on a loopback address. `version` is its `optimisticLock`."""

    id: Annotated[str, msgspec.Meta(pattern=DATA_SOURCE_ID)]
    database: Annotated[str, msgspec.Meta(min_length=1)]
    name: str = ""
    description: str = ""
    kind: Literal["sqlite", "postgresql", "athena"] = "sqlite"
    query_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=900)] = 25.0
    host: Annotated[str, msgspec.Meta(max_length=253)] = ""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 5432
    user: Annotated[str, msgspec.Meta(max_length=63)] = ""
    password_secret: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "require"
    # Athena: the workgroup its queries run in, where their results go, the catalog and the region.
    workgroup: Annotated[str, msgspec.Meta(max_length=128)] = ""
    output_location: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    catalog: Annotated[str, msgspec.Meta(max_length=255)] = ""
    region: Annotated[str, msgspec.Meta(max_length=32)] = ""
    custom_queries: list[CustomQuery] = msgspec.field(default_factory=list)
    # Every custom query's rows are kept in the model's snapshot (as if each were marked).
    snapshot: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        if self.kind == "athena":
            _check_athena(self)
        if self.kind != "postgresql":
            return
        if not self.host or not self.user:
            raise ValueError("a postgresql data source needs its host and user")
        if not is_host(self.host):
            raise ValueError(f"host {self.host!r} is not a host name or an IP address")
        if self.ssl_mode not in ENCRYPTED_SSL_MODES and not is_loopback(self.host):
            raise ValueError(
                f"ssl_mode {self.ssl_mode!r} sends the password and the data in clear: use require, verify-ca "
                "or verify-full (only a loopback address may go without TLS)"
            )

    @property
    def number(self) -> int:
        return int(self.id)


_ATHENA_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")


def _check_athena(source: DataSource) -> None:
    if not _ATHENA_NAME.fullmatch(source.workgroup):
        raise ValueError("an athena data source needs its workgroup (letters, digits, '.', '_', '-')")
    if not _S3_PREFIX.fullmatch(source.output_location):
        raise ValueError("outputLocation must be an S3 location: s3://bucket/prefix/")
    if not _ATHENA_NAME.fullmatch(source.database) or not _ATHENA_NAME.fullmatch(source.catalog):
        raise ValueError("an athena data source needs its catalog and database (letters, digits, '.', '_', '-')")
    if not _REGION.fullmatch(source.region):
        raise ValueError(f"region {source.region!r} is not an AWS region name (such as eu-west-1)")


@dataclass(slots=True)
class QueryResult:
    """Typed columns (unique names, in order) and an iterator of row batches, consumed once. Each value
    is already of its column's contract type (`Decimal`, `date`, `datetime`, `bool`, ...) or None."""

    columns: list[Column]
    batches: Iterator[list[Row]]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(slots=True)
class ArrowResult:
    """A result as Arrow record batches with a fixed schema (see `reportserver.domain.values`)."""

    schema: Any  # pyarrow.Schema; not imported here so that the API functions never load pyarrow
    batches: Iterator[Any]  # of pyarrow.RecordBatch

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How to read one statement as Arrow batches. The first read is native with every type as declared;
    a source that finds, part-way, that a column needs another type (an engine-typed SQLite column whose
    storage class changes; a decimal with more places than the first batches had) asks for a new read
    with `ReadAgain`, and the file is made again from the start: nothing already written is patched."""

    native: bool = True
    overrides: Mapping[str, tuple[ColumnType, int | None]] = field(default_factory=dict)

    def with_override(self, column: str, kind: ColumnType, scale: int | None, native: bool) -> ReadPlan:
        return ReadPlan(native=self.native and native, overrides={**self.overrides, column: (kind, scale)})


class ReadAgain(Exception):
    """Raised while reading: the result must be read again, from the start, with `plan`."""

    def __init__(self, plan: ReadPlan, reason: str) -> None:
        super().__init__(reason)
        self.plan = plan
        self.reason = reason


class TableInfo(msgspec.Struct, kw_only=True):
    """A table or view a data model's statements may read."""

    name: str  # as a statement names it: `orders`, or `sales.orders` outside the default schema
    schema: str
    type: Literal["table", "view"]


class ColumnInfo(msgspec.Struct, kw_only=True):
    """A column of a table, view, or a procedure's parameter: its name and the engine's type name."""

    name: str
    dataType: str  # noqa: N815 - seed 001's bodies are camelCase
    nullable: bool = True
    mode: str = ""  # a procedure's parameter: IN, OUT, INOUT; empty for a table's column


class ProcedureInfo(msgspec.Struct, kw_only=True):
    name: str
    schema: str
    type: Literal["function", "procedure"]


class Introspection(Protocol):
    """What a data model's source tells of its database: what its statements may read."""

    def tables(self) -> list[TableInfo]: ...

    def columns(self, table: str) -> list[ColumnInfo] | None:
        """The table's or view's columns in order; None if there is no such table."""
        ...

    def procedures(self) -> list[ProcedureInfo]:
        """Functions and procedures (an engine without them has none)."""
        ...

    def procedure_columns(self, name: str) -> list[ColumnInfo] | None: ...


class Source(Protocol):
    def run(
        self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AbstractContextManager[QueryResult]:
        """Run one statement with driver-bound values; the context closes the cursor and connection."""
        ...

    def run_arrow(
        self, sql: str, params: Mapping[str, Any], plan: ReadPlan | None = None
    ) -> AbstractContextManager[ArrowResult]:
        """The same as Arrow record batches (for exports), read as `plan` says."""
        ...

    def describe(self, sql: str) -> list[Column]:
        """The statement's result columns, from preparing it (nothing runs); `StatementRefused` (with
        the engine's own message) if it does not prepare."""
        ...


def unique_names(names: list[str]) -> list[str]:
    """`SELECT a.id, b.id` gives two columns named id: keep both as id and id_2 (id_3... past a name
    the result already has: `SELECT 1 AS a, 2 AS a, 3 AS a_2` is a, a_3, a_2)."""
    taken = set(names)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        if count == 1:
            unique.append(name)
            continue
        candidate = f"{name}_{count}"
        while candidate in taken:
            count += 1
            candidate = f"{name}_{count}"
        taken.add(candidate)
        unique.append(candidate)
    return unique


# Renderers: sheets of typed Arrow batches in, one file out (`reportserver.render` implements these).

Progress = Callable[[int], None]  # told the rows written so far, after each batch


@dataclass
class Sheet:
    """One query's result: its name and its rows, arriving as typed record batches (consumed once)."""

    name: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


@dataclass(frozen=True)
class RenderContext:
    """What a person reading the file should know: which report, with which values, when."""

    title: str
    generated_at: datetime
    sheet_count: int = 1
    parameters: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputKind:
    extension: str
    content_type: str


class Renderer(Protocol):
    def output(self, sheet_count: int) -> OutputKind:
        """The file's extension and type: some formats change with the number of sheets (csv: a zip)."""
        ...

    def render(self, sheets: Iterable[Sheet], target: Path, context: RenderContext, progress: Progress) -> int:
        """Write every sheet to `target`, never holding more than a batch of rows; return the rows written."""
        ...
