"""Reports on Amazon Athena under moto: a data model over the API, report calls, exports streamed from
the result file, bound values as execution parameters, and a query stopped at its time limit."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.moto_api import state_manager
from pypdf import PdfReader
from reportserver.store.tickets import DynamoTicketStore

from infra.local.queues import drain, pollers
from tests.integration.athena import Columns, athena_model, clear_staged, executions, stage
from tests.integration.conftest import TEMPLATE, Stack

COLUMNS: Columns = [
    ("id", "bigint", 19, 0),
    ("amount", "decimal", 12, 2),
    ("day", "date", 0, 0),
    ("at", "timestamp", 3, 0),
    ("ok", "boolean", 0, 0),
    ("name", "varchar", 2147483647, 0),
    ("ratio", "double", 17, 0),
]
ROWS: list[list[str | None]] = [
    ["1", "1234567.89", "2025-07-01", "2025-07-01 10:00:00.123", "true", "Ann", "0.5"],
    ["2", "0.10", None, None, "false", "", None],
    ["3", "-99999999.99", "2026-01-31", "2026-01-31 23:59:59.000", None, None, "1e300"],
]


@pytest.fixture
def stack(stack: Stack) -> Iterator[Stack]:
    clear_staged()
    yield stack.with_own_admin()
    clear_staged()


def _report(stack: Stack, model: int, sql: str, fields: list[dict[str, Any]] | None = None) -> str:
    """A report on the Athena model: saving it runs the statement once, asking for no rows (staged)."""
    stage(COLUMNS, [])
    body = {"name": f"Lake {uuid.uuid4().hex[:8]}", "dataModelId": model, "queries": [{"sql": sql}]}
    status, answer = stack.send("POST", "/api/reports/", body | {"fields": fields or []})
    assert status == 201, answer
    return str(answer["report"]["slug"])


def test_an_athena_model_is_made_and_shown_without_surprises(stack: Stack) -> None:
    model = athena_model(stack)
    shown = stack.send("GET", f"/api/datamodels/{model}/connection")[1]["providerModel"]
    assert shown == {
        "providerType": "athena",
        "workgroup": "primary",
        "outputLocation": "s3://reportserver-athena-results/results/",
        "catalog": "AwsDataCatalog",
        "database": "lake",
        "region": "us-east-1",
    }


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        ({"outputLocation": "https://bucket/x"}, "S3 location"),
        ({"region": "mars-1"}, "region"),
        ({"workgroup": "bad name!"}, "workgroup"),
        ({"serverName": "h"}, "serverName"),
    ],
)
def test_a_bad_athena_provider_is_400(stack: Stack, provider: dict[str, Any], words: str) -> None:
    base = {"providerType": "athena", "outputLocation": "s3://bkt/x/", "database": "lake", "region": "us-east-1"}
    body = {"name": f"x-{uuid.uuid4().hex}", "providerModel": base | provider}
    status, answer = stack.send("POST", "/api/datamodels", body)
    assert status == 400 and words in answer["message"], answer


def test_a_report_call_on_athena_gives_its_rows_typed_from_the_metadata(stack: Stack) -> None:
    slug = _report(stack, athena_model(stack), "SELECT id, amount, day, at, ok, name, ratio FROM sales")
    stage(COLUMNS, ROWS)
    response = stack.get(f"/api/call/{slug}/")
    assert response.status == 200, response.body
    records = json.loads(response.body, parse_float=Decimal)["records"]
    assert records[0] == {
        "id": 1,
        "amount": Decimal("1234567.89"),
        "day": "2025-07-01",
        "at": "2025-07-01T10:00:00.123000",
        "ok": True,
        "name": "Ann",
        "ratio": Decimal("0.5"),
    }
    assert records[1]["amount"] == Decimal("0.10") and records[1]["day"] is None and records[1]["name"] == ""
    assert [r["id"] for r in records] == [1, 2, 3]


def test_bound_values_reach_athena_as_execution_parameters(stack: Stack) -> None:
    fields = [
        {"name": "customer", "type": "string"},
        {"name": "since", "type": "date"},
        {"name": "least", "type": "number"},
    ]
    sql = "SELECT * FROM sales WHERE name = :customer AND day >= :since AND amount >= :least"
    slug = _report(stack, athena_model(stack), sql, fields)
    stage(COLUMNS, ROWS[:1])
    response = stack.get(f"/api/call/{slug}/?customer=O'Brien&since=2025-07-01&least=12.50")
    assert response.status == 200, response.body
    last = executions()[-1]
    assert last.query == "SELECT * FROM sales WHERE name = ? AND day >= ? AND amount >= ?"
    assert last.execution_parameters == ["'O''Brien'", "DATE '2025-07-01'", "12.50"]
    assert last.workgroup.name == "primary"


def test_a_value_that_does_not_fit_its_column_fails_the_call(stack: Stack) -> None:
    slug = _report(stack, athena_model(stack), "SELECT * FROM sales")
    stage(COLUMNS, [["1", "1.234", None, None, None, None, None]])
    response = stack.get(f"/api/call/{slug}/")
    assert response.status == 502 and b"amount" in response.body


def test_a_query_over_its_command_timeout_is_stopped_on_the_server(stack: Stack) -> None:
    slug = _report(stack, athena_model(stack, command_timeout=2), "SELECT * FROM sales")
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 10**6})
    try:
        started = time.monotonic()
        response = stack.get(f"/api/call/{slug}/")
        took = time.monotonic() - started
    finally:
        state_manager.unset_transition("athena::execution")
    assert response.status == 502 and b"time limit" in response.body, response.body
    assert took < 4
    assert executions()[-1].status == "CANCELLED"


@pytest.mark.parametrize("export_format", ["parquet", "csv", "xlsx", "json", "html", "pdf"])
def test_an_athena_export_streams_the_result_file_with_exact_types(stack: Stack, export_format: str) -> None:
    slug = _report(stack, athena_model(stack), "SELECT id, amount, day, at, ok, name, ratio FROM sales")
    stage(COLUMNS, ROWS)
    body = {"report_name": slug, "format": export_format, "force_update": True}
    headers = [("Authorization", stack.headers["admin"]), ("Content-Type", "application/json")]
    response = stack.api.handle("POST", "/api/exports/", headers, json.dumps(body).encode())
    assert response.status == 202, response.body
    drain(pollers(stack.api, TEMPLATE))
    ticket = DynamoTicketStore(stack.names["TicketsTable"]).get(json.loads(response.body)["ticket_id"])
    assert ticket is not None and ticket.status.value == "complete", ticket
    assert ticket.total_rows == 3
    content = boto3.client("s3").get_object(Bucket=stack.names["ExportBucket"], Key=ticket.file_key)["Body"].read()
    if export_format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
        amounts = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert amounts == [1234567.89, 0.1, -99999999.99]  # numbers a spreadsheet sums, to the cent
        return
    if export_format == "pdf":
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
        assert "1234567.89" in text.replace(",", ""), text[:300]
        return
    if export_format != "parquet":
        text = content.decode()
        assert "1234567.89" in text and "-99999999.99" in text and "0.10" in text, text[:300]
        return
    table = pq.read_table(io.BytesIO(content))
    assert table.schema.field("amount").type == pa.decimal128(38, 2)
    assert table.schema.field("id").type == pa.int64() and table.schema.field("day").type == pa.date32()
    assert table.column("amount").to_pylist() == [Decimal("1234567.89"), Decimal("0.10"), Decimal("-99999999.99")]
    assert table.column("day").to_pylist() == [date(2025, 7, 1), None, date(2026, 1, 31)]
    assert table.column("name").to_pylist() == ["Ann", "", None]
    assert table.column("ok").to_pylist() == [True, False, None]


def test_a_template_report_on_athena_renders_its_rows(stack: Stack) -> None:
    stage(COLUMNS, [])
    body = {
        "name": f"Lake page {uuid.uuid4().hex[:8]}",
        "dataModelId": athena_model(stack),
        "type": "template",
        "template": "{% for r in rows %}<p>{{ r.name }}: {{ r.amount|number(2) }}</p>{% endfor %}",
        "queries": [{"sql": "SELECT * FROM sales"}],
    }
    status, answer = stack.send("POST", "/api/reports/", body)
    assert status == 201, answer
    stage(COLUMNS, ROWS[:2])
    page = stack.get(f"/template/{answer['report']['slug']}/?template_only=Y")
    assert page.status == 200, page.body
    assert page.body.decode() == "<p>Ann: 1,234,567.89</p><p>: 0.10</p>"


def test_a_value_longer_than_athena_takes_is_400_naming_it(stack: Stack) -> None:
    fields = [{"name": "customer", "type": "string", "max_length": 5000}]
    slug = _report(stack, athena_model(stack), "SELECT * FROM sales WHERE name = :customer", fields)
    started = len(executions())
    response = stack.get(f"/api/call/{slug}/?customer=" + "%27" * 600)  # 600 quotes: 1,202 as a literal
    assert response.status == 400, response.body
    assert json.loads(response.body)["parameter"] == "customer"
    assert len(executions()) == started  # nothing was sent to Athena
