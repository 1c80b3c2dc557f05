"""IAM is enforced: each function runs under the role SAM builds from template.yaml, and needs all of it.

For every action in every function's inline policy, the function's own work is run twice: under the
template's role (it succeeds), then with that one action taken away (it must fail). So a call the
template does not allow fails a test, and so does an action the template grants but no code uses.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import msgspec
import pytest
from botocore.exceptions import ClientError
from reportserver.domain.ports import CustomQuery, DataSource
from reportserver.domain.reports import parse_report
from reportserver.domain.tickets import TicketStatus
from reportserver.domain.tokens import basic_header
from reportserver.store import aws
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.tickets import DynamoTicketStore

from infra.local import iam
from infra.local.queues import drain, pollers
from tests.bad_inputs import new_token
from tests.integration.athena import SALES, athena_model, athena_report, clear_staged, stage, stage_choices_and_rows
from tests.integration.conftest import TEMPLATE, USER_PASSWORD, Stack

ROLES = iam.function_roles(TEMPLATE)

# Actions whose absence moto cannot show: it never runs the path that needs them.
_ATHENA_ITSELF = "Athena's own reads and writes as the caller (catalog, data, result file): moto runs no query"
_ATHENA_CALLERS = ("ReportsFunction", "ExportsFunction", "ExportWorkerFunction", "CatalogAdminFunction")
NOT_OBSERVABLE = {
    **{
        (function, action): _ATHENA_ITSELF
        for function in _ATHENA_CALLERS
        for action in (
            "glue:GetDatabase",
            "glue:GetDatabases",
            "glue:GetTable",
            "glue:GetTables",
            "glue:GetPartition",
            "glue:GetPartitions",
            "s3:PutObject",
            "s3:GetBucketLocation",
            "s3:ListBucket",
        )
        # The worker's own uploads need s3:PutObject (on the export bucket): taking it away shows.
        if (function, action) != ("ExportWorkerFunction", "s3:PutObject")
    },
    # GetQueryResults reads the result file as its caller in AWS; only the worker reads it itself here. (The
    # reports and exports functions read data models' snapshots too: that shows.)
    ("CatalogAdminFunction", "s3:GetObject"): _ATHENA_ITSELF,
    # Only at a query's time limit, and a stop that fails is logged, not answered (test_athena shows it).
    **{(f, "athena:StopQueryExecution"): "only at a query's time limit" for f in _ATHENA_CALLERS},
    # Only a failed multipart upload is aborted; the tests' files are far below the multipart size.
    ("ExportWorkerFunction", "s3:AbortMultipartUpload"): "no failed multipart upload",
    # Without it S3 answers 403 for a missing file (the caller would get 502, not 410); moto answers 404.
    ("ExportsFunction", "s3:ListBucket"): "moto answers 404 for a missing key without it",
    # Only when a new ticket's message cannot be queued: the ticket is failed then, not left pending.
    ("ExportsFunction", "dynamodb:UpdateItem"): "only when the queue refuses a message",
    ("JobRunnerFunction", "dynamodb:UpdateItem"): "only when the export queue refuses a run's message",
}


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """Each test with an admin token of its own: the works make many requests in quick succession, and
    one token's usage-plan bucket (20 a second, 40 at once) would throttle the next test's (429)."""
    return stack.with_own_admin("iam-admin")


def _fresh_token(stack: Stack) -> tuple[str, str]:
    name = f"iam-{uuid.uuid4().hex[:8]}"
    secret = new_token(stack.tokens, stack.usage, name)
    return basic_header(name, secret), f"Bearer {secret}"


def _authorizes(stack: Stack) -> bool:
    """A new token (never cached) by name (GetItem) and by its secret's hash (Query on the index), its
    use noted (UpdateItem); a user's access token (GetItem) and the groups (Query)."""
    basic, bearer = _fresh_token(stack)
    if not all(stack.get("/api/server_time/", auth=header).status == 200 for header in (basic, bearer)):
        return False
    name = base64.b64decode(basic.split()[1]).decode().split(":")[0]
    noted = stack.tokens.find_by_name(name)
    user = stack.operator_user()
    stack.api.cold_start("AuthFunction")
    login = stack.login(user["userName"], USER_PASSWORD)
    bearer = "Bearer " + json.loads(login.body).get("access_token", "")
    by_user = stack.get("/api/server_time/", auth=bearer).status
    return noted is not None and noted.last_used_at is not None and by_user == 200


def _administers(stack: Stack) -> bool:
    """Groups made (a counter, a transaction of two puts), listed (Query), renamed (a transaction with a
    delete, after a Scan of the tokens and a Query of the reports); tokens made with their API keys,
    listed, deactivated and deleted with their keys; a user made and deleted."""
    name = f"iam-{uuid.uuid4().hex[:8]}"
    made, group = stack.send("POST", "/api/usergroups/", {"name": name})
    if made != 201:
        return False
    group_id, version = group["group"]["id"], group["group"]["optimisticLock"]
    statuses = [
        stack.send("GET", "/api/usergroups/")[0],
        stack.send("PUT", f"/api/usergroups/{group_id}", {"name": name + "-b", "optimisticLock": version})[0],
        stack.send("POST", "/api/tokens/", {"name": name, "expiry": 30, "groups": [name + "-b"]})[0],
        stack.send("GET", "/api/tokens/")[0],
        stack.send("POST", f"/api/tokens/{name}/deactivate")[0],
        stack.send("DELETE", f"/api/tokens/{name}")[0],
    ]
    statuses.append(stack.send("GET", "/api/audit/?limit=5")[0])
    made_user, user = stack.send("POST", "/api/users/", {"userName": name, "password": USER_PASSWORD})
    statuses.append(made_user)
    if made_user == 201:
        statuses.append(stack.send("DELETE", f"/api/users/{user['user']['id']}")[0])
    return statuses == [200, 200, 201, 200, 200, 200, 200, 201, 200]


