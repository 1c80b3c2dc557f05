"""The PostgreSQL source against a real server (the session's `postgres` fixture): binding around the
statements that fool naive placeholder rewriting, exact types on both paths (report calls read rows
through psycopg, exports read Arrow through ADBC's binary COPY), read-only transactions, time limits
cancelled on the server, and a down source answered fast with a message that holds no secret."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from reportserver.domain.errors import (
    DataSourceFailed,
    QueryTookTooLong,
    SourceUnavailable,
    StatementRefused,
    ValueDoesNotFit,
)
from reportserver.domain.ports import DataSource
from reportserver.domain.values import ColumnType
from reportserver.sources.postgres import IDLE, PostgresSource, PostgresTarget

from infra.demo.postgres import READER_ROLE, demo_reader
from infra.local.postgres import Connection, free_port


def _source(server: Connection, timeout: float = 10.0, **changes: Any) -> PostgresSource:
    target = {
        "host": server.host,
        "port": server.port,
        "database": server.database,
        "user": server.user,
        "password": server.password,
        "ssl_mode": "disable",
        "connect_timeout_seconds": 2,
    } | changes
    return PostgresSource(PostgresTarget(**target), query_timeout_seconds=timeout)


def _rows(source: PostgresSource, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with source.run(sql, params or {}) as result:
        return [row for batch in result.batches for row in batch]


def _arrow_rows(source: PostgresSource, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with source.run_arrow(sql, params or {}) as result:
        return [tuple(row.values()) for batch in result.batches for row in batch.to_pylist()]


def _both(
    source: PostgresSource, sql: str, params: Mapping[str, Any] | None = None, places: bool = True
) -> list[tuple[Any, ...]]:
    """The rows a call gets; the test fails unless an export reads exactly the same. Equal decimals may
    differ in places (1.50 == 1.500), so each value must be written alike too, unless `places` is off:
    a plain numeric column has in a file the places of its widest value, in a call each value its own."""
    rows = _rows(source, sql, params)
    exported = _arrow_rows(source, sql, params)
    assert exported == rows, sql
    if places:
        assert [tuple(map(str, row)) for row in exported] == [tuple(map(str, row)) for row in rows], sql
    return rows


# What a naive `:name` rewriter gets wrong: each statement, its values, and the one row it must give.
TRICKY: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    ("SELECT ':x' AS literal, :x::text AS bound", {"x": "v"}, (":x", "v")),
    ("SELECT 'it''s :x' AS literal, :x::text AS bound", {"x": "v"}, ("it's :x", "v")),
    ('SELECT "a:x" FROM (SELECT :x::int AS "a:x") t', {"x": 7}, (7,)),
    ("SELECT :a::int AS a -- and :b\n", {"a": 5}, (5,)),
    ("SELECT /* :b /* nested :c */ still */ :a::int AS a", {"a": 5}, (5,)),
    ("SELECT $$ :b 'x $$ AS dollars, :a::text AS a", {"a": "y"}, (" :b 'x ", "y")),
    ("SELECT $t$ it's :b $ $t$ AS tagged, :a::int AS a", {"a": 2}, (" it's :b $ ", 2)),
    ("SELECT E'\\' :b' AS escaped, :a::int AS a", {"a": 3}, ("' :b", 3)),
    ("SELECT '100%' AS pct, :a::text || '%s' AS q", {"a": "50"}, ("100%", "50%s")),
    ("SELECT :a::int + :a::int AS twice, :b::int AS b", {"a": 2, "b": 9}, (4, 9)),
    ("SELECT (ARRAY[1,2,3])[2:3]::text AS slice, :a::int AS a", {"a": 1}, ("{2,3}", 1)),
    ("SELECT :a::text AS a", {"a": "'; DROP TABLE customers; --"}, ("'; DROP TABLE customers; --",)),
    ("SELECT :a::text AS a", {"a": "$1 :b $$"}, ("$1 :b $$",)),
    ('SELECT :a::int AS ":b"', {"a": 4}, (4,)),
]


@pytest.mark.parametrize(("sql", "params", "expected"), TRICKY, ids=[t[0][:40] for t in TRICKY])
def test_bind_variables_are_found_only_where_they_are_variables(
    postgres: Connection, sql: str, params: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert _both(_source(postgres), sql, params) == [expected]


def test_a_null_value_is_null_on_both_paths_and_an_empty_text_is_not_null(postgres: Connection) -> None:
    sql = "SELECT count(*) AS n FROM products WHERE (:category::text IS NULL OR category = :category)"
    source = _source(postgres)
    everything = _both(source, "SELECT count(*) AS n FROM products")
    assert _both(source, sql, {"category": None}) == everything and everything[0][0] > 0
    assert _both(source, sql, {"category": ""}) == [(0,)]
    typed = "SELECT :d::date AS d, :n::numeric AS n, :b::boolean AS b, :t::timestamptz AS t"
    assert _both(source, typed, {"d": None, "n": None, "b": None, "t": None}) == [(None, None, None, None)]


def test_values_bind_as_their_own_types_exactly(postgres: Connection) -> None:
    params = {
        "n": Decimal("12345678901234567890.123456789012345678"),
        "d": date(1, 1, 1),
        "ts": datetime(9999, 12, 31, 23, 59, 59, 999999),
        "tz": datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
        "b": False,
        "i": -(2**63),
    }
    sql = (
        "SELECT :n::numeric(38,18) AS n, :d::date AS d, :ts::timestamp AS ts, :tz::timestamptz AS tz,"
        " :b::boolean AS b, :i::bigint AS i"
    )
    assert _both(_source(postgres), sql, params) == [tuple(params.values())]


def test_every_contract_type_reads_the_same_exactly_on_both_paths(postgres: Connection) -> None:
    sql = """
        SELECT 99999999999999999999.999999999999999999::numeric(38,18) AS big,
               x::numeric AS free_scale, 0.1::real AS r, 0.1::double precision AS f,
               9223372036854775807::bigint AS i8, 32767::smallint AS i2,
               'ü€'::varchar(4) AS v, 'ab'::char(3) AS c, '\\x00ff'::bytea AS raw,
               DATE '0001-01-01' AS d, TIMESTAMP '9999-12-31 23:59:59.999999' AS ts,
               TIMESTAMPTZ '2024-03-10 02:30:00+11' AS tz, true AS b, NULL::numeric(5,2) AS missing
        FROM (VALUES (1.5), (2.25), (0.125), (-1000000000000.000001)) v(x)"""
    rows = _both(_source(postgres), sql, places=False)  # free_scale: 1.500000 in a file
    assert [row[1] for row in rows] == [Decimal(s) for s in ("1.5", "2.25", "0.125", "-1000000000000.000001")]
    first = rows[0]
    assert first[0] == Decimal("99999999999999999999.999999999999999999")
    assert first[2] == 0.1 and first[3] == 0.1  # a real's 0.1 is 0.1, not 0.10000000149011612
    assert first[4:9] == (2**63 - 1, 32767, "ü€", "ab ", b"\x00\xff")
    assert first[9:11] == (date(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999))
    assert first[11] == datetime(2024, 3, 9, 15, 30, tzinfo=UTC)
    assert first[12:] == (True, None)


def test_types_outside_the_contract_read_as_the_text_the_server_prints_on_both_paths(postgres: Connection) -> None:
    sql = """SELECT '{"a": [1, 2.50]}'::json AS j, '{"b": 1}'::jsonb AS jb,
                    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, interval '1 day 2 hours' AS i,
                    ARRAY[1, NULL, 3] AS arr, TIME '13:45:00' AS t, '192.168.0.1/24'::inet AS ip, 1.5::money AS m"""
    (row,) = _both(_source(postgres), sql)
    assert row[:3] == ('{"a": [1, 2.50]}', '{"b": 1}', "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert row[3:] == ("P1DT2H", "{1,NULL,3}", "13:45:00", "192.168.0.1/24", "$1.50")


def test_the_demo_shop_in_postgresql_has_the_sqlite_demos_numbers(postgres: Connection, demo_database: Any) -> None:
    import sqlite3

    sqlite = sqlite3.connect(demo_database)
    try:
        net, gst, lines = sqlite.execute("SELECT sum(net_cents), sum(gst_cents), count(*) FROM order_lines").fetchone()
    finally:
        sqlite.close()
    sql = (
        "SELECT sum(net_cents)::numeric / 100 AS net, sum(gst_cents)::numeric / 100 AS gst, count(*) AS n"
        " FROM order_lines"
    )
    assert _both(_source(postgres), sql) == [(Decimal(net) / 100, Decimal(gst) / 100, lines)]


WRITES = [
    "WITH gone AS (DELETE FROM meta RETURNING key) SELECT key FROM gone",
    "WITH made AS (INSERT INTO meta VALUES ('x', 'y') RETURNING key) SELECT key FROM made",
    "SELECT * INTO TEMP stolen FROM meta",
    "SELECT nextval('report_sequence') AS n",
    "SELECT set_config('transaction_read_only', 'off', false) AS x",
    # A DO block may commit when it runs outside a transaction block, and start a read-write one.
    "DO $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); COMMIT;"
    " INSERT INTO meta VALUES ('do', 'x'); END $$",
    "DO $$ BEGIN COMMIT; SET TRANSACTION READ WRITE; INSERT INTO meta VALUES ('do2', 'x'); END $$",
    "VACUUM meta",
    "ALTER SYSTEM SET work_mem = '55MB'",
]


@pytest.mark.parametrize("sql", WRITES)
def test_a_statement_that_writes_is_refused_on_both_paths_and_writes_nothing(postgres: Connection, sql: str) -> None:
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        admin.execute("CREATE SEQUENCE IF NOT EXISTS report_sequence")
        before = admin.execute("SELECT count(*) FROM meta").fetchone()
        sequence = admin.execute("SELECT last_value, is_called FROM report_sequence").fetchone()
    source = _source(postgres)
    with pytest.raises(DataSourceFailed):
        _rows(source, sql)
    with pytest.raises(DataSourceFailed):
        _arrow_rows(source, sql)
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        assert admin.execute("SELECT count(*) FROM meta").fetchone() == before
        assert admin.execute("SELECT last_value, is_called FROM report_sequence").fetchone() == sequence
    # And the connection kept for the next call is still read-only and still works.
    assert _rows(source, "SELECT current_setting('transaction_read_only') AS ro") == [("on",)]


def test_a_setting_changed_by_a_report_is_undone_before_the_next(postgres: Connection) -> None:
    source = _source(postgres)
    pid = _rows(source, "SELECT pg_backend_pid() AS pid, set_config('TimeZone', 'Asia/Tokyo', false) AS z")[0][0]
    (after,) = _rows(source, "SELECT pg_backend_pid() AS pid, current_setting('TimeZone') AS z, now()::text AS n")
    assert after[0] == pid, "the warm connection is reused"
    assert after[1] == "UTC" and after[2].endswith("+00")


@pytest.mark.parametrize("path", ["call", "export"])
def test_nothing_a_report_leaves_in_its_session_reaches_the_next(postgres: Connection, path: str) -> None:
    demo_reader(postgres)  # a role the superuser may become
    source = _source(postgres)
    read = _rows if path == "call" else _arrow_rows
    for sql in (
        "SELECT set_config('role', 'report_reader', false) AS r",
        "SELECT set_config('search_path', 'pg_catalog', false) AS s",
        "SELECT set_config('statement_timeout', '0', false) AS t",
        "SELECT pg_notify('reports', 'x')::text AS n",
    ):
        read(source, sql)
    for sql in ("PREPARE leak AS SELECT 42 AS secret", "DECLARE held CURSOR WITH HOLD FOR SELECT 1", "LISTEN reports"):
        with contextlib.suppress(DataSourceFailed):
            read(source, sql)
    (after,) = read(
        source,
        "SELECT current_user::text AS u, current_setting('search_path') AS s,"
        " current_setting('statement_timeout') AS t, (SELECT count(*) FROM pg_prepared_statements) AS p,"
        " (SELECT count(*) FROM pg_cursors WHERE name = 'held') AS c,"
        " (SELECT count(*) FROM pg_listening_channels()) AS l",
    )
    assert after == ("postgres", '"$user", public', after[2], 0, 0, 0)
    assert after[2] != "0"
    for sql in ("EXECUTE leak", "FETCH ALL FROM held"):
        with pytest.raises(DataSourceFailed):
            read(source, sql)


def test_warm_calls_reuse_one_connection(postgres: Connection) -> None:
    source = _source(postgres)
    pids = {_rows(source, "SELECT pg_backend_pid() AS pid")[0][0] for _ in range(5)}
    assert len(pids) == 1


def _active(postgres: Connection, marker: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        return admin.execute(
            "SELECT pid, state FROM pg_stat_activity"
            " WHERE query LIKE %s AND pid <> pg_backend_pid() AND state = 'active'",
            (f"%{marker}%",),
        ).fetchall()


def _gone(postgres: Connection, marker: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _active(postgres, marker):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("path", ["call", "export"])
def test_a_query_over_its_time_limit_is_cancelled_on_the_server(postgres: Connection, path: str) -> None:
    marker = f"slow_{path}"
    sql = f"SELECT 1 AS {marker} FROM pg_sleep(30)"
    source = _source(postgres, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(QueryTookTooLong):
        (_rows if path == "call" else _arrow_rows)(source, sql)
    assert time.monotonic() - started < 4
    assert _gone(postgres, marker), "the statement still runs on the server"


def test_an_export_read_as_rows_is_held_to_the_sources_time_limit_too(postgres: Connection) -> None:
    """A json column sends the export through typed rows (psycopg), not ADBC: the limit still holds and
    the statement is cancelled on the server, and a call on the same source keeps its own limit."""
    sql = "SELECT '{}'::json AS j, pg_sleep(8)::text AS rows_path_slow"
    source = _source(postgres, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(QueryTookTooLong):
        _arrow_rows(source, sql)
    assert time.monotonic() - started < 4
    assert _gone(postgres, "rows_path_slow")
    assert _arrow_rows(source, "SELECT '{\"a\": 1}'::json AS j") == [('{"a": 1}',)]


@pytest.mark.parametrize("limit", [0.001, 0.02, 0.1, 0.3])
def test_an_export_past_its_limit_at_any_moment_ends_and_leaves_nothing_running(
    postgres: Connection, limit: float
) -> None:
    """The limit may pass while the reader thread is between its statements or inside one: the export
    still ends at once (the connection is touched only when the reader is out of the driver; it hung
    in libpq before), and no statement is left on the server."""
    marker = f"late_{str(limit).replace('.', '_')}"
    outcome: list[BaseException | None] = []

    def export() -> None:
        try:
            _arrow_rows(_source(postgres, timeout=limit), f"SELECT 1 AS {marker} FROM pg_sleep(30)")
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    for _ in range(3):
        worker = threading.Thread(target=export, daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the export hung after its time limit"
        assert isinstance(outcome[-1], QueryTookTooLong) and time.monotonic() - started < 12
        assert _gone(postgres, marker), "the statement still runs on the server"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"password": "not-the-password-4711"}, "refused the user name or password"),
        ({"user": "nobody"}, "refused the user name or password"),
        ({"database": "no_such_db"}, "database does not exist"),
        ({"host": "no-such-host.invalid"}, "host name is unknown"),
    ],
)
@pytest.mark.parametrize("path", ["call", "export"])
def test_a_source_that_cannot_be_reached_answers_fast_without_its_secrets(
    postgres: Connection, caplog: pytest.LogCaptureFixture, changes: dict[str, str], reason: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    source = _source(postgres, **changes)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as refused:
        (_rows if path == "call" else _arrow_rows)(source, "SELECT 1 AS one")
    assert time.monotonic() - started < 3
    assert reason in str(refused.value)
    for secret in (postgres.password, changes.get("password", postgres.password)):
        assert secret not in str(refused.value)
        assert secret not in caplog.text
        assert all(secret not in str(record.__dict__) for record in caplog.records)


@pytest.mark.parametrize("path", ["call", "export"])
def test_a_closed_port_is_refused_at_once(postgres: Connection, path: str) -> None:
    source = _source(postgres, port=free_port())
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="refused the connection"):
        (_rows if path == "call" else _arrow_rows)(source, "SELECT 1 AS one")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("path", ["call", "export"])
def test_a_host_that_never_answers_gives_up_at_the_connect_timeout(postgres: Connection, path: str) -> None:
    # A port that takes the connection (the kernel's backlog) and never says a word: the login waits for
    # the server's first message until the source's connect timeout (2 s here), then gives up.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        source = _source(postgres, port=silent.getsockname()[1])
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            (_rows if path == "call" else _arrow_rows)(source, "SELECT 1 AS one")
        waited = time.monotonic() - started
    assert 1.5 < waited < 4.5, waited


def test_a_typo_is_refused_when_described_with_the_servers_reason(postgres: Connection) -> None:
    source = _source(postgres)
    with pytest.raises(StatementRefused) as refused:
        source.describe("SELECT id FROM ordrs WHERE id = :id::int")
    assert 'relation "ordrs" does not exist' in refused.value.detail
    assert "ordrs" not in str(refused.value)  # the caller's message quotes no SQL
    columns = source.describe("SELECT id, order_date, note FROM orders WHERE id = :id::int")
    assert [(c.name, c.type.value) for c in columns] == [("id", "integer"), ("order_date", "date"), ("note", "text")]


def _terminate(postgres: Connection, pid: int) -> None:
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
    # A backend leaves pg_stat_activity just before its process ends and its socket closes: a connection
    # taken in that instant fails its statement (an error, as any connection lost mid-use). These tests
    # are about a connection dropped a while before it is taken again.
    time.sleep(0.2)


def test_a_connection_the_server_dropped_is_not_handed_out_again(postgres: Connection) -> None:
    source = _source(postgres)
    pid = _rows(source, "SELECT pg_backend_pid() AS pid")[0][0]
    _terminate(postgres, pid)
    # The next call sees the server's goodbye on the kept connection's socket, and runs on a new one.
    assert _rows(source, "SELECT pg_backend_pid() AS pid")[0][0] != pid
    pid = _rows(source, "SELECT pg_backend_pid() AS pid")[0][0]
    _terminate(postgres, pid)
    assert [c.name for c in source.describe("SELECT 1 AS one")] == ["one"]
    exporting = _arrow_rows(source, "SELECT pg_backend_pid() AS pid")[0][0]
    _terminate(postgres, exporting)
    assert _arrow_rows(source, "SELECT pg_backend_pid() AS pid")[0][0] != exporting


@pytest.mark.parametrize("path", ["call", "export"])
def test_a_statement_whose_backend_ends_while_it_runs_fails_and_is_not_run_again(
    postgres: Connection, path: str
) -> None:
    source = _source(postgres)
    read = _rows if path == "call" else _arrow_rows
    read(source, "SELECT 1 AS warm")  # a kept connection
    marker = f"killed_{path}"
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(read(source, f"SELECT pg_backend_pid() AS {marker} FROM pg_sleep(2)"))
        except DataSourceFailed as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while not (running := _active(postgres, marker)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    _terminate(postgres, running[0][0])
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert isinstance(outcome[0], DataSourceFailed), outcome  # not the rows of a second run


@pytest.mark.parametrize("path", ["call", "export"])
def test_an_advisory_lock_taken_by_a_report_is_let_go_with_it(postgres: Connection, path: str) -> None:
    source = _source(postgres)
    read = _rows if path == "call" else _arrow_rows
    assert read(source, "SELECT pg_advisory_lock(4242)::text AS locked") == [("",)]
    with psycopg.connect(postgres.conninfo(), autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)
        other.execute("SELECT pg_advisory_unlock(4242)")


def test_a_call_stopped_part_way_through_its_rows_ends_at_once_and_leaves_the_connection_usable(
    postgres: Connection,
) -> None:
    source = _source(postgres)
    bad_second_batch = (
        "SELECT i, CASE WHEN i = 7000 THEN 'NaN' ELSE '1' END::numeric(10,2) AS a FROM generate_series(1, 9000) i"
    )
    outcome: list[Any] = []

    def run() -> None:
        try:
            _rows(source, bad_second_batch)
        except ValueDoesNotFit as error:
            outcome.append(error)
        with source.run("SELECT i FROM generate_series(1, 20000) i", {}) as result:
            outcome.append(len(next(iter(result.batches))))  # a consumer that had enough after one batch

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=15)
    assert not worker.is_alive(), "the call hung after its consumer stopped"
    assert outcome[0].row == 7000 and outcome[1] == 5000
    assert _rows(source, "SELECT 2 AS two") == [(2,)]
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        # A kept connection waits in an empty READ ONLY transaction (no snapshot, no transaction id);
        # none holds one, which would hold back vacuum.
        stuck = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
            " AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)"
        )
        assert stuck.fetchone() == (0,)


def test_an_export_whose_consumer_stops_early_cancels_the_rest_at_once(postgres: Connection) -> None:
    sql = """SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 100000) i
             UNION ALL SELECT 0, pg_sleep(8)::text AS early_stop"""
    source = _source(postgres, timeout=30)
    started = time.monotonic()
    with source.run_arrow(sql, {}) as result:
        assert next(iter(result.batches)).num_rows > 0
    assert time.monotonic() - started < 5
    assert _gone(postgres, "early_stop")


_SYDNEY_10AM = datetime(2024, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=11)))


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        ("SELECT count(*) AS n FROM binding_cases WHERE code = :c", {"c": "ABC"}, [(2,)]),  # char(3)
        ("SELECT count(*) AS n FROM binding_cases WHERE bits = :b", {"b": "101"}, [(2,)]),  # bit(3)
        ("SELECT count(*) AS n FROM binding_cases WHERE d < :t", {"t": datetime(2024, 1, 1, 12)}, [(1,)]),
        # 10:00 at +11 is 23:00 UTC the day before: one row before it (two, had the offset been dropped)
        ("SELECT count(*) AS n FROM binding_cases WHERE at < :t", {"t": _SYDNEY_10AM}, [(1,)]),
        ("SELECT count(*) AS n FROM binding_cases WHERE qty > :q", {"q": Decimal("2.5")}, [(1,)]),  # integer
        ("SELECT :x AS x", {"x": 5}, [(5,)]),
        ("SELECT :x << 20 AS v", {"x": 1}, [(1048576,)]),  # a smallint would give 0
        ("SELECT :a + :b AS v", {"a": 1, "b": 2}, [(3,)]),
        ("SELECT abs(:a) AS v", {"a": -32768}, [(32768,)]),
        ("SELECT :x AS x, :y AS y", {"x": "five", "y": None}, [("five", None)]),
        ("SELECT :x AS x", {"x": _SYDNEY_10AM}, [(datetime(2024, 1, 1, 23, 0, tzinfo=UTC),)]),
    ],
)
def test_a_value_bound_without_a_cast_compares_the_same_on_both_paths(
    postgres: Connection, sql: str, params: dict[str, Any], expected: list[tuple[Any, ...]]
) -> None:
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        admin.execute(
            """CREATE TABLE IF NOT EXISTS binding_cases AS
               SELECT 'ABC'::char(3) AS code, B'101'::bit(3) AS bits, DATE '2024-01-01' + n AS d,
                      TIMESTAMP '2024-01-01 00:00' + n * interval '1 day' AS at, n + 2 AS qty
               FROM generate_series(0, 1) n"""
        )
        admin.execute("GRANT SELECT ON binding_cases TO PUBLIC")
    assert _both(_source(postgres), sql, params) == expected


@pytest.fixture(autouse=True)
def _no_kept_connections() -> Iterator[None]:
    yield
    for key in list(IDLE._connections):
        connection = IDLE.take(key)
        if connection is not None:
            connection.close()


@pytest.mark.parametrize(
    ("host", "ssl_mode", "allowed"),
    [
        ("127.0.0.1", "disable", True),
        ("localhost", "disable", True),
        ("::1", "prefer", True),
        ("db.example.com", "require", True),
        ("db.example.com", "verify-full", True),
        ("db.example.com", "disable", False),
        ("db.example.com", "prefer", False),
        ("10.0.0.5", "allow", False),
        ("127.0.0.1.example.com", "disable", False),
        ("localhost.example.com", "disable", False),
    ],
)
def test_tls_is_required_except_on_loopback(host: str, ssl_mode: str, allowed: bool) -> None:
    def define() -> DataSource:
        return DataSource(id="904", name="PG", kind="postgresql", database="d", host=host, user="u", ssl_mode=ssl_mode)

    if allowed:
        assert define().ssl_mode == ssl_mode
    else:
        with pytest.raises(ValueError, match="in clear"):
            define()


@pytest.mark.parametrize(
    "host",
    ["db.example.com/otherdb", "db.example.com:5432", "a,b", "host=evil", "db example", "-db.example.com", ""],
)
def test_a_host_that_is_more_than_a_host_is_refused(host: str) -> None:
    """A connection string or URL would read more into it (another database, a port, a list of hosts)."""
    with pytest.raises(ValueError, match="host"):
        DataSource(id="904", name="PG", kind="postgresql", database="d", host=host, user="u")


def test_a_targets_repr_does_not_show_its_password() -> None:
    target = PostgresTarget(host="h", port=1, database="d", user="u", password="s3cr3t-pw", ssl_mode="require")
    assert "s3cr3t-pw" not in repr(target)


def test_the_demo_source_reads_as_a_role_that_may_only_read_its_tables(postgres: Connection) -> None:
    reader = demo_reader(postgres)
    assert reader.user == READER_ROLE and reader.password != postgres.password
    source = _source(reader)
    assert _rows(source, "SELECT count(*) > 0 AS some FROM orders") == [(True,)]
    # What a superuser could do inside a read-only transaction, this role may not.
    for sql in ("SELECT pg_read_file('PG_VERSION') AS f", "SELECT pg_ls_dir('.') AS f"):
        with pytest.raises(DataSourceFailed):
            _rows(source, sql)
    with psycopg.connect(reader.conninfo(), autocommit=True) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("CREATE TABLE stolen (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DELETE FROM orders")


@pytest.mark.parametrize(
    ("cast", "special"),
    # A numeric(p, s) holds NaN but no infinity (the server refuses one); plain numeric holds both.
    [("numeric(12,2)", "NaN"), ("numeric", "NaN"), ("numeric", "Infinity"), ("numeric", "-Infinity")],
)
@pytest.mark.parametrize("path", ["call", "export"])
def test_a_numeric_that_is_not_a_number_fails_loudly_on_both_paths(
    postgres: Connection, cast: str, special: str, path: str
) -> None:
    sql = f"SELECT x::{cast} AS amount FROM (VALUES ('1.50'), ('{special}')) v(x)"
    read = _rows if path == "call" else _arrow_rows
    with pytest.raises(ValueDoesNotFit) as unfit:
        read(_source(postgres), sql)
    assert unfit.value.column == "amount" and unfit.value.row == 2


def test_numeric_columns_of_fixed_places_read_exactly_at_their_limits(postgres: Connection) -> None:
    nines, tiny = "9" * 38, "0." + "0" * 37 + "1"
    sql = f"""SELECT x::numeric(38,0) AS whole, y::numeric(38,38) AS tiny, z::numeric(10,2) AS money
              FROM (VALUES ('{nines}', '0.{nines}', '-0.5'), ('-{nines}', '-{tiny}', '12345678.9'),
                           (NULL, NULL, NULL)) v(x, y, z)"""
    rows = _both(_source(postgres), sql)
    assert rows == [
        (Decimal("9" * 38), Decimal("0." + "9" * 38), Decimal("-0.50")),
        (Decimal("-" + "9" * 38), Decimal("-0." + "0" * 37 + "1"), Decimal("12345678.90")),
        (None, None, None),
    ]
    assert str(rows[0][2]) == "-0.50"  # the column's two places, on both paths


def test_a_tag_narrower_than_the_servers_type_is_still_checked_on_both_paths(postgres: Connection) -> None:
    sql = 'SELECT x::numeric(10,2) AS "amount [decimal(1)]" FROM (VALUES (1.20), (1.25)) v(x)'
    for read in (_rows, _arrow_rows):
        with pytest.raises(ValueDoesNotFit) as unfit:
            read(_source(postgres), sql)
        assert unfit.value.row == 2
    assert _both(_source(postgres), 'SELECT 1.20::numeric(10,2) AS "amount [decimal(1)]"') == [(Decimal("1.2"),)]


def test_an_empty_result_keeps_the_tags_types(postgres: Connection) -> None:
    sql = 'SELECT 1.5::numeric AS "amount [decimal(2)]", 7 AS "n [text]" WHERE false'
    with _source(postgres).run(sql, {}) as result:
        assert [(c.name, c.type, c.scale) for c in result.columns] == [
            ("amount", ColumnType.DECIMAL, 2),
            ("n", ColumnType.TEXT, None),
        ]
        assert [row for batch in result.batches for row in batch] == []


# -- numeric(p, s) of at most 18 digits: exported as bigint units of its last place --


def test_numeric_of_any_declared_scale_reads_exactly_on_both_paths(postgres: Connection) -> None:
    # PostgreSQL 15 and later take a negative scale (rounding to tens, thousands) or one over the precision.
    sql = """SELECT 12345::numeric(2,-3) AS thousands, 0.00123::numeric(3,5) AS tiny,
                    x::numeric(18,0) AS whole, y::numeric(18,18) AS fraction, z::numeric(18,2) AS money
             FROM (VALUES ('999999999999999999', '0.999999999999999999', '-9999999999999999.99'),
                          ('-999999999999999999', '-0.000000000000000001', NULL)) v(x, y, z)"""
    rows = _both(_source(postgres), sql)
    nines = Decimal("9" * 18)
    assert rows == [
        (Decimal(12000), Decimal("0.00123"), nines, nines.scaleb(-18), Decimal("-" + "9" * 16 + ".99")),
        (Decimal(12000), Decimal("0.00123"), -nines, Decimal("-1E-18"), None),
    ]
    with _source(postgres).run(sql, {}) as result:
        assert [c.scale for c in result.columns] == [0, 5, 0, 18, 2]


def test_an_export_reads_small_numerics_as_units_and_keeps_the_statements_rows_and_order(
    postgres: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reportserver.sources import postgres as module

    sent: list[str] = []
    first_read = module._first_native_read

    def spy(cursor: Any, settings: list[str | None], statement: str, started: threading.Event) -> Any:
        sent.append(statement)
        return first_read(cursor, settings, statement, started)

    monkeypatch.setattr(module, "_first_native_read", spy)
    # Repeated names, a bound value, an ORDER BY and a trailing comment: the statement is wrapped by position.
    sql = """SELECT i AS a, (i / 100.0)::numeric(10,2) AS a, (i * 3)::numeric(18,0) AS b, i::numeric(19,0) AS c
             FROM generate_series(1, 30000) i WHERE i <= :n ORDER BY i DESC -- newest first"""
    rows = _both(_source(postgres), sql, {"n": 25000})
    assert len(rows) == 25000
    assert rows[0] == (25000, Decimal("250.00"), Decimal(75000), Decimal(25000))
    assert rows[-1] == (1, Decimal("0.01"), Decimal(3), Decimal(1))
    assert len(sent) == 1
    assert sent[0].count("::int8 END") == 2  # numeric(10,2) and numeric(18,0); numeric(19,0) stays text


@pytest.mark.parametrize("ending", [";", " ;\n", "; ;", " -- a note;"])
def test_a_statement_ending_with_a_semicolon_or_a_comment_exports_its_small_numerics(
    postgres: Connection, ending: str
) -> None:
    assert _both(_source(postgres), f"SELECT 1.50::numeric(5,2) AS a{ending}") == [(Decimal("1.50"),)]


def test_a_small_numerics_expression_runs_once_per_row_as_written(postgres: Connection) -> None:
    # Found in review: folded into the export's statement, each column's expression ran twice per row
    # (the NaN test and the units each named it): a correlated subquery took twice as long.
    from reportserver.sources.postgres import _in_units

    sql = "SELECT (SELECT sum(i) FROM generate_series(1, g) i)::numeric(18,2) AS s FROM generate_series(1, 3) g"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as session:
        plan = "\n".join(r[0] for r in session.execute(f"EXPLAIN VERBOSE {_in_units(sql, 1, {0: 2})}").fetchall())
    assert "SubPlan 1" in plan and "SubPlan 2" not in plan, plan  # one subplan, not a copy per use
    assert _both(_source(postgres), sql) == [(Decimal("1.00"),), (Decimal("3.00"),), (Decimal("6.00"),)]


def test_nan_in_a_small_numeric_after_the_first_batch_is_named_by_its_row(postgres: Connection) -> None:
    sql = (
        "SELECT i, CASE WHEN i = 20001 THEN 'NaN' ELSE i::text END::numeric(12,2) AS amount"
        " FROM generate_series(1, 30000) i"
    )
    with pytest.raises(ValueDoesNotFit) as unfit:
        _arrow_rows(_source(postgres), sql)
    assert unfit.value.column == "amount" and unfit.value.row == 20001
