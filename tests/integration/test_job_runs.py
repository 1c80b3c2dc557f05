"""A job's runs under moto with IAM enforced: a run from its schedule or from `execute` is recorded once,
becomes an export ticket that the worker renders, and reads back as a job result."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from reportserver.domain.access import Grant
from reportserver.domain.tokens import basic_header, issue_token

from infra.local.queues import drain, pollers
from tests.integration.conftest import TEMPLATE, Stack
from tests.integration.test_jobs import _body, _created, _schedule


@pytest.fixture
def stack(stack: Stack) -> Stack:
    return stack.with_own_admin()


def _fire(stack: Stack, job_id: int, scheduled: datetime) -> None:
    """What Scheduler does when the job's schedule fires: its input, with the scheduled time filled in,
    sent to the job-run queue; then the queues drained (runner, then worker)."""
    schedule = _schedule(stack, job_id)
    assert schedule is not None
    body = schedule["Target"]["Input"].replace(
        "<aws.scheduler.scheduled-time>", scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    boto3.client("sqs").send_message(QueueUrl=TEMPLATE.reference("JobRunQueue"), MessageBody=body)
    drain(pollers(stack.api, TEMPLATE))


SYDNEY = ZoneInfo("Australia/Sydney")


def _nine_in_sydney(days_ago: int) -> datetime:
    """09:00 in Sydney some days ago (job results are read for the last 30 days by default)."""
    day = datetime.now(SYDNEY).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=SYDNEY)


def _last_month(day: datetime) -> dict[str, str]:
    end = day.date().replace(day=1) - timedelta(days=1)
    return {"date_from": end.replace(day=1).isoformat(), "date_to": end.isoformat()}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _results(stack: Stack, job_id: int, query: str = "") -> list[dict[str, Any]]:
    status, answer = stack.send("GET", f"/api/jobs/{job_id}/jobresults{query}")
    assert status == 200, answer
    return list(answer["jobResults"])


def _token(stack: Stack, groups: list[str], permissions: list[Any]) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    _, secret = issue_token(
        stack.tokens, stack.usage, name=name, groups=groups, permissions=permissions,
        expires_at=now + timedelta(days=1), created_by="tests", now=now,
    )  # fmt: skip
    return basic_header(name, secret)


def test_a_scheduled_run_becomes_an_export_of_the_report_with_its_parameters_worked_out_then(stack: Stack) -> None:
    job = _created(stack)
    # When its schedule fires at 09:00 in Sydney two days ago
    scheduled = _nine_in_sydney(2)
    _fire(stack, job["id"], scheduled)
    # Then one run is recorded for that time, from the schedule, with the month before that day's dates
    (run,) = _results(stack, job["id"])
    assert run["runAt"] == _utc(scheduled)
    assert run["trigger"] == "schedule" and run["requestedBy"] == "schedule"
    assert run["parameters"] == _last_month(scheduled)
    assert run["status"] == "delivered" and run["error"] is None
    # And its export is the report's pdf, rendered by the worker
    assert run["format"] == "pdf"
    assert run["export"]["status"] == "complete", run
    assert run["export"]["fileName"].endswith(".pdf")
    period = _last_month(scheduled)
    calls = stack.send("GET", f"/api/call/sales-by-day/?date_from={period['date_from']}&date_to={period['date_to']}")[1]
    assert run["export"]["rows"] == len(calls["records"])
    # And it reads back by its generated document id
    status, answer = stack.send("GET", f"/api/jobs/jobresults/{run['id']}")
    assert status == 200 and answer["jobResult"] == run


def test_a_run_message_delivered_twice_is_one_run_and_one_export(stack: Stack) -> None:
    job = _created(stack)
    scheduled = _nine_in_sydney(3)
    tickets = boto3.resource("dynamodb").Table(stack.names["TicketsTable"])
    before = tickets.scan(Select="COUNT")["Count"]
    _fire(stack, job["id"], scheduled)
    _fire(stack, job["id"], scheduled)
    assert len(_results(stack, job["id"])) == 1
    assert tickets.scan(Select="COUNT")["Count"] == before + 1
    # A run at another time is another run
    _fire(stack, job["id"], scheduled + timedelta(days=1))
    assert len(_results(stack, job["id"])) == 2


def test_a_job_run_one_at_a_time_gets_its_next_schedule_as_a_run_starts(stack: Stack) -> None:
    job = _created(stack, recurrenceRule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=30")
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    first = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1])
    _fire(stack, job["id"], first.replace(tzinfo=ZoneInfo("Australia/Sydney")))
    following = _schedule(stack, job["id"])
    assert following is not None
    assert following["ScheduleExpression"] == f"at({(first + timedelta(weeks=2)).isoformat()})"
    assert following["ActionAfterCompletion"] == "DELETE"
    assert json.loads(following["Target"]["Input"])["version"] == 1


def test_runs_of_a_deleted_or_disabled_job_are_dropped_unrecorded(stack: Stack) -> None:
    job = _created(stack)
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    message = schedule["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", _utc(_nine_in_sydney(1)))
    # Disabled: the schedule's message still in the queue finds the job disabled
    assert stack.send("PUT", "/api/jobs", _body(stack, id=job["id"], optimisticLock=1, enabled=False))[0] == 200
    boto3.client("sqs").send_message(QueueUrl=TEMPLATE.reference("JobRunQueue"), MessageBody=message)
    drain(pollers(stack.api, TEMPLATE))
    assert _results(stack, job["id"]) == []
    # Deleted: nothing to record it on, and nothing fails
    assert stack.send("DELETE", f"/api/jobs?id={job['id']}")[0] == 200
    boto3.client("sqs").send_message(QueueUrl=TEMPLATE.reference("JobRunQueue"), MessageBody=message)
    assert drain(pollers(stack.api, TEMPLATE)) >= 1
    dead = boto3.client("sqs").get_queue_attributes(
        QueueUrl=TEMPLATE.reference("JobRunDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_run_whose_owner_token_is_gone_fails_saying_so(stack: Stack) -> None:
    owner = _token(stack, ["*"], ["admin"])
    status, answer = stack.send("POST", "/api/jobs", _body(stack), auth=owner)
    assert status == 201, answer
    job = answer["job"]
    name = job["owner"].split("'")[1]
    assert stack.send("DELETE", f"/api/tokens/{name}")[0] == 200
    _fire(stack, job["id"], _nine_in_sydney(1))
    (run,) = _results(stack, job["id"])
    assert run["status"] == "failed"
    assert run["error"] == f"The job's owner, token '{name}', no longer exists"
    assert run["ticketId"] is None


def test_execute_runs_a_job_now_for_a_token_allowed_to_and_no_other(stack: Stack) -> None:
    job = _created(stack)
    # A token with execute_subscription whose groups may run the job's report ("Sales by Day": every group)
    runner = _token(stack, ["sales"], ["execute_subscription"])
    status, answer = stack.send("POST", f"/api/jobs/{job['id']}/execute", auth=runner)
    assert status == 202, answer
    generated = answer["generatedDocumentId"]
    drain(pollers(stack.api, TEMPLATE))
    status, result = stack.send("GET", f"/api/jobs/jobresults/{generated}")
    assert status == 200, result
    run = result["jobResult"]
    assert run["trigger"] == "api" and run["requestedBy"].startswith("token 't-")
    assert run["export"]["status"] == "complete"
    assert run["parameters"] == _last_month(datetime.fromisoformat(run["runAt"]).astimezone(SYDNEY))
    # Without the permission, or for a job it may neither see nor run: 403, and nothing queued
    assert stack.send("POST", f"/api/jobs/{job['id']}/execute", auth=_token(stack, ["*"], []))[0] == 403
    gst = _created(
        stack,
        documentId=stack.report("gst-balance").id,
        parameters=[{"name": "date_from", "value": "2026-01-01"}, {"name": "date_to", "value": "2026-01-31"}],
    )
    assert stack.send("POST", f"/api/jobs/{gst['id']}/execute", auth=runner)[0] == 403
    assert stack.send("POST", "/api/jobs/99999999/execute", auth=runner)[0] == 403
    drain(pollers(stack.api, TEMPLATE))
    assert _results(stack, gst["id"]) == []
    # A scope on the job is enough where its groups are not
    grant = Grant(scope="scheduledJob", entityId=gst["id"], accessMode=2)
    scoped = _token(stack, ["sales"], ["execute_subscription", grant])
    assert stack.send("POST", f"/api/jobs/{gst['id']}/execute", auth=scoped)[0] == 202


def test_job_results_are_read_by_window_and_by_report(stack: Stack) -> None:
    job = _created(stack)
    fired = [_nine_in_sydney(days) for days in (12, 11, 10)]
    for moment in fired:
        _fire(stack, job["id"], moment)
    # The window is inclusive of whole days given as dates (UTC): 09:00 in Sydney is 22:00 or 23:00 UTC the
    # day before, so the UTC days of the last two runs hold those two and not the first
    first, last = (m.astimezone(UTC).date().isoformat() for m in fired[1:])
    runs = _results(stack, job["id"], f"?startDate={first}&endDate={last}")
    assert [r["runAt"] for r in runs] == [_utc(m) for m in fired[1:]]
    assert len(_results(stack, job["id"])) == 3  # the last 30 days, by default
    by_report = stack.send("GET", f"/api/documents/{stack.report('sales-by-day').id}/jobresults")
    assert by_report[0] == 200
    assert {r["id"] for r in _results(stack, job["id"])} <= {r["id"] for r in by_report[1]["jobResults"]}
    for query, parameter in [
        ("?startDate=yesterday", "startDate"),
        ("?startDate=2026-03-05&endDate=2026-03-01", "startDate"),
        ("?startDate=2020-01-01&endDate=2026-01-01", "startDate"),
        ("?endDate=2026-13-01", "endDate"),
        ("?endDate=0001-01-01", "endDate"),
        ("?startDate=0001-01-01T00:00:00%2B01:00", "startDate"),
        ("?endDate=20261203", "endDate"),
    ]:
        status, answer = stack.send("GET", f"/api/jobs/{job['id']}/jobresults{query}")
        assert (status, answer["parameter"]) == (400, parameter), (query, answer)
    assert stack.send("GET", f"/api/jobs/jobresults/{job['id']}.20260301T220000Z.zz")[0] == 404
    assert stack.send("GET", f"/api/jobs/jobresults/{job['id']}.20250301T220000Z")[0] == 404


def test_the_results_of_a_deleted_job_are_gone_with_it(stack: Stack) -> None:
    job = _created(stack)
    _fire(stack, job["id"], _nine_in_sydney(1))
    (run,) = _results(stack, job["id"])
    assert stack.send("DELETE", f"/api/jobs?id={job['id']}")[0] == 200
    assert stack.send("GET", f"/api/jobs/jobresults/{run['id']}")[0] == 404
    assert stack.send("GET", f"/api/jobs/{job['id']}/jobresults")[0] == 404


def _mails(since: int = 0) -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)[since:]


def test_a_run_mails_its_file_whose_rows_are_the_reports(stack: Stack) -> None:
    import csv
    import io
    from email import message_from_string
    from email.policy import default

    user = stack.new_user(email=f"u-{uuid.uuid4().hex[:6]}@example.com")
    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    job = _created(stack, emailDeliveryFormat="csv", internalSubscriberIds=[user["id"]], parameters=july)
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    (mail,) = _mails(before)
    # One mail to the job's address and its user's, from the stack's sender
    assert set(mail.destinations) == {"finance@example.com", user["email"]}  # moto adds the To header's again
    parsed = message_from_string(mail.raw_data, policy=default)
    assert parsed["From"] == TEMPLATE.values["MailFrom"]
    assert parsed["Subject"].startswith("Sales by Day: ")
    # Its attachment is the report's rows for the job's parameters
    (attached,) = parsed.iter_attachments()
    assert attached.get_filename().endswith(".csv")
    content = attached.get_content()  # text/csv: read back as text
    rows = list(csv.DictReader(io.StringIO(content if isinstance(content, str) else content.decode("utf-8"))))
    records = stack.send("GET", "/api/call/sales-by-day/?date_from=2025-07-01&date_to=2025-07-31")[1]["records"]
    assert len(rows) == len(records) == 31
    assert [r["orders"] for r in rows] == [str(r["orders"]) for r in records]
    (run,) = _results(stack, job["id"])
    assert run["status"] == "delivered"
    assert {r["address"] for r in run["recipients"]} == {"finance@example.com", user["email"]}
    assert all(r["status"] == "sent" and r["message_id"] for r in run["recipients"])


def test_a_delivery_message_delivered_twice_sends_one_mail(stack: Stack) -> None:
    job = _created(stack, emailDeliveryFormat="csv")
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    (run,) = _results(stack, job["id"])
    assert run["status"] == "delivered"
    again = json.dumps({"job_id": job["id"], "deliver": run["id"].split(".", 1)[1]})
    for _ in range(2):
        boto3.client("sqs").send_message(QueueUrl=TEMPLATE.reference("JobRunQueue"), MessageBody=again)
    drain(pollers(stack.api, TEMPLATE))
    assert len(_mails(before)) == 1


def test_individual_mails_and_the_blank_document_skip(stack: Stack) -> None:
    # One mail per address when asked
    job = _created(stack, emailDeliveryFormat="html", sendIndividualEmails=True,
                   subscribedEmails=["a@example.com", "b@example.com"])  # fmt: skip
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    assert sorted(str(set(m.destinations)) for m in _mails(before)) == ["{'a@example.com'}", "{'b@example.com'}"]
    # A report without rows is not sent when the job says so, and the run says why
    empty = [{"name": "date_from", "value": "2001-01-01"}, {"name": "date_to", "value": "2001-01-31"}]
    quiet = _created(stack, emailDeliveryFormat="csv", sendBlankDocument=False, parameters=empty)
    before = len(_mails())
    _fire(stack, quiet["id"], _nine_in_sydney(1))
    assert _mails(before) == []
    (run,) = _results(stack, quiet["id"])
    assert run["status"] == "skipped" and "no rows" in run["error"]


def _link_in(mail: Any) -> str:
    """The link to the service in a mail's text, as a path the front door serves."""
    import re
    from email import message_from_string
    from email.policy import default

    parsed = message_from_string(mail.raw_data, policy=default)
    assert list(parsed.iter_attachments()) == []  # a link, not the file
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert "The link works until " in text
    (link,) = re.findall(r"https://\S+/api/links/rl_[A-Za-z0-9_-]{43}", text)
    assert link.startswith(os.environ["SERVICE_URL"])  # the API's address, never S3's
    return "/api/links/" + link.rsplit("/", 1)[1]


