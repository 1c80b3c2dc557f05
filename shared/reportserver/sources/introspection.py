"""What a source's database holds, read through the source's own read-only statements: its tables and
views, their columns, and its functions and procedures (seed 001's data model schema routes).

Each engine answers from its own catalog (SQLite's `sqlite_schema` and `pragma_table_info`,
PostgreSQL's `information_schema`, which shows only what the source's role may use). Names are bound
as values, never pasted into the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reportserver.domain.ports import ColumnInfo, ProcedureInfo, Row, Source, TableInfo


@dataclass(frozen=True)
class Catalog:
    """The statements that read one engine's catalog; `None` where the engine has no such thing."""

    default_schema: str
    tables: str
    columns: str
    procedures: str | None = None
    procedure_columns: str | None = None


SQLITE = Catalog(
    default_schema="main",
    tables=(
        "SELECT 'main' AS table_schema, name AS table_name, type AS table_type FROM sqlite_schema "
        "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ),
    columns=(
        "SELECT c.name, c.type, c.\"notnull\" = 0 AS nullable, '' AS mode "
        "FROM sqlite_schema AS s, pragma_table_info(s.name) AS c "
        "WHERE :schema = 'main' AND s.type IN ('table', 'view') AND s.name = :table ORDER BY c.cid"
    ),
)

POSTGRES = Catalog(
    default_schema="public",
    tables=(
        "SELECT table_schema::text, table_name::text, table_type::text FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ),
    columns=(
        "SELECT column_name::text, data_type::text, is_nullable = 'YES' AS nullable, ''::text AS mode "
        "FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table "
        "ORDER BY ordinal_position"
    ),
    procedures=(
        "SELECT DISTINCT routine_schema::text, routine_name::text, lower(routine_type)::text "
        "FROM information_schema.routines "
        "WHERE routine_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND routine_type IN ('FUNCTION', 'PROCEDURE') "
        "ORDER BY 1, 2"
    ),
    procedure_columns=(
        "SELECT coalesce(p.parameter_name, '$' || p.ordinal_position)::text, p.data_type::text, true, "
        "p.parameter_mode::text FROM information_schema.routines AS r "
        "JOIN information_schema.parameters AS p USING (specific_schema, specific_name) "
        "WHERE r.routine_schema = :schema AND r.routine_name = :name "
        "ORDER BY r.specific_name, p.ordinal_position"
    ),
)


def _rows(source: Source, sql: str, params: Mapping[str, Any]) -> list[Row]:
    with source.run(sql, params) as result:
        return [row for batch in result.batches for row in batch]


def _split(catalog: Catalog, name: str) -> tuple[str, str]:
    """`orders` is in the default schema; `sales.orders` in `sales` (one dot; a name with more is not split)."""
    schema, dot, rest = name.partition(".")
    if dot and rest and "." not in rest:
        return schema, rest
    return catalog.default_schema, name


def _shown(catalog: Catalog, schema: str, name: str) -> str:
    return name if schema == catalog.default_schema else f"{schema}.{name}"


def tables(source: Source, catalog: Catalog) -> list[TableInfo]:
    return [
        TableInfo(
            name=_shown(catalog, schema, name),
            schema=schema,
            type="view" if "VIEW" in str(kind).upper() else "table",
        )
        for schema, name, kind in _rows(source, catalog.tables, {})
    ]


def columns(source: Source, catalog: Catalog, table: str) -> list[ColumnInfo] | None:
    schema, name = _split(catalog, table)
    found = _rows(source, catalog.columns, {"schema": schema, "table": name})
    shown = _shown(catalog, schema, name)
    if not found and not any(t.schema == schema and t.name == shown for t in tables(source, catalog)):
        return None  # (PostgreSQL has tables without columns: `CREATE TABLE t ()`)
    return [ColumnInfo(name=c, dataType=str(t or ""), nullable=bool(n), mode=str(m or "")) for c, t, n, m in found]


def procedures(source: Source, catalog: Catalog) -> list[ProcedureInfo]:
    if catalog.procedures is None:
        return []
    return [
        ProcedureInfo(
            name=_shown(catalog, schema, name), schema=schema, type="procedure" if kind == "procedure" else "function"
        )
        for schema, name, kind in _rows(source, catalog.procedures, {})
    ]


def procedure_columns(source: Source, catalog: Catalog, procedure: str) -> list[ColumnInfo] | None:
    if catalog.procedure_columns is None:
        return None
    schema, name = _split(catalog, procedure)
    if not any(p.schema == schema and p.name == _shown(catalog, schema, name) for p in procedures(source, catalog)):
        return None
    found = _rows(source, catalog.procedure_columns, {"schema": schema, "name": name})
    return [ColumnInfo(name=c, dataType=str(t or ""), nullable=True, mode=str(m or "")) for c, t, _n, m in found]
