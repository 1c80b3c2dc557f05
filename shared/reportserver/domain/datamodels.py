"""Data models (seed 001): where reports read, defined over the API, with their custom SQL queries.

A data model is a `DataSource` numbered by a counter; seed 001's bodies (`providerModel` with its
`providerType`) are turned into one here. A password goes to the secret store, never to the catalog,
a response or a log line: each new password is a new secret (its name carries a random suffix), the
model names it, and the secret it replaced is deleted once the model no longer names it. So a 409
(a stale `optimisticLock`) changes nothing, and a source that reads the model reads the new secret
at once. Every change carries the model's version and lands only while it is the stored one.
"""

from __future__ import annotations

import contextvars
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import msgspec

from reportserver.domain.access import AccessMode, Principal, authorize_managing, may_manage
from reportserver.domain.errors import (
    AlreadyExists,
    DataSourceFailed,
    InvalidDefinition,
    InvalidParameter,
    NotFound,
    StatementRefused,
    VersionConflict,
    named,
    shown,
)
from reportserver.domain.ports import (
    SSL_MODES,
    ColumnInfo,
    CustomQuery,
    DataSource,
    Introspection,
    ProcedureInfo,
    QueryParameter,
    Source,
    TableInfo,
    is_host,
)
from reportserver.domain.snapshot_sql import reads_alike
from reportserver.domain.snapshots import (
    Snapshot,
    SnapshotDescriber,
    SnapshotRecords,
    check_marks,
    keeps_snapshot,
)
from reportserver.domain.statements import check_bind_variables, check_read_statement
from reportserver.domain.values import Column

# Seed 001's provider types: those this server reads, and the others its list names (refused by name).
SUPPORTED_PROVIDERS = {"sqLite": "sqlite", "postgresql": "postgresql", "athena": "athena"}
SEED_PROVIDERS = (
    "msSqlServer",
    "mySql",
    "oracle",
    "postgresql",
    "advantage",
    "amazon redshift",
    "firebird",
    "bigQuery",
    "db2",
    "access2007",
    "access97",
    "msSqlServerCE",
    "pervasive",
    "asa",
    "sqLite",
    "vistaDB",
    "vistaDB5",
    "vistaDB6",
    "inMemoryDataSource",
)
_PROVIDER_OF_KIND = {kind: provider for provider, kind in SUPPORTED_PROVIDERS.items()}
# Which providerModel fields each provider takes (beyond providerType); any other is refused by name.
_PROVIDER_FIELDS = {
    "sqLite": ("database",),
    "postgresql": ("serverName", "port", "database", "userName", "password", "sslMode"),
    "athena": ("workgroup", "outputLocation", "catalog", "database", "region"),
}
# A connection's fields as a new providerModel starts them: none of the previous provider's is kept.
_CLEARED: dict[str, Any] = {
    "host": "",
    "port": 5432,
    "user": "",
    "ssl_mode": "require",
    "workgroup": "",
    "output_location": "",
    "catalog": "",
    "region": "",
}
MAX_CUSTOM_QUERIES = 100
_T = TypeVar("_T")
MAX_PASSWORD = 1024

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
# Whole seconds, as seed 001's; at least 2, libpq's shortest connect timeout.
CommandTimeout = Annotated[int, msgspec.Meta(ge=2, le=900)]


class ProviderModel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Seed 001's `providerModel`: `providerType` and that provider's options (a password is write-only)."""

    providerType: str  # noqa: N815 - seed 001's names
    database: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    serverName: Annotated[str, msgspec.Meta(min_length=1, max_length=253)] | None = None  # noqa: N815
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    userName: Annotated[str, msgspec.Meta(min_length=1, max_length=63)] | None = None  # noqa: N815
    password: Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD)] | None = None
    sslMode: str | None = None  # noqa: N815
    workgroup: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    outputLocation: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None  # noqa: N815
    catalog: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    region: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class DataModelCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    providerModel: ProviderModel  # noqa: N815
    description: Description = ""
    commandTimeout: CommandTimeout = 30  # noqa: N815
    # Marked for snapshots: its reports read the rows of all its custom queries as a refresh kept them.
    snapshot: bool = False


class DataModelChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A modify: what is left out stays. A `providerModel` replaces the old one; its password may be left
    out only while the server, port, user and database stay the same (the stored one is not sent to a
    new place)."""

    optimisticLock: int  # noqa: N815
    name: Name | None = None
    description: Description | None = None
    commandTimeout: CommandTimeout | None = None  # noqa: N815
    providerModel: ProviderModel | None = None  # noqa: N815
    snapshot: bool | None = None