def _administers_catalog(stack: Stack) -> bool:
    """A data model made (a counter, a conditional put, a new secret), listed and read (Query, GetItem),
    renamed (a conditional put), deleted with its secret (after a Query of the reports); and the demo
    PostgreSQL model's connection tested (its password read from Secrets Manager)."""
    provider = {"providerType": "postgresql", "serverName": "127.0.0.1", "database": "d", "userName": "u"}
    provider |= {"password": uuid.uuid4().hex, "sslMode": "disable"}
    body = {"name": f"iam-{uuid.uuid4().hex[:8]}", "providerModel": provider}
    made, model = stack.send("POST", "/api/datamodels/", body)
    if made != 201:
        return False
    path = f"/api/datamodels/{model['dataModel']['id']}"
    secret = stack.catalog.data_source(str(model["dataModel"]["id"]))
    statuses = [
        stack.send("GET", "/api/datamodels/")[0],
        stack.send("GET", path)[0],
        stack.send("PUT", f"{path}/rename", {"optimisticLock": 1, "name": f"iam-{uuid.uuid4().hex[:8]}"})[0],
        stack.send("DELETE", path)[0],
        stack.send("POST", f"/api/datamodels/{stack.report('pg-product-catalogue').data_source_id}/test")[0],
    ]
    secrets = boto3.client("secretsmanager")
    try:
        secrets.get_secret_value(SecretId=secret.password_secret if secret else "")
        deleted = False
    except ClientError:
        deleted = True
    # An Athena model's connection tested: a query started, polled and its result read.
    clear_staged()
    stage([("connected", "integer", 0, 0)], [["1"]])
    tested = stack.send("POST", f"/api/datamodels/{athena_model(stack)}/test")[0]
    clear_staged()
    defined = _defines_reports(stack)
    return statuses == [200, 200, 200, 200, 200] and deleted and tested == 200 and defined and _asks_refreshes(stack)


def _asks_refreshes(stack: Stack) -> bool:
    """A snapshot refresh asked for (its record and the model's hold in one transaction, its message
    queued), followed at its status URL, and run."""
    model, _ = _snapshot_model(stack)
    status, answer = stack.send("POST", f"/api/datamodels/{model}/refresh")
    if status != 202:
        return False
    followed = stack.send("GET", answer["refresh"]["statusUrl"])[0]
    drain(pollers(stack.api, TEMPLATE))
    return followed == 200 and stack.send("GET", answer["refresh"]["statusUrl"])[1]["refresh"]["status"] == "complete"


def _snapshot_model(stack: Stack) -> tuple[str, str]:
    """A data model on the demo PostgreSQL shop (its login and secret) keeping one custom query, named as
    the table it keeps, and a report reading that table (its choices too); made as the operator."""
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    demo = catalog.data_source(stack.report("pg-product-catalogue").data_source_id)
    assert demo is not None
    model = str(catalog.next_data_source_id())
    kept = CustomQuery(name="customers", query="SELECT id, region FROM customers", snapshot=True)
    copy = msgspec.structs.replace(demo, id=model, name=f"iam-snapshot-{model}", custom_queries=[kept])
    catalog.put_data_source(copy)
    definition = {
        "name": f"IAM snapshot {model}",
        "data_source_id": model,
        "queries": [{"sql": "SELECT region, count(*) AS n FROM customers WHERE region = :region GROUP BY region"}],
        "fields": [
            {"name": "region", "type": "choice", "choices_sql": "SELECT DISTINCT region FROM customers ORDER BY 1"}
        ],
    }
    return model, catalog.create_report(parse_report(definition)).slug


_SNAPSHOT_REPORT: list[str] = []  # made and refreshed once: the reports, exports and worker works read it


def _snapshot_report(stack: Stack) -> str:
    if not _SNAPSHOT_REPORT:
        model, slug = _snapshot_model(stack)
        assert stack.send("POST", f"/api/datamodels/{model}/refresh")[0] == 202
        drain(pollers(stack.api, TEMPLATE))
        _SNAPSHOT_REPORT.append(slug)
    return _SNAPSHOT_REPORT[0]


