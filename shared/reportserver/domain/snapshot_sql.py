"""Whether a statement means on a snapshot what it means on the live database.

A snapshot is SQLite; a report's statement was written for its model's database (PostgreSQL, mostly).
The same text can prepare on both, return the same columns and still answer otherwise: SQLite adds
decimals in floating point (`1e15 + 0.01 + 0.01` loses its cents), its LIKE ignores case, it orders
text by bytes and NULLs first, it divides by zero into NULL, `CAST(day AS date)` makes a number of a
date, `active = 'yes'` is false for every row, an enum orders by its label. So a statement reads a
snapshot only when every part of it is one both engines compute alike, for the kinds of values it
works on. The statement is parsed (sqlglot), and each value's kind is followed from the kept
columns' types on the live database (an enum, a uuid, a `char(n)` or a `real` kept as text or as a
double is of no kind that may be compared), through subqueries, `WITH` queries and set operations:

- allowed at all (anything else is refused by name): columns, literals, parameters, `AND`/`OR`/`NOT`,
  comparisons, `IN`, `BETWEEN`, `IS NULL`, `EXISTS`, `CASE`, `COALESCE`, `NULLIF`, `abs`, `count`,
  `sum`, `avg`, `min`, `max`, windows, joins, subqueries, `WITH`, set operations, `DISTINCT`,
  `GROUP BY`, `HAVING`, `ORDER BY`, `LIMIT`/`OFFSET`, `+ - * / %`, `||`;
- values compared, or combined by `CASE`/`COALESCE`/`NULLIF`/`IN`/a set operation, are of one kind:
  numbers with numbers (a float with a whole number only when it is a literal a double holds), text
  with text, a date with a date, a time with a time (a datetime parameter with a timestamptz: both
  UTC), a boolean with a boolean; text written in the statement with a date or time only in the form
  the snapshot keeps; a text parameter or a plain-number literal with a whole or decimal column
  (SQLite reads the text as the column's number, as PostgreSQL does);
- arithmetic on whole numbers that cannot pass 64 bits (judged from the columns' live types); a division
  or remainder only by a non-zero number written in the statement; `sum` of whole numbers (its result a
  decimal, as PostgreSQL's `sum(bigint)`); no decimal arithmetic, no `sum` or `avg` of decimals or
  floats (SQLite compensates float sums);
- numbers written in the statement that a double holds exactly; a subquery giving one value is an
  aggregate (PostgreSQL fails on a second row where SQLite takes the first);
- ordering (`ORDER BY`, `<`, `BETWEEN`, `min`, `max`) of numbers, dates and times, booleans, and of
  text where the live database orders text by code point (collation C, POSIX, C.UTF-8); an ordering
  with the NULLs where both engines put them (`NULLS FIRST` / `NULLS LAST` written, or a kept column
  without NULLs and no outer join).

Anything else is computed where it is exact: in a kept custom query, which the live database runs at
each refresh.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from reportserver.domain.errors import shown
from reportserver.domain.snapshots import KeptColumn, KeptTable, column_difference
from reportserver.domain.values import Column

# Text orderings that are the characters' code points (UTF-8's byte order, which SQLite's BINARY uses).
CODE_POINT_ORDERS = frozenset({"c", "posix", "c.utf-8", "c.utf8", "ucs_basic", "binary"})

# What a value is, for these rules.
INTEGER, FLOAT, DECIMAL, TEXT = "integer", "float", "decimal", "text"
DATE, TIMESTAMP, TIMESTAMPTZ = "date", "timestamp", "timestamptz"
BOOLEAN, BINARY, NULL, UNKNOWN = "boolean", "binary", "null", "unknown"
_NUMBERS = {INTEGER, FLOAT, DECIMAL}
_TEMPORAL = {DATE, TIMESTAMP, TIMESTAMPTZ}
_ORDERED = {INTEGER, FLOAT, DECIMAL, DATE, TIMESTAMP, TIMESTAMPTZ, BOOLEAN}

# A kept column's declared type in the snapshot (`reportserver.sources.snapshot.declared`) as a kind.
_DECLARED = {
    "INTEGER": INTEGER,
    "REAL": FLOAT,
    "BOOLEAN": BOOLEAN,
    "DATE": DATE,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMPTZ": TIMESTAMPTZ,
    "BLOB": BINARY,
    "TEXT": TEXT,
}
# The live types a kind is kept exactly as (a column of any other live type is of no comparable kind:
# an enum, a uuid, an interval or jsonb kept as text; a `char(n)` kept padded; a `real` kept as a double).
_LIVE_TYPES = {
    TEXT: {"text", "character varying", "name", '"char"'},
    FLOAT: {"double precision"},
}
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
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# As the snapshot keeps a time (and binds a parameter): no fraction, or six digits that are not all 0
_ISO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.(?!000000)[0-9]{6})?")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # how the parser writes a parameter back (PostgreSQL's driver form)
_MAX_DEPTH = 20  # WITH queries and subqueries a column is followed through
_EXACT_FLOAT_INTEGER = 2**53
_INTEGER_BITS = 62  # |x| <= 2**62 is held by SQLite's INTEGER (and so is its negation): more is refused
_SUMMED_BITS = 31  # a sum of int4 values (|x| <= 2**31) fails loudly on SQLite past 2**32 rows, never rounds
_COUNT_BITS = 40  # a count of a snapshot's rows (bounded by its size)
_NATIVE_BITS = {"smallint": 15, "integer": 31, "bigint": 63}
_SMALLEST_DOUBLE = 2.2250738585072014e-308  # below it, PostgreSQL fails on underflow where SQLite rounds


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
    try:
        return _Checker(sql, dialect, tables, text_order, parameters or {}).difference()
    except Exception as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"its SQL cannot be checked against the snapshot ({shown(text, 200)})"


class _Checker:
    def __init__(
        self, sql: str, dialect: str, tables: list[KeptTable], text_order: str | None, parameters: Mapping[str, str]
    ) -> None:
        import sqlglot  # noqa: PLC0415 - only saves and refreshes check statements
        from sqlglot import exp  # noqa: PLC0415
        from sqlglot.optimizer.qualify import qualify  # noqa: PLC0415

        self.exp = exp
        self.live = "postgres" if dialect == "postgresql" else dialect
        self.postgres = self.live == "postgres"
        self.text_ordered = orders_by_code_point(text_order) or not self.postgres
        self.text_varies = "non-deterministic" in (text_order or "")
        self.text_order = text_order
        self.parameters = {name: _FIELD_KINDS.get(kind, UNKNOWN) for name, kind in parameters.items()}
        self.columns = {(t.name.casefold(), c.name.casefold()): c for t in tables for c in t.columns}
        schema: dict[str, object] = {t.name: {c.name: "UNKNOWN" for c in t.columns} for t in tables}
        parsed = sqlglot.parse_one(sql, dialect=self.live)
        self.tree = qualify(parsed, schema=schema, dialect=self.live, validate_qualify_columns=False)
        self.sqlite_nulls = sqlglot.parse_one(sql, dialect=_nulls_small_dialect()) if self.postgres else None
        self.ctes = {c.alias for c in self.tree.find_all(exp.CTE)}
        self.outer_join = any(j.side for j in self.tree.find_all(exp.Join))  # LEFT, RIGHT, FULL: NULLs made

    def difference(self) -> str | None:
        nodes = list(self.tree.walk(bfs=False))
        for node in nodes:  # outermost first: a cast is named, not the type inside it
            found = self._allowed(node)
            if found:
                return found
        # Innermost first: the message names the smallest part that differs (`amount * 2`, not `... > 3`).
        for node in reversed(nodes):
            found = self._node(node)
            if found:
                return found
        return self._nulls()

    # What may appear at all

    def _allowed(self, node: Any) -> str | None:
        exp = self.exp
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
        if isinstance(node, _allowed_nodes(exp)):
            return None
        if isinstance(node, exp.DataType | exp.Var) and isinstance(node.parent, exp.Cast | exp.TryCast):
            return None  # the cast itself is refused
        if isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            return (
                f"it calls {shown(name.lower())}(), which SQLite does not compute as PostgreSQL does (or has not): "
                "compute it in a kept custom query"
            )
        return (
            f"it uses {self._text(node)} ({type(node).__name__}), which the snapshot cannot show to compute as the "
            "live database does: compute it in a kept custom query"
        )

    # The rules, node by node

    def _node(self, node: Any) -> str | None:
        return self._numbers(node) or self._order(node) or self._combined(node)

    def _numbers(self, node: Any) -> str | None:  # noqa: PLR0911 - one rule per kind of node
        exp = self.exp
        if isinstance(node, exp.Literal) and not node.is_string and not _exact_number(str(node.this)):
            return (
                f"it writes the number {shown(str(node.this), 40)}, which SQLite's REAL (about 15 significant digits) "
                "or INTEGER (64 bits) does not hold exactly"
            )
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            return self._arithmetic(node)
        if isinstance(node, exp.Neg | exp.Abs) and self.kind(node.this) == INTEGER and self._bits(node) > _INTEGER_BITS:
            return self._overflows(node)
        if isinstance(node, exp.Limit | exp.Offset):
            amount = node.expression
            if not (isinstance(amount, exp.Literal) and _number_kind(str(amount.this)) == INTEGER):
                return (
                    f"it limits by {self._text(amount)}: give LIMIT and OFFSET as whole numbers written in the "
                    "statement (SQLite takes a negative or fractional one otherwise than PostgreSQL)"
                )
        if isinstance(node, exp.Sum | exp.Avg):
            kind = self.kind(node.this)
            if isinstance(node, exp.Sum) and kind == INTEGER and self._bits(node.this) <= _SUMMED_BITS:
                return None
            if isinstance(node, exp.Sum) and kind == INTEGER:
                return (
                    f"it computes {self._text(node)} over whole numbers that may pass 64 bits together (a bigint): "
                    "SQLite fails where PostgreSQL sums them as a numeric; compute it in a kept custom query"
                )
            how = (
                "adds with compensation where PostgreSQL adds plainly"
                if kind == FLOAT
                else "computes in floating point"
            )
            return (
                f"it computes {self._text(node)} over {kind} values, which SQLite {how}: compute it in a kept custom "
                "query (the live database computes it exactly at each refresh)"
            )
        if isinstance(node, exp.Subquery) and self._scalar(node):
            select = node.this
            aggregated = isinstance(select, exp.Select) and not select.args.get("group")
            if not (aggregated and all(_aggregate(p, exp) for p in select.expressions)):
                return (
                    f"it uses the subquery {self._text(node)} as one value: PostgreSQL fails when it gives a second "
                    "row, SQLite takes the first; make it an aggregate (max, count...) or a join"
                )
        return None

    def _order(self, node: Any) -> str | None:
        exp = self.exp
        if isinstance(node, exp.Min | exp.Max):
            return self._ordering(node.this, self._text(node))
        if isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
            return self._compared(node, [node.left, node.right], ordered=True, affinity=True)
        if isinstance(node, exp.Between):
            sides = [node.this, node.args["low"], node.args["high"]]
            return self._compared(node, sides, ordered=True, affinity=True)
        if isinstance(node, exp.Ordered):
            return self._ordering(self._ordered_value(node), f"ORDER BY {self._text(node.this)}")
        return None

    def _combined(self, node: Any) -> str | None:  # noqa: PLR0911 - one rule per kind of node
        """Values compared for equality, or brought together into one: of one kind."""
        exp = self.exp
        if isinstance(node, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.NullSafeNEQ):
            return self._compared(node, [node.left, node.right], affinity=True)
        if isinstance(node, exp.In):
            query = node.args.get("query")
            sides = [node.this, *node.expressions]
            if query is not None:
                sides += [_one_projection(branch) for branch in _branches(query.this, exp)]
            # SQLite reads text in an IN list as the number of the column on its left, never the other way
            return self._compared(node, sides, affinity=self._kept_column(node.this) is not None)
        if isinstance(node, exp.Case) and node.this is not None:  # CASE x WHEN v: x = v for each v
            found = self._compared(node, [node.this, *(branch.this for branch in node.args.get("ifs", []))])
            if found:
                return found
        if isinstance(node, exp.Nullif | exp.Coalesce | exp.Case | exp.If):
            return self._compared(node, self._values_of(node))
        if isinstance(node, exp.DPipe):
            if {self.kind(side) for side in (node.left, node.right)} <= {TEXT, INTEGER, NULL}:
                return None
            return f"it joins {self._text(node)} as text: SQLite writes a number or a date otherwise than PostgreSQL"
        if isinstance(node, exp.SetOperation):
            return self._set_operation(node)
        if isinstance(node, exp.Group | exp.Distinct) and self.text_varies:
            return (
                f"it groups or removes duplicates ({self._text(node)}) on a database with a non-deterministic "
                "collation, by which text the snapshot keeps apart may be one; do it in a kept custom query"
            )
        return None

    def _arithmetic(self, node: Any) -> str | None:
        exp = self.exp
        kinds = {self.kind(side) for side in (node.left, node.right)}
        if _arithmetic_kind(kinds) == FLOAT:
            return (
                f"it computes {self._text(node)} with floats, which may pass a double's range: PostgreSQL fails there "
                "where SQLite goes on with infinity; compute it in a kept custom query"
            )
        if _arithmetic_kind(kinds) != INTEGER:
            described = ", ".join(sorted(k for k in kinds if k not in (INTEGER, NULL))) or "whole-number"
            return (
                f"it computes {self._text(node)} with {described} values, which SQLite computes in floating point "
                "or as text: compute it in a kept custom query (the live database computes it exactly at each refresh)"
            )
        if _arithmetic_kind(kinds) == INTEGER and self._bits(node) > _INTEGER_BITS:
            return self._overflows(node)
        if isinstance(node, exp.Div | exp.Mod):
            divisor = node.right
            while isinstance(divisor, exp.Paren | exp.Neg):
                divisor = divisor.this
            if not (isinstance(divisor, exp.Literal) and not divisor.is_string and Decimal(str(divisor.this)) != 0):
                return (
                    f"it divides by {self._text(node.right)}: a division by zero is an error on the live database "
                    "but NULL on the snapshot; divide by a number written in the statement, or in a kept custom query"
                )
        return None

    def _compared(self, node: Any, sides: list[Any], ordered: bool = False, affinity: bool = False) -> str | None:
        """Values of one kind (see the module's rules), and, when `ordered`, of a kind ordered alike.
        `affinity`: a comparison in which SQLite reads text as the number of a column compared with it."""
        found = self._of_one_kind(node, sides, affinity)
        if found or not ordered:
            return found
        kinds = [self.kind(side) for side in sides]
        timed = any(kind in _TEMPORAL for kind in kinds)
        numbered = any(kind in _NUMBERS for kind in kinds)
        for side, kind in zip(sides, kinds, strict=True):
            if kind == NULL or (kind == TEXT and (timed or numbered)):  # text read as the other side's kind
                continue
            found = self._ordering(side, self._text(node))
            if found:
                return found
        return None

    def _of_one_kind(self, node: Any, sides: list[Any], affinity: bool = False) -> str | None:  # noqa: PLR0911
        kinds = [self.kind(side) for side in sides]
        present = {kind for kind in kinds if kind != NULL}
        where = self._text(node)
        if UNKNOWN in present:
            return (
                f"it compares or combines values the snapshot keeps in another form ({where}): an enum, a uuid, a "
                "char(n), a real, or values of mixed kinds; compare them in a kept custom query"
            )
        if BOOLEAN in present and present != {BOOLEAN}:
            return f"it compares a boolean with another kind of value ({where}): SQLite keeps a boolean as 1 or 0"
        times = present & _TEMPORAL
        if times:
            return self._times(node, sides, kinds)
        if present <= _NUMBERS:
            return self._numbers_compared(where, sides, kinds)
        if TEXT in present and present & _NUMBERS:
            return self._text_as_number(where, sides, kinds, affinity)
        if TEXT in present and self.text_varies:
            return (
                f"it compares text ({where}) on a database with a non-deterministic collation, by which text the "
                "snapshot keeps apart may be equal; compare it in a kept custom query"
            )
        if BINARY in present and present != {BINARY}:
            return f"it compares bytes with another kind of value ({where})"
        return None

    def _numbers_compared(self, where: str, sides: list[Any], kinds: list[str]) -> str | None:
        """A float with a whole number: PostgreSQL makes the whole number a double, SQLite compares exactly."""
        if FLOAT not in kinds or INTEGER not in kinds:
            return None
        for side, kind in zip(sides, kinds, strict=True):
            if kind == INTEGER and not (
                isinstance(side, self.exp.Literal) and abs(int(str(side.this))) <= _EXACT_FLOAT_INTEGER
            ):
                return (
                    f"it compares a float with a whole number ({where}): PostgreSQL compares them as doubles, SQLite "
                    "exactly; compare the float with a number written in the statement"
                )
        return None

    def _text_as_number(self, where: str, sides: list[Any], kinds: list[str], affinity: bool) -> str | None:
        """Text written in the statement against a number column: SQLite reads it as the column's number
        in a comparison, as PostgreSQL does, when it is a plain number a double holds. Never a parameter's
        text (PostgreSQL reads '0x10' and '1_000' as numbers, SQLite not), nor text against a computed number."""
        exp = self.exp
        for side, kind in zip(sides, kinds, strict=True):
            if kind in (INTEGER, DECIMAL) and affinity and self._kept_column(side) is not None:
                continue
            written = str(side.this) if isinstance(side, exp.Literal) and kind == TEXT else ""
            if affinity and _PLAIN_NUMBER.fullmatch(written) and _exact_number(written.lstrip("-")):
                continue
            if kind == NULL:
                continue
            name = f":{side.name}" if isinstance(side, exp.Placeholder) else "the text"
            return (
                f"it compares text with a number ({where}): SQLite reads text as a number otherwise than PostgreSQL; "
                f"make {name} an integer or number field, or compare a number column with a plain number"
            )
        return None

    def _times(self, node: Any, sides: list[Any], kinds: list[str]) -> str | None:
        """A date or time compared with another kind of time, or with text not in the snapshot's form."""
        exp = self.exp
        times = {k for k in kinds if k in _TEMPORAL}
        # A datetime field's value is bound as UTC text without an offset, as a timestamptz is kept.
        pairs = zip(sides, kinds, strict=True)
        bound_utc = all(isinstance(side, exp.Placeholder) for side, k in pairs if k == TIMESTAMP)
        if times == {TIMESTAMP, TIMESTAMPTZ} and bound_utc:
            times = {TIMESTAMPTZ}
        if len(times) > 1:
            return f"it compares a date with a time ({self._text(node)}): SQLite compares them as text"
        (time_kind,) = times
        for side, kind in zip(sides, kinds, strict=True):
            if kind in _TEMPORAL or kind == NULL:  # of the one kind of time (a mix is refused above)
                continue
            if kind == TEXT and isinstance(side, exp.Placeholder):
                field = "date" if time_kind == DATE else "datetime"
                return (
                    f"it compares a {_TIME_WORDS[time_kind]} with text parameter :{side.name} ({self._text(node)}): "
                    f"make :{side.name} a {field} field, whose values are bound as the snapshot keeps times"
                )
            if kind == TEXT and isinstance(side, exp.Literal) and _iso(side.this, time_kind):
                continue
            if kind == TEXT:
                return (
                    f"it compares a {_TIME_WORDS[time_kind]} with text ({self._text(node)}): write the text as "
                    f"{_TIME_FORMS[time_kind]}, or pass it as a parameter"
                )
            return f"it compares a {_TIME_WORDS[time_kind]} with {kind} values ({self._text(node)})"
        return None

    def _set_operation(self, node: Any) -> str | None:
        """Each column of a UNION, INTERSECT or EXCEPT of one kind in every branch."""
        branches = _branches(node, self.exp)
        widths = {len(b.expressions) if isinstance(b, self.exp.Select) else -1 for b in branches}
        if len(widths) != 1 or -1 in widths:
            return None  # the engines refuse it themselves (or a VALUES branch: its kinds are its literals)
        for position in range(next(iter(widths))):
            found = self._of_one_kind(node, [b.expressions[position] for b in branches])
            if found:
                return found
        return None

    def _ordering(self, value: Any, where: str) -> str | None:
        kind = self.kind(value)
        if kind in _ORDERED or kind == NULL:
            return None
        if kind == TEXT and self.text_ordered:
            return None
        if kind == TEXT:
            return (
                f"it orders text ({where}): the live database orders text by its collation "
                f"({shown(self.text_order or 'not known', 40)}), a snapshot by code point: compare text only with = "
                "or IN, or keep the model's data in a database whose collation is C"
            )
        return (
            f"it orders {kind} values ({where}), which the snapshot keeps in another form (an enum, a uuid, a "
            "char(n), a real, or values of mixed kinds) and cannot order as the live database does"
        )

    def _nulls(self) -> str | None:
        """An ORDER BY whose NULLs go first on one engine and last on the other."""
        exp = self.exp
        if self.sqlite_nulls is None:
            return None
        live = list(self.tree.find_all(exp.Ordered))
        there = list(self.sqlite_nulls.find_all(exp.Ordered))
        for mine, theirs in zip(live, there, strict=False):
            if bool(mine.args.get("nulls_first")) == bool(theirs.args.get("nulls_first")):
                continue
            if not self.outer_join and self._never_null(self._ordered_value(mine)):
                continue
            return (
                f"it orders by {self._text(mine.this)} without NULLS FIRST or NULLS LAST: the live database puts "
                "NULLs last (first when DESC), SQLite the other way; write which"
            )
        return None

    def _never_null(self, value: Any) -> bool:
        column = self._lineage(value)
        return isinstance(column, KeptColumn) and column.nulls == 0

    # What a value is

    def kind(self, node: Any, depth: int = 0) -> str:  # noqa: PLR0911 - one answer per kind of node
        exp = self.exp
        while isinstance(node, exp.Paren | exp.Neg | exp.Alias | exp.Window | exp.Distinct):
            node = node.this if not isinstance(node, exp.Distinct) else (node.expressions or [None])[0]
        if node is None or depth > _MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, exp.Placeholder | exp.Parameter):
            return self.parameters.get(node.name, UNKNOWN)
        if isinstance(node, exp.Null):
            return NULL
        if isinstance(node, exp.Boolean):
            return BOOLEAN
        if isinstance(node, exp.Literal):
            return TEXT if node.is_string else _number_kind(str(node.this))
        if isinstance(node, exp.Column):
            found = self._lineage(node, depth)
            if isinstance(found, KeptColumn):
                return _column_kind(found, self.postgres)
            if isinstance(found, _Mixed):
                return _one_kind({self.kind(value, depth + 1) for value in found.values})
            return UNKNOWN if found is node else self.kind(found, depth + 1)
        return self._computed_kind(node, depth)

    def _computed_kind(self, node: Any, depth: int) -> str:  # noqa: PLR0911 - one answer per kind of node
        exp = self.exp
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            return _arithmetic_kind({self.kind(side, depth + 1) for side in (node.left, node.right)})
        if isinstance(node, exp.DPipe):
            return TEXT
        if isinstance(node, exp.Count):
            return INTEGER
        if isinstance(node, exp.Sum):
            return DECIMAL  # PostgreSQL's sum of a bigint is a numeric (divided as one)
        if isinstance(node, exp.Min | exp.Max | exp.Abs):
            return self.kind(node.this, depth + 1)
        if isinstance(node, exp.Nullif | exp.Coalesce | exp.Case | exp.If):
            return _one_kind({self.kind(value, depth + 1) for value in self._values_of(node)})
        if isinstance(node, exp.Subquery):
            return _one_kind({self.kind(_one_projection(b), depth + 1) for b in _branches(node.this, exp)})
        if isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Exists | exp.Is):
            return BOOLEAN
        return UNKNOWN

    def _values_of(self, node: Any) -> list[Any]:
        """The values a CASE, COALESCE, NULLIF or IF brings into one (NULLIF: compared as well)."""
        exp = self.exp
        if isinstance(node, exp.Case):
            values = [branch.args.get("true") for branch in node.args.get("ifs", [])] + [node.args.get("default")]
        elif isinstance(node, exp.If):
            values = [node.args.get("true"), node.args.get("false")]
        elif isinstance(node, exp.Nullif):
            values = [node.this, node.expression]
        else:
            values = [node.this, *node.expressions]
        return [value for value in values if value is not None]  # a CASE without ELSE: NULL

    def _lineage(self, value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one answer per source
        """What a column reads: the kept column (of a kept table), or the expression a WITH query's, a
        subquery's or a set operation's projection gives it (a set operation: its first branch's); the
        value itself if it is neither."""
        exp = self.exp
        if not isinstance(value, exp.Column) or depth > _MAX_DEPTH:
            return value
        alias = value.table
        if not alias:  # an ORDER BY or GROUP BY naming a projection
            select = value.find_ancestor(exp.Select)
            projection = _projection(select, value.name, exp) if select is not None else None
            return value if projection is None else self._lineage(_unaliased(projection, exp), depth + 1)
        derived = [
            q.this for q in [*self.tree.find_all(exp.CTE), *self.tree.find_all(exp.Subquery)] if q.alias == alias
        ]
        named = {t.name for t in self.tree.find_all(exp.Table) if t.alias_or_name == alias} - self.ctes
        if len(derived) + len(named) != 1:  # an alias used twice, or for nothing known: not followed
            return value
        if named:
            return self.columns.get((next(iter(named)).casefold(), value.name.casefold()), value)
        branches = _branches(derived[0], exp)
        position = _position(branches[0], value.name, exp)
        if position is None:
            return value
        values = [_unaliased(b.expressions[position], exp) for b in branches if isinstance(b, exp.Select)]
        if len(values) != 1:
            return _Mixed(values)
        return self._lineage(values[0], depth + 1)

    def _overflows(self, node: Any) -> str:
        return (
            f"it computes {self._text(node)} with whole numbers that may pass 64 bits (a bigint, a parameter, a "
            "product of several), where SQLite goes on in floating point and PostgreSQL fails; compute it in a kept "
            "custom query"
        )

    def _bits(self, node: Any, depth: int = 0) -> int:  # noqa: PLR0911 - one bound per kind of node
        """A bound b on a whole-number value, |value| <= 2**b, from its columns' live types: SQLite holds
        it exactly while b <= 62; a value that may need more is refused."""
        exp = self.exp
        if depth > _MAX_DEPTH:
            return _INTEGER_BITS + 1
        while isinstance(node, exp.Paren | exp.Alias | exp.Window | exp.Neg | exp.Abs):  # |-x| is |x|
            node = node.this
        if isinstance(node, exp.Literal):
            return int(str(node.this)).bit_length() if _number_kind(str(node.this)) == INTEGER else 64
        if isinstance(node, exp.Add | exp.Sub):
            return max(self._bits(node.left, depth + 1), self._bits(node.right, depth + 1)) + 1
        if isinstance(node, exp.Mul):
            return self._bits(node.left, depth + 1) + self._bits(node.right, depth + 1)
        if isinstance(node, exp.Div | exp.Mod):  # by a non-zero whole number: no larger
            return self._bits(node.left, depth + 1)
        if isinstance(node, exp.Count):
            return _COUNT_BITS
        if isinstance(node, exp.Min | exp.Max):
            return self._bits(node.this, depth + 1)
        if isinstance(node, exp.Nullif | exp.Coalesce | exp.Case | exp.If):
            return max((self._bits(v, depth + 1) for v in self._values_of(node)), default=1)
        if isinstance(node, exp.Column):
            found = self._lineage(node)
            if isinstance(found, KeptColumn):
                return _NATIVE_BITS.get(found.native, 63)
            values = found.values if isinstance(found, _Mixed) else [] if found is node else [found]
            return max((self._bits(v, depth + 1) for v in values), default=63)
        return 63  # a parameter, a bigint, anything else: the whole of SQLite's INTEGER

    def _kept_column(self, side: Any) -> KeptColumn | None:
        """The kept column a value is, directly (SQLite applies a column's affinity to text it is compared with)."""
        found = self._lineage(side)
        return found if isinstance(found, KeptColumn) else None

    def _scalar(self, node: Any) -> bool:
        """Whether a subquery stands for one value (not a table, an IN list or an EXISTS)."""
        exp = self.exp
        parent = node.parent
        return not isinstance(parent, exp.From | exp.Join | exp.In | exp.Exists | exp.CTE | exp.SetOperation)

    def _ordered_value(self, ordered: Any) -> Any:
        """What an ORDER BY item orders by: a projection when it names one (by alias or position)."""
        exp = self.exp
        value = ordered.this
        select = ordered.find_ancestor(exp.Select)
        if select is None:
            return value
        projections = select.expressions
        if isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit():
            index = int(value.this) - 1
            return _unaliased(projections[index], exp) if 0 <= index < len(projections) else value
        if isinstance(value, exp.Column) and not value.table:
            projection = _projection(select, value.name, exp)
            return value if projection is None else _unaliased(projection, exp)
        return value

    def _text(self, node: Any) -> str:
        """The node as SQL, its parameters written as the report writes them (`:name`)."""
        return shown(_PLACEHOLDER.sub(r":\1", node.sql(dialect=self.live)), 80)


class _Mixed:
    """A set operation's column: the values of each branch."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values


_TIME_WORDS = {DATE: "date", TIMESTAMP: "timestamp", TIMESTAMPTZ: "timestamp with time zone"}
_TIME_FORMS = {DATE: "'YYYY-MM-DD'", TIMESTAMP: "'YYYY-MM-DD HH:MM:SS[.ffffff]'", TIMESTAMPTZ: "a parameter"}


def _iso(text: str, kind: str) -> bool:
    """Text the snapshot compares as the live database compares it with a date or time."""
    try:  # the form, and a real day and time in it (no '24:00:00', no '2024-02-30')
        if kind == DATE:
            return bool(_ISO_DATE.fullmatch(text)) and date.fromisoformat(text).isoformat() == text
        if kind == TIMESTAMP:
            return bool(_ISO_TIMESTAMP.fullmatch(text)) and datetime.fromisoformat(text).isoformat(sep=" ") == text
    except ValueError:
        return False
    return False  # a timestamptz written as text depends on the live session's time zone


def _exact_number(text: str) -> bool:
    """A number written in a statement that SQLite holds as it is written (an INTEGER or a REAL)."""
    return _number_kind(text) != UNKNOWN


def _number_kind(text: str) -> str:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return UNKNOWN
    if re.fullmatch(r"\d+", text):
        return INTEGER if number < 2**63 else UNKNOWN
    as_float = float(number)
    if as_float != 0 and abs(as_float) < _SMALLEST_DOUBLE:
        return UNKNOWN
    exact = number.is_finite() and as_float not in (float("inf"), float("-inf")) and Decimal(repr(as_float)) == number
    return DECIMAL if exact else UNKNOWN


def _column_kind(column: KeptColumn, postgres: bool) -> str:
    """A kept column's kind: its declared type, when it was kept exactly as its live type compares (a
    PostgreSQL model's text or float column of a snapshot made before the live type was kept: unknown)."""
    declared = column.declared
    if declared.startswith("DECIMAL"):
        return DECIMAL
    kind = _DECLARED.get(declared, UNKNOWN)
    if kind not in _LIVE_TYPES or not (postgres or column.native):  # kept as itself, or a SQLite model's
        return kind
    return kind if column.native in _LIVE_TYPES[kind] else UNKNOWN


def _arithmetic_kind(kinds: set[str]) -> str:
    """What arithmetic on values of these kinds gives (a parameter's kind being its field's)."""
    if kinds <= {INTEGER, NULL}:
        return INTEGER
    if kinds <= {INTEGER, FLOAT, DECIMAL, NULL}:
        return FLOAT if FLOAT in kinds else DECIMAL
    return UNKNOWN


def _one_kind(kinds: set[str]) -> str:
    """The kind of values brought into one (CASE, COALESCE, a set operation): theirs if they share one."""
    present = kinds - {NULL}
    if not present:
        return NULL
    if present == {INTEGER, DECIMAL}:  # compared and ordered as numbers on both (no arithmetic on decimals)
        return DECIMAL
    return next(iter(present)) if len(present) == 1 else UNKNOWN


def _branches(node: Any, exp: Any) -> list[Any]:
    """A set operation's selects, left to right (a select alone: itself)."""
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    if isinstance(node, exp.SetOperation):
        return _branches(node.left, exp) + _branches(node.right, exp)
    return [node]


def _one_projection(select: Any) -> Any:
    expressions = getattr(select, "expressions", None) or [None]
    return expressions[0]


def _projection(select: Any, name: str, exp: Any) -> Any:
    found = [p for p in select.expressions if isinstance(p, exp.Alias) and p.alias == name]
    return found[0] if len(found) == 1 else None


def _position(select: Any, name: str, exp: Any) -> int | None:
    if not isinstance(select, exp.Select):
        return None
    found = [i for i, p in enumerate(select.expressions) if p.alias_or_name == name]
    return found[0] if len(found) == 1 else None


def _unaliased(node: Any, exp: Any) -> Any:
    return node.this if isinstance(node, exp.Alias) else node


def _aggregate(projection: Any, exp: Any) -> bool:
    value = _unaliased(projection, exp)
    return isinstance(value, exp.Count | exp.Sum | exp.Avg | exp.Min | exp.Max)


def _allowed_nodes(exp: Any) -> tuple[type, ...]:
    """Every node a statement read alike on both engines is made of (the rules above check their values)."""
    return (
        *(exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered),
        *(exp.Limit, exp.Offset, exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star),
        *(exp.Literal, exp.Null, exp.Boolean, exp.Placeholder, exp.Paren, exp.Neg, exp.And, exp.Or, exp.Not),
        *(exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between),
        *(exp.In, exp.Is, exp.Exists, exp.Subquery, exp.CTE, exp.With, exp.Union, exp.Intersect, exp.Except),
        *(exp.Distinct, exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Count, exp.Sum, exp.Avg, exp.Min),
        *(exp.Max, exp.Abs, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Window, exp.WindowSpec),
        exp.Tuple,
    )


def _nulls_small_dialect() -> Any:
    """PostgreSQL's SQL read with SQLite's NULL order: an ORDER BY reads alike in both only when it says
    where its NULLs go (or they go to the same end anyway)."""
    from sqlglot.dialects.postgres import Postgres  # noqa: PLC0415

    class _NullsSmall(Postgres):
        NULL_ORDERING = "nulls_are_small"

    return _NullsSmall
