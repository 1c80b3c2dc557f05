"""HTTP against the local stack, as a new user and as real clients (curl, requests, raw HTTP) meet it."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import socket
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.bad_inputs import BAD_INPUTS, INJECTIONS, BadInput
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def raw_get(stack: RunningStack, path: str, header: str | None) -> tuple[int, dict, dict[str, str]]:
    """http.client sends the path exactly as written: no client-side '..' or %2F normalisation."""
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": header} if header else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def test_the_printed_curl_line_works_exactly_as_printed(local_stack: RunningStack) -> None:
    line = next(line.strip() for line in local_stack.banner.splitlines() if line.strip().startswith("curl "))
    assert "/api/call/gst-balance/" in line
    result = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(result.stdout)
    assert answer["ok"] is True and answer["message"] == ""
    assert len(answer["records"]) == 24  # two financial years of months
    assert set(answer["records"][0]) == {"month", "orders", "net_sales", "gst_collected", "gross_sales"}


def test_stack_json_describes_the_stack_for_scripts(local_stack: RunningStack) -> None:
    state = local_stack.state
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", state["api_url"])
    assert state["token"]["authorization"].startswith("Basic ")
    assert state["token"]["secret"] in local_stack.banner
    assert {r["slug"] for r in state["reports"]} >= {"gst-balance", "sales-by-day", "orders-by-region", "order-lines"}
    # The folder where every mail SES accepts is kept: an absolute path beside stack.json
    assert state["mail_dir"] == str(local_stack.state_dir.resolve() / "mail")
    assert Path(state["mail_dir"]).is_dir()


def test_make_run_serves_the_demo_shop_from_postgresql_too(local_stack: RunningStack) -> None:
    import psycopg

    server = local_stack.state["postgres"]
    assert set(server) == {"host", "port", "database", "user", "password"} and server["host"] == "127.0.0.1"
    assert {r["slug"] for r in local_stack.state["reports"]} >= {
        "pg-sales-by-month",
        "pg-orders-by-region",
        "pg-order-lines",
        "pg-product-catalogue",
    }
    response = requests.get(
        f"{local_stack.url}/api/call/pg-sales-by-month/",
        params={"date_from": "2025-07-01", "date_to": "2025-08-31"},
        headers={"Authorization": local_stack.state["token"]["authorization"]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    sums = """SELECT strftime('%Y-%m', o.order_date), count(DISTINCT o.id), sum(l.net_cents), sum(l.gst_cents)
              FROM orders o JOIN order_lines l ON l.order_id = o.id
              WHERE o.order_date BETWEEN '2025-07-01' AND '2025-08-31' AND o.status <> 'cancelled'
              GROUP BY 1 ORDER BY 1"""
    with sqlite3.connect(local_stack.state_dir / "demo.sqlite") as connection:
        expected = connection.execute(sums).fetchall()
    got = [(r["month"], r["orders"], Decimal(str(r["net_sales"])), Decimal(str(r["gst_collected"]))) for r in records]
    assert got == [(m, n, Decimal(net) / 100, Decimal(gst) / 100) for m, n, net, gst in expected]
    assert len(got) == 2
    conninfo = " ".join(f"{k if k != 'database' else 'dbname'}={v}" for k, v in server.items())
    with psycopg.connect(conninfo, connect_timeout=5) as connection:  # stack.json's login works as printed
        assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] > 0


def test_the_demo_database_is_full_size(local_stack: RunningStack) -> None:
    with sqlite3.connect(local_stack.state_dir / "demo.sqlite") as connection:
        lines = connection.execute("SELECT count(*) FROM order_lines").fetchone()[0]
        span = connection.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone()
    assert lines >= 100_000
    assert span == ("2024-07-01", "2026-06-30")


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_over_http_gets_its_status_and_body(local_stack: RunningStack, case: BadInput) -> None:
    header = local_stack.headers.get(case.auth, case.auth) if case.auth else None
    status, answer, headers = raw_get(local_stack, case.path, header)
    assert status == case.status, answer
    assert headers["Content-Type"].startswith("application/json")
    assert answer["ok"] is False and case.message in answer["message"]
    assert answer.get("parameter") == case.parameter


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_over_http_returns_only_bound_results(local_stack: RunningStack, text: str) -> None:
    database = local_stack.state_dir / "demo.sqlite"
    with sqlite3.connect(database) as connection:
        before = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
    response = requests.get(
        f"{local_stack.url}/api/call/customer-search/",
        params={"name": text},
        headers={"Authorization": local_stack.headers["admin"]},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["records"] == []
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] == before


def test_requests_with_bearer_gets_a_date_range(local_stack: RunningStack) -> None:
    secret = local_stack.state["token"]["secret"]
    response = requests.get(
        f"{local_stack.url}/api/call/sales-by-day",
        params={"date_from": "2025-07-01", "date_to": "2025-07-31"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    days = [r["day"] for r in response.json()["records"]]
    assert response.status_code == 200
    assert days[0] == "2025-07-01" and days[-1] == "2025-07-31" and len(days) == 31


def test_choices_then_call_with_a_chosen_value(local_stack: RunningStack) -> None:
    auth = {"Authorization": local_stack.headers["admin"]}
    reports = requests.get(f"{local_stack.url}/api/reports/", headers=auth, timeout=30).json()["reports"]
    region_field = next(r for r in reports if r["slug"] == "orders-by-region")["fields"][0]
    choices = requests.get(f"{local_stack.url}/api/choices/{region_field['id']}/", headers=auth, timeout=30).json()
    value = choices["choices"][0]["value"]
    orders = requests.get(
        f"{local_stack.url}/api/call/orders-by-region/?region={quote(value)}&date_from=2026-06-01",
        headers=auth,
        timeout=30,
    ).json()["records"]
    assert orders and all(o["order_date"] >= "2026-06-01" for o in orders)


def test_the_big_report_is_refused_as_a_call_with_a_pointer_to_exports(local_stack: RunningStack) -> None:
    response = requests.get(
        f"{local_stack.url}/api/call/order-lines/", headers={"Authorization": local_stack.headers["admin"]}, timeout=60
    )
    assert response.status_code == 413
    assert "POST /api/exports/" in response.json()["message"]


def test_a_capped_slice_of_the_big_report_is_returned(local_stack: RunningStack) -> None:
    response = requests.get(
        f"{local_stack.url}/api/call/order-lines/?row_limit=10000",
        headers={"Authorization": local_stack.headers["admin"]},
        timeout=60,
    )
    records = response.json()["records"]
    assert response.status_code == 200 and len(records) == 10_000
    assert [r["line_id"] for r in records[:3]] == [1, 2, 3]


def _raw_request(stack: RunningStack, head: str) -> tuple[int, dict]:
    """Send request lines as written (a client library would refuse a negative Content-Length)."""

    parts = urlsplit(stack.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(head.encode("latin-1"))
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def _length(reply: bytes) -> int:
    found = re.search(rb"Content-Length: (\d+)", reply.split(b"\r\n\r\n", 1)[0])
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize(
    ("length", "status", "message"),
    [
        ("20000000", 413, "Request Too Long"),
        ("9" * 5000, 413, "Request Too Long"),  # found: int() refused 5,000 digits and the thread died
        ("-5", 400, "Invalid request body"),
        ("12abc", 400, "Invalid"),
        ("5\r\nContent-Length: 50", 400, "Invalid"),  # found: two lengths, the first one used
        ("5\r\nTransfer-Encoding: chunked", 400, "Invalid"),  # found: the chunked body read as a new request
    ],
)
def test_the_front_door_refuses_bodies_as_api_gateway_does(
    local_stack: RunningStack, length: str, status: int, message: str
) -> None:
    # Found: any Content-Length was read in full (an 11 MB body reached the handler), and a negative one crashed.
    head = f"POST /api/exports/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
    answered, body = _raw_request(local_stack, head + f"Authorization: {local_stack.headers['admin']}\r\n\r\n")
    assert answered == status
    assert body["ok"] is False and message in body["message"]