def _refreshes_snapshots(stack: Stack) -> bool:
    """A model refreshed twice: each refresh read and claimed, the model and its reports read, the live
    rows read (the password from Secrets Manager), the file put, the snapshot stored over the older one and
    the refresh finished; the second one deletes the file of the snapshot it replaced."""
    model, _ = _snapshot_model(stack)
    done = []
    for _ in range(2):
        status, answer = stack.send("POST", f"/api/datamodels/{model}/refresh")
        drain(pollers(stack.api, TEMPLATE))
        if status != 202:
            return False
        done.append(stack.send("GET", answer["refresh"]["statusUrl"])[1]["refresh"])
    if [d["status"] for d in done] != ["complete", "complete"]:
        return False
    current = stack.send("GET", f"/api/datamodels/{model}")[1]["dataModel"]["currentSnapshot"]
    s3 = boto3.client("s3")
    try:
        s3.head_object(Bucket=stack.names["ExportBucket"], Key=f"snapshots/{model}/{done[0]['id']}.sqlite")
    except ClientError:
        return current["refreshId"] == done[1]["id"]
    return False


def _defines_reports(stack: Stack) -> bool:
    """A category made; a report in it naming a group (the groups read from the identity table), saved
    (a transaction with its slug, fields and revision), changed, then deleted with the category."""
    made, category = stack.send("POST", "/api/categories", {"name": f"iam-{uuid.uuid4().hex[:8]}"})
    if made != 201:
        return False
    model = int(stack.report("pg-product-catalogue").data_source_id)
    body = {
        "name": f"IAM {uuid.uuid4().hex[:8]}",
        "dataModelId": model,
        "categoryId": category["category"]["id"],
        "queries": [{"sql": "SELECT id FROM orders WHERE id = :order_id"}],
        "fields": [{"name": "order_id", "type": "integer"}],
        "groups": ["sales"],
    }
    created, report = stack.send("POST", "/api/reports", body)
    if created != 201:
        return False
    path = f"/api/reports/{report['report']['id']}"
    statuses = [
        stack.send("PUT", path, body | {"optimisticLock": 1, "description": "changed"})[0],
        stack.send("GET", f"/api/documents/{report['report']['id']}/revisions")[0],
        stack.send("DELETE", path)[0],
        stack.send("DELETE", f"/api/categories?id={category['category']['id']}")[0],
    ]
    return statuses == [200, 200, 200, 200]


def _writes_audit(stack: Stack) -> bool:
    """The audit lines of a request, handed over as CloudWatch Logs would, stored in a batch."""
    assert stack.get("/api/server_iso_time/").status == 200
    try:
        stack.audit.deliver()
    except Exception:
        return False
    table = boto3.resource("dynamodb").Table(stack.names["AuditTable"])
    found = table.query(
        IndexName="ByPrincipal",
        KeyConditionExpression="principal = :p",
        ExpressionAttributeValues={":p": f"token:{_name_of(stack.headers['admin'])}"},
        ScanIndexForward=False,
        Limit=1,
    )["Items"]
    return bool(found) and found[0]["route"] == "/api/server_iso_time" and _fresh(found[0]["at"])


def _name_of(basic: str) -> str:
    return base64.b64decode(basic.split()[1]).decode().split(":")[0]


def _fresh(at: str) -> bool:
    return datetime.now(UTC) - datetime.fromisoformat(at) < timedelta(seconds=5)


def _logs_in(stack: Stack) -> bool:
    """A user found by name (GetItem), a failure counted (UpdateItem), then a login that clears the count
    (DeleteItem) and stores the access token (PutItem)."""
    user = stack.operator_user()
    wrong = stack.login(user["userName"], "not the password at all")
    right = stack.login(user["userName"], USER_PASSWORD)
    return wrong.status == 400 and right.status == 200


def _calls_reports(stack: Stack) -> bool:
    nonce = stack.send("POST", "/api/v1/nonce-tokens/", {"report_id": "gst-balance"})[0]
    listed = stack.get("/api/reports/").status
    by_id = stack.get(f"/report/get/{stack.report('gst-balance').id}").status
    by_slug = stack.get("/api/call/gst-balance/?date_from=2025-07-01&date_to=2025-07-31").status
    # A PostgreSQL report: its password read from Secrets Manager.
    on_postgres = stack.get("/api/call/pg-product-catalogue/?min_price=100").status
    # An Athena report: its choices and its rows are queries (started, polled, their results read).
    lake = athena_report(stack)
    clear_staged()
    stage_choices_and_rows()
    on_athena = stack.get(f"/api/call/{lake}/?region=NSW")
    clear_staged()
    # A report on a data model that keeps a snapshot: the snapshot read from S3 (once), its choices too.
    kept = stack.get(f"/api/call/{_snapshot_report(stack)}/?region=NSW")
    from_snapshot = kept.status == 200 and "X-Snapshot-Taken-At" in dict(kept.headers)
    return listed == by_id == by_slug == on_postgres == on_athena.status == 200 and nonce == 201 and from_snapshot


def _opens_views(stack: Stack) -> bool:
    """A nonce taken (a conditional delete), its session stored, then found by its cookie."""
    nonce = stack.nonce({"report_id": "sales-summary"})
    first = stack.view(f"/report/view/sales-summary/?nonce={nonce}")
    if first.status != 302:
        return False
    cookie = dict(first.headers)["Set-Cookie"].split(";")[0].split("=", 1)[1]
    return stack.view("/report/view/sales-summary/", cookie=cookie).status == 200