def test_a_url_job_mails_a_link_that_opens_the_file_after_a_presigned_links_life(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import requests
    from reportserver.domain import links

    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    job = _created(stack, emailDeliveryFormat="url", parameters=july)
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    (mail,) = _mails(before)
    path = _link_in(mail)
    (run,) = _results(stack, job["id"])
    assert run["status"] == "delivered" and run["linkExpiresAt"] is not None
    # Opened without a token: a redirect to the file, by a link signed now that lives a second here
    monkeypatch.setattr(links, "REDIRECT_SECONDS", 1)
    first = stack.api.handle("GET", path, [], b"")
    assert first.status == 302, first.body
    signed = dict(first.headers)["Location"]
    assert "X-Amz-Expires=1&" in signed or signed.endswith("X-Amz-Expires=1")
    content = requests.get(signed, timeout=10)
    assert content.status_code == 200 and content.content.startswith(b"PK")  # the xlsx file
    time.sleep(2.1)
    # The presigned link has died (S3 refuses it, as the local stack does); the mail's link still works
    assert requests.get(signed, timeout=10).status_code == 403
    again = stack.api.handle("GET", path, [], b"")
    assert again.status == 302
    assert requests.get(dict(again.headers)["Location"], timeout=10).content == content.content
    # Revoked: it opens nothing from then on, and says why
    assert stack.send("DELETE", f"/api/jobs/jobresults/{run['id']}/link")[0] == 200
    revoked = stack.api.handle("GET", path, [], b"")
    assert revoked.status == 410 and b"revoked" in revoked.body
    # A link never issued, or not a link at all: 404
    assert stack.api.handle("GET", "/api/links/rl_" + "A" * 43, [], b"").status == 404
    assert stack.api.handle("GET", "/api/links/..%2F..%2Fexports", [], b"").status == 404


def _recipients_query(stack: Stack, rows: list[tuple[str, str, str]]) -> tuple[int, str]:
    """A custom query on the PostgreSQL demo model giving one row per recipient: (its id, the query's name)."""
    (model,) = [m for m in stack.send("GET", "/api/datamodels")[1]["dataModels"] if "PostgreSQL" in m["name"]]
    values = ", ".join(f"('{email}', '{who}', '{region}')" for email, who, region in rows)
    name = f"recipients_{uuid.uuid4().hex[:6]}"
    body = {
        "optimisticLock": model["optimisticLock"],
        "name": name,
        "query": f"SELECT * FROM (VALUES {values}) AS t(email, who, region)",
    }
    status, saved = stack.send("POST", f"/api/datamodels/{model['id']}/customsqlquery", body)
    assert status == 201, saved
    return int(model["id"]), name


def test_a_billing_statement_job_mails_each_recipient_their_own_rows(stack: Stack) -> None:
    import csv
    import io
    from email import message_from_string
    from email.policy import default

    people = [("nsw@example.com", "Ann", "NSW"), ("vic@example.com", "Bo", "VIC"), ("qld@example.com", "Cy", "QLD")]
    model_id, member = _recipients_query(stack, people)
    week = [
        {"name": "date_from", "value": "2025-07-01"},
        {"name": "date_to", "value": "2025-07-14"},
        {"name": "region", "source": "bound", "value": "region"},
    ]
    job = _created(
        stack,
        mode="billingStatement",
        documentId=stack.report("pg-orders-by-region").id,
        parameters=week,
        emailDeliveryFormat="csv",
        subscribedEmails=[],
        billingStatementBinding={
            "dataModelId": model_id, "dataMember": member, "emailAddressField": "email", "emailRecipientField": "who",
        },
    )  # fmt: skip
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    drain(pollers(stack.api, TEMPLATE))  # the recipients' runs, then their exports, then their deliveries
    mails = _mails(before)
    # One mail each, to that recipient alone, with that recipient's region's orders
    assert sorted(m.destinations[0] for m in mails) == sorted(p[0] for p in people)
    assert all(set(m.destinations) == {m.destinations[0]} for m in mails)
    for email, _who, region in people:
        (mail,) = [m for m in mails if m.destinations[0] == email]
        (attached,) = message_from_string(mail.raw_data, policy=default).iter_attachments()
        content = attached.get_content()
        rows = list(csv.DictReader(io.StringIO(content if isinstance(content, str) else content.decode("utf-8"))))
        query = f"?region={region}&date_from=2025-07-01&date_to=2025-07-14"
        records = stack.send("GET", f"/api/call/pg-orders-by-region/{query}")[1]["records"]
        assert rows and [r["order_id"] for r in rows] == [str(r["order_id"]) for r in records], region
    # The run says it burst to three; each recipient's run is a result of its own, delivered to its address
    runs = _results(stack, job["id"])
    (parent,) = [r for r in runs if r["parentId"] is None]
    assert parent["status"] == "burst" and parent["recipientRuns"] == 3
    children = [r for r in runs if r["parentId"] == parent["id"]]
    assert [r["id"] for r in children] == [f"{parent['id']}.r0000{n}" for n in (1, 2, 3)]
    # Numbered by address (a start retried numbers them alike, whatever order the rows come in)
    assert [(r["status"], r["parameters"]["region"], r["recipients"][0]["address"]) for r in children] == [
        ("delivered", region, email) for email, _who, region in sorted(people)
    ]
    assert stack.send("GET", f"/api/jobs/jobresults/{children[0]['id']}")[1]["jobResult"] == children[0]
    # The same schedule message again sends no second mail to anyone
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    assert _mails(before) == []


def _query(stack: Stack, sql: str) -> tuple[int, str]:
    (model,) = [m for m in stack.send("GET", "/api/datamodels")[1]["dataModels"] if "PostgreSQL" in m["name"]]
    name = f"q_{uuid.uuid4().hex[:6]}"
    body = {"optimisticLock": model["optimisticLock"], "name": name, "query": sql}
    status, saved = stack.send("POST", f"/api/datamodels/{model['id']}/customsqlquery", body)
    assert status == 201, saved
    return int(model["id"]), name


def test_a_conditional_job_delivers_only_when_its_test_holds_and_records_each_evaluation(stack: Stack) -> None:
    model_id, member = _query(stack, "SELECT count(*)::numeric / 4 AS backlog FROM orders WHERE status = 'shipped'")
    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    outcomes = []
    for threshold in ("1", "1000000"):
        condition = {"dataModelId": model_id, "dataMember": member, "measure": "backlog", "operator": ">",
                     "threshold": threshold}  # fmt: skip
        job = _created(stack, emailDeliveryFormat="csv", parameters=july, condition=condition)
        assert job["condition"] == condition
        before = len(_mails())
        _fire(stack, job["id"], _nine_in_sydney(1))
        (run,) = _results(stack, job["id"])
        outcomes.append((len(_mails(before)), run["status"], run["condition"]["holds"], run["ticketId"] is None))
        observed = Decimal(run["condition"]["observed"])
        assert observed > 1 and observed * 4 == int(observed * 4)  # the query's exact quotient, not a float's
    # Over 1: mailed; over a million: skipped, with what it saw, and no export made
    assert outcomes == [(1, "delivered", True, False), (0, "skipped", False, True)]
    # A condition that cannot be evaluated is refused when the job is saved, naming its field
    for bad, field in [
        ({"operator": "~"}, "condition.operator"),
        ({"threshold": "lots"}, "condition.threshold"),
        ({"measure": "a;b"}, "condition.measure"),
        ({"dataMember": "nope; drop"}, "condition.dataMember"),
        ({"dataModelId": 99999}, "condition.dataModelId"),
    ]:
        condition = {"dataModelId": model_id, "dataMember": member} | bad
        status, answer = stack.send("POST", "/api/jobs", _body(stack, condition=condition))
        assert (status, answer.get("parameter")) == (400, field), (bad, answer)


def _mail_form(stack: Stack, report: str, fields: list[tuple[str, str]], auth: str = "admin") -> tuple[int, Any]:
    from urllib.parse import urlencode

    headers = [("Authorization", stack.headers.get(auth, auth)), ("Content-Type", "application/x-www-form-urlencoded")]
    response = stack.api.handle("POST", f"/report/mail/{report}/", headers, urlencode(fields).encode())
    return response.status, json.loads(response.body)


def test_report_mail_runs_a_report_now_and_mails_it_to_the_addresses_given(stack: Stack) -> None:
    import csv
    import io
    from email import message_from_string
    from email.policy import default

    before = len(_mails())
    fields = [("to", "ops@example.com, cfo@example.com"), ("format", "csv"), ("timeZone", "America/New_York"),
              ("date_from", "2025-07-01"), ("date_to", "2025-07-31")]  # fmt: skip
    status, answer = _mail_form(stack, "sales-by-day", fields)
    assert status == 202, answer
    assert answer["recipients"] == ["ops@example.com", "cfo@example.com"]
    drain(pollers(stack.api, TEMPLATE))
    (mail,) = _mails(before)
    assert set(mail.destinations) == {"ops@example.com", "cfo@example.com"}
    parsed = message_from_string(mail.raw_data, policy=default)
    assert parsed["Subject"].startswith("Sales by Day: ") and parsed["Subject"].endswith(("EDT", "EST"))
    (attached,) = parsed.iter_attachments()
    content = attached.get_content()
    rows = list(csv.DictReader(io.StringIO(content if isinstance(content, str) else content.decode("utf-8"))))
    records = stack.send("GET", "/api/call/sales-by-day/?date_from=2025-07-01&date_to=2025-07-31")[1]["records"]
    assert [r["orders"] for r in rows] == [str(r["orders"]) for r in records] and len(rows) == 31
    # It is followed as a generated document, delivered once
    status, result = stack.send("GET", f"/api/jobs/jobresults/{answer['generatedDocumentId']}")
    assert status == 200 and result["jobResult"]["status"] == "delivered"
    assert result["jobResult"]["parameters"] == {"date_from": "2025-07-01", "date_to": "2025-07-31"}
    # Bad input: a 4xx naming what is wrong, and nothing mailed
    before = len(_mails())
    for bad, expected in [
        ([("date_from", "2025-07-01")], (400, "to")),
        ([("to", "not-an-address")], (400, "to")),
        ([("to", "a@example.com"), ("format", "docx")], (400, "format")),
        ([("to", "a@example.com"), ("timeZone", "Mars/Olympus")], (400, "timeZone")),
        ([("to", "a@example.com"), ("date_from", "yesterday-ish")], (400, "date_from")),
        ([("to", ",".join(f"r{n}@example.com" for n in range(51)))], (400, "to")),
        ([("to", "a@example.com"), ("date_from", "9" * 450_000)], (400, "body")),
        ([("to", "a@example.com"), *((f"f{n}", "x") for n in range(150))], (400, "body")),
    ]:
        status, answer = _mail_form(stack, "sales-by-day", bad)
        assert (status, answer.get("parameter")) == expected, (bad, answer)
    assert _mail_form(stack, "no-such-report", [("to", "a@example.com")])[0] == 404
    json_body = stack.api.handle("POST", "/report/mail/sales-by-day/", [("Authorization", stack.headers["admin"]),
                                 ("Content-Type", "application/json")], b'{"to": "a@example.com"}')  # fmt: skip
    assert json_body.status == 400
    drain(pollers(stack.api, TEMPLATE))
    assert _mails(before) == []


def test_report_mail_needs_the_execute_subscription_permission_not_only_the_report(stack: Stack) -> None:
    # Given a token that may run every report, and one that may besides deliver (execute_subscription)
    reads = _token(stack, ["*"], [])
    delivers = _token(stack, ["*"], ["execute_subscription"])
    july = [("date_from", "2025-07-01"), ("date_to", "2025-07-02"), ("format", "csv")]
    before = len(_mails())
    # When the first asks the server to mail a report to an address of its choosing: refused, nothing sent
    status, answer = _mail_form(stack, "sales-by-day", [("to", "someone@example.com"), *july], reads)
    assert status == 403 and "'execute_subscription'" in answer["message"], answer
    assert stack.send("GET", "/api/call/sales-by-day/?date_from=2025-07-01&date_to=2025-07-02", auth=reads)[0] == 200
    # Then the second may, and the mail goes out once
    status, answer = _mail_form(stack, "sales-by-day", [("to", "someone@example.com"), *july], delivers)
    assert status == 202, answer
    drain(pollers(stack.api, TEMPLATE))
    (mail,) = _mails(before)  # moto lists the To header's address after the Destinations given: a set
    assert set(mail.destinations) == {"someone@example.com"}


def _stuck_run(stack: Stack, job_id: int, failed_because: str) -> str:
    """A run an hour old whose export ticket was failed where no one announces it (the export sweeper or
    the dead-letter handler); its key."""
    from reportserver.domain.job_runs import JobRun, key_time
    from reportserver.store.jobs import DynamoJobStore
    from reportserver.store.tickets import DynamoTicketStore

    july = {"date_from": "2025-07-01", "date_to": "2025-07-02"}
    order = {"report_name": "sales-by-day", "format": "csv", "parameters": july, "force_update": True}
    status, ticket = stack.send("POST", "/api/exports/", order)
    assert status == 202, ticket
    DynamoTicketStore(stack.names["TicketsTable"]).fail(ticket["ticket_id"], datetime.now(UTC), failed_because)
    drain(pollers(stack.api, TEMPLATE))  # the worker skips a failed ticket, and tells no run
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    run = JobRun(job_id=job_id, key=key_time(hour_ago), trigger="schedule", requested_by="schedule", run_at=hour_ago,
                 job_version=1, ticket_id=ticket["ticket_id"], updated_at=hour_ago,
                 expires_at=hour_ago + timedelta(days=30))  # fmt: skip
    assert DynamoJobStore(stack.names["JobsTable"]).record_run(run)
    return run.key


def test_the_sweeper_ends_a_run_whose_failed_export_was_never_announced(stack: Stack) -> None:
    from infra.local.queues import scheduled_event

    job = _created(stack)
    key = _stuck_run(stack, job["id"], "The export ran out of attempts")
    assert stack.send("GET", f"/api/jobs/jobresults/{job['id']}.{key}")[1]["jobResult"]["status"] == "failed"  # derived
    stored = stack.send("GET", f"/api/jobs/{job['id']}/jobresults")[1]["jobResults"]
    assert [r["status"] for r in stored] == ["failed"]  # derived from its ticket, though the run is still open
    # When the sweeper runs (every 5 minutes)
    counts = stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))
    assert counts["failed"] >= 1
    # Then the run itself has ended, failed with its export's reason, and is no longer open
    (run,) = stack.send("GET", f"/api/jobs/{job['id']}/jobresults")[1]["jobResults"]
    assert run["status"] == "failed" and run["error"] == "The export ran out of attempts"
    assert run["attempts"] == 1
    assert stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))["failed"] == 0


