"""Whether a statement means on a snapshot what it means on the live database.

A snapshot is SQLite; a report's statement was written for its model's database (PostgreSQL, mostly).
The same text can prepare on both, return the same columns and still answer otherwise: SQLite adds
decimals in floating point (`1e15 + 0.01 + 0.01` loses its cents), its LIKE ignores case, it orders
text by bytes and NULLs first, it divides by zero into NULL, `CAST(day AS date)` makes a number of a
date. So a statement reads a snapshot only when it keeps to the part of SQL both engines compute alike,
as a parser (sqlglot) reads it with the snapshot's column types:

- columns, literals, parameters, `AND`/`OR`/`NOT`, `=`/`<>`/`IN`/`IS NULL`, `CASE`, `COALESCE`, `NULLIF`,
  `count`, joins, subqueries, `WITH`, `UNION`, `GROUP BY`, `HAVING`, `LIMIT`;
- arithmetic on whole numbers, or on floats (which are floats on both); a division or remainder only by
  a non-zero number written in the statement; `sum` of whole numbers or floats, `avg` of floats;
- ordering (`ORDER BY`, `<`, `BETWEEN`, `min`, `max`) of numbers and of dates and times of one kind, and
  of text where the live database orders text by its characters' code points (collation C, POSIX,
  C.UTF-8); an ordering with the NULLs where both engines put them (`NULLS FIRST` / `NULLS LAST`
  written, or a kept column without NULLs);
- a date or time compared with text written in the statement only when that text is in the ISO form
  the snapshot keeps.

Anything else (decimal arithmetic and sums, LIKE, casts, other functions) is computed where it is
exact: in a kept custom query, which the live database runs at each refresh.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reportserver.domain.errors import shown
from reportserver.domain.snapshots import KeptTable, column_difference
from reportserver.domain.values import Column

# Text orderings that are the characters' code points (UTF-8's byte order, which SQLite's BINARY uses).
CODE_POINT_ORDERS = frozenset({"c", "posix", "c.utf-8", "c.utf8", "ucs_basic", "binary"})

_SQLITE_TYPES = {
    "INTEGER": "BIGINT",
    "REAL": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMPTZ": "TIMESTAMPTZ",
    "BLOB": "VARBINARY",
    "TEXT": "TEXT",
}
_DECIMAL = re.compile(r"DECIMAL REAL(?:\(38,(\d+)\))?$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$")

# What an expression is, for these rules.
INTEGER, FLOAT, DECIMAL, TEXT = "integer", "float", "decimal", "text"
DATE, TIMESTAMP, TIMESTAMPTZ = "date", "timestamp", "timestamptz"
BOOLEAN, BINARY, NULL, PARAMETER, UNKNOWN = "boolean", "binary", "null", "parameter", "unknown"
_TEMPORAL = {DATE, TIMESTAMP, TIMESTAMPTZ}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # how the parser writes a parameter back (PostgreSQL's driver form)
_MAX_DEPTH = 20  # WITH queries and subqueries a column is followed through
_ORDERED = {INTEGER, FLOAT, DECIMAL, DATE, TIMESTAMP, TIMESTAMPTZ, BOOLEAN}


def orders_by_code_point(collation: str | None) -> bool:
    """Whether a database's text order (its collation's name) is SQLite's BINARY order."""
    return collation is not None and collation.casefold() in CODE_POINT_ORDERS


def reads_alike(
    sql: str,
    dialect: str,
    live: list[Column],
    kept: list[Column],
    tables: list[KeptTable],
    text_order: str | None,
    parameters: Mapping[str, str] | None = None,
) -> str | None:
    """None when a statement reads from the snapshot what it reads from the live database: it computes
    only what both compute alike, and gives the same columns of the same types; else what differs."""
    return snapshot_difference(sql, dialect, tables, text_order, parameters) or column_difference(live, kept)


