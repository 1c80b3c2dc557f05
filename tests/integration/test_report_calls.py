"""Report calls through the template's authorizer and handler, in-process under moto."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.bad_inputs import BAD_INPUTS, INJECTIONS, BadInput
from tests.integration.conftest import Stack


def body(response: object) -> dict:
    return json.loads(response.body)  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_gets_its_status_and_a_seed_shaped_error(stack: Stack, case: BadInput) -> None:
    response = stack.get(case.path, case.auth)
    answer = body(response)
    assert response.status == case.status, answer
    assert answer["ok"] is False
    assert case.message in answer["message"]
    assert answer.get("parameter") == case.parameter
    assert "SELECT" not in answer["message"].upper() and "Traceback" not in answer["message"]


def test_gst_balance_answers_the_seed_shape(stack: Stack) -> None:
    response = stack.get("/api/call/gst-balance/?date_from=2025-07-01&date_to=2025-12-31")
    answer = body(response)
    assert response.status == 200
    assert set(answer) == {"message", "ok", "records"} and answer["ok"] is True and answer["message"] == ""
    assert [r["month"] for r in answer["records"]] == ["2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12"]
    assert all(isinstance(r["gst_collected"], float | int) for r in answer["records"])


@pytest.mark.parametrize("path", ["/api/call/gst-balance/", "/api/call/gst-balance"])
def test_the_report_is_found_by_slug_with_and_without_trailing_slash(stack: Stack, path: str) -> None:
    assert stack.get(path).status == 200


def test_the_report_is_found_by_its_numeric_id(stack: Stack) -> None:
    by_id = body(stack.get(f"/api/call/{stack.report('gst-balance').id}/"))
    assert by_id == body(stack.get("/api/call/gst-balance/"))


def test_bearer_secret_works_like_basic(stack: Stack) -> None:
    assert stack.get("/api/call/sales-by-day/?date_from=2025-01-01&date_to=2025-01-07", "admin_bearer").status == 200


def test_values_come_back_typed(stack: Stack) -> None:
    answer = body(stack.get("/api/call/orders-by-region/?region=NSW&status=shipped&date_from=2025-01-01"))
    first = answer["records"][0]
    assert isinstance(first["order_id"], int)
    assert first["order_date"][:4] == "2025" and len(first["order_date"]) == 10
    assert first["ordered_at"][10] == "T"
    assert isinstance(first["total"], float)
    assert {r["status"] for r in answer["records"]} == {"shipped"}
    assert any(r["note"] is None for r in answer["records"])


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_return_only_bound_results_and_leave_the_data(
    stack: Stack, demo_database: Path, text: str
) -> None:
    before = _counts(demo_database)
    response = stack.get(f"/api/call/customer-search/?name={quote(text)}")
    assert response.status == 200
    assert body(response)["records"] == []
    assert _counts(demo_database) == before


def _counts(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as connection:
        orders = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
        customers = connection.execute("SELECT count(*) FROM customers").fetchone()[0]
    return orders, customers


def test_report_list_shows_only_what_the_token_may_run(stack: Stack) -> None:
    # Among the demo reports (other tests define reports of their own, in no group)
    demo = {r.slug for r in stack.reports}
    admin = demo & {r["slug"] for r in body(stack.get("/api/reports/"))["reports"]}
    sales = demo & {r["slug"] for r in body(stack.get("/api/reports", "sales"))["reports"]}
    assert admin == demo
    assert "gst-balance" in admin and "gst-balance" not in sales
    assert sales == admin - {"gst-balance"}


def test_report_list_describes_fields_and_formats(stack: Stack) -> None:
    reports = {r["slug"]: r for r in body(stack.get("/api/reports/"))["reports"]}
    region = reports["orders-by-region"]["fields"][0]
    assert region["name"] == "region" and region["type"] == "choice" and region["required"] is True
    assert "xlsx" in reports["orders-by-region"]["formats"]


def test_choices_of_a_field_come_from_its_query(stack: Stack) -> None:
    field_id = stack.report("orders-by-region").fields[0].id
    answer = body(stack.get(f"/api/choices/{field_id}/"))
    assert [c["value"] for c in answer["choices"]] == ["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]


def test_choices_need_the_reports_group(stack: Stack) -> None:
    field_id = stack.report("gst-balance").fields[0].id
    assert stack.get(f"/api/choices/{field_id}/", "sales").status == 403  # a valid token without the group (DESIGN §4)


def test_definition_has_sorted_fields_and_no_sql_or_secrets(stack: Stack) -> None:
    response = stack.get(f"/report/get/{stack.report('orders-by-region').id}")
    answer = body(response)
    assert response.status == 200
    assert [f["field_order"] for f in answer["report"]["fields"]] == [1, 2, 3, 4]
    text = response.body.decode()
    assert "SELECT" not in text and ".sqlite" not in text and "secret" not in text


def test_server_time_endpoints_answer_utc(stack: Stack) -> None:
    assert body(stack.get("/api/server_time/"))["server_time"][:2] == "20"
    assert body(stack.get("/api/server_iso_time/"))["server_iso_time"].endswith("+00:00")
