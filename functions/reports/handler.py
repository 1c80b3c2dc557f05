"""Report calls (seed 000): run a report and answer `{message, ok, records}`, plus its neighbours."""

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import (
    CallLimits,
    ReportRunner,
    field_by_id,
    find_report,
    readable_reports,
    report_target,
)
from reportserver.domain.embed import VIEW_COOKIE, NonceRequest, create_nonce
from reportserver.domain.errors import Forbidden, InvalidParameter
from reportserver.domain.reports import field_view
from reportserver.http import audit
from reportserver.http.api import (
    caller,
    install_error_handlers,
    json_body,
    json_response,
    query_parameters,
    snapshot_headers,
)
from reportserver.http.lambda_proxy import body_weight
from reportserver.http.resolver import Resolver, Response
from reportserver.http.view import (
    MAX_PAGE,
    NONCE_PARAMETER,
    PAGE_PARAMETER,
    PAGE_ROWS,
    RESERVED,
    SECURITY_HEADERS,
    render_view,
)
from reportserver.observability import logger, metrics
from reportserver.settings import ReportsSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.aws import AthenaClients
from reportserver.store.catalog import CachedCatalog, DynamoCatalog
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.secrets import SecretPasswords
from reportserver.store.snapshots import S3SnapshotCopies

settings = ReportsSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
snapshots = S3SnapshotCopies(
    settings.catalog_table, settings.snapshot_bucket, Path(settings.snapshot_dir), settings.catalog_cache_seconds
)
runner = ReportRunner(catalog, SourceOpener(SecretPasswords(), AthenaClients()), snapshots)
embeds = DynamoIdentityStore(settings.identity_table)
limits = CallLimits(max_rows=settings.call_max_rows, max_bytes=settings.call_max_bytes, measure=body_weight)
app = Resolver()
install_error_handlers(app)


@app.get("/api/call/<report_id>")
def call_report(report_id: str) -> Response[str]:
    report = find_report(catalog, caller(app), report_id)
    logger.append_keys(report=report.slug)
    parameters = query_parameters(app)
    audit.note(report=report, parameters=parameters)
    result = runner.call(report, parameters, limits)
    audit.note(rows=result.row_count)
    metrics.add_metric(name="ReportCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ReportRows", unit=MetricUnit.Count, value=result.row_count)
    logger.info("report called", extra={"rows": result.row_count, "bytes": len(result.body)})
    return json_response(result.body, headers=snapshot_headers(result.snapshot))


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
    answer = {"ok": True, "message": "", "field": field_view(field), "choices": choices}
    return json_response(answer, headers=snapshot_headers(runner.snapshot_for(report)))


@app.post("/api/v1/nonce-tokens")
def create_nonce_token() -> Response[str]:
    """A single-use nonce for an iframe (seed 003), for one report or any the caller may read."""
    body = json_body(app, NonceRequest)
    # The views' requests count against the maker's API key: the one API Gateway counted this request on.
    usage_key = str(app.current_event.request_context.identity.api_key or "")
    principal = dataclasses.replace(caller(app), usage_key=usage_key)
    report = None
    if body.report_id is not None:
        report = find_report(catalog, principal, str(body.report_id))
        locked = {name: value if isinstance(value, list) else [value] for name, value in body.parameters.items()}
        fixed = {name: [str(v) for v in values] for name, values in locked.items()}
        audit.note(report=report, parameters=fixed)
        runner.bind(report, fixed)  # 400 if bad
    target = report_target(report) if report is not None else None
    nonce, seconds = create_nonce(embeds, principal, target, body.parameters, datetime.now(UTC), body.expires_in)
    view = f"{_stage_url()}report/view/{report.slug if report else '<report>'}/?nonce={nonce}"
    return json_response({"nonce": nonce, "expires_in": seconds, "url": view}, 201, {"Cache-Control": "no-store"})


@app.get("/report/view/<report_id>")
def report_view(report_id: str) -> Response[str]:
    """The embedded view: a first request with a nonce opens the session (its cookie) and goes to the
    same page without the nonce; then one page of rows, with the parameters the viewer chose."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    query = query_parameters(app)
    report = find_report(catalog, caller(app), report_id)
    audit.note(report=report)
    if context.get("view_session"):
        # The cookie's path is the report's own page, so that two embeds on one page keep two sessions.
        own_page = f"{_stage_url()}report/view/{report.slug}/"
        kept = urlencode({k: v for k, v in query.items() if k != NONCE_PARAMETER}, doseq=True)
        cookie = (
            f"{VIEW_COOKIE}={context['view_session']}; Max-Age={context.get('session_seconds', '0')}; "
            f"Path={own_page}; HttpOnly; Secure; SameSite=None; Partitioned"
        )
        location = own_page + (f"?{kept}" if kept else "")
        return Response(302, "text/plain", "", {"Location": location, "Set-Cookie": cookie, **SECURITY_HEADERS})
    locked: dict[str, list[str]] = json.loads(str(context.get("locked") or "{}"))
    chosen = {k: v for k, v in query.items() if k not in RESERVED}
    for name, values in locked.items():
        if name in chosen and chosen[name] != values:
            raise Forbidden(f"The parameter '{name}' is fixed by the page that shows this report")
        chosen[name] = values
    audit.note(report=report, parameters=chosen)
    page = _page_number(query.get(PAGE_PARAMETER))
    names, rows, more = runner.page(report, chosen, (page - 1) * PAGE_ROWS, PAGE_ROWS)
    audit.note(rows=len(rows))
    page_html = render_view(report, chosen, locked, names, rows, page, more)
    headers = SECURITY_HEADERS | snapshot_headers(runner.snapshot_for(report))
    return Response(200, "text/html; charset=utf-8", page_html, headers)


def _page_number(given: list[str] | None) -> int:
    if given is not None and len(given) != 1:
        raise InvalidParameter(PAGE_PARAMETER, f"'{PAGE_PARAMETER}' is given more than once")
    text = given[0] if given else "1"
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_PAGE)) and 1 <= int(text) <= MAX_PAGE):
        raise InvalidParameter(PAGE_PARAMETER, f"'{PAGE_PARAMETER}' must be a page number from 1 to {MAX_PAGE}")
    return int(text)


TEMPLATE_ONLY = "template_only"


@app.get("/template/<report_id>")
def template_page(report_id: str) -> Response[str]:
    """A template report's page (seed 000); `?template_only=Y` answers only the template's contents."""
    report = find_report(catalog, caller(app), report_id)
    logger.append_keys(report=report.slug)
    query = query_parameters(app)
    only = query.pop(TEMPLATE_ONLY, None)
    if only is not None and (len(only) != 1 or only[0].upper() not in ("Y", "N", "YES", "NO", "TRUE", "FALSE")):
        raise InvalidParameter(TEMPLATE_ONLY, f"'{TEMPLATE_ONLY}' is Y or N, once")
    audit.note(report=report, parameters=query)
    contents, rows = runner.template_page(report, query, limits, datetime.now(UTC))
    audit.note(rows=rows)
    metrics.add_metric(name="TemplatePages", unit=MetricUnit.Count, value=1)
    bare = only is not None and only[0].upper() in ("Y", "YES", "TRUE")
    from reportserver.domain.templates import whole_page  # noqa: PLC0415 - off the report calls' cold start

    page = contents if bare else whole_page(report.name, contents)
    headers = SECURITY_HEADERS | snapshot_headers(runner.snapshot_for(report))
    return Response(200, "text/html; charset=utf-8", page, headers)


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
    return audit.recorded(event, lambda: app.resolve(event, context))