def _post_export(stack: Stack, body: dict[str, object], auth: str = "") -> tuple[int, dict[str, object]]:
    headers = [("Authorization", auth or stack.headers["admin"]), ("Content-Type", "application/json")]
    response = stack.api.handle("POST", "/api/exports/", headers, json.dumps(body).encode())
    return response.status, json.loads(response.body)


def _exports(stack: Stack) -> bool:
    """Request by display name (the report list), a new ticket queued; the same request again (found in
    the cache by its index, the file checked); status and download."""
    body = {"report_name": "Order Lines", "format": "csv", "parameters": {"row_limit": 20}, "force_update": True}
    status, ticket = _post_export(stack, body)
    if status != 202:
        return False
    drain(pollers(stack.api, TEMPLATE))
    cached_status, cached = _post_export(stack, {**body, "force_update": False})
    view = stack.get(f"/api/exports/{ticket['ticket_id']}/")
    download = stack.get(f"/api/exports/{ticket['ticket_id']}/download/")
    from_cache = cached_status == 200 and cached.get("status") == "complete"  # 202 and pending: rendered anew
    # A choice field whose choices come from a query on PostgreSQL (its password from Secrets Manager).
    on_postgres, _ = _post_export(stack, {"report_name": "pg-orders-by-region", "parameters": {"region": "NSW"}})
    drain(pollers(stack.api, TEMPLATE))
    # ... and one whose choices come from Athena.
    lake = athena_report(stack)
    clear_staged()
    stage_choices_and_rows()
    on_athena, _ = _post_export(stack, {"report_name": lake, "parameters": {"region": "NSW"}, "force_update": True})
    drain(pollers(stack.api, TEMPLATE))
    clear_staged()
    # ... and one whose choices come from its data model's snapshot (read from S3).
    kept = {"report_name": _snapshot_report(stack), "parameters": {"region": "NSW"}, "force_update": True}
    stack.api.cold_start("ExportsFunction")  # its copy of the snapshot is read anew
    on_snapshot, _ = _post_export(stack, kept)
    drain(pollers(stack.api, TEMPLATE))
    answers = (on_postgres, on_athena, on_snapshot)
    opened = _opens_a_mailed_link(stack, str(ticket["ticket_id"]))
    return from_cache and view.status == 200 and download.status == 302 and answers == (202, 202, 202) and opened


def _opens_a_mailed_link(stack: Stack, ticket_id: str) -> bool:
    """A link from a mail (read from the jobs table, no token) redirects to the file. Its run is a report
    mailed on request (job 0), which no job's deletion can end."""
    from reportserver.domain.links import DownloadLink, link_hash, new_link_secret
    from reportserver.store.jobs import DynamoJobStore

    ticket = DynamoTicketStore(stack.names["TicketsTable"]).get(ticket_id)
    if ticket is None or ticket.file_key is None:
        return False
    secret, now = new_link_secret(), datetime.now(UTC)
    link = DownloadLink(
        link_hash=link_hash(secret), job_id=0, run_key="20260101T000000Z", file_key=ticket.file_key,
        file_name="f.csv", content_type="text/csv", created_at=now, expires_at=now + timedelta(days=1),
    )  # fmt: skip
    DynamoJobStore(stack.names["JobsTable"]).put_link(link)
    return stack.api.handle("GET", f"/api/links/{secret}", [], b"").status == 302


def _renders(stack: Stack) -> bool:
    """The worker reads the report, claims and completes the ticket, and puts the file; and when the
    data source is down, it has the message come back soon (its visibility shortened)."""
    stack.api.cold_start("ExportsFunction")
    # A token of its own: the tickets a run without an action leaves pending never count against the next run.
    auth, _ = _fresh_token(stack)
    body = {"report_name": "sales-summary", "format": "csv", "force_update": True}
    status, ticket = _post_export(stack, body, auth)
    assert status == 202, ticket
    on_postgres = {"report_name": "pg-sales-by-month", "format": "parquet", "force_update": True}
    pg_status, pg_ticket = _post_export(stack, on_postgres, auth)
    assert pg_status == 202, pg_ticket
    # A report on a data model that keeps a snapshot: exported from it (read from S3).
    kept = {"report_name": _snapshot_report(stack), "parameters": {"region": "NSW"}, "format": "csv"}
    kept_status, kept_ticket = _post_export(stack, kept | {"force_update": True}, auth)
    assert kept_status == 202, kept_ticket
    drain(pollers(stack.api, TEMPLATE))
    # An Athena export: its query run, its result file streamed from S3.
    lake = athena_report(stack)
    clear_staged()
    stage([("region", "varchar", 0, 0)], [["NSW"]])  # the choices, as the export is asked for
    on_athena = {"report_name": lake, "format": "parquet", "parameters": {"region": "NSW"}, "force_update": True}
    athena_status, athena_ticket = _post_export(stack, on_athena, auth)
    assert athena_status == 202, athena_ticket
    stage([("region", "varchar", 0, 0)], [["NSW"]])  # the choices, as the worker binds the parameters
    stage(SALES, [["NSW", "10.50"]])
    drain(pollers(stack.api, TEMPLATE))
    clear_staged()
    tickets = DynamoTicketStore(stack.names["TicketsTable"])
    done = [tickets.get(str(t["ticket_id"])) for t in (ticket, pg_ticket, athena_ticket, kept_ticket)]
    complete = all(d is not None and d.status is TicketStatus.COMPLETE for d in done)
    return complete and _retries_soon(stack) and _delivers_a_run(stack)


