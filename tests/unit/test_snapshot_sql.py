"""Which statements read a snapshot as they read the live database (`reportserver.domain.snapshot_sql`).

The rows each rule protects are compared on a real PostgreSQL server in
tests/integration/test_snapshot_sql.py; here, each rule's reach: what it refuses, what it lets through,
and what it says.
"""

from __future__ import annotations

import pytest
from reportserver.domain.snapshot_sql import orders_by_code_point, snapshot_difference
from reportserver.domain.snapshots import KeptColumn, KeptTable

_ORDERS = KeptTable(
    name="orders",
    rows=3,
    columns=[
        KeptColumn(name="id", declared="INTEGER", nulls=0, native="integer"),
        KeptColumn(name="amount", declared="DECIMAL REAL(38,2)", nulls=1, native="numeric"),
        KeptColumn(name="total", declared="DECIMAL REAL(38,2)", nulls=0, native="numeric"),
        KeptColumn(name="rate", declared="REAL", nulls=0, native="double precision"),
        KeptColumn(name="note", declared="TEXT", nulls=2, native="text"),
        KeptColumn(name="region", declared="TEXT", nulls=0, native="character varying"),
        KeptColumn(name="day", declared="DATE", nulls=0, native="date"),
        KeptColumn(name="at", declared="TIMESTAMP", nulls=0, native="timestamp without time zone"),
        KeptColumn(name="at_tz", declared="TIMESTAMPTZ", nulls=0, native="timestamp with time zone"),
        KeptColumn(name="big", declared="INTEGER", nulls=0, native="bigint"),
        KeptColumn(name="legacy", declared="INTEGER"),  # a snapshot made before NULLs and live types were kept
    ],
)


# The statements' parameters, as declared report fields (every :name of a report is one)
_PARAMETERS = {
    "min_id": "integer",
    "i": "integer",
    "min": "number",
    "n": "number",
    "until": "datetime",
    "a": "date",
    "b": "date",
    "d": "date",
    "r": "string",
    "start": "string",
    "pattern": "string",
}


def _difference(sql: str, text_order: str | None = "C", dialect: str = "postgresql") -> str | None:
    return snapshot_difference(sql, dialect, [_ORDERS], text_order, _PARAMETERS)


_ACCEPTED = [
    "SELECT id, amount, rate, note, day, at, at_tz FROM orders WHERE id >= :min_id ORDER BY id",
    "SELECT * FROM orders WHERE amount > :min AND at <= :until AND day BETWEEN :a AND :b ORDER BY id DESC",
    "SELECT count(*), sum(id), min(amount), max(day), max(rate), count(DISTINCT region) FROM orders",
    "SELECT region, count(*) AS n FROM orders GROUP BY region HAVING count(*) > 1 ORDER BY region",
    "SELECT id * 3 + 1, id / 2, id % 3, -rate, abs(rate), -amount, abs(amount) FROM orders",
    "SELECT id FROM orders WHERE amount = 0.10 OR amount IN (1.50, 2) OR amount IS NULL",
    "SELECT id FROM orders WHERE day >= '2024-01-01' AND at < '2024-01-01 09:30:00' ORDER BY total, id",
    "SELECT id || '-' || region, coalesce(note, 'none'), nullif(region, '') FROM orders",
    "SELECT CASE WHEN amount > 0 THEN 'credit' ELSE 'debit' END AS side FROM orders",
    "WITH big AS (SELECT id, total FROM orders WHERE total > 100) SELECT id FROM big ORDER BY total DESC",
    "SELECT s.id FROM (SELECT id, region FROM orders) AS s ORDER BY s.region, 1",
    "SELECT id, note FROM orders ORDER BY note NULLS FIRST, amount DESC NULLS LAST",
    "SELECT o.id FROM orders AS o JOIN orders AS p ON p.id = o.id ORDER BY p.total",
    "SELECT id FROM orders WHERE id IN (SELECT id FROM orders WHERE total > 1) UNION SELECT 0",
    "SELECT sum(id) OVER (PARTITION BY region ORDER BY id) FROM orders",
]


@pytest.mark.parametrize("sql", _ACCEPTED)
def test_a_statement_both_engines_compute_alike_is_accepted(sql: str) -> None:
    assert _difference(sql) is None


