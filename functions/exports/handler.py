"""Exports (seeds 001 and 002 on one resource): request a file, follow its ticket, download it."""

from typing import Any

import msgspec
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver import records
from reportserver.domain.calls import ReportRunner
from reportserver.domain.errors import DomainError, InvalidParameter
from reportserver.domain.exports import ExportPolicy, ExportService
from reportserver.domain.tickets import ExportRequest, seed001_request
from reportserver.domain.tokens import Principal
from reportserver.http.errors import INTERNAL_ERROR_BODY, NOT_FOUND_BODY, error_body, status_for
from reportserver.observability import logger, metrics
from reportserver.render import supported_formats
from reportserver.settings import ExportsSettings
from reportserver.sources.registry import open_source
from reportserver.store.catalog import CachedCatalog, DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.queue import SqsExportQueue
from reportserver.store.tickets import DynamoTicketStore

settings = ExportsSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
service = ExportService(
    catalog,
    ReportRunner(catalog, open_source),
    DynamoTicketStore(settings.tickets_table),
    SqsExportQueue(settings.export_queue_name),
    S3FileStore(settings.export_bucket),
    ExportPolicy(retention_days=settings.retention_days, link_seconds=settings.download_url_seconds),
    supported_formats(),
)
app = APIGatewayRestResolver()


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=records.dumps(document).decode("utf-8"),
        headers=headers,
    )


def principal() -> Principal:
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    caller = Principal.from_context(context)
    logger.append_keys(token_name=caller.token_name)
    return caller


def json_body(kind: type[msgspec.Struct]) -> Any:
    body = app.current_event.decoded_body or ""
    if not body.strip():
        raise InvalidParameter("body", "Send a JSON body")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as error:
        raise InvalidParameter(_field_of(str(error)), f"Invalid request: {error}") from None
    except msgspec.DecodeError:
        raise InvalidParameter("body", "The body is not valid JSON") from None


def _field_of(message: str) -> str:
    # msgspec names the place as "... - at `$.format`", or "unknown field `surprise`".
    for marker in ("`$.", "unknown field `"):
        if marker in message:
            return message.split(marker, 1)[1].split("`", 1)[0].split(".", 1)[0].split("[", 1)[0]
    return "body"


@app.post("/api/exports")
def request_export() -> Response[str]:
    ticket = service.request(principal(), json_body(ExportRequest))
    metrics.add_metric(name="ExportsRequested", unit=MetricUnit.Count, value=1)
    status = 200 if ticket.cached_from else 202
    return json_response(
        {"ticket_id": ticket.ticket_id, "status": ticket.status.value},
        status,
        {"Location": f"/api/exports/{ticket.ticket_id}/"},
    )


@app.get("/api/exports/<ticket_id>")
def export_status(ticket_id: str) -> Response[str]:
    return json_response(service.status(principal(), ticket_id))


@app.get("/api/exports/<ticket_id>/download")
def download_export(ticket_id: str) -> Response[str]:
    url = service.download_url(principal(), ticket_id)
    return json_response({"report_url": url}, 302, {"Location": url, "Cache-Control": "no-store"})


@app.post("/api/documents/export/report/<report_id>")
def request_document_export(report_id: str) -> Response[str]:
    """Seed 001's shape: `{"exportOptions": {"exportFormat"}, "documentParameters": [...]}` -> export id."""
    body = json_body(_DocumentExport)
    ticket = service.request(principal(), seed001_request(report_id, body.exportOptions, body.documentParameters))
    return json_response(
        {"exportId": ticket.ticket_id, "status": ticket.status.value}, 200 if ticket.cached_from else 202
    )


@app.get("/api/documents/export/status/<export_id>")
def document_export_status(export_id: str) -> Response[str]:
    view = service.status(principal(), export_id)
    return json_response({"exportId": view["ticket_id"], **view})


@app.get("/api/documents/export/result/<export_id>")
def document_export_result(export_id: str) -> Response[str]:
    url = service.download_url(principal(), export_id)
    return json_response({"report_url": url}, 302, {"Location": url, "Cache-Control": "no-store"})


class _DocumentExport(msgspec.Struct, kw_only=True):
    exportOptions: dict[str, Any] = msgspec.field(default_factory=dict)  # noqa: N815 - seed 001's names
    documentParameters: list[dict[str, Any]] = msgspec.field(default_factory=list)  # noqa: N815


@app.exception_handler(DomainError)
def domain_error(error: DomainError) -> Response[str]:
    status = status_for(error)
    logger.info("request refused", extra={"status": status, "reason": error.message})
    return json_response(error_body(error), status)


@app.not_found
def unknown_route(_: NotFoundError) -> Response[str]:
    return json_response(NOT_FOUND_BODY, 404)


@app.exception_handler(Exception)
def internal_error(_: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return json_response(INTERNAL_ERROR_BODY, 500)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
