"""Data models' snapshots (issue 10, seed 004's "refresh a semantic data input model"): a refresh asked for
over the API with a `refresh_data` token, run by the refresh function off the request, and reports read
from its snapshot until the next one; against the session's real PostgreSQL server, under moto with IAM
enforced (each function as its template role).

Every snapshot read is compared with the same report on a twin model that reads the live database:
the two answers must be the same bytes, decimals, dates, times, NULLs and text alike."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError
from psycopg import sql
from reportserver.domain.refreshes import RefreshPolicy, RefreshWorker
from reportserver.domain.reports import parse_report
from reportserver.sources.registry import SourceOpener, at_one_moment
from reportserver.sources.snapshot import SqliteSnapshot
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.refreshes import DynamoRefreshStore
from reportserver.store.secrets import SecretPasswords
from reportserver.store.snapshots import S3SnapshotFiles
from reportserver.store.tickets import DynamoTicketStore

from infra.local.postgres import Connection
from infra.local.queues import drain, pollers
from tests.integration.conftest import TEMPLATE, Stack

# The rows of the shop's own kind of table: money with its places, a plain numeric whose values all have
# three, dates, wall-clock times, instants, text in several scripts, booleans, and NULL in every column.
_COLUMNS = (
    "id integer PRIMARY KEY, amount numeric(12,2), rate numeric, placed date, at timestamp, "
    "at_tz timestamptz, note text, active boolean"
)
_ROWS = [
    (1, "1234567.89", "0.125", "2025-01-31", "2025-01-31 23:59:59.123456", "2025-01-31 23:00:00+11", "plain", True),
    (2, "0.10", "-7.500", "0001-01-01", "1999-12-31 00:00:00", "2000-02-29 12:00:00.5+00", "Ünïcødé ✓ 日本", False),
    (3, "-0.01", "123456.789", "9999-12-31", "2024-02-29 12:30:00", "1970-01-01 00:00:00+00", "", None),
    (4, None, None, None, None, None, None, None),
    (5, "99999.99", "0.001", "2025-06-30", "2025-06-30 08:00:00", "2025-06-30 08:00:00-04", 'it\'s "quoted"', True),
]
_REPORT_SQL = "SELECT id, amount, rate, placed, at, at_tz, note, active FROM {table} WHERE id >= :min_id ORDER BY id"


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """An admin token of its own per test (its own request bucket)."""
    return stack.with_own_admin("refresh-admin")


@dataclass
class Shop:
    """A table of its own in the PostgreSQL server, a login that may read it, and the server itself."""

    table: str
    user: str
    password: str
    server: Connection

    def execute(self, statement: str, *params: Any) -> None:
        with psycopg.connect(self.server.conninfo(), autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(table=sql.Identifier(self.table)), params or None)

    def provider(self) -> dict[str, Any]:
        return {
            "providerType": "postgresql",
            "serverName": self.server.host,
            "port": self.server.port,
            "database": self.server.database,
            "userName": self.user,
            "password": self.password,
            "sslMode": "disable",
        }


@pytest.fixture
def shop(postgres: Connection) -> Iterator[Shop]:
    table, role, password = f"t_{uuid.uuid4().hex[:10]}", f"r_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    made = Shop(table, role, password, postgres)
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        connection.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    made.execute(f"CREATE TABLE {{table}} ({_COLUMNS})")
    for row in _ROWS:
        made.execute("INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", *row)
    made.execute(f'GRANT SELECT ON {{table}} TO "{role}"')
    yield made
    made.execute("DROP TABLE IF EXISTS {table}")


@dataclass
class Models:
    """The model that keeps a snapshot and its report; the twin model on the same database (live) and its."""

    model: int
    report: str
    twin_report: str


def _ok(stack: Stack, method: str, path: str, body: object = None, status: int = 200) -> Any:
    got, answer = stack.send(method, path, body)
    assert got == status, (path, answer)
    return answer


def _model(stack: Stack, shop: Shop, **fields: Any) -> int:
    body = {"name": f"snap-{uuid.uuid4().hex[:8]}", "providerModel": shop.provider(), **fields}
    return int(_ok(stack, "POST", "/api/datamodels/", body, 201)["dataModel"]["id"])


def _kept_query(stack: Stack, model: int, name: str, query: str, snapshot: bool = True) -> None:
    body = {"optimisticLock": _version(stack, model), "name": name, "query": query, "snapshot": snapshot}
    _ok(stack, "POST", f"/api/datamodels/{model}/customsqlquery", body, 201)


def _version(stack: Stack, model: int) -> int:
    return int(_ok(stack, "GET", f"/api/datamodels/{model}")["dataModel"]["optimisticLock"])


def _report(stack: Stack, model: int, sql_text: str, **fields: Any) -> str:
    body = {
        "name": f"Snap {uuid.uuid4().hex[:8]}",
        "dataModelId": model,
        "queries": [{"sql": sql_text}],
        "fields": [{"name": "min_id", "type": "integer", "default": "0"}],
        **fields,
    }
    return str(_ok(stack, "POST", "/api/reports", body, 201)["report"]["slug"])


@pytest.fixture
def models(stack: Stack, shop: Shop) -> Models:
    """A model whose one custom query, named as the table, keeps the table's rows; a report reading the
    table by name (so the same SQL reads the live database and the snapshot); the same on a twin model."""
    model = _model(stack, shop)
    _kept_query(stack, model, shop.table, f"SELECT * FROM {shop.table} ORDER BY id")
    twin = _model(stack, shop)
    report_sql = _REPORT_SQL.format(table=shop.table)
    return Models(model, _report(stack, model, report_sql), _report(stack, twin, report_sql))


def _refresher(stack: Stack, model: int, permissions: list[Any] | None = None) -> str:
    """A token made as seed 004 shows (the refresh permission and a data model it may read): its header."""
    grants = permissions if permissions is not None else ["refresh_data", _reads(model)]
    body = {"name": f"refresh-{uuid.uuid4().hex[:8]}", "expiry": 30, "groups": ["*"], "permissions": grants}
    return str(_ok(stack, "POST", "/api/tokens/", body, 201)["headers"]["bearer"])


def _reads(model: int) -> dict[str, Any]:
    return {"scope": "dataModel", "accessMode": 2, "entityId": model}


def _refresh(stack: Stack, model: int, auth: str = "admin") -> tuple[int, dict[str, Any]]:
    status, answer = stack.send("POST", f"/api/datamodels/{model}/refresh", auth=auth)
    return status, answer


def _refreshed(stack: Stack, model: int, auth: str = "admin") -> dict[str, Any]:
    """A refresh asked for and run by the refresh function; how it ended, as its status URL tells."""
    status, answer = _refresh(stack, model, auth)
    assert status == 202, answer
    assert answer["refresh"]["status"] == "queued"
    drain(pollers(stack.api, TEMPLATE))
    # Warm containers know a new snapshot within CATALOG_CACHE_SECONDS; new ones at once.
    for function in ("ReportsFunction", "ExportWorkerFunction", "ExportsFunction"):
        stack.api.cold_start(function)
    return _poll(stack, answer["refresh"]["statusUrl"], auth)


def _poll(stack: Stack, url: str, auth: str) -> dict[str, Any]:
    status, answer = stack.send("GET", url, auth=auth)
    assert status == 200, answer
    return dict(answer["refresh"])


def _call(stack: Stack, report: str, min_id: int = 0) -> tuple[int, bytes, dict[str, str]]:
    response = stack.get(f"/api/call/{report}/?min_id={min_id}")
    return response.status, response.body, dict(response.headers)


# Asked for, run, read


def test_a_refresh_keeps_the_live_rows_exactly_and_reports_read_them_until_the_next(
    stack: Stack, shop: Shop, models: Models
) -> None:
    # Given a model marked for snapshots (its custom query), before any refresh: its report reads live
    status, before, headers = _call(stack, models.report)
    live_status, live, _ = _call(stack, models.twin_report)
    assert status == live_status == 200 and before == live and "X-Snapshot-Taken-At" not in headers
    records = json.loads(live)["records"]
    assert records[0]["amount"] == 1234567.89 and records[1]["rate"] == -7.5 and records[3]["note"] is None
    assert b'"amount":0.10' in live and b'"rate":-7.500' in live  # each decimal with its places

    # When a token holding refresh_data (and read access to the model) refreshes it
    token = _refresher(stack, models.model)
    refresh = _refreshed(stack, models.model, token)

    # Then the refresh is complete, with its rows, bytes, time taken and what the snapshot is as of
    assert refresh["status"] == "complete", refresh
    assert refresh["rows"] == len(_ROWS) and refresh["bytes"] > 0 and refresh["tookSeconds"] >= 0
    assert refresh["tables"] == [{"name": shop.table, "rows": len(_ROWS)}] and refresh["error"] is None
    assert refresh["trigger"] == "api" and refresh["requestedBy"].startswith("token 'refresh-")
    taken_at = refresh["snapshotTakenAt"]
    assert _time(taken_at) > datetime.now(UTC) - timedelta(minutes=1)
    # ... the model shows its snapshot, and the report reads it: the live rows, byte for byte, and says when
    current = _ok(stack, "GET", f"/api/datamodels/{models.model}")["dataModel"]["currentSnapshot"]
    assert current["takenAt"] == taken_at and current["refreshId"] == refresh["id"] and current["rows"] == 5
    status, kept, headers = _call(stack, models.report)
    assert status == 200 and kept == live and headers["X-Snapshot-Taken-At"] == taken_at
    assert _call(stack, models.report, min_id=3)[1] == _call(stack, models.twin_report, min_id=3)[1]

    # When the live table changes
    shop.execute("UPDATE {table} SET amount = 1.01, note = 'changed' WHERE id = 1")
    shop.execute("DELETE FROM {table} WHERE id = 2")
    shop.execute("INSERT INTO {table} (id, amount, rate, note) VALUES (6, 6.66, 0.600, 'new')")
    changed = _call(stack, models.twin_report)[1]
    assert changed != live
    # Then the report still answers the snapshot's rows, as of the same time
    status, still, headers = _call(stack, models.report)
    assert status == 200 and still == live and headers["X-Snapshot-Taken-At"] == taken_at

    # When it is refreshed again, then it answers the new rows, as of a later time
    again = _refreshed(stack, models.model, token)
    assert again["status"] == "complete" and _time(again["snapshotTakenAt"]) > _time(taken_at)
    status, fresh, headers = _call(stack, models.report)
    assert status == 200 and fresh == changed and headers["X-Snapshot-Taken-At"] == again["snapshotTakenAt"]
    # ... and the snapshot it replaced is deleted
    with pytest.raises(ClientError):
        boto3.client("s3").head_object(Bucket=stack.names["ExportBucket"], Key=_key(models.model, refresh["id"]))
    boto3.client("s3").head_object(Bucket=stack.names["ExportBucket"], Key=_key(models.model, again["id"]))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _key(model: int, refresh_id: str) -> str:
    return f"snapshots/{model}/{refresh_id}.sqlite"


def test_an_export_reads_the_snapshot_as_the_call_does(stack: Stack, shop: Shop, models: Models) -> None:
    # Given a refreshed model, whose live table then changes
    assert _refreshed(stack, models.model)["status"] == "complete"
    before = _export(stack, models.twin_report)
    shop.execute("UPDATE {table} SET amount = 2.02 WHERE id = 1")
    # When its report is exported, then the file holds the snapshot's rows: the live rows as they were
    kept = _export(stack, models.report)
    assert kept == before and kept != _export(stack, models.twin_report)
    assert kept[0]["amount"] == 1234567.89 and kept[1]["placed"] == "0001-01-01"


def _export(stack: Stack, report: str) -> list[dict[str, Any]]:
    body = {"report_name": report, "format": "json", "parameters": {"min_id": 0}, "force_update": True}
    status, ticket = stack.send("POST", "/api/exports/", body)
    assert status == 202, ticket
    drain(pollers(stack.api, TEMPLATE))
    stored = DynamoTicketStore(stack.names["TicketsTable"]).get(ticket["ticket_id"])
    assert stored is not None and stored.file_key, stored
    data = boto3.client("s3").get_object(Bucket=stack.names["ExportBucket"], Key=stored.file_key)["Body"].read()
    return list(json.loads(data)["reports"][0]["data"])


def test_a_second_request_while_one_is_queued_answers_that_one(stack: Stack, models: Models) -> None:
    first_status, first = _refresh(stack, models.model)
    second_status, second = _refresh(stack, models.model)
    assert (first_status, second_status) == (202, 200)
    assert second["refresh"]["id"] == first["refresh"]["id"] and "already" in second["message"]
    drain(pollers(stack.api, TEMPLATE))
    listed = _ok(stack, "GET", f"/api/datamodels/{models.model}/refreshes")["refreshes"]
    assert [r["id"] for r in listed] == [first["refresh"]["id"]] and listed[0]["status"] == "complete"
    # Once it is over, a new request is a new refresh
    third_status, third = _refresh(stack, models.model)
    assert third_status == 202 and third["refresh"]["id"] != first["refresh"]["id"]
    drain(pollers(stack.api, TEMPLATE))


# Who may, and what may be refreshed


def test_a_token_without_refresh_data_is_refused(stack: Stack, models: Models) -> None:
    reader = _refresher(stack, models.model, [_reads(models.model)])
    status, answer = _refresh(stack, models.model, reader)
    assert status == 403 and "'refresh_data'" in answer["message"]
    assert _ok(stack, "GET", f"/api/datamodels/{models.model}/refreshes")["refreshes"] == []


def test_a_refresh_token_for_another_model_is_refused(stack: Stack, models: Models) -> None:
    other = _refresher(stack, models.model + 1000)
    status, answer = _refresh(stack, models.model, other)
    assert status == 403 and f"dataModel {models.model}" in answer["message"]


def test_an_unknown_model_is_404(stack: Stack) -> None:
    status, answer = _refresh(stack, 99_999_999)
    assert status == 404 and "No data model 99999999" in answer["message"]
    assert stack.send("POST", "/api/datamodels/abc/refresh")[0] == 404


def test_a_model_not_marked_for_snapshots_is_refused_saying_so(stack: Stack, shop: Shop) -> None:
    model = _model(stack, shop)
    _kept_query(stack, model, "q", f"SELECT id FROM {shop.table}", snapshot=False)
    status, answer = _refresh(stack, model)
    assert status == 400 and "not marked for snapshots" in answer["message"]
    # Marked, but with no custom query to keep: refused too, saying what to add
    marked = _model(stack, shop, snapshot=True)
    status, answer = _refresh(stack, marked)
    assert status == 400 and "no custom query to keep" in answer["message"]


def test_marks_are_shown_and_what_cannot_be_kept_is_refused_when_saved(stack: Stack, shop: Shop) -> None:
    model = _model(stack, shop, snapshot=True)
    made = _ok(stack, "GET", f"/api/datamodels/{model}")["dataModel"]
    assert made["snapshot"] is True and made["currentSnapshot"] is None
    # A custom query with parameters has no one set of rows to keep
    body = {"optimisticLock": made["optimisticLock"], "name": "by_id", "query": f"SELECT id FROM {shop.table}"}
    body |= {"query": f"SELECT id FROM {shop.table} WHERE id = :x::integer", "parameters": [{"name": "x"}]}
    status, answer = stack.send("POST", f"/api/datamodels/{model}/customsqlquery", body)
    assert status == 400 and "takes parameters" in answer["message"] and answer["parameter"] == "snapshot"
    # The model unmarked, it may hold one (not kept), and then it cannot be marked again
    _ok(stack, "PUT", f"/api/datamodels/{model}", {"optimisticLock": made["optimisticLock"], "snapshot": False})
    _ok(stack, "POST", f"/api/datamodels/{model}/customsqlquery", body | {"optimisticLock": 2}, 201)
    status, answer = stack.send("PUT", f"/api/datamodels/{model}", {"optimisticLock": 3, "snapshot": True})
    assert status == 400 and "takes parameters" in answer["message"]
    query = _ok(stack, "GET", f"/api/datamodels/{model}/customsqlquery/by_id")["query"]
    assert query["snapshot"] is False


# When a refresh cannot keep what the reports read


def test_a_refresh_whose_query_fails_ends_failed_and_reports_keep_the_previous_snapshot(
    stack: Stack, shop: Shop, models: Models
) -> None:
    # Given a snapshot
    first = _refreshed(stack, models.model)
    _, kept, _ = _call(stack, models.report)
    # When the live table is gone and the model is refreshed
    shop.execute(f"ALTER TABLE {{table}} RENAME TO {shop.table}_away")
    try:
        failed = _refreshed(stack, models.model)
    finally:
        shop.execute(f"ALTER TABLE {shop.table}_away RENAME TO {{table}}")
    # Then the refresh failed, saying which query and why (the database's own words on its SQL)
    assert failed["status"] == "failed" and failed["rows"] is None and failed["snapshotTakenAt"] is None
    assert f"Custom query '{shop.table}' failed" in failed["error"] and "does not exist" in failed["error"]
    # ... and the report reads the previous snapshot, as of its time
    status, still, headers = _call(stack, models.report)
    assert status == 200 and still == kept and headers["X-Snapshot-Taken-At"] == first["snapshotTakenAt"]
    current = _ok(stack, "GET", f"/api/datamodels/{models.model}")["dataModel"]["currentSnapshot"]
    assert current["refreshId"] == first["id"]


def test_a_decimal_a_snapshot_cannot_hold_exactly_fails_the_refresh_naming_it(
    stack: Stack, shop: Shop, models: Models
) -> None:
    shop.execute("ALTER TABLE {table} ALTER COLUMN amount TYPE numeric(30,2)")
    shop.execute("UPDATE {table} SET amount = 1234567890123456789.01 WHERE id = 3")
    failed = _refreshed(stack, models.model)
    assert failed["status"] == "failed"
    assert "Column 'amount', row 3" in failed["error"] and "exactly" in failed["error"]
    assert _ok(stack, "GET", f"/api/datamodels/{models.model}")["dataModel"]["currentSnapshot"] is None


def test_a_report_that_would_read_otherwise_from_the_snapshot_fails_the_refresh(
    stack: Stack, shop: Shop, models: Models
) -> None:
    # A sum of decimals: exact on PostgreSQL, floating point in SQLite; a table the snapshot does not hold
    summed = _report(stack, models.model, f"SELECT sum(amount) AS total FROM {shop.table} WHERE id >= :min_id")
    failed = _refreshed(stack, models.model)
    assert failed["status"] == "failed" and f"Report '{summed}'" in failed["error"]
    assert f'computes SUM("{shop.table}"."amount") over decimal values' in failed["error"]
    assert "floating point" in failed["error"] and "kept custom query" in failed["error"]
    _ok(stack, "DELETE", f"/api/reports/{_report_id(stack, summed)}")
    elsewhere = _report(stack, models.model, "SELECT id FROM orders WHERE id >= :min_id")
    failed = _refreshed(stack, models.model)
    assert f"Report '{elsewhere}'" in failed["error"] and "no such table: orders" in failed["error"]


def _report_id(stack: Stack, slug: str) -> int:
    return next(int(d["id"]) for d in _ok(stack, "GET", "/api/documents")["documents"] if d["slug"] == slug)


def test_a_report_saved_after_the_snapshot_is_checked_against_it_and_reads_it_at_once(
    stack: Stack, shop: Shop, models: Models
) -> None:
    first = _refreshed(stack, models.model)
    shop.execute("UPDATE {table} SET note = 'changed live' WHERE id = 2")
    later = _report(stack, models.model, f"SELECT id, note FROM {shop.table} WHERE id >= :min_id ORDER BY id")
    status, body, headers = _call(stack, later)
    assert status == 200 and json.loads(body)["records"][1] == {"id": 2, "note": "Ünïcødé ✓ 日本"}
    assert headers["X-Snapshot-Taken-At"] == first["snapshotTakenAt"]


def test_a_report_that_would_read_otherwise_from_the_snapshot_is_refused_when_saved(
    stack: Stack, shop: Shop, models: Models
) -> None:
    assert _refreshed(stack, models.model)["status"] == "complete"
    body = {"name": f"Snap {uuid.uuid4().hex[:8]}", "dataModelId": models.model}
    body |= {"fields": [{"name": "min_id", "type": "integer"}]}
    # A sum of decimals is refused, tagged with its places or not: the tag would only hide the float's rounding
    summed = f"SELECT sum(amount) AS total FROM {shop.table} WHERE id >= :min_id"
    tagged = f'SELECT sum(amount) AS "total [decimal(2)]" FROM {shop.table} WHERE id >= :min_id'
    for sql_text in (summed, tagged):
        status, answer = stack.send("POST", "/api/reports", body | {"queries": [{"sql": sql_text}]})
        assert status == 400 and f"data model {models.model}'s snapshot: it computes SUM(" in answer["message"]
    # A column SQLite gives no type, of exact values, reads right once tagged with its places
    untyped = f"SELECT coalesce(amount, 0) AS total FROM {shop.table} WHERE id >= :min_id ORDER BY id"
    status, answer = stack.send("POST", "/api/reports", body | {"queries": [{"sql": untyped}]})
    assert status == 400 and "column 'total' is decimal" in answer["message"] and "[decimal(2)]" in answer["message"]
    tagged = f'SELECT coalesce(amount, 0) AS "total [decimal(2)]" FROM {shop.table} WHERE id >= :min_id ORDER BY id'
    status, answer = stack.send("POST", "/api/reports", body | {"queries": [{"sql": tagged}]})
    assert status == 201, answer
    elsewhere = "SELECT id FROM orders WHERE id >= :min_id"
    other = body | {"name": "x " + str(body["name"]), "queries": [{"sql": elsewhere}]}
    status, answer = stack.send("POST", "/api/reports", other)
    assert status == 400 and "does not run on data model" in answer["message"]
    assert "no such table: orders" in answer["message"]


def test_a_report_written_past_the_api_after_the_snapshot_is_refused_until_the_next_refresh(
    stack: Stack, shop: Shop, models: Models
) -> None:
    # Given a snapshot, and a report on the model not saved over the API (so not checked against it)
    assert _refreshed(stack, models.model)["status"] == "complete"
    definition = {"name": f"Past {uuid.uuid4().hex[:8]}", "data_source_id": str(models.model)}
    definition |= {"queries": [{"sql": f"SELECT id, note FROM {shop.table} WHERE id >= :min_id ORDER BY id"}]}
    definition |= {"fields": [{"name": "min_id", "type": "integer"}]}
    later = stack.catalog.create_report(parse_report(definition)).slug
    # Then it is refused, saying why and what to do, until a refresh checks it
    status, body, _ = _call(stack, later)
    assert status == 409 and b"refresh the data model" in body
    assert _refreshed(stack, models.model)["status"] == "complete"
    status, body, _ = _call(stack, later)
    assert status == 200 and json.loads(body)["records"][1] == {"id": 2, "note": "Ünïcødé ✓ 日本"}


def test_an_older_refresh_finishing_late_never_replaces_a_newer_snapshot(
    stack: Stack, shop: Shop, models: Models, tmp_path: Path
) -> None:
    # Given a snapshot, and a second refresh asked for (queued)
    newer = _refreshed(stack, models.model)
    status, queued = _refresh(stack, models.model)
    assert status == 202
    # When that refresh runs as of a time before the snapshot's (a worker that began earlier, finishing late)
    late = _time(newer["snapshotTakenAt"]) - timedelta(minutes=5)
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    worker = RefreshWorker(
        catalog=catalog,
        store=DynamoRefreshStore(stack.names["CatalogTable"]),
        read_live=at_one_moment(SourceOpener(SecretPasswords(ttl_seconds=0))),
        new_file=lambda path, model: SqliteSnapshot(path, 10**8),
        files=S3SnapshotFiles(stack.names["ExportBucket"]),
        policy=RefreshPolicy(lease_seconds=60, scratch_dir=tmp_path, max_bytes=10**8),
        clock=lambda: late,
    )
    assert worker.run(str(models.model), queued["refresh"]["id"]) == "complete"
    drain(pollers(stack.api, TEMPLATE))  # its message finds it over
    # Then it is complete but superseded, its file is gone, and the newer snapshot stays the model's
    late_view = _poll(stack, queued["refresh"]["statusUrl"], "admin")
    assert late_view["status"] == "complete" and late_view["superseded"] is True
    current = _ok(stack, "GET", f"/api/datamodels/{models.model}")["dataModel"]["currentSnapshot"]
    assert current["refreshId"] == newer["id"] and current["takenAt"] == newer["snapshotTakenAt"]
    with pytest.raises(ClientError):
        boto3.client("s3").head_object(Bucket=stack.names["ExportBucket"], Key=_key(models.model, late_view["id"]))
    assert _call(stack, models.report)[2]["X-Snapshot-Taken-At"] == newer["snapshotTakenAt"]


def test_a_refresh_status_of_another_model_or_malformed_is_404(stack: Stack, models: Models, shop: Shop) -> None:
    refresh = _refreshed(stack, models.model)
    other = _model(stack, shop)
    assert stack.send("GET", f"/api/datamodels/{other}/refreshes/{refresh['id']}")[0] == 404
    assert stack.send("GET", f"/api/datamodels/{models.model}/refreshes/nope")[0] == 404
    reader = _refresher(stack, other, [_reads(other)])  # may read another model only
    assert stack.send("GET", refresh["statusUrl"], auth=reader)[0] == 403


class _WritingBetween:
    """A snapshot file that, once its first kept query's rows are in, has the live table changed (a
    writer committing while the refresh reads)."""

    def __init__(self, path: Path, shop: Shop) -> None:
        self.file, self.shop, self.tables = SqliteSnapshot(path, 10**8), shop, 0

    def add_table(self, name: str, columns: Any, batches: Any) -> Any:
        kept = self.file.add_table(name, columns, batches)
        self.tables += 1
        if self.tables == 1:
            self.shop.execute("INSERT INTO {table} (id, amount, note) VALUES (7, 7.00, 'written between')")
        return kept

    def describe(self, sql_text: str) -> Any:
        return self.file.describe(sql_text)

    def finish(self) -> int:
        return self.file.finish()


def test_every_kept_query_of_a_snapshot_reads_the_same_moment_of_the_live_database(
    stack: Stack, shop: Shop, tmp_path: Path
) -> None:
    # Given a model keeping two queries of one table (the orders, and their total count)
    model = _model(stack, shop)
    _kept_query(stack, model, "a_rows", f"SELECT id FROM {shop.table}")
    _kept_query(stack, model, "b_count", f"SELECT count(*) AS n FROM {shop.table}")
    status, queued = _refresh(stack, model)
    assert status == 202
    # When the table changes after the first query is read and before the second is
    worker = RefreshWorker(
        catalog=DynamoCatalog(stack.names["CatalogTable"]),
        store=DynamoRefreshStore(stack.names["CatalogTable"]),
        read_live=at_one_moment(SourceOpener(SecretPasswords(ttl_seconds=0))),
        new_file=lambda path, _model: _WritingBetween(path, shop),
        files=S3SnapshotFiles(stack.names["ExportBucket"]),
        policy=RefreshPolicy(lease_seconds=60, scratch_dir=tmp_path, max_bytes=10**8),
        clock=lambda: datetime.now(UTC),
    )
    assert worker.run(str(model), queued["refresh"]["id"]) == "complete"
    drain(pollers(stack.api, TEMPLATE))  # its message finds it over
    # Then both read the table as it was when the refresh began: the count is of the rows kept
    view = _poll(stack, queued["refresh"]["statusUrl"], "admin")
    assert view["tables"] == [{"name": "a_rows", "rows": len(_ROWS)}, {"name": "b_count", "rows": 1}]
    snapshot = DynamoRefreshStore(stack.names["CatalogTable"]).snapshot(str(model))
    assert snapshot is not None
    local = tmp_path / "kept.sqlite"
    boto3.client("s3").download_file(stack.names["ExportBucket"], snapshot.key, str(local))
    with closing(sqlite3.connect(local)) as kept:
        ids = sorted(row[0] for row in kept.execute("SELECT id FROM a_rows"))
        (count,) = kept.execute("SELECT n FROM b_count").fetchone()
    assert ids == [1, 2, 3, 4, 5] and count == len(ids)