def _delivers_a_run(stack: Stack) -> bool:
    """A job run's export done, the worker queues its delivery (the runner then mails it)."""
    from tests.integration.test_jobs import _body

    made, job = stack.send("POST", "/api/jobs", _body(stack, emailDeliveryFormat="csv"))
    executed, answer = stack.send("POST", f"/api/jobs/{job['job']['id']}/execute")
    drain(pollers(stack.api, TEMPLATE))
    read, result = stack.send("GET", f"/api/jobs/jobresults/{answer.get('generatedDocumentId')}")
    stack.send("DELETE", f"/api/jobs?id={job['job']['id']}")
    return (made, executed, read) == (201, 202, 200) and result["jobResult"]["status"] == "delivered"


def _retries_soon(stack: Stack) -> bool:
    catalog = DynamoCatalog(stack.names["CatalogTable"])
    if catalog.report_by_slug("source-down") is None:
        catalog.put_data_source(DataSource(id="902", name="Down", database="/nonexistent/down.sqlite"))
        catalog.create_report(
            parse_report({"name": "Source Down", "data_source_id": "902", "queries": [{"sql": "SELECT 1"}]})
        )
    down = {"report_name": "source-down", "format": "csv", "force_update": True}
    status, ticket = _post_export(stack, down, _fresh_token(stack)[0])
    assert status == 202, ticket
    worker_poller = next(p for p in pollers(stack.api, TEMPLATE) if p.visibility_seconds == 5400)
    worker_poller.poll_once()
    hidden = worker_poller.hidden_for()
    worker_poller.discard_waiting()
    return 0 < hidden <= 31  # 30 s for the first retry, not the queue's 5,400 s


def _fails_dead_letters(stack: Stack) -> bool:
    """A dead-lettered message fails its ticket (read, then updated) and is not reported as failed."""
    status, ticket = _post_export(stack, {"report_name": "sales-summary", "force_update": True})
    assert status == 202, ticket
    record = {"messageId": "dead-1", "receiptHandle": "r", "body": json.dumps({"ticket_id": ticket["ticket_id"]})}
    record |= {"attributes": {"ApproximateReceiveCount": "3"}, "eventSource": "aws:sqs"}
    record |= {"eventSourceARN": TEMPLATE.attribute("ExportDeadLetterQueue", "Arn"), "messageAttributes": {}}
    response = stack.api.invoke("ExportDeadLettersFunction", {"Records": [record]})
    done = DynamoTicketStore(stack.names["TicketsTable"]).get(str(ticket["ticket_id"]))
    failed = done is not None and done.status is TicketStatus.FAILED
    return failed and not response.get("batchItemFailures")


def _sweeps(stack: Stack) -> bool:
    """The sweeper finds a stranded ticket (the status index), nudges it and sends its message again,
    and fails one out of attempts."""
    from tests.integration.test_export_sweeper import get, stranded_ticket, sweep

    lost = stranded_ticket(stack, TicketStatus.PENDING, 3600)
    exhausted = stranded_ticket(stack, TicketStatus.IN_PROGRESS, 3600, attempt=3)
    drain(pollers(stack.api, TEMPLATE))  # no message waits: the sweeper then knows the lost one is lost
    try:
        sweep(stack)
    except Exception:
        return False
    drain(pollers(stack.api, TEMPLATE))
    return get(stack, lost).status is TicketStatus.COMPLETE and get(stack, exhausted).status is TicketStatus.FAILED


def _schedules_jobs(stack: Stack) -> bool:
    """A job made for a user's address (a counter, a conditional put; the report and the user read) with
    its schedule (an update that finds none, then a create, handing over the scheduler's role), listed
    (Query), run now (a message to the job-run queue) and its result read with its export ticket, changed
    (a conditional put and an update of its schedule), deleted with its schedule."""
    from tests.integration.test_jobs import _body

    user = stack.new_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    made, job = stack.send("POST", "/api/jobs", _body(stack, internalSubscriberIds=[user["id"]]))
    if made != 201:
        return False
    job_id = job["job"]["id"]
    executed, answer = stack.send("POST", f"/api/jobs/{job_id}/execute")
    drain(pollers(stack.api, TEMPLATE))
    read, result = stack.send("GET", f"/api/jobs/jobresults/{answer.get('generatedDocumentId')}")
    exported = read == 200 and (result["jobResult"].get("export") or {}).get("status") == "complete"
    statuses = [
        stack.send("GET", "/api/jobs")[0],
        stack.send("GET", f"/api/jobs/{job_id}")[0],
        stack.send("GET", f"/api/jobs/{job_id}/jobresults")[0],
        stack.send("PUT", "/api/jobs", _body(stack, id=job_id, optimisticLock=1, enabled=False))[0],
        stack.send("DELETE", f"/api/jobs?id={job_id}")[0],
    ]
    return executed == 202 and exported and statuses == [200, 200, 200, 200, 200] and _mails_on_request(stack)