def test_a_job_delivers_to_its_shared_folders_instead_of_or_as_well_as_mail(stack: Stack) -> None:
    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    s3 = boto3.client("s3")
    bucket = stack.names["ExportBucket"]
    for emails, mails_expected in (([], 0), (["finance@example.com"], 1)):
        job = _created(stack, emailDeliveryFormat="csv", parameters=july, subscribedEmails=emails,
                       sharedFolders=["finance/monthly", "audit"])  # fmt: skip
        before = len(_mails())
        _fire(stack, job["id"], _nine_in_sydney(1))
        (run,) = _results(stack, job["id"])
        assert run["status"] == "delivered", run
        assert len(_mails(before)) == mails_expected
        # The run's file, byte for byte, in each folder, named by the run's time and the report
        folders = [key.split("/")[1] for key in run["sharedFiles"]]
        assert folders == ["finance", "audit"] and run["sharedFiles"][0].startswith("shared/finance/monthly/")
        ticket = (
            boto3.resource("dynamodb")
            .Table(stack.names["TicketsTable"])
            .get_item(Key={"ticket_id": run["ticketId"]})["Item"]
        )
        original = s3.get_object(Bucket=bucket, Key=ticket["file_key"])["Body"].read()
        for key in run["sharedFiles"]:
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == original
            assert key.endswith(run["export"]["fileName"])


