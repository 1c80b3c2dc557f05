"""Template reports (seed 000's `/template/<report_id>/`) through the front door: the demo invoice, a
template defined over the API on PostgreSQL, and templates that misbehave."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import openpyxl
import pytest
from pypdf import PdfReader
from reportserver.store.tickets import DynamoTicketStore

from infra.local.queues import QueuePoller, drain, pollers
from tests.integration.conftest import TEMPLATE, Stack


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """An admin token of its own per test (its own request bucket)."""
    return stack.with_own_admin("admin")


def _amounts(page: str) -> list[Decimal]:
    return [Decimal(a.replace(",", "")) for a in re.findall(r'<td class="n"[^>]*>(-?[0-9,]+\.[0-9]{2})</td>', page)]


def test_the_demo_invoice_shows_its_order_with_exact_totals(stack: Stack, demo_database: Path) -> None:
    with sqlite3.connect(demo_database) as connection:
        order_id, lines, net, gst = connection.execute(
            "SELECT order_id, count(*), sum(net_cents), sum(gst_cents) FROM order_lines "
            "GROUP BY order_id HAVING count(*) >= 3 ORDER BY order_id LIMIT 1"
        ).fetchone()
    response = stack.get(f"/template/invoice/?order_id={order_id}")
    assert response.status == 200, response.body
    page = response.body.decode()
    headers = dict(response.headers)
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert page.startswith("<!DOCTYPE html>") and f"Tax invoice {order_id}" in page
    assert f"Total ({lines} lines)" in page
    amounts = _amounts(page)
    # The footer: total net, total GST, then the amount due; each exact to the cent
    assert amounts[-3:] == [Decimal(net) / 100, Decimal(gst) / 100, Decimal(net + gst) / 100]


def test_template_only_answers_the_contents_without_the_page(stack: Stack) -> None:
    whole = stack.get("/template/invoice/?order_id=1").body.decode()
    only = stack.get("/template/invoice/?order_id=1&template_only=Y")
    assert only.status == 200
    contents = only.body.decode()
    assert not contents.lstrip().startswith("<!DOCTYPE") and "<html" not in contents
    assert contents.strip() in whole
    assert stack.get("/template/invoice/?order_id=1&template_only=maybe").status == 400


def test_a_table_report_has_no_template_page(stack: Stack) -> None:
    response = stack.get("/template/gst-balance/")
    assert response.status == 404 and b"not a template report" in response.body


def test_a_template_page_needs_the_right_to_run_the_report(stack: Stack) -> None:
    slug = _template_report(stack, "<p>{{ rows|length }}</p>")  # in no group: its admin's and grants' only
    assert stack.get(f"/template/{slug}/").status == 200
    assert stack.get(f"/template/{slug}/", auth="sales").status == 403
    assert stack.get(f"/template/{slug}/", auth=None).status == 401


ORDERS_SQL = "SELECT id, status FROM orders ORDER BY id LIMIT 5"


def _template_report(stack: Stack, template: str, sql: str = ORDERS_SQL) -> str:
    body: dict[str, Any] = {
        "name": f"Tpl {uuid.uuid4().hex[:8]}",
        "dataModelId": int(stack.report("pg-sales-by-month").data_source_id),
        "type": "template",
        "template": template,
        "queries": [{"sheet_name": "Orders", "sql": sql}],
        "formats": ["html", "pdf"],
    }
    status, answer = stack.send("POST", "/api/reports/", body)
    assert status == 201, answer
    return str(answer["report"]["slug"])


def test_a_template_defined_over_the_api_on_postgresql_renders_its_rows_escaped(stack: Stack) -> None:
    slug = _template_report(
        stack,
        "<ul>{% for r in rows %}<li>{{ r.id }}: {{ r.status }}</li>{% endfor %}</ul><p>{{ marker }}</p>",
        "SELECT id, status, '<script>x</script>' AS marker FROM orders ORDER BY id LIMIT 3",
    )
    # `marker` is a column, not a name: the template's mistake is a 502 that says so
    response = stack.get(f"/template/{slug}/")
    assert response.status == 502 and b"undefined" in response.body, response.body
    fixed = _template_report(
        stack,
        "<ul>{% for r in rows %}<li>{{ r.id }}: {{ r.marker }}</li>{% endfor %}</ul>",
        "SELECT id, '<script>x</script>' AS marker FROM orders ORDER BY id LIMIT 3",
    )
    page = stack.get(f"/template/{fixed}/?template_only=Y").body.decode()
    assert page == "<ul>" + "".join(f"<li>{i}: &lt;script&gt;x&lt;/script&gt;</li>" for i in (1, 2, 3)) + "</ul>"


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox forbids"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "sandbox forbids"),
        ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "longer than"),
        ("{% for a in range(100000) %}{% for b in range(1000) %}" + "x" * 1000 + "{% endfor %}{% endfor %}", "larger"),
    ],
)
def test_a_template_that_escapes_or_runs_away_is_a_bounded_502(stack: Stack, template: str, words: str) -> None:
    slug = _template_report(stack, template)
    started = time.monotonic()
    response = stack.get(f"/template/{slug}/")
    assert response.status == 502, response.body
    assert words in json.loads(response.body)["message"]
    assert time.monotonic() - started < 8


def test_a_template_that_does_not_parse_is_400_at_save(stack: Stack) -> None:
    body = {
        "name": f"Tpl {uuid.uuid4().hex[:8]}",
        "dataModelId": int(stack.report("pg-sales-by-month").data_source_id),
        "type": "template",
        "template": "{% for r in rows %}",
        "queries": [{"sql": "SELECT 1 AS one"}],
    }
    status, answer = stack.send("POST", "/api/reports/", body)
    assert status == 400 and "does not parse" in answer["message"], answer


# Exports of a template report: its page as html and pdf, its rows in the other formats


@pytest.fixture
def queue_pollers(stack: Stack) -> list[QueuePoller]:
    return pollers(stack.api, TEMPLATE)


def _exported(stack: Stack, queue_pollers: list[QueuePoller], export_format: str, order_id: int) -> bytes:
    body = {"report_name": "invoice", "format": export_format, "parameters": {"order_id": order_id}}
    body["force_update"] = True
    headers = [("Authorization", stack.headers["admin"]), ("Content-Type", "application/json")]
    response = stack.api.handle("POST", "/api/exports/", headers, json.dumps(body).encode())
    assert response.status == 202, response.body
    ticket_id = json.loads(response.body)["ticket_id"]
    drain(queue_pollers)
    stored = DynamoTicketStore(stack.names["TicketsTable"]).get(ticket_id)
    assert stored is not None and stored.status.value == "complete", stored
    return bytes(boto3.client("s3").get_object(Bucket=stack.names["ExportBucket"], Key=stored.file_key)["Body"].read())


def _first_order(demo_database: Path) -> tuple[int, int, int]:
    with sqlite3.connect(demo_database) as connection:
        row = connection.execute(
            "SELECT order_id, sum(net_cents), sum(gst_cents) FROM order_lines "
            "GROUP BY order_id HAVING count(*) >= 2 ORDER BY order_id LIMIT 1"
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def test_a_template_report_exports_its_page_as_html(
    stack: Stack, queue_pollers: list[QueuePoller], demo_database: Path
) -> None:
    order_id, net, gst = _first_order(demo_database)
    page = _exported(stack, queue_pollers, "html", order_id).decode()
    assert page.startswith("<!DOCTYPE html>") and f"Tax invoice {order_id}" in page
    assert _amounts(page)[-1] == Decimal(net + gst) / 100


def test_a_template_report_exports_its_page_as_a_pdf_without_its_styles(
    stack: Stack, queue_pollers: list[QueuePoller], demo_database: Path
) -> None:
    order_id, net, gst = _first_order(demo_database)
    pdf = _exported(stack, queue_pollers, "pdf", order_id)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"Tax invoice {order_id}" in text
    assert f"{Decimal(net + gst) / 100:,.2f}" in text
    assert "border-collapse" not in text and "font-family" not in text


def test_a_template_report_exports_its_rows_as_a_workbook(
    stack: Stack, queue_pollers: list[QueuePoller], demo_database: Path
) -> None:
    order_id, _net, _gst = _first_order(demo_database)
    workbook = openpyxl.load_workbook(io.BytesIO(_exported(stack, queue_pollers, "xlsx", order_id)), read_only=True)
    assert workbook.sheetnames == ["Order", "Lines"]
    assert next(workbook["Order"].iter_rows(min_row=2, values_only=True))[0] == order_id