def _mails_on_request(stack: Stack) -> bool:
    """`/report/mail/` with the report by name (the catalog queried): its caller's open exports counted (the
    tickets' owner index), its ticket made and queued for the worker, and the mail delivered."""
    from tests.integration.test_job_runs import _mail_form

    fields = [("to", "a@example.com"), ("format", "csv"), ("date_from", "2025-07-01"), ("date_to", "2025-07-02")]
    status, answer = _mail_form(stack, "Sales by Day", fields)
    if status != 202:
        return False
    drain(pollers(stack.api, TEMPLATE))
    read, result = stack.send("GET", f"/api/jobs/jobresults/{answer['generatedDocumentId']}")
    return read == 200 and result["jobResult"]["status"] == "delivered"


def _runs_jobs(stack: Stack) -> bool:
    """A job run one at() at a time, owned by a user (its user and groups read), fired by its schedule
    (which then deletes itself, as Scheduler's one-time schedules do): the run recorded (a conditional put,
    then a put), its owner's rights read, its export ticket made and queued, and the next at() schedule
    created (an update that finds none, then a create, handing over the scheduler's role); and one owned
    by a token (the token read). Both runs delivered: claimed (a conditional put), the file read from S3
    and mailed through SES."""
    from tests.integration.test_job_runs import _nine_in_sydney, _results
    from tests.integration.test_jobs import _body, _schedule

    status, group = stack.send("POST", "/api/usergroups", {"name": f"g-{uuid.uuid4().hex[:8]}"})
    grants = {"optimisticLock": group["group"]["optimisticLock"],
              "permissions": [{"scope": "allScheduledJobs", "accessMode": 7}]}  # fmt: skip
    stack.send("POST", f"/api/usergroups/{group['group']['id']}/permissions", grants)
    user = stack.bearer_of(stack.new_user(groups=[group["group"]["id"]])["userName"])
    rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=7;BYMINUTE=30"
    complete = []
    for auth in (user, "admin"):
        body = _body(stack, recurrenceRule=rule, sharedFolders=["iam"])  # the file copied there too
        made, job = stack.send("POST", "/api/jobs", body, auth=auth)
        if made != 201:
            return False
        job_id = job["job"]["id"]
        scheduler = boto3.client("scheduler")
        schedule = _schedule(stack, job_id)
        scheduler.delete_schedule(Name=f"job-{job_id}", GroupName=stack.names["JobScheduleGroup"])
        if schedule is None:
            return False
        _fire_input(stack, schedule["Target"]["Input"], _nine_in_sydney(1))
        runs = _results(stack, job_id)
        exported = len(runs) == 1 and runs[0]["status"] == "delivered"
        complete.append(exported and _schedule(stack, job_id) is not None)
        stack.send("DELETE", f"/api/jobs?id={job_id}")
    ends = _bursts_a_run(stack) and _sweeps_runs(stack) and _mails_on_request(stack) and _runs_a_refresh(stack)
    return status == 201 and all(complete) and ends


def _runs_a_refresh(stack: Stack) -> bool:
    """A refresh job's run asks its model's snapshot refresh (its record and the model's hold in one
    transaction on the catalog, its message queued)."""
    model, _ = _snapshot_model(stack)
    body = {"name": f"r-{uuid.uuid4().hex[:6]}", "mode": "refresh", "dataModelId": int(model),
            "recurrenceRule": "FREQ=DAILY"}  # fmt: skip
    made, job = stack.send("POST", "/api/jobs", body)
    if made != 201:
        return False
    executed, answer = stack.send("POST", f"/api/jobs/{job['job']['id']}/execute")
    drain(pollers(stack.api, TEMPLATE))
    read, result = stack.send("GET", f"/api/jobs/jobresults/{answer.get('generatedDocumentId')}")
    stack.send("DELETE", f"/api/jobs?id={job['job']['id']}")
    return (executed, read) == (202, 200) and result["jobResult"]["status"] == "refreshing"