def test_a_runs_file_is_kept_for_the_jobs_retention_period_then_removed(stack: Stack) -> None:
    import msgspec
    from reportserver.store.jobs import DynamoJobStore

    from infra.local.queues import scheduled_event

    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    job = _created(stack, emailDeliveryFormat="url", parameters=july, retentionPeriod=40)
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    path = _link_in(_mails(before)[0])
    (run,) = _results(stack, job["id"])
    # Kept for the job's 40 days (past the bucket's 7 for exports), under runs/, and the link lives as long
    store = DynamoJobStore(stack.names["JobsTable"])
    kept = store.run(job["id"], run["id"].split(".", 1)[1])
    assert kept is not None and kept.file_key is not None and kept.file_key.startswith("runs/")
    assert run["linkExpiresAt"] == run["expiresAt"]
    assert datetime.fromisoformat(run["expiresAt"]) - datetime.fromisoformat(run["runAt"]) == timedelta(days=40)
    s3, bucket = boto3.client("s3"), stack.names["ExportBucket"]
    assert s3.head_object(Bucket=bucket, Key=kept.file_key)["ContentLength"] > 0
    # A sweep before the retention ends leaves it
    stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))
    assert s3.head_object(Bucket=bucket, Key=kept.file_key)["ContentLength"] > 0
    # When the retention has ended, the sweeper removes the file, and the mail's link says so
    store.update_run(msgspec.structs.replace(kept, expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    counts = stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))
    assert counts["files removed"] >= 1
    assert s3.list_objects_v2(Bucket=bucket, Prefix=kept.file_key)["KeyCount"] == 0
    gone = store.run(job["id"], kept.key)
    assert gone is not None and gone.file_deleted
    opened = stack.api.handle("GET", path, [], b"")
    assert opened.status == 410
    assert stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))["files removed"] == 0


