"""Jobs over the API (seed 001's `/api/jobs`), each with its EventBridge Scheduler schedule, under moto with
the JobsFunction's role enforced."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from tests.integration.conftest import TEMPLATE, Stack


@pytest.fixture
def stack(stack: Stack) -> Stack:
    return stack.with_own_admin()


def _body(stack: Stack, **changes: Any) -> dict[str, Any]:
    """A daily job of "Sales by Day" at 09:00 in Sydney, mailed as a pdf."""
    body: dict[str, Any] = {
        "name": f"job-{uuid.uuid4().hex[:8]}",
        "documentId": stack.report("sales-by-day").id,
        "recurrenceRule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
        "timeZone": "Australia/Sydney",
        "startDate": "2026-01-01T00:00:00",
        "parameters": [
            {"name": "date_from", "source": "calculated", "value": "first day of last month"},
            {"name": "date_to", "source": "calculated", "value": "last day of last month"},
        ],
        "emailDeliveryFormat": "pdf",
        "subscribedEmails": ["finance@example.com"],
    }
    return body | changes


def _schedule(stack: Stack, job_id: int) -> dict[str, Any] | None:
    group = stack.names["JobScheduleGroup"]
    try:
        return dict(boto3.client("scheduler").get_schedule(Name=f"job-{job_id}", GroupName=group))
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise


def _created(stack: Stack, **changes: Any) -> dict[str, Any]:
    status, answer = stack.send("POST", "/api/jobs", _body(stack, **changes))
    assert status == 201, answer
    return dict(answer["job"])


def test_a_daily_job_gets_one_cron_schedule_in_its_time_zone_sending_its_runs_to_the_queue(stack: Stack) -> None:
    # When a job running every day at 09:00 in Sydney is made
    job = _created(stack)
    # Then it is stored as sent, at version 1, owned by its maker
    assert job["optimisticLock"] == 1
    assert job["recurrenceRule"] == "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"
    assert job["owner"].startswith("token 'admin-")
    assert job["scheduleExpression"] == "cron(0 9 * * ? *)"
    # And its one schedule fires at 09:00 Sydney time, into the job-run queue, as the scheduler's role
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Australia/Sydney"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == TEMPLATE.attribute("JobRunQueue", "Arn")
    assert schedule["Target"]["RoleArn"] == TEMPLATE.attribute("JobSchedulerRole", "Arn")
    assert json.loads(schedule["Target"]["Input"]) == {
        "job_id": job["id"],
        "version": 1,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    # And it reads back as it was answered
    status, read = stack.send("GET", f"/api/jobs/{job['id']}")
    assert status == 200
    assert read["job"] == job


def test_a_rule_cron_cannot_say_is_scheduled_one_run_at_a_time(stack: Stack) -> None:
    # When a job runs every other Monday (Scheduler's cron has no interval)
    job = _created(stack, recurrenceRule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=30")
    # Then its schedule is one run, at 07:30 on a Monday in Sydney, deleting itself once it has fired
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["ScheduleExpression"].startswith("at(")
    assert schedule["ScheduleExpression"].endswith("T07:30:00)")
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["ScheduleExpressionTimezone"] == "Australia/Sydney"


def test_a_change_moves_the_schedule_and_a_stale_lock_changes_nothing(stack: Stack) -> None:
    job = _created(stack)
    changed = _body(stack, id=job["id"], optimisticLock=1, recurrenceRule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=17;BYMINUTE=0")
    changed["timeZone"] = "America/New_York"
    # When the job is changed at the version it was read
    status, answer = stack.send("PUT", "/api/jobs", changed)
    # Then it is at version 2 and its schedule fires on Fridays at 17:00 New York time
    assert status == 200, answer
    assert answer["job"]["optimisticLock"] == 2
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        "cron(0 17 ? * FRI *)",
        "America/New_York",
    )
    # When it is changed again with the version it had before
    stale = changed | {"optimisticLock": 1, "timeZone": "Europe/Paris"}
    status, answer = stack.send("PUT", "/api/jobs", stale)
    # Then 409, and neither the job nor its schedule moved
    assert status == 409, answer
    assert stack.send("GET", f"/api/jobs/{job['id']}")[1]["job"]["timeZone"] == "America/New_York"
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"


def test_a_disabled_job_keeps_a_disabled_schedule_and_enabling_it_again_restores_it(stack: Stack) -> None:
    job = _created(stack)
    status, answer = stack.send("PUT", "/api/jobs", _body(stack, id=job["id"], optimisticLock=1, enabled=False))
    assert status == 200, answer
    assert answer["job"]["scheduleExpression"] == ""
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["State"] == "DISABLED"
    status, answer = stack.send("PUT", "/api/jobs", _body(stack, id=job["id"], optimisticLock=2, enabled=True))
    assert status == 200, answer
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["State"] == "ENABLED"


def test_a_schedule_that_fired_and_deleted_itself_is_made_again_by_a_change(stack: Stack) -> None:
    job = _created(stack, recurrenceRule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=30")
    # Given its one-run schedule fired and deleted itself
    boto3.client("scheduler").delete_schedule(Name=f"job-{job['id']}", GroupName=stack.names["JobScheduleGroup"])
    # When the job is changed
    status, answer = stack.send("PUT", "/api/jobs", _body(stack, id=job["id"], optimisticLock=1))
    # Then it has a schedule again
    assert status == 200, answer
    schedule = _schedule(stack, job["id"])
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "cron(0 9 * * ? *)"


def test_a_deleted_job_takes_its_schedule_with_it(stack: Stack) -> None:
    job = _created(stack)
    # A stale lock deletes nothing
    status, _ = stack.send("DELETE", f"/api/jobs?id={job['id']}", {"optimisticLock": 7})
    assert status == 409
    assert _schedule(stack, job["id"]) is not None
    status, answer = stack.send("DELETE", f"/api/jobs?id={job['id']}", {"optimisticLock": 1})
    assert status == 200, answer
    assert _schedule(stack, job["id"]) is None
    assert stack.send("GET", f"/api/jobs/{job['id']}")[0] == 404
    assert job["id"] not in [j["id"] for j in stack.send("GET", "/api/jobs")[1]["jobs"]]


BAD_JOBS: list[tuple[str, dict[str, Any], str, str]] = [
    ("an unknown mode", {"mode": "weekly"}, "mode", "allowed: document, billingStatement"),
    ("an unknown delivery format", {"emailDeliveryFormat": "docx"}, "emailDeliveryFormat", "allowed: url, pdf"),
    ("an unknown time zone", {"timeZone": "Mars/Olympus"}, "timeZone", "IANA"),
    ("a rule that is no RRULE", {"recurrenceRule": "every day"}, "recurrenceRule", "NAME=VALUE"),
    ("a rule that ended", {"recurrenceRule": "FREQ=DAILY;UNTIL=20200101T000000Z"}, "recurrenceRule", "never runs"),
    ("30 February", {"recurrenceRule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "recurrenceRule", "never runs"),
    ("a start with seconds", {"startDate": "2026-01-01T09:00:30"}, "startDate", "to the minute"),
    ("a start centuries ago", {"startDate": "0001-01-01T00:00:00+05:00"}, "startDate", "ten years"),
    ("an empty start", {"startDate": ""}, "startDate", "ISO"),
    ("a zone that is no place", {"timeZone": "localtime"}, "timeZone", "IANA"),
    ("a name of spaces", {"name": "   "}, "name", "blank"),
    ("a name with a control character", {"name": "pay\x00roll"}, "name", "control"),
    (
        "a required parameter sent empty",
        {"parameters": [{"name": "date_from", "value": None}, {"name": "date_to", "value": "2026-01-31"}]},
        "parameters[0].value",
        "required",
    ),
    ("the same address twice", {"subscribedEmails": ["a@x.com", "A@x.com"]}, "subscribedEmails[1]", "twice"),
    (
        "a binding to no data model",
        {
            "mode": "billingStatement",
            "billingStatementBinding": {"dataModelId": 99999, "dataMember": "customers", "emailAddressField": "email"},
        },
        "billingStatementBinding.dataModelId",
        "No data model 99999",
    ),
    ("a bad start", {"startDate": "tomorrow-ish"}, "startDate", "ISO"),
    ("an unknown report", {"documentId": 999_999}, "documentId", "No report 999999"),
    (
        "an unknown parameter",
        {"parameters": [{"name": "region", "source": "static", "value": "North"}]},
        "parameters[0].name",
        "takes: date_from, date_to",
    ),
    (
        "a static value of the wrong type",
        {"parameters": [{"name": "date_from", "value": "soon"}, {"name": "date_to", "value": "2026-01-31"}]},
        "parameters[0].value",
        "must be a date",
    ),
    (
        "an expression that does not evaluate",
        {
            "parameters": [
                {"name": "date_from", "source": "calculated", "value": "the day after doomsday"},
                {"name": "date_to", "value": "2026-01-31"},
            ]
        },
        "parameters[0].value",
        "",
    ),
    (
        "an unknown parameter source",
        {"parameters": [{"name": "date_from", "source": "random", "value": "x"}]},
        "parameters[0].source",
        "allowed: static, calculated, bound",
    ),
    (
        "a bound parameter outside a billing statement",
        {
            "parameters": [
                {"name": "date_from", "source": "bound", "value": "day"},
                {"name": "date_to", "value": "2026-01-31"},
            ]
        },
        "parameters[0].source",
        "billingStatement",
    ),
    ("a required parameter left out", {"parameters": []}, "parameters", "date_from"),
    (
        "a calculated time in a date field",
        {
            "parameters": [
                {"name": "date_from", "source": "calculated", "value": "now"},
                {"name": "date_to", "value": "2026-01-31"},
            ]
        },
        "parameters[0].value",
        "must be a date",
    ),
    ("a billing statement without its binding", {"mode": "billingStatement"}, "billingStatementBinding", "needs"),
    ("an address that is none", {"subscribedEmails": ["not an address"]}, "subscribedEmails[0]", "not an e-mail"),
    ("an unknown user", {"internalSubscriberIds": [987_654]}, "internalSubscriberIds[0]", "No user"),
    ("a folder climbing out", {"sharedFolders": ["../etc"]}, "sharedFolders[0]", "shared folder"),
    ("nowhere to deliver", {"subscribedEmails": []}, "subscribedEmails", "delivers somewhere"),
    ("an unknown field", {"colour": "blue"}, "colour", "allowed:"),
    ("a retention of no days", {"retentionPeriod": 0}, "retentionPeriod", ">= 1"),
]


@pytest.mark.parametrize(("case", "changes", "parameter", "says"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_a_bad_job_is_refused_with_400_naming_its_field(
    stack: Stack, case: str, changes: dict[str, Any], parameter: str, says: str
) -> None:
    before = _scheduled(stack), _stored(stack)
    status, answer = stack.send("POST", "/api/jobs", _body(stack, **changes))
    assert status == 400, (case, answer)
    assert answer["parameter"] == parameter, answer
    assert says in answer["message"], answer
    # And nothing was stored or scheduled
    assert (_scheduled(stack), _stored(stack)) == before


def _scheduled(stack: Stack) -> set[str]:
    pages = boto3.client("scheduler").get_paginator("list_schedules")
    found = pages.paginate(GroupName=stack.names["JobScheduleGroup"])
    return {s["Name"] for page in found for s in page["Schedules"]}


def _stored(stack: Stack) -> int:
    table = boto3.resource("dynamodb").Table(stack.names["JobsTable"])
    return int(table.query(KeyConditionExpression=Key("pk").eq("JOB"), Select="COUNT")["Count"])


def test_a_job_is_read_only_by_callers_granted_it(stack: Stack) -> None:
    mine, other = _created(stack), _created(stack)
    # Given a user whose group may read one job
    status, group = stack.send("POST", "/api/usergroups", {"name": f"g-{uuid.uuid4().hex[:8]}"})
    assert status == 201
    grants = [{"scope": "scheduledJob", "entityId": mine["id"], "accessMode": 2}]
    body = {"optimisticLock": group["group"]["optimisticLock"], "permissions": grants}
    assert stack.send("POST", f"/api/usergroups/{group['group']['id']}/permissions", body)[0] == 200
    user = stack.new_user(groups=[group["group"]["id"]])
    reader = stack.bearer_of(user["userName"])
    # Then it reads that one, and sees only it in the list
    assert stack.send("GET", f"/api/jobs/{mine['id']}", auth=reader)[0] == 200
    assert stack.send("GET", f"/api/jobs/{other['id']}", auth=reader)[0] == 403
    assert [j["id"] for j in stack.send("GET", "/api/jobs", auth=reader)[1]["jobs"]] == [mine["id"]]
    # And reading is not changing, deleting nor making
    status, _ = stack.send("PUT", "/api/jobs", _body(stack, id=mine["id"], optimisticLock=1), auth=reader)
    assert status == 403
    assert stack.send("DELETE", f"/api/jobs?id={mine['id']}", auth=reader)[0] == 403
    status, answer = stack.send("POST", "/api/jobs", _body(stack), auth=reader)
    assert status == 403 and "allScheduledJobs" in answer["message"], answer
    # And a user with no grant reads none
    stranger = stack.bearer_of(stack.new_user()["userName"])
    assert stack.send("GET", "/api/jobs", auth=stranger)[0] == 403


def test_a_job_without_a_start_starts_now_to_the_minute_and_keeps_that_start(stack: Stack) -> None:
    # When a weekday job is sent without startDate
    body = _body(stack, recurrenceRule="cron(0 9 ? * MON-FRI *)")
    del body["startDate"]
    status, answer = stack.send("POST", "/api/jobs", body)
    # Then its schedule is a recurring cron at 09:00:00, not a one-off at the second it was saved
    assert status == 201, answer
    job = answer["job"]
    assert job["scheduleExpression"] == "cron(0 9 ? * MON,TUE,WED,THU,FRI *)"
    # And the start it was given is kept: a minute of the job's clock
    assert job["startDate"] is not None and job["startDate"].endswith(":00")
    assert len(job["startDate"]) == len("2026-12-03T15:04:00")


def test_whoever_saves_a_job_last_is_its_owner_and_must_be_allowed_to_run_its_report(stack: Stack) -> None:
    job = _created(stack)
    # Given a user who may change every job, in no group that may run "Sales by Day"'s sibling "GST Balance"
    status, group = stack.send("POST", "/api/usergroups", {"name": f"g-{uuid.uuid4().hex[:8]}"})
    assert status == 201
    grants = [{"scope": "allScheduledJobs", "accessMode": 6}]
    body = {"optimisticLock": group["group"]["optimisticLock"], "permissions": grants}
    assert stack.send("POST", f"/api/usergroups/{group['group']['id']}/permissions", body)[0] == 200
    user = stack.new_user(groups=[group["group"]["id"]])
    editor = stack.bearer_of(user["userName"])
    # When it points the job at a report it may not run
    gst = stack.report("gst-balance")
    params = [{"name": "date_from", "value": "2026-01-01"}, {"name": "date_to", "value": "2026-01-31"}]
    change = _body(stack, id=job["id"], optimisticLock=1, documentId=gst.id, parameters=params)
    status, answer = stack.send("PUT", "/api/jobs", change, auth=editor)
    # Then it is refused, naming the report
    assert status == 400 and answer["parameter"] == "documentId", answer
    # And a change it may make makes it the job's owner: the job now runs with its rights
    status, answer = stack.send("PUT", "/api/jobs", _body(stack, id=job["id"], optimisticLock=1), auth=editor)
    assert status == 200, answer
    assert answer["job"]["owner"] == f"user '{user['userName']}'"
