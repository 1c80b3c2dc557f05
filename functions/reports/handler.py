"""Report calls (seed 000): run a report and answer `{message, ok, records}`, plus its neighbours."""

from datetime import UTC, datetime
from typing import Any

import msgspec
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import CallLimits, ReportRunner, field_by_id, find_report, readable_reports
from reportserver.domain.reports import field_view
from reportserver.http.api import caller, install_error_handlers, json_response
from reportserver.http.lambda_proxy import body_weight
from reportserver.observability import logger, metrics
from reportserver.settings import ReportsSettings
from reportserver.sources.registry import open_source
from reportserver.store.catalog import CachedCatalog, DynamoCatalog

settings = ReportsSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
runner = ReportRunner(catalog, open_source)
limits = CallLimits(max_rows=settings.call_max_rows, max_bytes=settings.call_max_bytes, measure=body_weight)
app = APIGatewayRestResolver()
install_error_handlers(app)


def query_parameters() -> dict[str, list[str]]:
    event = app.current_event
    multi = event.multi_value_query_string_parameters
    if multi:
        return {name: list(values) for name, values in multi.items()}
    return {name: [value] for name, value in (event.query_string_parameters or {}).items()}


@app.get("/api/call/<report_id>")
def call_report(report_id: str) -> Response[str]:
    report = find_report(catalog, caller(app), report_id)
    logger.append_keys(report=report.slug)
    result = runner.call(report, query_parameters(), limits)
    metrics.add_metric(name="ReportCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ReportRows", unit=MetricUnit.Count, value=result.row_count)
    logger.info("report called", extra={"rows": result.row_count, "bytes": len(result.body)})
    return json_response(result.body)


@app.get("/api/reports")
def list_reports() -> Response[str]:
    reports = readable_reports(catalog, caller(app))
    return json_response({"ok": True, "message": "", "reports": [r.public_view() for r in reports]})


@app.get("/report/get/<report_id>")
def get_report(report_id: str) -> Response[str]:
    report = find_report(catalog, caller(app), report_id)
    return json_response({"ok": True, "message": "", "report": report.public_view()})


@app.get("/api/choices/<field_id>")
def field_choices(field_id: str) -> Response[str]:
    report, field = field_by_id(catalog, caller(app), field_id)
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


@app.get("/api/openapi.json")
def openapi_document() -> Response[str]:
    from reportserver.http import contract  # noqa: PLC0415 - off the report calls' cold start

    return json_response(contract.openapi_document(_stage_url()))


@app.get("/api/docs")
def api_docs() -> Response[str]:
    from reportserver.http import contract  # noqa: PLC0415

    return Response(200, "text/html; charset=utf-8", contract.swagger_page(_stage_url()))


def _stage_url() -> str:
    """Where the API is, as the caller reached it: `/<stage>/` on API Gateway's own domain (the stage is
    in the URL there), `/` on a custom domain or the local stack."""
    context = app.current_event.request_context
    on_execute_api = ".execute-api." in (context.domain_name or "")
    return f"/{context.stage}/" if on_execute_api and context.stage else "/"


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