def test_links_of_a_report_mailed_on_request_are_revoked_by_its_caller_and_a_deleted_jobs_open_nothing(
    stack: Stack,
) -> None:
    fields = [("to", "ops@example.com"), ("format", "url"), ("date_from", "2025-07-01"), ("date_to", "2025-07-31")]
    before = len(_mails())
    status, answer = _mail_form(stack, "sales-by-day", fields)
    assert status == 202, answer
    drain(pollers(stack.api, TEMPLATE))
    path = _link_in(_mails(before)[0])
    assert stack.api.handle("GET", path, [], b"").status == 302
    assert stack.send("DELETE", f"/api/jobs/jobresults/{answer['generatedDocumentId']}/link")[0] == 200
    assert stack.api.handle("GET", path, [], b"").status == 410
    # A deleted job's links open nothing
    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-31"}]
    job = _created(stack, emailDeliveryFormat="url", parameters=july)
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    path = _link_in(_mails(before)[0])
    assert stack.api.handle("GET", path, [], b"").status == 302
    assert stack.send("DELETE", f"/api/jobs?id={job['id']}")[0] == 200
    gone = stack.api.handle("GET", path, [], b"")
    assert gone.status == 410 and b"deleted" in gone.body


def test_a_refresh_job_refreshes_its_data_models_snapshot_and_mails_nobody(stack: Stack) -> None:
    from tests.integration.test_iam import _snapshot_model

    model, _slug = _snapshot_model(stack)
    body = {"name": f"refresh-{uuid.uuid4().hex[:6]}", "mode": "refresh", "dataModelId": int(model),
            "recurrenceRule": "FREQ=DAILY;BYHOUR=5;BYMINUTE=0", "timeZone": "Australia/Sydney"}  # fmt: skip
    status, answer = stack.send("POST", "/api/jobs", body)
    assert status == 201, answer
    job = answer["job"]
    assert job["mode"] == "refresh" and job["dataModelId"] == int(model)
    before = len(_mails())
    _fire(stack, job["id"], _nine_in_sydney(1))
    (run,) = _results(stack, job["id"])
    assert run["status"] == "refreshing" and run["refreshId"]
    refresh = stack.send("GET", f"/api/datamodels/{model}/refreshes/{run['refreshId']}")[1]["refresh"]
    assert refresh["status"] == "complete" and refresh["trigger"] == "schedule"
    current = stack.send("GET", f"/api/datamodels/{model}")[1]["dataModel"]["currentSnapshot"]
    assert current["refreshId"] == refresh["id"]
    assert _mails(before) == []
    # Checked whole on save: its model, the right to refresh it, and nothing a refresh job does not do
    no_refresh = _token(stack, ["*"], [Grant(scope="allScheduledJobs", accessMode=15)])
    for changes, field, auth in [
        ({"dataModelId": None}, "dataModelId", "admin"),
        ({"dataModelId": 99999}, "dataModelId", "admin"),
        ({"subscribedEmails": ["a@example.com"]}, "subscribedEmails", "admin"),
        ({}, "dataModelId", no_refresh),
    ]:
        status, answer = stack.send("POST", "/api/jobs", body | changes, auth=auth)
        assert (status, answer.get("parameter")) == (400, field), (changes, answer)
    # And a document job names no dataModelId
    assert stack.send("POST", "/api/jobs", _body(stack, dataModelId=int(model)))[1]["parameter"] == "dataModelId"