def snapshot_difference(
    sql: str,
    dialect: str,
    tables: list[KeptTable],
    text_order: str | None,
    parameters: Mapping[str, str] | None = None,
) -> str | None:
    """None when `sql` computes on the snapshot's `tables` what it computes on the live database (of
    `dialect`, ordering text by `text_order`, its `:name` parameters bound as the report's fields of
    those types: `date`, `datetime`, `string`...); else, in words, the first thing that differs and where
    to compute it instead."""
    from sqlglot.errors import SqlglotError  # noqa: PLC0415 - only saves and refreshes check statements

    try:
        return _Checker(sql, dialect, tables, text_order, parameters or {}).difference()
    except (SqlglotError, RecursionError, ValueError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"its SQL cannot be checked against the snapshot ({shown(text, 200)})"


class _Checker:
    def __init__(
        self, sql: str, dialect: str, tables: list[KeptTable], text_order: str | None, parameters: Mapping[str, str]
    ) -> None:
        import sqlglot  # noqa: PLC0415
        from sqlglot.optimizer.annotate_types import annotate_types  # noqa: PLC0415
        from sqlglot.optimizer.qualify import qualify  # noqa: PLC0415

        self.live = "postgres" if dialect == "postgresql" else dialect
        self.postgres = self.live == "postgres"
        self.text_ordered = orders_by_code_point(text_order) or not self.postgres
        self.text_order = text_order
        self.parameters = {name: _FIELD_KINDS.get(kind, PARAMETER) for name, kind in parameters.items()}
        self.schema: dict[str, object] = {
            t.name: {c.name: _sqlglot_type(c.declared) for c in t.columns} for t in tables
        }
        self.without_nulls = {(t.name.casefold(), c.name.casefold()) for t in tables for c in t.columns if c.nulls == 0}
        parsed = sqlglot.parse_one(sql, dialect=self.live)
        qualified = qualify(parsed, schema=self.schema, dialect=self.live, validate_qualify_columns=False)
        self.tree = annotate_types(qualified, schema=self.schema, dialect=self.live)
        self.sqlite_nulls = sqlglot.parse_one(sql, dialect=_nulls_small_dialect()) if self.postgres else None

    def difference(self) -> str | None:
        from sqlglot import exp  # noqa: PLC0415

        # Innermost first: the message names the smallest part that differs (`amount * 2`, not `... > 3`).
        for node in reversed(list(self.tree.walk(bfs=False))):
            found = self._node(node, exp)
            if found:
                return found
        return self._nulls(exp)

    def _node(self, node: Any, exp: Any) -> str | None:
        """What about this node computes otherwise on the snapshot, or None."""
        return self._numbers(node, exp) or self._order(node, exp) or self._text_and_calls(node, exp)

    def _numbers(self, node: Any, exp: Any) -> str | None:
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod | exp.IntDiv):
            return self._arithmetic(node, exp)
        if isinstance(node, exp.Sum | exp.Avg):
            return self._aggregate(node, exp)
        return None

    def _order(self, node: Any, exp: Any) -> str | None:  # noqa: PLR0911 - one rule per kind of node
        if isinstance(node, exp.Min | exp.Max):
            return self._ordering(node.this, f"{self._text(node)}", exp)
        if isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
            return self._comparison(node, [node.left, node.right], exp)
        if isinstance(node, exp.Between):
            return self._comparison(node, [node.this, node.args["low"], node.args["high"]], exp)
        if isinstance(node, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.NullSafeNEQ):
            return self._times(node, [node.left, node.right], exp)
        if isinstance(node, exp.In):
            return self._times(node, [node.this, *node.expressions], exp)
        if isinstance(node, exp.Ordered):
            return self._ordering(self._ordered_value(node, exp), f"ORDER BY {self._text(node.this)}", exp)
        return None

    def _text_and_calls(self, node: Any, exp: Any) -> str | None:
        if isinstance(node, exp.Cast | exp.TryCast):
            return (
                f"it converts {self._text(node)} (a cast), which SQLite converts otherwise (a date to a number, a "
                "decimal to a float): compare without the cast (parameters arrive typed), or convert in a kept "
                "custom query"
            )
        if isinstance(node, exp.Like | exp.ILike | exp.SimilarTo | exp.RegexpLike | exp.RegexpILike | exp.Glob):
            return (
                f"it matches text with {self._text(node)}: SQLite's LIKE ignores case and has no escape character, "
                "PostgreSQL's does not; compare with = or IN, or match in a kept custom query"
            )
        if isinstance(node, exp.DPipe):
            if {self.kind(side, exp) for side in (node.left, node.right)} <= {TEXT, INTEGER, NULL}:
                return None
            return f"it joins {self._text(node)} as text: SQLite writes a number or a date otherwise than PostgreSQL"
        if isinstance(node, exp.Func) and not isinstance(node, (*_allowed_functions(exp), exp.Connector, exp.Not)):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            return (
                f"it calls {shown(name.lower())}(), which SQLite does not compute as PostgreSQL does (or has not): "
                "compute it in a kept custom query"
            )
        return None

    # Rules

    def _arithmetic(self, node: Any, exp: Any) -> str | None:
        kinds = {self.kind(side, exp) for side in (node.left, node.right)}
        whole = kinds <= {INTEGER, NULL}
        written = {DECIMAL} if self._literal_decimals(node, exp) else set()  # a float times 1.5 is a float
        floating = FLOAT in kinds and kinds <= {INTEGER, FLOAT, NULL, *written}
        if not (whole or floating):
            described = ", ".join(sorted(k for k in kinds if k not in (INTEGER, NULL))) or "a parameter"
            return (
                f"it computes {self._text(node)} with {described} values, which SQLite computes in floating point "
                "or as text: compute it in a kept custom query (the live database computes it exactly at each refresh)"
            )
        if isinstance(node, exp.Div | exp.Mod | exp.IntDiv):
            divisor = node.right
            if not (isinstance(divisor, exp.Literal) and not divisor.is_string and float(divisor.this) != 0):
                return (
                    f"it divides by {self._text(divisor)}: a division by zero is an error on the live database but "
                    "NULL on the snapshot; divide by a number written in the statement, or in a kept custom query"
                )
        return None

    def _literal_decimals(self, node: Any, exp: Any) -> bool:
        """Whether every decimal operand is a number written in the statement (a float times 1.5 is a float)."""
        return all(isinstance(side, exp.Literal) for side in (node.left, node.right) if self.kind(side, exp) == DECIMAL)

    def _aggregate(self, node: Any, exp: Any) -> str | None:
        kind = self.kind(node.this, exp)
        allowed = {FLOAT} if isinstance(node, exp.Avg) else {INTEGER, FLOAT}
        if kind in allowed:
            return None
        return (
            f"it computes {self._text(node)} over {kind} values, which SQLite computes in floating point: compute it "
            "in a kept custom query (the live database computes it exactly at each refresh)"
        )

    def _comparison(self, node: Any, sides: list[Any], exp: Any) -> str | None:
        found = self._times(node, sides, exp)
        if found:
            return found
        timed = any(self.kind(side, exp) in _TEMPORAL for side in sides)
        for side in sides:
            if timed and isinstance(side, exp.Literal):  # text in the snapshot's form of that time (`_times`)
                continue
            found = self._ordering(side, self._text(node), exp, compared=True)
            if found:
                return found
        return None

    def _ordering(self, value: Any, where: str, exp: Any, compared: bool = False) -> str | None:
        kind = self.kind(value, exp)
        if kind in _ORDERED or (compared and kind in (PARAMETER, NULL)):
            return None
        if kind == TEXT and self.text_ordered:
            return None
        if kind == TEXT:
            return (
                f"it orders text ({where}): the live database orders text by its collation "
                f"({shown(self.text_order or 'not known', 40)}), a snapshot by code point: compare text only with = "
                "or IN, or keep the model's data in a database whose collation is C"
            )
        return f"it orders {kind} values ({where}), which the snapshot cannot show to order as the live database does"

    def _times(self, node: Any, sides: list[Any], exp: Any) -> str | None:
        """A date or time compared with another kind of time, or with text not in the snapshot's form."""
        kinds = [self.kind(side, exp) for side in sides]
        times = {k for k in kinds if k in _TEMPORAL}
        # A datetime field's value is bound as UTC text without an offset, as a timestamptz is kept.
        bound_utc = all(
            isinstance(side, exp.Placeholder) for side, kind in zip(sides, kinds, strict=True) if kind == TIMESTAMP
        )
        if times == {TIMESTAMP, TIMESTAMPTZ} and bound_utc:
            times = {TIMESTAMPTZ}
        if len(times) > 1:
            return f"it compares a date with a time ({self._text(node)}): SQLite compares them as text"
        if not times:
            return None
        (time_kind,) = times
        for side, kind in zip(sides, kinds, strict=True):
            if kind != TEXT:
                continue
            if isinstance(side, exp.Placeholder):
                field = "date" if time_kind == DATE else "datetime"
                return (
                    f"it compares a {_TIME_WORDS[time_kind]} with text parameter :{side.name} ({self._text(node)}): "
                    f"make :{side.name} a {field} field, whose values are bound as the snapshot keeps times"
                )
            if not (isinstance(side, exp.Literal) and _iso(side.this, time_kind)):
                return (
                    f"it compares a {_TIME_WORDS[time_kind]} with text ({self._text(node)}): write the text as "
                    f"{_TIME_FORMS[time_kind]}, or pass it as a parameter"
                )
        return None

    def _nulls(self, exp: Any) -> str | None:
        """An ORDER BY whose NULLs go first on one engine and last on the other."""
        if self.sqlite_nulls is None:
            return None
        live = list(self.tree.find_all(exp.Ordered))
        there = list(self.sqlite_nulls.find_all(exp.Ordered))
        outer = any(j.side for j in self.tree.find_all(exp.Join))
        for mine, theirs in zip(live, there, strict=False):
            if bool(mine.args.get("nulls_first")) == bool(theirs.args.get("nulls_first")):
                continue
            if not outer and self._never_null(self._ordered_value(mine, exp), exp):
                continue
            return (
                f"it orders by {self._text(mine.this)} without NULLS FIRST or NULLS LAST: the live database puts "
                "NULLs last (first when DESC), SQLite the other way; write which"
            )
        return None

    def _never_null(self, value: Any, exp: Any, depth: int = 0) -> bool:
        """Whether a value is a kept column without NULLs: directly, or through a `WITH` query's or a
        subquery's projection (which a plain column passes on as it is)."""
        if not isinstance(value, exp.Column) or depth > _MAX_DEPTH:
            return False
        alias = value.table
        derived = [
            q.this
            for q in [*self.tree.find_all(exp.CTE), *self.tree.find_all(exp.Subquery)]
            if q.alias == alias and isinstance(q.this, exp.Select)
        ]
        named = {t.name for t in self.tree.find_all(exp.Table) if t.alias_or_name == alias} - {
            c.alias for c in self.tree.find_all(exp.CTE)
        }
        if len(derived) + len(named) != 1:  # an alias used twice, or for nothing known: not shown
            return False
        if named:
            (table,) = named
            return (table.casefold(), value.name.casefold()) in self.without_nulls
        (select,) = derived
        passed = [p for p in select.expressions if p.alias_or_name == value.name]
        if len(passed) != 1:
            return False
        (projection,) = passed
        return self._never_null(projection.this if isinstance(projection, exp.Alias) else projection, exp, depth + 1)

    # What an expression is

    def kind(self, node: Any, exp: Any) -> str:  # noqa: PLR0911 - one answer per kind of node
        while isinstance(node, exp.Paren | exp.Neg):
            node = node.this
        if isinstance(node, exp.Placeholder | exp.Parameter):
            return self.parameters.get(node.name, PARAMETER)
        if isinstance(node, exp.Null):
            return NULL
        if isinstance(node, exp.Literal):
            if node.is_string:
                return TEXT
            return INTEGER if re.fullmatch(r"\d+", str(node.this)) else DECIMAL
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod | exp.IntDiv):
            return _arithmetic_kind({self.kind(side, exp) for side in (node.left, node.right)})
        kind = node.type
        if kind is None:
            return UNKNOWN
        return next((name for name, types in _kinds(exp) if kind.is_type(*types)), UNKNOWN)

    def _ordered_value(self, ordered: Any, exp: Any) -> Any:
        """What an ORDER BY item orders by: a projection when it names one (by alias or position)."""
        value = ordered.this
        select = ordered.find_ancestor(exp.Select)
        if select is None:
            return value
        projections = select.expressions
        if isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit():
            index = int(value.this) - 1
            chosen = projections[index] if 0 <= index < len(projections) else value
            return chosen.this if isinstance(chosen, exp.Alias) else chosen
        if isinstance(value, exp.Column) and not value.table:
            for projection in projections:
                if isinstance(projection, exp.Alias) and projection.alias == value.name:
                    return projection.this
        return value

    def _text(self, node: Any) -> str:
        """The node as SQL, its parameters written as the report writes them (`:name`)."""
        return shown(_PLACEHOLDER.sub(r":\1", node.sql(dialect=self.live)), 80)