class DataModelRename(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815
    name: Name


class CustomQueryBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Seed 001's custom SQL query body; `optimisticLock` is the data model's."""

    optimisticLock: int  # noqa: N815
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    parameters: list[QueryParameter] = msgspec.field(default_factory=list)
    # Its rows are kept in the model's snapshot, as a table of its name (the model's reports read it).
    snapshot: bool = False


class DataModelStore(Protocol):
    def next_data_source_id(self) -> int: ...

    def data_source(self, data_source_id: str) -> DataSource | None: ...

    def data_sources(self) -> list[DataSource]: ...

    def create_data_source(self, source: DataSource) -> None: ...

    def replace_data_source(self, source: DataSource, previous_version: int) -> None:
        """`VersionConflict` if the stored version is not `previous_version`."""
        ...

    def delete_data_source(self, source: DataSource) -> None:
        """Delete it while it is at `source.version`; `VersionConflict` if not."""
        ...

    def reports_using(self, data_source_id: str) -> list[str]:
        """The slugs of the reports that read this data source."""
        ...


class SecretStore(Protocol):
    def create(self, name: str, value: str) -> str:
        """A new secret holding `value`; returns the id to read it by."""
        ...

    def delete(self, secret_id: str) -> None: ...


class OpenedSource(Source, Introspection, Protocol):
    """A source that can also tell what its database holds."""


SourceOpener = Callable[[DataSource], OpenedSource]


def provider_view(source: DataSource) -> dict[str, Any]:
    """The connection as seed 001 shows it, never its password (only whether it has one)."""
    view: dict[str, Any] = {"providerType": _PROVIDER_OF_KIND[source.kind]}
    if source.kind == "sqlite":
        view["database"] = source.database
    elif source.kind == "athena":
        view |= {
            "workgroup": source.workgroup,
            "outputLocation": source.output_location,
            "catalog": source.catalog,
            "database": source.database,
            "region": source.region,
        }
    else:
        view |= {
            "serverName": source.host,
            "port": source.port,
            "database": source.database,
            "userName": source.user,
            "sslMode": source.ssl_mode,
            "hasPassword": bool(source.password_secret),
        }
    return view


def model_view(source: DataSource) -> dict[str, Any]:
    return {
        "id": source.number,
        "name": source.name,
        "description": source.description,
        "commandTimeout": int(source.query_timeout_seconds),
        "providerType": _PROVIDER_OF_KIND[source.kind],
        "snapshot": source.snapshot,
        "optimisticLock": source.version,
    }


def query_view(query: CustomQuery) -> dict[str, Any]:
    return {
        "name": query.name,
        "query": query.query,
        "parameters": msgspec.to_builtins(query.parameters),
        "snapshot": query.snapshot,
    }


@dataclass(frozen=True)
class DataModelAdmin:
    """The data model endpoints' decisions; each asks `authorize_managing` first."""

    store: DataModelStore
    passwords: SecretStore
    open_source: SourceOpener
    secret_prefix: str
    sqlite_files: bool = False  # a file path on the server: the local stack only
    # A report saved on a model that keeps a snapshot is checked against it too, and then reads it at once.
    snapshots: SnapshotRecords | None = None
    describe_snapshot: SnapshotDescriber | None = None

    # The models

    def create(self, principal: Principal, body: DataModelCreate) -> DataSource:
        authorize_managing(principal, "dataModel", AccessMode.CREATE)
        model_id = str(self.store.next_data_source_id())
        fields = self._connection(body.providerModel, None)
        secret = self._new_secret(model_id, body.providerModel.password)
        try:
            source = self._valid(
                id=model_id,
                name=named(body.name),
                description=body.description,
                query_timeout_seconds=float(body.commandTimeout),
                password_secret=secret,
                snapshot=body.snapshot,
                **fields,
            )
            check_marks(source)
            self._name_free(source.name, None)
            self.store.create_data_source(source)
        except BaseException:
            self._forget(secret)
            raise
        return source

    def list_models(self, principal: Principal) -> list[DataSource]:
        found = [s for s in self.store.data_sources() if may_manage(principal, "dataModel", AccessMode.READ, s.number)]
        if not found:
            authorize_managing(principal, "dataModel", AccessMode.READ)  # none visible: say why, if it is that
        return sorted(found, key=lambda s: s.number)

    def get(self, principal: Principal, model_id: str, mode: AccessMode = AccessMode.READ) -> DataSource:
        number = _number(model_id)
        authorize_managing(principal, "dataModel", mode, number)
        source = self.store.data_source(str(number))
        if source is None:
            raise NotFound(f"No data model {number}")
        return source

    def change(self, principal: Principal, model_id: str, body: DataModelChange) -> DataSource:
        current = self._at_version(self.get(principal, model_id, AccessMode.MODIFY), body.optimisticLock)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = named(body.name)
            self._name_free(changes["name"], current.id)
        if body.description is not None:
            changes["description"] = body.description
        if body.commandTimeout is not None:
            changes["query_timeout_seconds"] = float(body.commandTimeout)
        if body.snapshot is not None:
            changes["snapshot"] = body.snapshot
        secret = None
        if body.providerModel is not None:
            changes |= self._connection(body.providerModel, current)
            if body.providerModel.password is not None:
                secret = self._new_secret(current.id, body.providerModel.password)
                changes["password_secret"] = secret
            elif changes.get("kind") != "postgresql":
                changes["password_secret"] = ""
        try:
            changed = self._valid(**{**msgspec.structs.asdict(current), **changes, "version": current.version + 1})
            check_marks(changed)
            self.store.replace_data_source(changed, current.version)
        except BaseException:
            self._forget(secret)
            raise
        if current.password_secret and current.password_secret != changed.password_secret:
            self._forget(current.password_secret)
        return changed

    def rename(self, principal: Principal, model_id: str, body: DataModelRename) -> DataSource:
        return self.change(principal, model_id, DataModelChange(optimisticLock=body.optimisticLock, name=body.name))

    def delete(self, principal: Principal, model_id: str, version: int | None) -> None:
        source = self.get(principal, model_id, AccessMode.DELETE)
        if version is not None:
            self._at_version(source, version)
        using = self.store.reports_using(source.id)
        if using:
            listed = ", ".join(using[:10]) + (f" and {len(using) - 10} more" if len(using) > 10 else "")
            raise AlreadyExists(f"Data model {source.number} is used by the reports {listed}: it cannot be deleted")
        self.store.delete_data_source(source)
        self._forget(source.password_secret)

    # The database behind it

    def test(self, principal: Principal, model_id: str) -> float:
        """Connect and run `SELECT 1`, within the model's command timeout; the seconds it took."""
        source = self.get(principal, model_id)
        started = time.monotonic()
        _within(source, lambda: self._select_one(source))
        return time.monotonic() - started

    def _select_one(self, source: DataSource) -> None:
        with self.open_source(source).run("SELECT 1 AS connected", {}) as result:
            for _batch in result.batches:
                pass

    def tables(self, principal: Principal, model_id: str) -> list[TableInfo]:
        source = self.get(principal, model_id)
        return _within(source, lambda: self.open_source(source).tables())

    def columns(self, principal: Principal, model_id: str, table: str) -> list[ColumnInfo]:
        source = self.get(principal, model_id)
        found = _within(source, lambda: self.open_source(source).columns(table))
        if found is None:
            raise NotFound(f"Data model {source.number} has no table or view '{shown(table)}'")
        return found

    def procedures(self, principal: Principal, model_id: str) -> list[ProcedureInfo]:
        source = self.get(principal, model_id)
        return _within(source, lambda: self.open_source(source).procedures())

    def procedure_columns(self, principal: Principal, model_id: str, name: str) -> list[ColumnInfo]:
        source = self.get(principal, model_id)
        found = _within(source, lambda: self.open_source(source).procedure_columns(name))
        if found is None:
            raise NotFound(f"Data model {source.number} has no function or procedure '{shown(name)}'")
        return found

    def data_members(self, principal: Principal, model_id: str) -> list[dict[str, str]]:
        """What a report or a job may bind to: the tables and views, and the custom queries."""
        source = self.get(principal, model_id)
        tables = _within(source, lambda: self.open_source(source).tables())
        members = [{"name": t.name, "type": t.type} for t in tables]
        return members + [{"name": q.name, "type": "query"} for q in source.custom_queries]

    # Custom SQL queries

    def custom_query(self, principal: Principal, model_id: str, name: str) -> CustomQuery:
        source = self.get(principal, model_id)
        query = next((q for q in source.custom_queries if q.name == name), None)
        if query is None:
            raise NotFound(f"Data model {source.number} has no custom query '{shown(name)}'")
        return query

    def save_custom_query(
        self, principal: Principal, model_id: str, body: CustomQueryBody, replacing: str | None = None
    ) -> tuple[DataSource, CustomQuery]:
        """Add a custom query (`replacing` None) or replace the one named `replacing` (it may be renamed)."""
        current = self._at_version(self.get(principal, model_id, AccessMode.MODIFY), body.optimisticLock)
        query = _custom_query(body)
        check_read_statement(query.query, current.kind, "custom query")
        check_bind_variables(query.query, [p.name for p in query.parameters], current.kind, "custom query")
        others = [q for q in current.custom_queries if q.name != (replacing or query.name)]
        if replacing is not None and len(others) == len(current.custom_queries):
            raise NotFound(f"Data model {current.number} has no custom query '{shown(replacing)}'")
        if replacing is None and len(others) != len(current.custom_queries):
            raise AlreadyExists(f"Data model {current.number} has a custom query '{query.name}' already")
        if any(q.name == query.name for q in others):
            raise AlreadyExists(f"Data model {current.number} has a custom query '{query.name}' already")
        if len(others) >= MAX_CUSTOM_QUERIES:
            raise InvalidDefinition(f"A data model keeps at most {MAX_CUSTOM_QUERIES} custom queries")
        changed = msgspec.structs.replace(
            current, custom_queries=sorted([*others, query], key=lambda q: q.name), version=current.version + 1
        )
        check_marks(changed)
        _within(current, lambda: self._prepares(current, query.query, "custom query"))
        self.store.replace_data_source(changed, current.version)
        return changed, query

    def check_statement(self, source: DataSource, sql: str, where: str) -> None:
        """A report's statement at save: one read statement that prepares on the model's database."""
        check_read_statement(sql, source.kind, where)
        _within(source, lambda: self._prepares(source, sql, where))

    def check_on_snapshot(
        self, source: DataSource, snapshot: Snapshot, sql: str, where: str, parameters: Mapping[str, str]
    ) -> None:
        """A report's statement at save on a model that keeps a snapshot: it reads the same columns of the
        same types from the snapshot as from the model's database (its reports read the snapshot)."""
        if self.describe_snapshot is None:
            return
        live = _within(source, lambda: self._prepares(source, sql, where))
        try:
            kept = self.describe_snapshot(snapshot.tables, sql)
        except StatementRefused as refused:
            raise InvalidDefinition(
                f"The {where}'s SQL does not run on data model {source.number}'s snapshot: "
                f"{shown(refused.detail, 300)}. A snapshot holds the model's kept custom queries, each as a table "
                "of its name"
            ) from None
        difference = reads_alike(sql, source.kind, live, kept, snapshot.tables, snapshot.text_order, parameters)
        if difference is not None:
            raise InvalidDefinition(
                f"The {where}'s SQL reads otherwise from data model {source.number}'s snapshot: {difference}"
            )

    def snapshot_of(self, source: DataSource) -> Snapshot | None:
        """The snapshot the model's reports read now, which a report saved on it is checked against."""
        if self.snapshots is None or not keeps_snapshot(source):
            return None
        return self.snapshots.snapshot(source.id)

    def note_checked(self, snapshot: Snapshot | None, report_id: int, version: int) -> None:
        """A report saved, having been checked against `snapshot`, reads it from now on."""
        if snapshot is not None and self.snapshots is not None:
            self.snapshots.note_checked(snapshot, report_id, version)

    def _prepares(self, source: DataSource, sql: str, where: str) -> list[Column]:
        try:
            return self.open_source(source).describe(sql)
        except StatementRefused as refused:
            raise InvalidDefinition(
                f"The {where}'s SQL does not prepare on data model {source.number}: {shown(refused.detail, 300)}"
            ) from None

    # Helpers

    def _connection(self, provider: ProviderModel, current: DataSource | None) -> dict[str, Any]:
        """The DataSource fields of a `providerModel`, checked field by field."""
        kind = _provider_kind(provider.providerType)
        allowed = _PROVIDER_FIELDS[provider.providerType]
        given = {f: v for f, v in msgspec.structs.asdict(provider).items() if f != "providerType" and v is not None}
        for field in given:
            if field not in allowed:
                raise InvalidParameter(
                    f"providerModel.{field}",
                    f"'{field}' is not an option of providerType {provider.providerType!r}; its options: "
                    + ", ".join(allowed),
                )
        if kind == "sqlite":
            if not self.sqlite_files:
                raise InvalidDefinition(
                    "providerType 'sqLite' reads a file on the server: only the local stack allows it"
                )
            return _CLEARED | {"kind": "sqlite", "database": _required(provider.database, "database")}
        if kind == "athena":
            return _CLEARED | {
                "kind": "athena",
                "workgroup": provider.workgroup or "primary",
                "output_location": _required(provider.outputLocation, "outputLocation"),
                "catalog": provider.catalog or "AwsDataCatalog",
                "database": _required(provider.database, "database"),
                "region": _required(provider.region, "region"),
            }
        ssl_mode = provider.sslMode or "require"
        if ssl_mode not in SSL_MODES:
            raise InvalidParameter("providerModel.sslMode", f"sslMode must be one of: {', '.join(SSL_MODES)}")
        host = _required(provider.serverName, "serverName")
        if not is_host(host):
            raise InvalidParameter("providerModel.serverName", "serverName must be a host name or an IP address")
        fields = _CLEARED | {
            "kind": "postgresql",
            "host": host,
            "port": provider.port or 5432,
            "database": _required(provider.database, "database"),
            "user": _required(provider.userName, "userName"),
            "ssl_mode": ssl_mode,
        }
        if provider.password is None:
            same_place = current is not None and all(
                getattr(current, f) == fields[f] for f in ("kind", "host", "port", "database", "user")
            )
            weaker = current is not None and SSL_MODES.index(ssl_mode) < SSL_MODES.index(current.ssl_mode)
            if not same_place or weaker or not current or not current.password_secret:
                raise InvalidParameter(
                    "providerModel.password",
                    "Give the password: it is required for a new connection, and when the server, port, "
                    "database or user changes or the TLS mode is weakened (the stored one is never sent to "
                    "another place, nor over a weaker connection)",
                )
        return fields

    def _new_secret(self, model_id: str, password: str | None) -> str | None:
        if password is None:
            return None
        if not password:
            raise InvalidParameter("providerModel.password", "The password cannot be empty")
        return self.passwords.create(f"{self.secret_prefix}{model_id}-{secrets.token_hex(6)}", password)

    def _forget(self, secret_id: str | None) -> None:
        if secret_id:
            self.passwords.delete(secret_id)

    def _name_free(self, name: str, own_id: str | None) -> None:
        folded = name.casefold()
        taken = next((s for s in self.store.data_sources() if s.name.casefold() == folded and s.id != own_id), None)
        if taken is not None:
            raise AlreadyExists(f"A data model named '{shown(name)}' already exists ({taken.number})")

    @staticmethod
    def _valid(**fields: Any) -> DataSource:
        if fields.get("password_secret") is None:
            fields["password_secret"] = ""
        try:
            return msgspec.convert(fields, DataSource)
        except msgspec.ValidationError as error:
            raise InvalidDefinition(f"Invalid data model: {error}") from None

    @staticmethod
    def _at_version(source: DataSource, version: int) -> DataSource:
        if source.version != version:
            raise VersionConflict(
                f"Data model {source.number} has changed (optimisticLock {source.version}, not {version}): "
                "read it again"
            )
        return source


def _provider_kind(provider_type: str) -> str:
    kind = SUPPORTED_PROVIDERS.get(provider_type)
    if kind is not None:
        return kind
    supported = ", ".join(SUPPORTED_PROVIDERS)
    known = provider_type in SEED_PROVIDERS
    raise InvalidParameter(
        "providerModel.providerType",
        f"providerType '{shown(provider_type)}' is {'not supported by this server' if known else 'unknown'}; "
        f"supported: {supported}",
    )


def _required(value: str | None, field: str) -> str:
    if value is None or not value.strip():
        raise InvalidParameter(f"providerModel.{field}", f"providerModel.{field} is required")
    return value.strip()


def _number(model_id: str) -> int:
    if not model_id.isascii() or not model_id.isdigit() or len(model_id) > 12 or int(model_id) < 1:
        raise NotFound(f"No data model '{shown(model_id)}'")
    return int(model_id)


def _custom_query(body: CustomQueryBody) -> CustomQuery:
    try:
        query = CustomQuery(name=body.name, query=body.query, parameters=body.parameters, snapshot=body.snapshot)
        query = msgspec.convert(msgspec.to_builtins(query), CustomQuery)  # the name's pattern
    except msgspec.ValidationError as error:
        raise InvalidDefinition(f"Invalid custom query: {error}") from None
    names = [p.name for p in query.parameters]
    if len(set(names)) != len(names):
        raise InvalidDefinition("A custom query's parameter names must be unique")
    return query


def _within(source: DataSource, work: Callable[[], _T]) -> _T:
    """`work` against the model's database, answered within its command timeout: a
    server that never answers, a host whose name never resolves, is a 502, never a hang. The work goes
    on in its thread past the deadline until the driver's own limits end it."""
    limit = source.query_timeout_seconds
    outcome: dict[str, Any] = {}
    # The thread sees the request's context (whoever it acts as, its log keys), as the caller does.
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"datamodel-{source.id}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise DataSourceFailed(
            f"Data model {source.number} did not answer within its command timeout "
            f"({int(source.query_timeout_seconds)} s)"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
