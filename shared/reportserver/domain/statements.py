"""Whether a report's or a custom query's SQL may be saved: exactly one statement that only reads.

The statement is parsed by a real SQL parser (sqlglot) in the data model's dialect, never matched by
a pattern: its tree must be a query (SELECT, a set operation, VALUES) and nothing in it may write,
lock, run a program or change the session, wherever it hides (a writable CTE, `SELECT ... INTO`, a
side-effecting function). This is the first gate, at save time, with a message for the admin; the
second is the source itself, which runs every statement read-only.
"""

from __future__ import annotations

from typing import Any, Literal

from reportserver import sqltext
from reportserver.domain.errors import InvalidDefinition, shown

Dialect = Literal["sqlite", "postgresql", "athena"]
_SQLGLOT_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "athena": "athena"}
_LEXER_DIALECTS = {
    "sqlite": sqltext.Dialect.SQLITE,
    "postgresql": sqltext.Dialect.POSTGRES,
    "athena": sqltext.Dialect.TRINO,
}


def lexer_dialect(kind: Dialect) -> sqltext.Dialect:
    """How the binder reads a data model's statements (its quoting, comments, casts)."""
    return _LEXER_DIALECTS[kind]


# Functions that write, lock, read the server's files or reach other servers. The source's read-only
# transaction refuses most of them as well; these are named here so that the admin hears it at save.
WRITING_FUNCTIONS = frozenset(
    {
        "nextval",
        "setval",
        "set_config",
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "lo_unlink",
        "lo_create",
        "lo_from_bytea",
        "lo_put",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "pg_notify",
        "txid_current",
        "pg_current_xact_id",
        "query_to_xml",  # each runs a statement given as text, which this check never sees
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "table_to_xml",
        "table_to_xmlschema",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema",
        "database_to_xml",
        "database_to_xmlschema",
        "database_to_xml_and_xmlschema",
        "ts_stat",  # runs the statement given as its text
        "ts_rewrite",
        "lo_get",
        "pg_logical_emit_message",
        "load_extension",  # SQLite
        "fts3_tokenizer",
        "writefile",  # SQLite's fileio extension
        "readfile",
    }
)


# Families: PostgreSQL's directory listings and logical replication, large objects, dblink.
WRITING_PREFIXES = ("pg_ls_", "pg_logical_", "pg_replication_", "lo_", "dblink")


def check_read_statement(sql: str, dialect: Dialect, where: str = "query") -> None:
    """Refuse (`InvalidDefinition`, 400) anything but exactly one statement that only reads."""
    import sqlglot  # noqa: PLC0415 - only the functions that save reports load the parser
    from sqlglot import exp  # noqa: PLC0415

    try:
        # The binder's own reading first: an unterminated string or comment fails here.
        sqltext.names(sql, _LEXER_DIALECTS[dialect])
    except sqltext.UnterminatedSql as error:
        raise InvalidDefinition(f"The {where}'s SQL cannot be read: {error}") from None
    try:
        trees = [t for t in sqlglot.parse(sql, dialect=_SQLGLOT_DIALECTS[dialect]) if t is not None]
        nodes = [node for tree in trees for node in tree.walk()]
    except RecursionError:
        raise InvalidDefinition(f"The {where}'s SQL is nested too deeply to be checked") from None
    except sqlglot.errors.SqlglotError as error:
        raise InvalidDefinition(f"The {where}'s SQL does not parse as {dialect} SQL: {_first_line(error)}") from None
    if len(trees) != 1:
        raise InvalidDefinition(
            f"The {where}'s SQL must be exactly one statement; it has {len(trees)} (separated by ';')"
        )
    tree = trees[0]
    root = tree.this if isinstance(tree, exp.Subquery) else tree
    if not isinstance(root, (exp.Select, exp.SetOperation, exp.Values)):
        raise InvalidDefinition(f"The {where}'s SQL must be a query (SELECT); {_kind(root)} is not")
    for node in nodes:
        refused = _refused(node, exp)
        if refused:
            raise InvalidDefinition(f"The {where}'s SQL must only read: it {refused}")


def _refused(node: Any, exp: Any) -> str:
    """What about this node writes or locks, or '' if nothing."""
    writes = (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Merge,
        exp.Create,
        exp.Drop,
        exp.Alter,
        exp.Copy,
        exp.Command,
        exp.TruncateTable,
        exp.Attach,
        exp.Detach,
        exp.Pragma,
        exp.Grant,
        exp.Set,
        exp.Transaction,
        exp.Commit,
        exp.Rollback,
        exp.Use,
    )
    if isinstance(node, writes):
        return f"contains {_kind(node)}"
    if isinstance(node, exp.Into):
        return "contains SELECT ... INTO (which creates a table)"
    if isinstance(node, exp.Lock):
        return "locks rows (FOR UPDATE / FOR SHARE)"
    if isinstance(node, exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name in WRITING_FUNCTIONS or name.startswith(WRITING_PREFIXES):
            return f"calls {shown(name)}(), which writes, locks or reaches outside the database"
    return ""


def _kind(node: Any) -> str:
    """How the admin wrote it: `DROP`, `INSERT`, `DO`, `VACUUM`..."""
    from sqlglot import exp  # noqa: PLC0415

    if isinstance(node, exp.Command):
        return shown(str(node.this).upper(), 20)
    names = {"TruncateTable": "TRUNCATE", "Into": "SELECT ... INTO"}
    name = type(node).__name__
    return names.get(name, name.upper())


def _first_line(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return shown(text.replace("\x1b[4m", "").replace("\x1b[0m", ""), 200)


def check_bind_variables(sql: str, declared: list[str], dialect: Dialect, where: str = "query") -> None:
    """Every `:name` of the SQL is a declared parameter, and every declared parameter is used."""
    try:
        used = sqltext.names(sql, _LEXER_DIALECTS[dialect])
    except sqltext.UnterminatedSql as error:
        raise InvalidDefinition(f"The {where}'s SQL cannot be read: {error}") from None
    undeclared = [n for n in used if n not in declared]
    if undeclared:
        raise InvalidDefinition(
            f"The {where}'s SQL uses {', '.join(':' + shown(n) for n in undeclared)}, "
            "which is not a declared field or parameter"
        )
    unused = [n for n in declared if n not in used]
    if unused:
        raise InvalidDefinition(
            f"The {where} declares {', '.join(shown(n) for n in unused)}, which its SQL never uses (as :name)"
        )