# A report field's type (`reportserver.domain.reports.FieldType`) as the kind of value it is bound as.
_FIELD_KINDS = {
    "string": TEXT,
    "choice": TEXT,
    "integer": INTEGER,
    "number": DECIMAL,
    "date": DATE,
    "datetime": TIMESTAMP,
    "boolean": BOOLEAN,
}
_TIME_WORDS = {DATE: "date", TIMESTAMP: "timestamp", TIMESTAMPTZ: "timestamp with time zone"}
_TIME_FORMS = {DATE: "'YYYY-MM-DD'", TIMESTAMP: "'YYYY-MM-DD HH:MM:SS'", TIMESTAMPTZ: "a parameter"}


def _iso(text: str, kind: str) -> bool:
    """Text the snapshot compares as the live database compares it with a date or time."""
    if kind == DATE:
        return bool(_ISO_DATE.match(text))
    if kind == TIMESTAMP:
        return bool(_ISO_TIMESTAMP.match(text))
    return False  # a timestamptz written as text depends on the live session's time zone


def _arithmetic_kind(kinds: set[str]) -> str:
    """What arithmetic on values of these kinds gives (a parameter's kind being its field's)."""
    if kinds <= {INTEGER, NULL}:
        return INTEGER
    if kinds <= {INTEGER, FLOAT, DECIMAL, NULL}:
        return FLOAT if FLOAT in kinds else DECIMAL
    return UNKNOWN


