"""Report calls (seed 000): run a report and answer `{message, ok, records}`, plus its neighbours."""

from datetime import UTC, datetime
from typing import Any

import msgspec
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver import records
from reportserver.domain.calls import CallLimits, ReportRunner, field_by_id, find_report, readable_reports
from reportserver.domain.errors import DomainError
from reportserver.domain.reports import field_view
from reportserver.domain.tokens import Principal
from reportserver.http.errors import INTERNAL_ERROR_BODY, NOT_FOUND_BODY, error_body, status_for
from reportserver.observability import logger, metrics
from reportserver.settings import ReportsSettings
from reportserver.sources.registry import open_source
from reportserver.store.catalog import CachedCatalog, DynamoCatalog

settings = ReportsSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
runner = ReportRunner(catalog, open_source)
limits = CallLimits(max_rows=settings.call_max_rows, max_bytes=settings.call_max_bytes)
app = APIGatewayRestResolver()


def json_response(document: Any, status: int = 200) -> Response[str]:
    body = document if isinstance(document, bytes) else records.dumps(document)
    return Response(status_code=status, content_type="application/json", body=body.decode("utf-8"))


def principal() -> Principal:
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    caller = Principal.from_context(context)
    logger.append_keys(token_name=caller.token_name)
    return caller


def query_parameters() -> dict[str, list[str]]:
    event = app.current_event
    multi = event.multi_value_query_string_parameters
    if multi:
        return {name: list(values) for name, values in multi.items()}
    return {name: [value] for name, value in (event.query_string_parameters or {}).items()}


@app.get("/api/call/<report_id>")
def call_report(report_id: str) -> Response[str]:
    report = find_report(catalog, principal(), report_id)
    logger.append_keys(report=report.slug)
    result = runner.call(report, query_parameters(), limits)
    metrics.add_metric(name="ReportCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ReportRows", unit=MetricUnit.Count, value=result.row_count)
    logger.info("report called", extra={"rows": result.row_count, "bytes": len(result.body)})
    return json_response(result.body)


@app.get("/api/reports")
def list_reports() -> Response[str]:
    reports = readable_reports(catalog, principal())
    return json_response({"ok": True, "message": "", "reports": [r.public_view() for r in reports]})


@app.get("/report/get/<report_id>")
def get_report(report_id: str) -> Response[str]:
    report = find_report(catalog, principal(), report_id)
    return json_response({"ok": True, "message": "", "report": report.public_view()})


@app.get("/api/choices/<field_id>")
def field_choices(field_id: str) -> Response[str]:
    report, field = field_by_id(catalog, principal(), field_id)
    choices = msgspec.to_builtins(runner.choices(report, field))
    return json_response({"ok": True, "message": "", "field": field_view(field), "choices": choices})


@app.get("/api/server_time")
def server_time() -> Response[str]:
    now = datetime.now(UTC)
    return json_response(
        {
            "ok": True,
            "message": "",
            "server_time": now.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "epoch": now.timestamp(),
        }
    )


@app.get("/api/server_iso_time")
def server_iso_time() -> Response[str]:
    return json_response({"ok": True, "message": "", "server_iso_time": datetime.now(UTC).isoformat()})


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
