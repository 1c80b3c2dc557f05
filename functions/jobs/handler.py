"""Jobs (seed 001's `/api/jobs`): scheduled deliveries of a report, each with its EventBridge schedule."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.errors import InvalidParameter
from reportserver.domain.identity import VersionOnly
from reportserver.domain.jobs import JobAdmin, JobBody, JobChange, job_view
from reportserver.http import audit
from reportserver.http.api import caller, has_body, install_error_handlers, json_body, json_response, query_parameters
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import JobsSettings
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.jobs import DynamoJobStore, SchedulerJobSchedules

settings = JobsSettings.from_environ()
identity = DynamoIdentityStore(settings.identity_table)
catalog = DynamoCatalog(settings.catalog_table)
jobs = JobAdmin(
    store=DynamoJobStore(settings.jobs_table),
    schedules=SchedulerJobSchedules(settings.schedule_group, settings.job_run_queue_arn, settings.scheduler_role_arn),
    report_by_id=catalog.report_by_id,
    user_by_id=identity.user,
    data_model_by_id=catalog.data_source,
    clock=lambda: datetime.now(UTC),
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
    values = query_parameters(app).get("id") or []
    if len(values) != 1:
        raise InvalidParameter("id", "Give the id of the job to delete once, as ?id=")
    version = json_body(app, VersionOnly).optimisticLock if has_body(app) else None
    jobs.delete(caller(app), values[0], version)
    return json_response(_ok(message=f"Job {values[0]} deleted"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