def _kinds(exp: Any) -> list[tuple[str, Any]]:
    """The parser's types of each kind, in the order they are told apart (a DATE is also TEMPORAL)."""
    types = exp.DataType.Type
    return [
        (INTEGER, exp.DataType.INTEGER_TYPES),
        (FLOAT, exp.DataType.FLOAT_TYPES),
        (DECIMAL, exp.DataType.REAL_TYPES),
        (TEXT, exp.DataType.TEXT_TYPES),
        (DATE, {types.DATE}),
        (TIMESTAMPTZ, {types.TIMESTAMPTZ}),
        (TIMESTAMP, exp.DataType.TEMPORAL_TYPES),
        (BOOLEAN, {types.BOOLEAN}),
        (BINARY, {types.VARBINARY}),
    ]


def _allowed_functions(exp: Any) -> tuple[type, ...]:
    """Functions both engines compute alike (with the rules above on their arguments)."""
    return (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Coalesce, exp.Nullif, exp.Case, exp.If, exp.Abs)


def _sqlglot_type(declared: str) -> str:
    """A kept column's declared type as the parser's type (an untyped column: unknown)."""
    decimal = _DECIMAL.match(declared)
    if decimal:
        return f"DECIMAL(38, {decimal.group(1)})" if decimal.group(1) else "DECIMAL"
    return _SQLITE_TYPES.get(declared, "UNKNOWN")


def _nulls_small_dialect() -> Any:
    """PostgreSQL's SQL read with SQLite's NULL order: an ORDER BY reads alike in both only when it says
    where its NULLs go (or they go to the same end anyway)."""
    from sqlglot.dialects.postgres import Postgres  # noqa: PLC0415

    class _NullsSmall(Postgres):
        NULL_ORDERING = "nulls_are_small"

    return _NullsSmall
