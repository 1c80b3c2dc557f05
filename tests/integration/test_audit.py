"""The audit log: every authenticated request and login attempt recorded, off the request's path (a log
line each, handed to the writer as CloudWatch Logs would), searchable by an admin, never a secret."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from reportserver.domain.reports import parse_report

from tests.integration.conftest import USER_PASSWORD, Stack


def _search(stack: Stack, query: str, auth: str = "admin") -> tuple[int, Any]:
    stack.audit.deliver()
    return stack.send("GET", f"/api/audit/?{query}", auth=auth)


def _stored_items(stack: Stack) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(stack.names["AuditTable"])
    return table.scan()["Items"]


def test_a_report_call_is_recorded_with_its_principal_report_parameters_rows_and_outcome(stack: Stack) -> None:
    path = "/api/call/customer-search/?name=smith&min_orders=2"
    assert stack.get(path).status == 200
    status, found = _search(stack, "principal=token:test-admin&report=customer-search&limit=1")
    assert status == 200
    record = found["records"][0]
    assert record["method"] == "GET" and record["route"] == "/api/call/{report_id}" and record["status"] == 200
    assert record["report"] == "customer-search" and record["path"] == "/api/call/customer-search/"
    assert record["parameters"] == {"name": ["smith"], "min_orders": ["2"]}
    assert isinstance(record["rows"], int) and record["duration_us"] > 0
    assert datetime.now(UTC) - datetime.fromisoformat(record["at"]) < timedelta(seconds=30)


def test_a_sensitive_fields_value_is_never_recorded_only_its_name(stack: Stack) -> None:
    slug = f"audit-sensitive-{uuid.uuid4().hex[:6]}"
    stack.catalog.create_report(
        parse_report(
            {
                "name": slug,
                "data_source_id": stack.report("gst-balance").data_source_id,
                "queries": [{"sql": "SELECT :account AS account"}],
                "fields": [{"name": "account", "sensitive": True}],
            }
        )
    )
    assert stack.get(f"/api/call/{slug}/?account=DE89370400440532013000").status == 200
    status, found = _search(stack, f"report={slug}")
    assert status == 200 and found["records"][0]["parameters"] == {"account": None}
    assert "DE89370400440532013000" not in json.dumps(_stored_items(stack), default=str)


def test_no_secret_password_or_authorization_header_is_ever_stored(stack: Stack) -> None:
    user = stack.new_user(password="a password nobody should see")
    stack.login(user["userName"], "a password nobody should see")
    stack.login(user["userName"], "a wrong password to be seen by nobody")
    made = stack.send("POST", "/api/tokens/", {"name": f"audited-{uuid.uuid4().hex[:6]}", "expiry": 30})[1]
    stack.get("/api/server_time/", auth=made["headers"]["basic"])
    stack.audit.deliver()
    stored = json.dumps(_stored_items(stack), default=str)
    for secret in ("a password nobody should see", "a wrong password", made["secret"], made["headers"]["basic"]):
        assert secret not in stored
    assert "Authorization" not in stored and "rsk_" not in stored and "rsa_" not in stored


def test_login_attempts_are_recorded_with_their_outcome(stack: Stack) -> None:
    user = stack.new_user()
    stack.login(user["userName"], "not the password, sorry")
    stack.login(user["userName"], USER_PASSWORD)
    status, found = _search(stack, f"principal=login:{user['userName']}")
    assert status == 200
    assert [r["status"] for r in found["records"]] == [200, 400]  # newest first
    assert all(r["route"] == "/oauth/token" for r in found["records"])


def test_the_log_is_for_admins_and_pages_newest_first(stack: Stack) -> None:
    assert _search(stack, "", auth="reader")[0] == 403
    name = f"pager-{uuid.uuid4().hex[:6]}"
    header = stack.send("POST", "/api/tokens/", {"name": name, "expiry": 30})[1]["headers"]["basic"]
    for _ in range(5):
        assert stack.get("/api/server_time/", auth=header).status == 200
    first = _search(stack, f"principal=token:{name}&limit=2")[1]
    second = stack.send("GET", f"/api/audit/?principal=token:{name}&limit=2&cursor={first['cursor']}")[1]
    third = stack.send("GET", f"/api/audit/?principal=token:{name}&limit=2&cursor={second['cursor']}")[1]
    pages = [first["records"], second["records"], third["records"]]
    assert [len(p) for p in pages] == [2, 2, 1] and third["cursor"] is None
    times = [r["at"] for page in pages for r in page]
    assert times == sorted(times, reverse=True) and len(set(times)) == 5


def test_the_whole_log_pages_by_day_and_time_bounds_hold(stack: Stack) -> None:
    assert stack.get("/api/server_time/").status == 200
    now = datetime.now(UTC)
    everything = _search(stack, "limit=3")[1]
    assert len(everything["records"]) == 3 and everything["cursor"] is not None
    start, end = (now + timedelta(minutes=5)).isoformat(), (now + timedelta(minutes=9)).isoformat()
    later = _search(stack, f"from={start}&to={end}".replace("+", "%2B"))[1]
    assert later["records"] == [] and later["cursor"] is None
    earlier = _search(stack, f"to={(now - timedelta(days=400)).date().isoformat()}&from=2020-01-01&limit=5")[1]
    assert earlier["records"] == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("from=2026-12-02&to=2026-12-01", "from"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-base64!!", "cursor"),
        ("cursor=eyJwayI6IDF9", "cursor"),  # {"pk": 1}: valid JSON, not a cursor this server gave
        ("principal=a&principal=b", "principal"),
    ],
)
def test_bad_searches_are_400_naming_the_parameter(stack: Stack, query: str, parameter: str) -> None:
    status, answer = stack.send("GET", f"/api/audit/?{query}")
    assert status == 400 and answer["parameter"] == parameter, answer


def test_a_line_delivered_twice_is_one_record_and_records_expire_with_the_retention(stack: Stack) -> None:
    from reportserver.http import audit

    lines: list[bytes] = []
    audit.set_sink(lines.append)
    try:
        assert stack.get("/api/server_iso_time/").status == 200
    finally:
        stack.audit.install()
    for line in lines * 2:
        stack.audit.collect(line)
    stack.audit.deliver()
    request_id = json.loads(lines[0])["request_id"]
    items = [i for i in _stored_items(stack) if i["request_id"] == request_id]
    assert len(items) == 1
    at = datetime.fromisoformat(items[0]["at"])
    assert int(items[0]["ttl"]) == int((at + timedelta(days=90)).timestamp())


@pytest.mark.parametrize(
    "query",
    ["to=9999-12-31T23:59:59-01:00", "from=0001-01-01T00:00:00%2B01:00"],
)
def test_times_past_what_can_be_told_are_400_not_500(stack: Stack, query: str) -> None:
    status, answer = stack.send("GET", f"/api/audit/?{query}")
    assert status == 400 and answer["ok"] is False, answer


def test_a_cursor_goes_on_only_with_the_search_that_gave_it(stack: Stack) -> None:
    assert stack.get("/api/server_time/").status == 200
    by_day = _search(stack, "limit=1")[1]["cursor"]
    assert by_day is not None
    status, answer = stack.send("GET", f"/api/audit/?principal=token:test-admin&cursor={by_day}")
    assert status == 400 and answer["parameter"] == "cursor"


def test_a_filter_that_matches_little_reads_a_bounded_amount(stack: Stack) -> None:
    from tests.integration.test_timing import counted_reads

    for _ in range(3):
        stack.get("/api/server_time/")
    stack.audit.deliver()
    with counted_reads() as reads:
        status, answer = stack.send("GET", "/api/audit/?principal=token:test-admin&report=no-such-report&limit=1")
    assert status == 200 and answer["records"] == []
    assert reads["query"] <= 10  # PAGES_A_REQUEST, however many records the principal has


def test_a_nonce_and_the_views_it_opens_are_recorded_with_their_report(stack: Stack) -> None:
    session = stack.open_view("customer-search", {"parameters": {"name": "smith"}})
    assert stack.view("/report/view/customer-search/", cookie=session).status == 200
    records = _search(stack, "report=customer-search&limit=3")[1]["records"]
    routes = [(r["route"], r["status"], r["principal"].split(":")[0]) for r in records]
    assert routes == [
        ("/report/view/{report_id}", 200, "nonce"),
        ("/report/view/{report_id}", 302, "nonce"),
        ("/api/v1/nonce-tokens", 201, "token"),
    ]
    assert records[2]["parameters"] == {"name": ["smith"]}
