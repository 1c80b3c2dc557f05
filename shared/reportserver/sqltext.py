"""SQL text: where a statement's `:name` bind variables are, and the statement rewritten for a driver.

A small lexer, not a regular expression: it walks the statement once, skipping what can hold a colon
without being a variable (string literals, quoted identifiers in every quoting SQLite and PostgreSQL
accept, comments, PostgreSQL's dollar-quoted strings and `::` casts), so that binding by position
never shifts. It imports nothing of the project: the domain validates reports with it and the sources
bind with it. (sqlglot's tokenizer does the same job but takes half a second to import, more than a
whole API function may spend on its cold start; the tests check this lexer against it.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    TRINO = "trino"  # Athena's engine: '...' and "..." quoting, -- and /* */ comments, nothing more


@dataclass(frozen=True, slots=True)
class Variable:
    """One use of a bind variable: its name and where `:name` stands in the statement."""

    name: str
    start: int
    end: int


class UnterminatedSql(ValueError):
    """A quote, quoted identifier or comment that the statement never closes."""


_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_PART = _NAME_START | frozenset("0123456789")


def variables(sql: str, dialect: Dialect = Dialect.SQLITE) -> list[Variable]:
    """Every `:name` use, in order. `::` is a cast, and text inside literals and comments is skipped.
    A report's few statements are read again on every call: each is scanned once per container."""
    return list(_scanned(sql, Dialect(dialect)))  # the member: its name as text would share its cache entry


@functools.lru_cache(maxsize=512)
def _scanned(sql: str, dialect: Dialect) -> tuple[Variable, ...]:  # noqa: PLR0912 - one branch a token
    found: list[Variable] = []
    position, length = 0, len(sql)
    while position < length:
        char = sql[position]
        if char == "'":
            position = _quoted(sql, position, "'", backslashes=_escape_string(sql, position, dialect))
        elif char == '"':
            position = _quoted(sql, position, '"')
        elif char == "`" and dialect is Dialect.SQLITE:
            position = _quoted(sql, position, "`")
        elif char == "[" and dialect is Dialect.SQLITE:
            position = _closing(sql, position, "]")
        elif char == "-" and sql.startswith("--", position):
            end = sql.find("\n", position)
            position = length if end < 0 else end + 1
        elif char == "/" and sql.startswith("/*", position):
            position = _block_comment(sql, position, nested=dialect is Dialect.POSTGRES)
        elif char == "$" and dialect is Dialect.POSTGRES and _dollar_tag(sql, position):
            tag = _dollar_tag(sql, position)
            end = sql.find(tag, position + len(tag))
            if end < 0:
                raise UnterminatedSql(f"dollar-quoted string {tag} is never closed")
            position = end + len(tag)
        elif char == ":":
            if sql.startswith("::", position):
                position += 2
                continue
            end = position + 1
            if end < length and sql[end] in _NAME_START:
                while end < length and sql[end] in _NAME_PART:
                    end += 1
                found.append(Variable(sql[position + 1 : end], position, end))
            position = end
        else:
            position += 1
    return tuple(found)


def names(sql: str, dialect: Dialect = Dialect.SQLITE) -> list[str]:
    """The distinct variable names, in order of first use."""
    return list(dict.fromkeys(v.name for v in variables(sql, dialect)))


def positional(sql: str, dialect: Dialect = Dialect.SQLITE) -> tuple[str, list[str]]:
    """The statement with each `:name` replaced by a numbered placeholder (`?1` for SQLite, `$1` for
    PostgreSQL), numbered by first use; and the names in that order, so values bind as a tuple."""
    order: dict[str, int] = {}
    pieces: list[str] = []
    last = 0
    marker = "?" if dialect is Dialect.SQLITE else "$"
    for variable in variables(sql, dialect):
        number = order.setdefault(variable.name, len(order) + 1)
        pieces += [sql[last : variable.start], f"{marker}{number}"]
        last = variable.end
    pieces.append(sql[last:])
    return "".join(pieces), list(order)


def by_occurrence(sql: str, dialect: Dialect) -> tuple[str, list[str]]:
    """The statement with each `:name` use replaced by `?` (Athena's placeholders are positional, one
    value per `?`), and the name of each use in order: a name used twice is bound twice."""
    pieces: list[str] = []
    order: list[str] = []
    last = 0
    for variable in variables(sql, dialect):
        pieces += [sql[last : variable.start], "?"]
        order.append(variable.name)
        last = variable.end
    pieces.append(sql[last:])
    return "".join(pieces), order


def _escape_string(sql: str, quote: int, dialect: Dialect) -> bool:
    """PostgreSQL's E'...' strings take backslash escapes; plain strings only double their quotes."""
    if dialect is not Dialect.POSTGRES or quote == 0 or sql[quote - 1] not in "eE":
        return False
    return quote == 1 or sql[quote - 2] not in _NAME_PART


def _quoted(sql: str, start: int, quote: str, backslashes: bool = False) -> int:
    """The position after a quoted run that starts at `start`; a doubled quote stands for itself."""
    position = start + 1
    while True:
        end = sql.find(quote, position)
        if backslashes:
            escape = sql.find("\\", position)
            if 0 <= escape < end or (end < 0 <= escape):
                position = escape + 2
                continue
        if end < 0:
            raise UnterminatedSql(f"a {quote} quote opened at character {start + 1} is never closed")
        if sql.startswith(quote * 2, end):
            position = end + 2
            continue
        return end + 1


def _closing(sql: str, start: int, close: str) -> int:
    end = sql.find(close, start + 1)
    if end < 0:
        raise UnterminatedSql(f"a [ opened at character {start + 1} is never closed")
    return end + 1


def _block_comment(sql: str, start: int, nested: bool) -> int:
    depth, position = 1, start + 2
    while depth:
        end = sql.find("*/", position)
        if end < 0:
            raise UnterminatedSql(f"a comment opened at character {start + 1} is never closed")
        opened = sql.find("/*", position) if nested else -1
        if 0 <= opened < end:
            depth, position = depth + 1, opened + 2
            continue
        depth, position = depth - 1, end + 2
    return position


def _dollar_tag(sql: str, start: int) -> str:
    """`$$` or `$tag$` opening a dollar-quoted string at `start` ("" if `$` is a placeholder like `$1`)."""
    end = start + 1
    if end < len(sql) and sql[end] == "$":
        return "$$"
    if end >= len(sql) or sql[end] not in _NAME_START or (start > 0 and sql[start - 1] in _NAME_PART):
        return ""
    while end < len(sql) and sql[end] in _NAME_PART:
        end += 1
    return sql[start : end + 1] if end < len(sql) and sql[end] == "$" else ""
