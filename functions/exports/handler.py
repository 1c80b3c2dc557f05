"""Exports (seeds 001 and 002 on one resource): request a file, follow its ticket, download it."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import ReportRunner
from reportserver.domain.exports import ExportPolicy, ExportService
from reportserver.domain.links import Links
from reportserver.http import audit
from reportserver.http.api import caller, install_error_handlers, json_body, json_response
from reportserver.http.exports import DocumentExport, ExportRequest
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import ExportsSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.aws import AthenaClients
from reportserver.store.catalog import CachedCatalog, DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.jobs import DynamoJobStore
from reportserver.store.queue import SqsExportQueue
from reportserver.store.secrets import SecretPasswords
from reportserver.store.snapshots import S3SnapshotCopies
from reportserver.store.tickets import DynamoTicketStore

settings = ExportsSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
# A choice field's choices, which a request's values are checked against, come from the report's snapshot.
snapshots = S3SnapshotCopies(
    settings.catalog_table, settings.snapshot_bucket, Path(settings.snapshot_dir), settings.catalog_cache_seconds
)
service = ExportService(
    catalog,
    ReportRunner(catalog, SourceOpener(SecretPasswords(), AthenaClients()), snapshots),
    DynamoTicketStore(settings.tickets_table),
    SqsExportQueue(settings.export_queue_url),
    S3FileStore(settings.export_bucket),
    ExportPolicy(
        retention_days=settings.retention_days,
        link_seconds=settings.download_url_seconds,
        max_open_tickets=settings.max_open_tickets,
    ),
)
job_store = DynamoJobStore(settings.jobs_table)
links = Links(
    job_store, S3FileStore(settings.export_bucket), lambda: datetime.now(UTC), lambda n: job_store.job(n) is not None
)
app = Resolver()
install_error_handlers(app)


@app.post("/api/exports")
def request_export() -> Response[str]:
    ticket = service.request(caller(app), json_body(app, ExportRequest).order())
    metrics.add_metric(name="ExportsRequested", unit=MetricUnit.Count, value=1)
    status = 200 if ticket.cached_from else 202
    return json_response(
        {"ticket_id": ticket.ticket_id, "status": ticket.status.value},
        status,
        {"Location": f"/api/exports/{ticket.ticket_id}/"},
    )


@app.get("/api/exports/<ticket_id>")
def export_status(ticket_id: str) -> Response[str]:
    return json_response(service.status(caller(app), ticket_id))


@app.get("/api/exports/<ticket_id>/download")
def download_export(ticket_id: str) -> Response[str]:
    return _to_file(ticket_id)


def _to_file(ticket_id: str) -> Response[str]:
    """A redirect to the file, by a link signed now."""
    url = service.download_url(caller(app), ticket_id)
    return json_response({"report_url": url}, 302, {"Location": url, "Cache-Control": "no-store"})


@app.get("/api/links/<link>")
def open_link(link: str) -> Response[str]:
    """A link from a job run's mail (no token: the link is the credential), to the file by a link
    signed now."""
    url = links.open(link)
    headers = {"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return json_response({"report_url": url}, 302, headers)


@app.post("/api/documents/export/report/<report_id>")
def request_document_export(report_id: str) -> Response[str]:
    """Seed 001's shape: `{"exportOptions": {"exportFormat"}, "documentParameters": [...]}` -> export id."""
    ticket = service.request(caller(app), json_body(app, DocumentExport).order(report_id))
    return json_response(
        {"exportId": ticket.ticket_id, "status": ticket.status.value}, 200 if ticket.cached_from else 202
    )


@app.get("/api/documents/export/status/<export_id>")
def document_export_status(export_id: str) -> Response[str]:
    view = service.status(caller(app), export_id)
    return json_response({"exportId": view["ticket_id"], **view})


@app.get("/api/documents/export/result/<export_id>")
def document_export_result(export_id: str) -> Response[str]:
    return _to_file(export_id)  # seed 001's name for the same redirect


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return audit.recorded(event, lambda: app.resolve(event, context))