_REFUSED = [
    # decimals computed in floating point
    ("SELECT sum(amount) FROM orders", 'it computes SUM("orders"."amount") over decimal values'),
    ('SELECT sum(amount) AS "total [decimal(2)]" FROM orders', "over decimal values"),
    ("SELECT avg(total) FROM orders", "over decimal values"),
    ("SELECT avg(id) FROM orders", "over integer values"),
    ("SELECT sum(rate) FROM orders", "over float values"),  # SQLite compensates a float sum, PostgreSQL does not
    ("SELECT avg(rate) FROM orders", "over float values"),
    ("SELECT amount * 2 FROM orders", "with decimal values"),
    ("SELECT id FROM orders WHERE total - amount > 0", "with decimal values"),
    ("SELECT id * 1.1 FROM orders", "with decimal values"),
    ("SELECT :n + 1 FROM orders", "with decimal values"),
    ("SELECT day + 7 FROM orders", "with date values"),
    ("SELECT sum(note) FROM orders", "over text values"),
    # division by zero: an error live, NULL on SQLite
    ("SELECT id / rate FROM orders", "with floats, which may pass a double's range"),
    ("SELECT rate * 1.5 FROM orders", "with floats"),  # PostgreSQL fails on overflow, SQLite goes on with inf
    ("SELECT id FROM orders WHERE rate * rate > 1", "with floats"),
    ("SELECT id / (id - id) FROM orders", 'it divides by ("orders"."id" - "orders"."id")'),
    ("SELECT id % 0 FROM orders", "it divides by 0"),
    ("SELECT rate / :n FROM orders", "with floats"),
    ("SELECT id / :i FROM orders", "it divides by :i"),
    # text
    ("SELECT id FROM orders WHERE note LIKE :pattern", 'it matches text with "orders"."note" LIKE :pattern'),
    ("SELECT id FROM orders WHERE note ILIKE 'a%'", "matches text"),
    ("SELECT id FROM orders WHERE note ~ 'a'", "matches text"),
    ("SELECT id FROM orders WHERE note SIMILAR TO 'a%'", "matches text"),
    ("SELECT amount || ' EUR' FROM orders", "as text"),
    ("SELECT day || '' FROM orders", "as text"),
    ("SELECT CAST(amount AS TEXT) FROM orders", "(a cast)"),
    ("SELECT id FROM orders WHERE day >= :d::date", "(a cast)"),
    ("SELECT upper(note) FROM orders", "it calls upper()"),
    ("SELECT round(rate) FROM orders", "it calls round()"),
    ("SELECT id FROM orders WHERE day = current_date", "it calls current_date()"),
    ("SELECT row_number() OVER (ORDER BY id) FROM orders", "it calls row_number()"),
    ("SELECT my_function(id) FROM orders", "it calls my_function()"),
    # dates and times
    ("SELECT id FROM orders WHERE day >= '2024-1-1'", "write the text as 'YYYY-MM-DD'"),
    ("SELECT id FROM orders WHERE at > '2024-01-01T09:00'", "write the text as 'YYYY-MM-DD HH:MM:SS"),
    ("SELECT id FROM orders WHERE at_tz > '2024-01-01 09:00:00'", "timestamp with time zone with text"),
    ("SELECT id FROM orders WHERE day = at", "compares a date with a time"),
    ("SELECT id FROM orders WHERE day IN (at, :d)", "compares a date with a time"),
    # NULLs ordered at the other end
    ("SELECT id FROM orders ORDER BY amount", 'orders by "orders"."amount" without NULLS FIRST or NULLS LAST'),
    ("SELECT id FROM orders ORDER BY total DESC, note", 'orders by "orders"."note" without'),
    ("SELECT id FROM orders ORDER BY legacy", "without NULLS FIRST"),
    ("SELECT o.id FROM orders AS o LEFT JOIN orders AS p ON p.id = o.id ORDER BY p.total", "without NULLS"),
    ("SELECT coalesce(amount, 0) AS a FROM orders ORDER BY a", "without NULLS"),
    ("SELECT id, amount FROM orders ORDER BY 2", "without NULLS"),
    ("WITH x AS (SELECT amount AS v FROM orders) SELECT v FROM x ORDER BY v", "without NULLS"),
]