def _sweeps_runs(stack: Stack) -> bool:
    """The runs' sweeper reads the open runs from their index and ends one whose failed export was never
    announced."""
    import msgspec
    from reportserver.store.jobs import DynamoJobStore

    from infra.local.queues import scheduled_event
    from tests.integration.test_job_runs import _stuck_run
    from tests.integration.test_jobs import _body

    made, job = stack.send("POST", "/api/jobs", _body(stack, emailDeliveryFormat="csv"))
    if made != 201:
        return False
    job_id = job["job"]["id"]
    _stuck_run(stack, job_id, "failed for the IAM test")
    # ... and a run past its retention, whose file the sweeper removes (DeleteObject)
    executed, answer = stack.send("POST", f"/api/jobs/{job_id}/execute")
    drain(pollers(stack.api, TEMPLATE))
    store = DynamoJobStore(stack.names["JobsTable"])
    run = store.run(job_id, str(answer.get("generatedDocumentId", "")).split(".", 1)[-1])
    if executed != 202 or run is None or run.file_key is None:
        return False
    store.update_run(msgspec.structs.replace(run, expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    try:
        counts = stack.api.invoke("JobRunnerFunction", scheduled_event("JobRunnerFunction"))
    except Exception:
        return False
    finally:
        stack.send("DELETE", f"/api/jobs?id={job_id}")
    return isinstance(counts, dict) and counts.get("failed", 0) >= 1 and counts.get("files removed", 0) >= 1


def _bursts_a_run(stack: Stack) -> bool:
    """A per-recipient run reads its recipients from PostgreSQL (its password from Secrets Manager) and
    queues one message each (SendMessageBatch, allowed by sqs:SendMessage), each run delivered."""
    from tests.integration.test_job_runs import _recipients_query, _results
    from tests.integration.test_jobs import _body

    model_id, member = _recipients_query(stack, [("a@example.com", "A", "NSW"), ("b@example.com", "B", "VIC")])
    binding = {"dataModelId": model_id, "dataMember": member, "emailAddressField": "email"}
    parameters = [{"name": "region", "source": "bound", "value": "region"},
                  {"name": "date_from", "value": "2025-07-01"}, {"name": "date_to", "value": "2025-07-02"}]  # fmt: skip
    body = _body(stack, mode="billingStatement", documentId=stack.report("pg-orders-by-region").id,
                 parameters=parameters, emailDeliveryFormat="csv", billingStatementBinding=binding)  # fmt: skip
    made, job = stack.send("POST", "/api/jobs", body)
    if made != 201:
        return False
    stack.send("POST", f"/api/jobs/{job['job']['id']}/execute")
    drain(pollers(stack.api, TEMPLATE))
    runs = _results(stack, job["job"]["id"])
    stack.send("DELETE", f"/api/jobs?id={job['job']['id']}")
    return sorted(r["status"] for r in runs) == ["burst", "delivered", "delivered"]


def _fire_input(stack: Stack, message: str, scheduled: datetime) -> None:
    body = message.replace("<aws.scheduler.scheduled-time>", scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    boto3.client("sqs").send_message(QueueUrl=TEMPLATE.reference("JobRunQueue"), MessageBody=body)
    drain(pollers(stack.api, TEMPLATE))


WORK: dict[str, Callable[[Stack], bool]] = {
    "AuthFunction": _authorizes,
    "AdminFunction": _administers,
    "CatalogAdminFunction": _administers_catalog,
    "LoginFunction": _logs_in,
    "ViewAuthFunction": _opens_views,
    "AuditWriterFunction": _writes_audit,
    "ReportsFunction": _calls_reports,
    "ExportsFunction": _exports,
    "ExportWorkerFunction": _renders,
    "ExportDeadLettersFunction": _fails_dead_letters,
    "ExportSweeperFunction": _sweeps,
    "JobsFunction": _schedules_jobs,
    "JobRunnerFunction": _runs_jobs,
    "DataRefreshFunction": _refreshes_snapshots,
}


def _inline_actions() -> list[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for function, role in ROLES.items():
        for document in role.policies.values():
            for statement in document["Statement"]:
                actions = statement["Action"]
                pairs.update((function, a) for a in ([actions] if isinstance(actions, str) else actions))
    return sorted(pairs - set(NOT_OBSERVABLE))


def test_every_function_has_its_work_and_its_own_role() -> None:
    assert set(WORK) == set(TEMPLATE.functions()) == set(ROLES)


def test_every_function_runs_as_its_own_assumed_role(stack: Stack) -> None:
    for function, credentials in stack.api.identities.items():
        arn = boto3.client("sts", **credentials).get_caller_identity()["Arn"]
        assert arn.endswith(f":assumed-role/{ROLES[function].name}/{function}")


def test_a_caller_without_a_known_identity_is_refused(stack: Stack) -> None:
    stranger = boto3.client("dynamodb", aws_access_key_id="AKIAUNKNOWN0000000000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as refused:
        stranger.describe_table(TableName=stack.names["TokensTable"])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "InvalidClientTokenId" in str(refused.value)


def test_a_role_scoped_to_one_table_cannot_read_another(stack: Stack) -> None:
    # The reports function may read the catalog, not the tokens: DynamoDB resources are checked too.
    with aws.acting_as(stack.api.identities["ReportsFunction"]), pytest.raises(ClientError) as refused:
        aws.dynamodb().Table(stack.names["TokensTable"]).get_item(Key={"name": "test-admin"})
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: dynamodb:GetItem" in str(refused.value)


def test_what_cannot_be_observed_is_still_granted() -> None:
    for function, action in NOT_OBSERVABLE:
        assert any(action in str(document) for document in ROLES[function].policies.values()), (function, action)


@pytest.mark.parametrize(("function", "action"), _inline_actions())
def test_each_function_needs_every_action_its_role_grants(stack: Stack, function: str, action: str) -> None:
    role, work = ROLES[function], WORK[function]
    # Given the function's work succeeds under the template's role, in a new container
    stack.api.cold_start(function)
    assert work(stack), f"{function} fails under its template role"
    # When the role loses this one action
    iam.replace_policies(role.without(action))
    stack.api.cold_start(function)
    try:
        # Then the same work fails
        assert not work(stack), f"{function} works without {action}: the template grants more than it uses"
    finally:
        iam.replace_policies(role)
        stack.api.cold_start(function)


def _link(stack: Stack, function: str, key: str, **params: object) -> str:
    from botocore.config import Config

    s3 = boto3.client("s3", config=Config(signature_version="s3v4"), **stack.api.identities[function])
    return str(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": stack.names["ExportBucket"], "Key": key}, ExpiresIn=300, **params
        )
    )


def test_a_download_link_works_only_when_signed_by_a_role_that_may_read_the_file(stack: Stack) -> None:
    # Found: any request with an X-Amz-Signature parameter passed, even a PUT without credentials.
    import requests

    key = "exports/iam-link/file.csv"
    boto3.client("s3").put_object(Bucket=stack.names["ExportBucket"], Key=key, Body=b"secret")
    assert requests.get(_link(stack, "ExportsFunction", key), timeout=10).content == b"secret"
    assert requests.get(_link(stack, "ReportsFunction", key), timeout=10).status_code == 403  # no S3 rights
    signed = _link(stack, "ExportsFunction", key)
    old = re.sub(r"X-Amz-Date=[0-9]{8}", "X-Amz-Date=20200101", signed)  # signed years ago
    assert requests.get(old, timeout=10).status_code == 403  # past its X-Amz-Expires
    forever = re.sub(r"X-Amz-Expires=[0-9]+", "X-Amz-Expires=604801", signed)
    assert requests.get(forever, timeout=10).status_code == 403  # longer than SigV4 allows (7 days)
    assert requests.put(signed, data=b"evil", timeout=10).status_code == 403
    forged = f"https://{stack.names['ExportBucket']}.s3.amazonaws.com/{key}?X-Amz-Signature=0"
    assert requests.put(forged, data=b"evil", timeout=10).status_code == 403
    assert boto3.client("s3").get_object(Bucket=stack.names["ExportBucket"], Key=key)["Body"].read() == b"secret"


def _user_with(policy_actions: list[str], resource: str) -> Any:
    """An IAM user in moto allowed these actions on this resource, and an API Gateway client as it."""
    iam_client = boto3.client("iam")
    name = f"apigw-{uuid.uuid4().hex[:12]}"
    iam_client.create_user(UserName=name)
    statement = {"Effect": "Allow", "Action": policy_actions, "Resource": resource}
    iam_client.put_user_policy(
        UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    key = iam_client.create_access_key(UserName=name)["AccessKey"]
    return boto3.client(
        "apigateway", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )


def test_api_gateway_calls_are_authorised_by_http_method_and_resource_path_as_in_aws(stack: Stack) -> None:
    # moto checked its operation names (apigateway:CreateApiKey on *), which no AWS policy uses; a
    # function managing tokens' keys must be granted what AWS checks: apigateway:POST on /apikeys.
    plan = stack.names["TokenUsagePlan"]
    reader = _user_with(["apigateway:GET"], f"arn:aws:apigateway:us-east-1::/usageplans/{plan}")
    assert reader.get_usage_plan(usagePlanId=plan)["id"] == plan
    with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):
        reader.get_api_keys()  # another path
    with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):
        reader.create_api_key(name="x", value="reportserver" + "5" * 32, enabled=True)  # another method
    moto_named = _user_with(["apigateway:CreateApiKey"], "*")
    with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):
        moto_named.create_api_key(name="x", value="reportserver" + "6" * 32, enabled=True)
    writer = _user_with(["apigateway:POST", "apigateway:DELETE"], "arn:aws:apigateway:us-east-1::/apikeys*")
    made = writer.create_api_key(name="x", value="reportserver" + "7" * 32, enabled=True)
    with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):  # the plan's keys: another path
        writer.create_usage_plan_key(usagePlanId=plan, keyId=made["id"], keyType="API_KEY")
    member = _user_with(["apigateway:POST"], f"arn:aws:apigateway:us-east-1::/usageplans/{plan}/keys")
    member.create_usage_plan_key(usagePlanId=plan, keyId=made["id"], keyType="API_KEY")
    writer.delete_api_key(apiKey=made["id"])


def test_the_jobs_role_schedules_only_its_groups_job_schedules_with_only_the_schedulers_role(stack: Stack) -> None:
    group = stack.names["JobScheduleGroup"]
    target = {"Arn": TEMPLATE.attribute("JobRunQueue", "Arn"), "RoleArn": TEMPLATE.attribute("JobSchedulerRole", "Arn")}
    request = {"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}}
    client = boto3.client("scheduler", **stack.api.identities["JobsFunction"])
    admin_role = TEMPLATE.attribute("JobSchedulerRole", "Arn").rsplit("/", 1)[0] + f"/{ROLES['AdminFunction'].name}"
    # The control case: a job's schedule in the group, sending as the scheduler's role
    client.create_schedule(Name="job-424242", GroupName=group, Target=target, **request)
    client.delete_schedule(Name="job-424242", GroupName=group)
    refused = [
        {"Name": "other-1", "GroupName": group, "Target": target},  # not a job's name
        {"Name": "job-424243", "GroupName": "default", "Target": target},  # another group
        # another role handed to Scheduler (iam:PassRole on the scheduler's role only)
        {"Name": "job-424244", "GroupName": group, "Target": target | {"RoleArn": admin_role}},
    ]
    for attempt in refused:
        with pytest.raises(ClientError) as error:
            client.create_schedule(**attempt, **request)
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, attempt
