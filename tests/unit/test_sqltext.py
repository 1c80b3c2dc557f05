"""The bind-variable lexer: a table of tricky statements, and generated ones checked against what they
were built from and against sqlglot's tokenizer."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportserver.sqltext import Dialect, UnterminatedSql, names, positional, variables
from sqlglot.dialects.sqlite import SQLite
from sqlglot.tokens import TokenType

TRICKY = [
    ("SELECT :a", Dialect.SQLITE, ["a"]),
    ("SELECT x::int, :a", Dialect.POSTGRES, ["a"]),
    ("SELECT ':no' || :a", Dialect.SQLITE, ["a"]),
    ("SELECT 'it''s :no' , :a", Dialect.SQLITE, ["a"]),
    ('SELECT "col:no", :a', Dialect.SQLITE, ["a"]),
    ('SELECT "a""b:no", :a', Dialect.SQLITE, ["a"]),
    ("SELECT [col:no], :a", Dialect.SQLITE, ["a"]),
    ("SELECT `col:no`, :a", Dialect.SQLITE, ["a"]),
    ("SELECT 1 -- :no\n, :a", Dialect.SQLITE, ["a"]),
    ("SELECT /* :no */ :a", Dialect.SQLITE, ["a"]),
    ("SELECT /* /* :no */ :still_comment */ :a", Dialect.POSTGRES, ["a"]),
    ("SELECT $$ :no $$, :a", Dialect.POSTGRES, ["a"]),
    ("SELECT $tag$ :no $ :no $tag$, :a", Dialect.POSTGRES, ["a"]),
    ("SELECT E'\\' :no', :a", Dialect.POSTGRES, ["a"]),
    ("SELECT $1, :a", Dialect.POSTGRES, ["a"]),
    ("SELECT :a, :b, :a", Dialect.SQLITE, ["a", "b"]),
    ("SELECT :a1_b", Dialect.SQLITE, ["a1_b"]),
    ("SELECT :or, :in", Dialect.SQLITE, ["or", "in"]),  # keywords are names after a colon
    ("SELECT a:b", Dialect.SQLITE, ["b"]),  # SQLite reads `:b` here too
    ("SELECT x[1:2]", Dialect.POSTGRES, []),
    ("SELECT ::int", Dialect.POSTGRES, []),
]


@pytest.mark.parametrize(("sql", "dialect", "expected"), TRICKY)
def test_variables_of_tricky_statements(sql: str, dialect: Dialect, expected: list[str]) -> None:
    assert names(sql, dialect) == expected


def test_positional_numbers_by_first_use_and_keeps_everything_else() -> None:
    sql = "SELECT ':a', [x:y] FROM t WHERE a = :a AND b = :b OR c = :a -- :c"
    assert positional(sql) == ("SELECT ':a', [x:y] FROM t WHERE a = ?1 AND b = ?2 OR c = ?1 -- :c", ["a", "b"])
    assert positional("SELECT x::int WHERE y = :y", Dialect.POSTGRES) == ("SELECT x::int WHERE y = $1", ["y"])


@pytest.mark.parametrize("sql", ["SELECT 'open", 'SELECT "open', "SELECT [open", "SELECT /* open", "SELECT `open"])
def test_an_unterminated_quote_or_comment_is_refused(sql: str) -> None:
    with pytest.raises(UnterminatedSql):
        variables(sql)


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
NOISE = st.text(alphabet=st.sampled_from("abc:xyz 0129_.,-+*/()=<>"), max_size=12)


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A statement made of fragments whose variables are known: only the `:name` fragments are."""
    pieces: list[str] = ["SELECT "]
    expected: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["var", "string", "ident", "bracket", "backtick", "line", "block", "word"]))
        inner = draw(NOISE)
        if kind == "var":
            name = draw(NAME)
            expected.append(name)
            pieces.append(f" :{name} ")
        elif kind == "string":
            pieces.append("'" + inner.replace("'", "''") + ":" + draw(NAME) + "'")
        elif kind == "ident":
            pieces.append('"' + inner.replace('"', '""') + ":" + draw(NAME) + '"')
        elif kind == "bracket":
            pieces.append("[" + inner.replace("]", "") + ":" + draw(NAME) + "]")
        elif kind == "backtick":
            pieces.append("`" + inner.replace("`", "``") + ":" + draw(NAME) + "`")
        elif kind == "line":
            pieces.append("-- " + inner.replace("\n", " ") + " :" + draw(NAME) + "\n")
        elif kind == "block":
            pieces.append("/* " + inner.replace("*/", "") + " :" + draw(NAME) + " */")
        else:
            pieces.append(" " + draw(NAME) + " ")
    return "".join(pieces), expected


@given(statements())
def test_generated_statements_give_exactly_the_variables_they_were_built_with(made: tuple[str, list[str]]) -> None:
    sql, expected = made
    assert [v.name for v in variables(sql)] == expected
    rewritten, order = positional(sql)
    assert order == list(dict.fromkeys(expected))
    assert variables(rewritten) == [] and rewritten.count("?") == len(expected)  # noise holds no `?`


@given(statements())
def test_the_lexer_agrees_with_sqlglots_tokenizer(made: tuple[str, list[str]]) -> None:
    sql, _ = made
    tokens = SQLite().tokenizer_class().tokenize(sql)
    theirs = [
        after.text
        for before, after in itertools.pairwise(tokens)
        # A word right after the colon, keywords too: SQLite takes `:or` as a variable named "or".
        if before.token_type is TokenType.COLON and after.start == before.end + 1 and WORD.fullmatch(after.text)
    ]
    assert [v.name for v in variables(sql)] == theirs


def test_a_dialect_given_by_name_reads_as_the_dialect_and_never_poisons_its_cached_scan() -> None:
    # Found in review: "sqlite" and Dialect.SQLITE are one cache key, and the scan compared by identity.
    sql = "SELECT `a:b`, [c:d], :x"
    assert [v.name for v in variables(sql, "sqlite")] == ["x"]  # type: ignore[arg-type]
    assert [v.name for v in variables(sql, Dialect.SQLITE)] == ["x"]