@pytest.mark.parametrize(("sql", "said"), _REFUSED)
def test_a_statement_sqlite_computes_otherwise_is_refused_saying_what(sql: str, said: str) -> None:
    difference = _difference(sql)
    assert difference is not None and said in difference, difference


@pytest.mark.parametrize("order", ["en_US.UTF-8", "icu:und-x-icu", None, "de_DE"])
def test_text_is_ordered_only_where_the_live_database_orders_it_by_code_point(order: str | None) -> None:
    for sql in (
        "SELECT id FROM orders ORDER BY region",
        "SELECT id FROM orders WHERE region > :start",
        "SELECT id FROM orders WHERE region BETWEEN 'a' AND 'm'",
        "SELECT max(region) FROM orders",
    ):
        assert _difference(sql, "C") is None
        difference = _difference(sql, order)
        assert difference is not None and "it orders text" in difference
        assert f"by its collation ({order or 'not known'})" in difference
    # Equality is the same in every deterministic collation
    assert _difference("SELECT id FROM orders WHERE region = :r OR region IN ('a', 'b')", order) is None


@pytest.mark.parametrize("order", ["C", "POSIX", "c.utf8", "C.UTF-8", "ucs_basic", "binary"])
def test_the_code_point_orders_are_known_by_name(order: str) -> None:
    assert orders_by_code_point(order)
    assert not orders_by_code_point("en_US.UTF-8") and not orders_by_code_point(None)


def test_a_sqlite_model_orders_as_its_snapshot_but_still_computes_decimals_in_floating_point() -> None:
    assert _difference("SELECT id FROM orders ORDER BY amount, note", None, "sqlite") is None
    assert _difference("SELECT id FROM orders WHERE note > 'b'", None, "sqlite") is None
    difference = _difference("SELECT sum(amount) FROM orders", None, "sqlite")
    assert difference is not None and "over decimal values" in difference


def test_sql_the_parser_cannot_read_is_refused_not_passed() -> None:
    difference = _difference("SELECT id FROM orders WHERE (")
    assert difference is not None and difference.startswith("its SQL cannot be checked against the snapshot")


_FIELDS = {"d": "date", "t": "datetime", "s": "string", "n": "number", "i": "integer", "b": "boolean", "c": "choice"}


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        # A date field's value is 'YYYY-MM-DD': against a timestamp's text it misses the row at midnight
        ("SELECT id FROM orders WHERE at <= :d", "compares a date with a time"),
        ("SELECT id FROM orders WHERE at_tz >= :d", "compares a date with a time"),
        ("SELECT id FROM orders WHERE day = :t", "compares a date with a time"),
        # Text fields are compared as text, which PostgreSQL would have read as a date ('2024-1-1')
        ("SELECT id FROM orders WHERE day >= :s", "make :s a date field"),
        ("SELECT id FROM orders WHERE at < :c", "make :c a datetime field"),
        # Numbers are bound as REALs: arithmetic on them is floating point
        ("SELECT id * :n FROM orders", "with decimal values"),
        ("SELECT id FROM orders WHERE id + :n > 3", "with decimal values"),
    ],
)
def test_a_parameter_is_checked_as_the_value_its_field_binds(sql: str, said: str) -> None:
    difference = snapshot_difference(sql, "postgresql", [_ORDERS], "C", _FIELDS)
    assert difference is not None and said in difference, difference


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM orders WHERE day BETWEEN :d AND :d",
        "SELECT id FROM orders WHERE at <= :t AND at_tz > :t",  # both kept as UTC text, as a datetime is bound
        "SELECT id FROM orders WHERE amount > :n AND id <> :i AND region = :s AND region IN (:c, :s)",
        "SELECT id * 3 FROM orders WHERE (amount > 0) = :b",
        "SELECT id FROM orders WHERE region > :s",  # a code-point collation: text orders alike
    ],
)
def test_a_parameter_bound_as_the_snapshot_keeps_its_column_is_accepted(sql: str) -> None:
    assert snapshot_difference(sql, "postgresql", [_ORDERS], "C", _FIELDS) is None


def test_a_text_parameter_is_ordered_only_on_a_code_point_collation() -> None:
    sql = "SELECT id FROM orders WHERE region > :s"
    difference = snapshot_difference(sql, "postgresql", [_ORDERS], "en_US", _FIELDS)
    assert difference is not None and "it orders text" in difference