def test_a_token_triggered_run_mails_the_reports_rows(stack: Stack) -> None:
    import csv
    import io
    from email import message_from_string
    from email.policy import default

    july = [{"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-15"}]
    job = _created(stack, emailDeliveryFormat="csv", parameters=july, subscribedEmails=["ops@example.com"])
    # An API token holding execute_subscription, from outside (seed 004)
    runner = _token(stack, ["sales"], ["execute_subscription"])
    before = len(_mails())
    status, answer = stack.send("POST", f"/api/jobs/{job['id']}/execute", auth=runner)
    assert status == 202, answer
    drain(pollers(stack.api, TEMPLATE))
    (mail,) = _mails(before)
    assert set(mail.destinations) == {"ops@example.com"}
    (attached,) = message_from_string(mail.raw_data, policy=default).iter_attachments()
    content = attached.get_content()
    rows = list(csv.DictReader(io.StringIO(content if isinstance(content, str) else content.decode("utf-8"))))
    records = stack.send("GET", "/api/call/sales-by-day/?date_from=2025-07-01&date_to=2025-07-15")[1]["records"]
    assert len(rows) == len(records) == 15
    assert [(r["day"], r["orders"]) for r in rows] == [(str(r["day"]), str(r["orders"])) for r in records]
    result = stack.send("GET", f"/api/jobs/jobresults/{answer['generatedDocumentId']}")[1]["jobResult"]
    assert result["trigger"] == "api" and result["status"] == "delivered"


