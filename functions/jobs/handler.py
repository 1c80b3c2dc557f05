"""Jobs (seed 001's `/api/jobs`): scheduled deliveries of a report, each with its EventBridge schedule."""

import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import ReportRunner
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.exports import ExportPolicy, ExportService
from reportserver.domain.job_runs import JobResults, MailRequests
from reportserver.domain.jobs import JobAdmin, JobBody, JobChange, job_view
from reportserver.http import audit
from reportserver.http.api import (
    caller,
    delete_lock,
    form_fields,
    install_error_handlers,
    json_body,
    json_response,
    one_query_value,
    query_parameters,
)
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import JobsSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.jobs import DynamoJobStore, SchedulerJobSchedules, SqsRunQueue
from reportserver.store.queue import SqsExportQueue
from reportserver.store.tickets import DynamoTicketStore

settings = JobsSettings.from_environ()
identity = DynamoIdentityStore(settings.identity_table)
catalog = DynamoCatalog(settings.catalog_table)
store = DynamoJobStore(settings.jobs_table)
jobs = JobAdmin(
    store=store,
    schedules=SchedulerJobSchedules(settings.schedule_group, settings.job_run_queue_arn, settings.scheduler_role_arn),
    report_by_id=catalog.report_by_id,
    user_by_id=identity.user,
    data_model_by_id=catalog.data_source,
    clock=lambda: datetime.now(UTC),
)
tickets = DynamoTicketStore(settings.tickets_table)
results = JobResults(
    jobs=store,
    runs=store,
    queue=SqsRunQueue(settings.job_run_queue_url),
    ticket=tickets.get,
    report_groups=lambda report_id: tuple(r.groups) if (r := catalog.report_by_id(report_id)) else None,
    clock=lambda: datetime.now(UTC),
    new_run_id=lambda: uuid.uuid4().hex,
    links=store,
)
mails = MailRequests(
    runs=store,
    exporter=ExportService(
        catalog,
        # Never opens a source here: choices read from the database are checked by the worker.
        ReportRunner(catalog, SourceOpener()),
        tickets,
        SqsExportQueue(settings.export_queue_url),
        S3FileStore(settings.export_bucket),
        ExportPolicy(
            retention_days=settings.retention_days, link_seconds=300, max_open_tickets=settings.max_open_tickets
        ),
    ),
    clock=lambda: datetime.now(UTC),
    new_run_id=lambda: uuid.uuid4().hex,
    retention_days=settings.retention_days,
)
app = Resolver()
install_error_handlers(app)


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, "message": "", **fields}


@app.post("/api/jobs")
def create_job() -> Response[str]:
    job = jobs.create(caller(app), json_body(app, JobBody))
    metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    return json_response(_ok(job=job_view(job)), 201)


@app.get("/api/jobs")
def list_jobs() -> Response[str]:
    return json_response(_ok(jobs=[job_view(j) for j in jobs.list_jobs(caller(app))]))


@app.get("/api/jobs/<job_id>")
def get_job(job_id: str) -> Response[str]:
    return json_response(_ok(job=job_view(jobs.get(caller(app), job_id))))


@app.put("/api/jobs")
def change_job() -> Response[str]:
    return json_response(_ok(job=job_view(jobs.change(caller(app), json_body(app, JobChange)))))


@app.delete("/api/jobs")
def delete_job() -> Response[str]:
    job_id = one_query_value(app, "id", "Give the id of the job to delete once, as ?id=")
    jobs.delete(caller(app), job_id, delete_lock(app))
    return json_response(_ok(message=f"Job {job_id} deleted"))


@app.post("/api/jobs/<job_id>/execute")
def execute_job(job_id: str) -> Response[str]:
    generated = results.execute(caller(app), job_id)
    metrics.add_metric(name="JobsExecuted", unit=MetricUnit.Count, value=1)
    return json_response(_ok(message=f"Job {job_id} queued to run now", generatedDocumentId=generated), 202)


def _window() -> tuple[str | None, str | None]:
    found = query_parameters(app)
    values = []
    for name in ("startDate", "endDate"):
        given = found.get(name) or []
        if len(given) > 1:
            raise InvalidParameter(name, f"Give {name} once")
        values.append(given[0] if given else None)
    return values[0], values[1]


@app.get("/api/jobs/<job_id>/jobresults")
def job_results(job_id: str) -> Response[str]:
    return json_response(_ok(jobResults=results.job_results(caller(app), job_id, *_window())))


@app.get("/api/jobs/jobresults/<generated_id>")
def job_result(generated_id: str) -> Response[str]:
    return json_response(_ok(jobResult=results.result(caller(app), generated_id)))


@app.delete("/api/jobs/jobresults/<generated_id>/link")
def revoke_link(generated_id: str) -> Response[str]:
    results.revoke_links(caller(app), generated_id)
    return json_response(_ok())


@app.get("/api/documents/<document_id>/jobresults")
def document_results(document_id: str) -> Response[str]:
    return json_response(_ok(jobResults=results.document_results(caller(app), document_id, *_window())))


@app.post("/report/mail/<report_id>")
def mail_report(report_id: str) -> Response[str]:
    """Seed 000: run a report now and mail it; its parameters, `to` (addresses, comma-separated),
    `format` and `timeZone` come as form data."""
    run, ticket = mails.mail(caller(app), report_id, form_fields(app))
    metrics.add_metric(name="ReportsMailed", unit=MetricUnit.Count, value=1)
    answer = _ok(message="Queued: the report is mailed when its file is made", generatedDocumentId=run.generated_id,
                 ticketId=ticket.ticket_id, recipients=run.to)  # fmt: skip
    return json_response(answer, 202, {"Location": f"/api/jobs/jobresults/{run.generated_id}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
