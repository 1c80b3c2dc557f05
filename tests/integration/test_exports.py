"""Exports end to end in-process under moto: request, queue, worker, S3, status, download, failures."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reportserver.domain.calls import ReportRunner
from reportserver.domain.exports import ExportOrder, ExportPolicy, ExportService, ExportWorker, WorkerPolicy
from reportserver.domain.reports import parse_report
from reportserver.domain.tickets import TicketStatus
from reportserver.domain.tokens import basic_header
from reportserver.render import renderer_for
from reportserver.render.base import OutputKind, RenderFailed
from reportserver.sources.registry import open_source
from reportserver.sources.sqlite import SqliteSource
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.queue import SqsExportQueue
from reportserver.store.tickets import DynamoTicketStore

from infra.local.frontdoor import HttpResponse
from infra.local.queues import QueuePoller, drain, pollers
from tests.bad_inputs import new_token
from tests.fakes import principal as fake_principal
from tests.integration.conftest import TEMPLATE, Stack

SCRATCH = Path(os.environ["EXPORT_SCRATCH_DIR"])  # set by conftest: a folder the worker empties


@pytest.fixture(scope="module")
def queue_pollers(stack: Stack) -> list[QueuePoller]:
    return pollers(stack.api, TEMPLATE)


@pytest.fixture(scope="module")
def tickets(stack: Stack) -> DynamoTicketStore:
    return DynamoTicketStore(stack.names["TicketsTable"])


def post(stack: Stack, path: str, body: Any, auth: str = "admin") -> tuple[int, dict[str, Any], dict[str, str]]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [("Authorization", stack.headers[auth]), ("Content-Type", "application/json")]
    response = stack.api.handle("POST", path, headers, payload)
    return response.status, json.loads(response.body), dict(response.headers)


def get(stack: Stack, path: str, auth: str = "admin") -> tuple[int, dict[str, Any], dict[str, str]]:
    response = stack.get(path, auth)
    return response.status, json.loads(response.body), dict(response.headers)


def file_of(stack: Stack, ticket: dict[str, Any], tickets: DynamoTicketStore) -> bytes:
    stored = tickets.get(ticket["ticket_id"])
    assert stored is not None and stored.file_key
    return boto3.client("s3").get_object(Bucket=stack.names["ExportBucket"], Key=stored.file_key)["Body"].read()


def export(stack: Stack, queue_pollers: list[QueuePoller], body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = post(stack, "/api/exports/", body)
    assert status == 202, answer
    assert answer["status"] == "pending"
    drain(queue_pollers)
    status, view, _ = get(stack, f"/api/exports/{answer['ticket_id']}/")
    assert status == 200
    return view


def sql_rows(database: Path, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with SqliteSource(str(database)).run(sql, params) as result:
        return [row for batch in result.batches for row in batch]


def test_a_csv_export_completes_with_the_reports_rows(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore, demo_database: Path
) -> None:
    parameters = {"date_from": "2025-07-01", "date_to": "2025-07-31"}
    view = export(stack, queue_pollers, {"report_name": "sales-by-day", "format": "csv", "parameters": parameters})
    assert view["status"] == "complete" and view["total_rows"] == view["rows_written"] == 31 and "progress" not in view
    lines = list(csv.reader(io.StringIO(file_of(stack, view, tickets).decode("utf-8"))))
    assert lines[0] == ["day", "orders", "units", "net_sales", "gst"]
    report = stack.report("sales-by-day")
    expected = sql_rows(demo_database, report.queries[0].sql, {"date_from": "2025-07-01", "date_to": "2025-07-31"})
    assert lines[1:] == [[str(v) for v in row] for row in expected]


def test_the_status_carries_a_fresh_short_lived_link_with_a_readable_file_name(
    stack: Stack, queue_pollers: list[QueuePoller]
) -> None:
    view = export(stack, queue_pollers, {"report_name": "gst-balance", "format": "json"})
    assert view["file_name"].startswith("gst-balance-") and view["file_name"].endswith(".json")
    query = parse_qs(urlsplit(view["report_url"]).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert view["file_name"] in query["response-content-disposition"][0]
    assert query["response-content-type"] == ["application/json"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60  # signed at this request, not at completion


def test_download_redirects_to_a_presigned_get(stack: Stack, queue_pollers: list[QueuePoller]) -> None:
    view = export(stack, queue_pollers, {"report_id": str(stack.report("gst-balance").id), "format": "csv"})
    response = stack.api.handle(
        "GET", f"/api/exports/{view['ticket_id']}/download/", [("Authorization", stack.headers["admin"])], b""
    )
    location = dict(response.headers)["Location"]
    assert response.status == 302
    assert stack.names["ExportBucket"] in location and "X-Amz-Signature=" in location


def test_a_multi_sheet_json_export_has_one_entry_per_sheet(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    view = export(stack, queue_pollers, {"report_name": "sales-summary", "format": "json"})
    document = json.loads(file_of(stack, view, tickets))
    assert [(r["report_name"], r["sheet_name"]) for r in document["reports"]] == [
        ("Sales Summary", "By category"),
        ("Sales Summary", "By region"),
    ]
    assert {r["region"] for r in document["reports"][1]["data"]} >= {"NSW", "VIC"}
    called = json.loads(stack.get("/api/call/sales-summary/").body)["records"]
    assert document["reports"][0]["data"] == called


def test_a_multi_sheet_csv_export_is_a_zip_of_one_csv_per_sheet(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    view = export(stack, queue_pollers, {"report_name": "sales-summary", "format": "csv", "csv_bom": True})
    assert view["file_name"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(file_of(stack, view, tickets))) as archive:
        names = archive.namelist()
        first = archive.read(names[0])
    assert names == ["01-By category.csv", "02-By region.csv"]
    assert first.startswith(b"\xef\xbb\xbfcategory,lines,units,net_sales,gst\r\n")


def test_unix_time_range_fills_the_reports_declared_range(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    start = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp())
    view = export(
        stack, queue_pollers, {"report_name": "sales-by-day", "format": "json", "start_time": start, "end_time": end}
    )
    days = [r["day"] for r in json.loads(file_of(stack, view, tickets))["reports"][0]["data"]]
    assert days[0] == "2025-03-01" and days[-1] == "2025-03-10" and len(days) == 10


def test_the_same_request_within_the_cache_period_reuses_the_file(
    stack: Stack, queue_pollers: list[QueuePoller]
) -> None:
    body = {"report_name": "order-lines", "format": "csv", "parameters": {"row_limit": 50}}
    first = export(stack, queue_pollers, body)
    status, answer, _ = post(stack, "/api/exports/", body)
    assert status == 200 and answer["status"] == "complete"
    _, cached, _ = get(stack, f"/api/exports/{answer['ticket_id']}/")
    assert cached["cached"] is True and cached["total_rows"] == first["total_rows"] == 50
    status, forced, _ = post(stack, "/api/exports/", {**body, "force_update": True})
    assert status == 202 and forced["status"] == "pending"
    drain(queue_pollers)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_cache_period_runs_from_the_render_and_a_cached_copy_never_extends_it(
    stack: Stack, tickets: DynamoTicketStore
) -> None:
    clock = Clock()
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    service = ExportService(
        catalog,
        ReportRunner(catalog, open_source),
        tickets,
        SqsExportQueue(TEMPLATE.reference("ExportQueue")),
        S3FileStore(stack.names["ExportBucket"]),
        ExportPolicy(retention_days=7, link_seconds=60),
        clock,
    )
    period = catalog.report_by_slug("order-lines").cache_seconds  # type: ignore[union-attr]
    principal = fake_principal("test-admin", ("*",))
    order = ExportOrder(report="order-lines", format="csv", parameters={"row_limit": ["7"]})
    rendered = service.request(principal, order)
    assert worker(stack, tickets, clock=clock).run(rendered.ticket_id) == "complete"

    clock.now += timedelta(seconds=period - 1)  # a copy just before the period ends ...
    copy = service.request(principal, order)
    assert copy.cached_from == rendered.ticket_id and copy.status is TicketStatus.COMPLETE
    clock.now += timedelta(seconds=2)  # ... does not start a new one: the file is rendered afresh
    fresh = service.request(principal, order)
    assert fresh.cached_from is None and fresh.status is TicketStatus.PENDING
    assert worker(stack, tickets, clock=clock).run(fresh.ticket_id) == "complete"
    assert service.request(principal, order).cached_from == fresh.ticket_id


def test_seed_001_shape_exports_through_the_same_tickets(stack: Stack, queue_pollers: list[QueuePoller]) -> None:
    body = {
        "exportOptions": {"exportFormat": "csv"},
        "documentParameters": [
            {"name": "date_from", "value": "2025-01-01"},
            {"Name": "date_to", "Value": "2025-01-31"},
        ],
    }
    status, answer, _ = post(stack, f"/api/documents/export/report/{stack.report('sales-by-day').id}", body)
    assert status == 202 and len(answer["exportId"]) == 32
    drain(queue_pollers)
    status, view, _ = get(stack, f"/api/documents/export/status/{answer['exportId']}")
    assert status == 200 and view["status"] == "complete" and view["total_rows"] == 31
    response = stack.api.handle(
        "GET", f"/api/documents/export/result/{answer['exportId']}", [("Authorization", stack.headers["admin"])], b""
    )
    assert response.status == 302


@pytest.mark.parametrize(
    ("body", "message", "parameter"),
    [
        ({"exportOptions": {"exportFormat": "csv", "forceUpdate": "false"}}, "true or false", "forceUpdate"),
        ({"exportOptions": {"exportFormat": 3}}, "must be text", "exportFormat"),
        ({"documentParameters": [{"value": 1}]}, "needs a name", "documentParameters"),
        ({"documentParameters": [{"name": "x", "value": {"a": 1}}]}, "a value or a list", "x"),
        ({"documentParameters": {"name": "x"}}, "Invalid 'documentParameters'", "documentParameters"),
        ({"exportOptions": {}, "extra": 1}, "Unknown field 'extra'", "extra"),
    ],
)
def test_bad_seed_001_bodies_are_refused_naming_the_problem(
    stack: Stack, body: dict[str, Any], message: str, parameter: str
) -> None:
    got, answer, _ = post(stack, f"/api/documents/export/report/{stack.report('gst-balance').id}", body)
    assert got == 400 and message in answer["message"], answer
    assert answer["parameter"] == parameter


@pytest.mark.parametrize(
    ("body", "status", "message", "parameter"),
    [
        (
            {"report_name": "gst-balance", "format": "docx"},
            400,
            "allowed: xlsx, csv, json, pdf, html, parquet",
            "format",
        ),
        (
            {"report_name": "customer-search", "format": "parquet", "parameters": {"name": "a"}},
            400,
            "cannot be exported as parquet",
            "format",
        ),
        (
            {"report_name": "gst-balance", "parameters": {"date_from": "yesterday"}, "format": "csv"},
            400,
            "'date_from' must be a date",
            "date_from",
        ),
        (
            {"report_name": "gst-balance", "format": "csv", "parameters": {"bogus": 1}},
            400,
            "Unknown parameter",
            "bogus",
        ),
        ({"report_name": "no-such-report", "format": "csv"}, 404, "Unknown report", None),
        ({"format": "csv"}, 400, "report_name", "report_id"),
        (
            {"report_name": "gst-balance", "format": "csv", "start_time": 1735689600},
            400,
            "does not take a time range",
            "start_time",
        ),
        ({"report_name": "sales-by-day", "format": "csv", "start_time": 1e20}, 400, "UNIX seconds", "start_time"),
        ({"report_name": "gst-balance", "format": "csv", "surprise": 1}, 400, "Unknown field", "surprise"),
        ({"report_name": "gst-balance", "a.b[0]": 1}, 400, "Unknown field 'a.b[0]'", "a.b[0]"),
        ({"report_name": "gst-balance", "format": 7}, 400, "Expected `str`", "format"),
        ({"report_name": "gst-balance", "parameters": {"x": {"y": 1}}}, 400, "Invalid 'parameters'", "parameters"),
        ({"report_name": "gst-balance", "force_update": "yes"}, 400, "Expected `bool`", "force_update"),
        ([{"report_name": "gst-balance"}], 400, "must be a JSON object", "body"),
        (b"{not json", 400, "not valid JSON", "body"),
        (b"", 400, "Send a JSON body", "body"),
    ],
)
def test_bad_export_requests_are_refused_naming_the_problem(
    stack: Stack, body: Any, status: int, message: str, parameter: str | None
) -> None:
    got, answer, _ = post(stack, "/api/exports/", body)
    assert got == status, answer
    assert answer["ok"] is False and message in answer["message"]
    assert answer.get("parameter") == parameter


def test_a_token_outside_the_reports_groups_cannot_export_it(stack: Stack) -> None:
    status, _, _ = post(stack, "/api/exports/", {"report_name": "gst-balance", "format": "csv"}, auth="sales")
    assert status == 403


def test_a_token_made_again_under_an_old_name_does_not_get_the_old_tokens_files(
    stack: Stack, queue_pollers: list[QueuePoller]
) -> None:
    # Found: tickets were owned by the token's name, so the new "reused" token could read the old one's file.

    def token() -> str:
        return basic_header("reused", new_token(stack.tokens, stack.usage, "reused"))

    old = token()
    response = stack.api.handle(
        "POST",
        "/api/exports/",
        [("Authorization", old), ("Content-Type", "application/json")],
        json.dumps({"report_name": "gst-balance", "format": "csv", "force_update": True}).encode(),
    )
    ticket_id = json.loads(response.body)["ticket_id"]
    drain(queue_pollers)
    assert stack.get(f"/api/exports/{ticket_id}/", auth=old).status == 200
    stack.tokens.delete("reused")
    new = token()  # works at once, though the authorizer's container had cached the old token by this name
    for path in (f"/api/exports/{ticket_id}/", f"/api/exports/{ticket_id}/download/"):
        refused = stack.get(path, auth=new)
        assert refused.status == 404, refused.body
        assert json.loads(refused.body)["message"] == f"Unknown export '{ticket_id}'"


@pytest.mark.parametrize(
    ("report_default", "requested", "expected"),
    [(True, None, "'=1+1"), (True, False, "=1+1"), (False, None, "=1+1"), (False, True, "'=1+1")],
)
def test_csv_formulas_are_neutralised_unless_the_report_or_the_request_says_not(
    stack: Stack,
    queue_pollers: list[QueuePoller],
    tickets: DynamoTicketStore,
    report_default: bool,
    requested: bool | None,
    expected: str,
) -> None:
    name = f"Formula Cells {int(report_default)}"
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    if catalog.report_by_slug(name.lower().replace(" ", "-")) is None:
        demo = stack.report("gst-balance").data_source_id
        definition = {"name": name, "data_source_id": demo, "csv_neutralise_formulas": report_default}
        catalog.create_report(parse_report({**definition, "queries": [{"sql": "SELECT '=1+1' AS cell"}]}))
    body: dict[str, Any] = {"report_name": name, "format": "csv", "force_update": True}
    if requested is not None:
        body["csv_neutralise_formulas"] = requested
    view = export(stack, queue_pollers, body)
    rows = list(csv.reader(io.StringIO(file_of(stack, view, tickets).decode("utf-8"))))
    assert rows == [["cell"], [expected]]


def test_another_tokens_ticket_is_not_found(stack: Stack, queue_pollers: list[QueuePoller]) -> None:
    view = export(
        stack,
        queue_pollers,
        {
            "report_name": "sales-by-day",
            "format": "csv",
            "parameters": {"date_from": "2025-01-01", "date_to": "2025-01-02"},
        },
    )
    for path in (f"/api/exports/{view['ticket_id']}/", f"/api/exports/{view['ticket_id']}/download/"):
        status, answer, _ = get(stack, path, auth="sales")
        assert status == 404 and answer["message"] == f"Unknown export '{view['ticket_id']}'"


@pytest.mark.parametrize("ticket_id", ["0" * 32, "nope", "../" * 5, "A" * 32])
def test_unknown_tickets_are_not_found(stack: Stack, ticket_id: str) -> None:
    assert get(stack, f"/api/exports/{ticket_id}/")[0] == 404


def test_the_file_of_a_ticket_not_yet_complete_is_409_with_its_status(stack: Stack) -> None:
    status, answer, _ = post(
        stack, "/api/exports/", {"report_name": "gst-balance", "format": "csv", "force_update": True}
    )
    status, refusal, _ = get(stack, f"/api/exports/{answer['ticket_id']}/download/")
    assert status == 409 and "is pending" in refusal["message"]


def test_a_deleted_file_is_410_gone(stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore) -> None:
    view = export(stack, queue_pollers, {"report_name": "gst-balance", "format": "csv", "force_update": True})
    stored = tickets.get(view["ticket_id"])
    assert stored is not None
    boto3.client("s3").delete_object(Bucket=stack.names["ExportBucket"], Key=stored.file_key)
    status, answer, _ = get(stack, f"/api/exports/{view['ticket_id']}/download/")
    assert status == 410 and "expired or was deleted" in answer["message"]


def worker(
    stack: Stack,
    tickets: DynamoTicketStore,
    render: Any = renderer_for,
    lease_seconds: int = 60,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ExportWorker:
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    return ExportWorker(
        catalog,
        ReportRunner(catalog, open_source),
        tickets,
        S3FileStore(stack.names["ExportBucket"]),
        render,
        WorkerPolicy(lease_seconds=lease_seconds, progress_seconds=0.0, scratch_dir=SCRATCH),
        clock,
    )


def pending_ticket(stack: Stack, report: str = "gst-balance") -> str:
    status, answer, _ = post(stack, "/api/exports/", {"report_name": report, "format": "csv", "force_update": True})
    assert status == 202
    return str(answer["ticket_id"])


def test_a_duplicate_delivery_renders_once_and_never_moves_a_complete_ticket_back(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    ticket_id = pending_ticket(stack)
    SqsExportQueue(TEMPLATE.reference("ExportQueue")).send(ticket_id)  # the same message twice
    drain(queue_pollers)
    done = tickets.get(ticket_id)
    assert done is not None and done.status is TicketStatus.COMPLETE and done.attempt == 1
    assert worker(stack, tickets).run(ticket_id) == "skipped"
    assert tickets.fail(ticket_id, datetime.now(UTC), "late failure") is None
    assert tickets.get(ticket_id).status is TicketStatus.COMPLETE  # type: ignore[union-attr]


def test_a_worker_that_died_mid_render_is_taken_over_by_the_retry(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    ticket_id = pending_ticket(stack)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    tickets.claim(ticket_id, long_ago, long_ago + timedelta(minutes=16))  # a worker took it, then died
    drain(queue_pollers)
    done = tickets.get(ticket_id)
    assert done is not None and done.status is TicketStatus.COMPLETE and done.attempt == 2


def test_a_live_lease_makes_the_message_wait_for_a_retry(stack: Stack, tickets: DynamoTicketStore) -> None:
    ticket_id = pending_ticket(stack)
    now = datetime.now(UTC)
    tickets.claim(ticket_id, now, now + timedelta(minutes=15))
    event = {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r",
                "body": json.dumps({"ticket_id": ticket_id}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
            }
        ]
    }
    response = stack.api.invoke("ExportWorkerFunction", event)
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert tickets.get(ticket_id).status is TicketStatus.IN_PROGRESS  # type: ignore[union-attr]
    tickets.fail(ticket_id, now, "test cleanup")


def test_an_export_running_out_of_the_invocations_time_fails_its_ticket_saying_why(
    stack: Stack, tickets: DynamoTicketStore
) -> None:
    status, answer, _ = post(
        stack, "/api/exports/", {"report_name": "order-lines", "format": "csv", "parameters": {"row_limit": 20000}}
    )
    assert status == 202
    # 59 s left after the first batch: less than the 60 s the worker keeps back to upload and complete.
    assert worker(stack, tickets).run(answer["ticket_id"], lambda: 59.0) == "failed"
    failed = tickets.get(answer["ticket_id"])
    assert failed is not None and failed.status is TicketStatus.FAILED and failed.file_key is None
    assert failed.error is not None and "would not finish within the export worker's time limit" in failed.error
    assert failed.error.startswith("The export was stopped after ") and "rows" in failed.error


def test_the_worker_function_is_bounded_by_its_own_remaining_time(
    stack: Stack, tickets: DynamoTicketStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = pending_ticket(stack)
    # As if the function had 30 s in all: less than the 60 s it keeps back to upload and complete.
    monkeypatch.setitem(stack.api._timeouts, "ExportWorkerFunction", 30.0)
    message = {"ticket_id": ticket_id}
    record = {"messageId": "m-2", "receiptHandle": "r", "body": json.dumps(message), "attributes": {}}
    record |= {"messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q"}
    assert stack.api.invoke("ExportWorkerFunction", {"Records": [record]})["batchItemFailures"] == []
    failed = tickets.get(ticket_id)
    assert failed is not None and failed.status is TicketStatus.FAILED
    assert "time limit" in (failed.error or "")


def test_a_source_error_fails_the_ticket_with_a_message_and_no_sql(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    broken = DynamoCatalog(stack.names["CatalogTable"]).create_report(
        parse_report(
            {
                "name": "Broken Report",
                "data_source_id": stack.report("gst-balance").data_source_id,
                "queries": [{"sql": "SELECT * FROM no_such_table"}],
            }
        )
    )
    ticket_id = pending_ticket(stack, broken.slug)
    drain(queue_pollers)
    failed = tickets.get(ticket_id)
    assert failed is not None and failed.status is TicketStatus.FAILED
    assert failed.error == "The report's query failed on its data source"
    _, view, _ = get(stack, f"/api/exports/{ticket_id}/")
    assert view["status"] == "failed" and "no_such_table" not in json.dumps(view)


def test_a_render_error_fails_the_ticket_with_its_message(stack: Stack, tickets: DynamoTicketStore) -> None:
    class FailingRenderer:
        def output(self, sheet_count: int) -> OutputKind:
            return OutputKind("csv", "text/csv")

        def render(self, *_: Any) -> int:
            raise RenderFailed("The sheet has more columns than the format allows")

    ticket_id = pending_ticket(stack)
    assert worker(stack, tickets, lambda _format: FailingRenderer()).run(ticket_id) == "failed"
    assert tickets.get(ticket_id).error == "The sheet has more columns than the format allows"  # type: ignore[union-attr]


def test_a_message_in_the_dead_letter_queue_fails_its_ticket(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    ticket_id = pending_ticket(stack)
    sqs = boto3.client("sqs")
    main_url = sqs.get_queue_url(QueueName=stack.names["ExportQueue"])["QueueUrl"]
    sqs.purge_queue(QueueUrl=main_url)  # as if every attempt had failed
    dead_url = sqs.get_queue_url(QueueName=stack.names["ExportDeadLetterQueue"])["QueueUrl"]
    sqs.send_message(QueueUrl=dead_url, MessageBody=json.dumps({"ticket_id": ticket_id}))
    drain(queue_pollers)
    failed = tickets.get(ticket_id)
    assert failed is not None and failed.status is TicketStatus.FAILED
    assert failed.error == "The export could not be started; please request it again"  # never taken by a worker


def test_the_default_format_is_an_xlsx_workbook_with_the_reports_rows(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    view = export(stack, queue_pollers, {"report_name": "sales-summary"})
    assert view["format"] == "xlsx" and view["file_name"].endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(file_of(stack, view, tickets)), read_only=True)
    assert book.sheetnames == ["By category", "By region"]
    called = json.loads(stack.get("/api/call/sales-summary/").body)["records"]
    rows = list(book["By category"].iter_rows(values_only=True))
    assert list(rows[0]) == list(called[0])
    assert [dict(zip(rows[0], r, strict=True)) for r in rows[1:]] == called


def test_a_parquet_export_keeps_types(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore
) -> None:
    view = export(
        stack,
        queue_pollers,
        {"report_name": "order-lines", "format": "parquet", "parameters": {"row_limit": 1000}, "force_update": True},
    )
    table = pq.read_table(io.BytesIO(file_of(stack, view, tickets)))
    assert table.num_rows == 1000 == view["total_rows"]
    assert table.schema.field("order_date").type == pa.date32()
    assert table.schema.field("net").type == pa.decimal128(38, 2)
    assert table.schema.field("ordered_at").type == pa.timestamp("us")


def test_a_token_with_as_many_open_exports_as_allowed_gets_429_until_one_finishes(
    stack: Stack, queue_pollers: list[QueuePoller]
) -> None:
    # Found: any token could queue exports without end, each a worker for up to 15 minutes.
    limit = int(TEMPLATE.functions()["ExportsFunction"].environment["EXPORT_MAX_OPEN_TICKETS"])
    header = basic_header("busy-bot", new_token(stack.tokens, stack.usage, "busy-bot"))

    def request() -> HttpResponse:
        body = {"report_name": "gst-balance", "format": "csv", "force_update": True}
        return stack.api.handle("POST", "/api/exports/", [("Authorization", header)], json.dumps(body).encode())

    assert [request().status for _ in range(limit)] == [202] * limit
    refused = request()
    assert refused.status == 429
    assert dict(refused.headers)["Retry-After"] == "30"
    answer = json.loads(refused.body)
    assert answer["ok"] is False and f"has {limit} exports pending or in progress" in answer["message"]
    assert post(stack, "/api/exports/", {"report_name": "gst-balance", "force_update": True})[0] == 202  # others
    drain(queue_pollers)
    assert request().status == 202


def test_a_scratch_file_left_by_an_attempt_cut_short_is_removed_by_the_next_export(
    stack: Stack, tickets: DynamoTicketStore
) -> None:
    # Found: a worker killed mid-render left its file in /tmp, and each such attempt filled it further.
    SCRATCH.mkdir(parents=True, exist_ok=True)
    leftover = SCRATCH / "0f0f0f0f.csv"
    leftover.write_bytes(b"x" * 1000)
    ticket_id = pending_ticket(stack)
    assert worker(stack, tickets).run(ticket_id) == "complete"
    assert not leftover.exists()
    assert list(SCRATCH.iterdir()) == []  # and the export's own file went after its upload


def _sheet_values(data: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return [[cell for cell in row] for row in book.worksheets[0].iter_rows(values_only=True)]


@pytest.mark.parametrize("export_format", ["csv", "json", "parquet", "xlsx", "html", "pdf"])
def test_a_postgresql_report_exports_the_same_file_contents_as_its_sqlite_twin(
    stack: Stack, queue_pollers: list[QueuePoller], tickets: DynamoTicketStore, export_format: str
) -> None:
    """The same shop, the same SELECT, one report on each source: the files hold the same rows in the
    same types (the PostgreSQL one through ADBC's binary COPY, the SQLite one through its own driver)."""
    parameters = {"min_price": "150.5", "gst_free": "false"}
    files = {}
    for slug in ("product-catalogue", "pg-product-catalogue"):
        body = {"report_name": slug, "format": export_format, "parameters": parameters, "force_update": True}
        view = export(stack, queue_pollers, body)
        assert view["status"] == "complete", view
        assert view["total_rows"] > 10
        files[slug] = (view["total_rows"], file_of(stack, view, tickets))
    (rows, sqlite_file), (pg_rows, pg_file) = files["product-catalogue"], files["pg-product-catalogue"]
    assert rows == pg_rows
    if export_format == "csv":
        assert pg_file == sqlite_file
    elif export_format == "json":  # the same rows, written the same way; only the report's name differs
        assert pg_file.replace(b"PG Product Catalogue", b"Product Catalogue") == sqlite_file
    elif export_format == "parquet":
        sqlite_table, pg_table = pq.read_table(io.BytesIO(sqlite_file)), pq.read_table(io.BytesIO(pg_file))
        assert pg_table.schema.types == sqlite_table.schema.types and pg_table.equals(sqlite_table)
        assert pa.types.is_decimal(pg_table.schema.field("unit_price").type)
    elif export_format == "xlsx":
        assert _sheet_values(pg_file) == _sheet_values(sqlite_file)
    elif export_format == "html":
        table = pg_file.decode()
        assert table[table.index("<table") :] == (sqlite := sqlite_file.decode())[sqlite.index("<table") :]
    else:
        assert pg_file.startswith(b"%PDF-") and len(pg_file) > 2000