def test_a_permanent_bounce_reported_by_ses_fails_the_run_and_marks_its_address(stack: Stack) -> None:
    from pathlib import Path

    job = _created(stack, emailDeliveryFormat="csv", subscribedEmails=["finance@example.com", "ops@example.com"],
                   sendIndividualEmails=True)  # fmt: skip
    _fire(stack, job["id"], _nine_in_sydney(1))
    (run,) = _results(stack, job["id"])
    assert run["status"] == "delivered"
    sent = {r["address"]: r["message_id"] for r in run["recipients"]}
    # When SES reports (by its configuration set, SNS, raw) that finance@'s mail bounced for good
    event = (Path(__file__).parents[2] / "events" / "ses_bounce.json").read_text()
    event = event.replace("MESSAGE-ID", sent["finance@example.com"])
    queue = TEMPLATE.reference("JobRunQueue")
    for _ in range(2):  # SNS delivers at least once
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=event)
    drain(pollers(stack.api, TEMPLATE))
    # Then the run has failed, saying how many bounced, and the address says why; the other stays sent
    (run,) = _results(stack, job["id"])
    assert run["status"] == "failed" and run["error"] == "1 of 2 recipients bounced"
    outcome = {r["address"]: (r["status"], r["error"]) for r in run["recipients"]}
    assert outcome == {
        "finance@example.com": ("bounced", "Permanent bounce: smtp; 550 5.1.1 user unknown"),
        "ops@example.com": ("sent", None),
    }
    # A bounce of a mail that is no run's changes nothing
    stranger = event.replace(sent["finance@example.com"], "not-a-mail-of-ours")
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=stranger)
    drain(pollers(stack.api, TEMPLATE))
    assert _results(stack, job["id"]) == [run]