def test_arithmetic_on_whole_numbers_is_a_whole_number_that_may_be_compared() -> None:
    sql = "SELECT id FROM orders WHERE id + 1 > :i AND id * 2 BETWEEN :i AND 10 ORDER BY id % 7 NULLS LAST"
    assert snapshot_difference(sql, "postgresql", [_ORDERS], "C", _FIELDS) is None
    # SQLite computes exactly below 64 bits: what may pass them is refused (PostgreSQL fails there)
    for wide in (
        "SELECT id + :i FROM orders",
        "SELECT big + 1 FROM orders",
        "SELECT -big FROM orders",
        "SELECT id * id * id FROM orders",
        "SELECT sum(big) FROM orders",
        "SELECT count(*) * big FROM orders",
    ):
        difference = snapshot_difference(wide, "postgresql", [_ORDERS], "C", _FIELDS)
        assert difference is not None and "64 bits" in difference, wide
    assert snapshot_difference("SELECT id * id, -id, sum(id) FROM orders", "postgresql", [_ORDERS], "C") is None


def test_sql_the_parser_fails_on_is_refused_in_words_never_raised() -> None:
    # sqlglot's qualify raises an AssertionError here (GROUP BY a scalar subquery by position): once a 500
    table = KeptTable(name="t6", rows=2, columns=[KeptColumn(name="id", declared="INTEGER", nulls=0)])
    sql = "SELECT id, (SELECT max(id) FROM t6) FROM t6 GROUP BY 1, 2 ORDER BY 1"
    difference = snapshot_difference(sql, "postgresql", [table], "C")
    assert difference is not None and difference.startswith("its SQL cannot be checked against the snapshot")


@pytest.mark.parametrize(
    ("native", "declared", "sql"),
    [
        ("mood", "TEXT", "SELECT id FROM t WHERE v > 'ok'"),
        ("uuid", "TEXT", "SELECT id FROM t WHERE v = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'"),
        ("character", "TEXT", "SELECT id FROM t WHERE v = 'abc'"),
        ("real", "REAL", "SELECT id FROM t WHERE v = 0.1"),
        ("time without time zone", "TEXT", "SELECT id FROM t ORDER BY v NULLS LAST"),
    ],
)
def test_a_column_kept_in_another_form_than_its_live_type_is_not_compared(native: str, declared: str, sql: str) -> None:
    columns = [KeptColumn(name="id", declared="INTEGER", nulls=0)]
    columns.append(KeptColumn(name="v", declared=declared, native=native))
    difference = snapshot_difference(sql, "postgresql", [KeptTable(name="t", rows=1, columns=columns)], "C")
    assert difference is not None and "another form" in difference
    # The same declared type from its own live type is compared as itself
    own = {"TEXT": "text", "REAL": "double precision"}[declared]
    columns[1] = KeptColumn(name="v", declared=declared, native=own)
    kept = snapshot_difference(sql, "postgresql", [KeptTable(name="t", rows=1, columns=columns)], "C")
    assert kept is None or "another form" not in kept


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT id FROM orders WHERE id = '3'", False),  # SQLite reads '3' as the column's 3, as PostgreSQL does
        ("SELECT id FROM orders WHERE id = :r", True),  # PostgreSQL reads '0x10' and '1_000' as numbers, SQLite not
        ("SELECT id FROM orders WHERE nullif(id, '3') IS NULL", True),  # no affinity outside a comparison
        ("SELECT id FROM orders WHERE '3' IN (id)", True),
        ("SELECT id FROM orders WHERE amount = '0.10'", False),
        ("SELECT id FROM orders WHERE amount = :r", True),  # '0.1000000000000000001' would be a REAL's 0.1
        ("SELECT id FROM orders WHERE amount = '0.1000000000000000001'", True),
        ("SELECT id FROM orders WHERE id + 0 = :r", True),  # no column: no affinity, text never equals 3
        ("SELECT id FROM orders WHERE rate = :r", True),  # 'Infinity' stays text in SQLite
    ],
)
def test_text_is_compared_with_a_number_only_where_sqlite_reads_it_as_postgresql_does(sql: str, refused: bool) -> None:
    difference = _difference(sql)
    assert (difference is not None and "compares text with a number" in difference) if refused else difference is None
