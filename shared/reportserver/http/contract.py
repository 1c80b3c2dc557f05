"""The API's contract: every operation with its request and response types, and the OpenAPI 3.1
document made from them (`GET /api/openapi.json`, shown by Swagger UI at `GET /api/docs`).

The handlers' routes and `template.yaml`'s events are checked against `OPERATIONS` by tests, and the
schemathesis run checks every response against the document, so none of the three can drift.
The schemas are msgspec's (`msgspec.json.schema_components`) of the same types the handlers decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal

import msgspec

from reportserver.domain.reports import EXPORT_FORMATS
from reportserver.http.exports import DocumentExport, ExportRequest


class ErrorBody(msgspec.Struct):
    """Every refusal: a human message; `parameter` names the bad parameter of a 400."""

    ok: Literal[False]
    message: str
    parameter: str | None = None


class CallResult(msgspec.Struct):
    """Seed 000's answer: the report's rows, each column as the typing contract writes it."""

    message: str
    ok: Literal[True]
    records: list[dict[str, Any]]


class ChoiceView(msgspec.Struct):
    value: str
    label: str


class FieldView(msgspec.Struct):
    id: int
    name: str
    label: str
    type: Literal["string", "integer", "number", "date", "datetime", "boolean", "choice"]
    required: bool
    default: str | None
    field_order: int
    has_choices: bool
    choices: list[ChoiceView] | None  # static choices; None when they come from a query


class ReportView(msgspec.Struct):
    """A report as a caller sees it: never its SQL or its data source."""

    id: int
    name: str
    slug: str
    description: str
    category: str
    formats: list[str]
    groups: list[str]
    sheets: list[str]
    time_range: bool
    cache_seconds: int
    csv_neutralise_formulas: bool
    fields: list[FieldView]


class ReportList(msgspec.Struct):
    ok: Literal[True]
    message: str
    reports: list[ReportView]


class ReportDefinition(msgspec.Struct):
    ok: Literal[True]
    message: str
    report: ReportView


class FieldChoices(msgspec.Struct):
    ok: Literal[True]
    message: str
    field: FieldView
    choices: list[ChoiceView]


class ServerTime(msgspec.Struct):
    ok: Literal[True]
    message: str
    server_time: str
    epoch: float


class ServerIsoTime(msgspec.Struct):
    ok: Literal[True]
    message: str
    server_iso_time: str


TicketState = Literal["pending", "in_progress", "complete", "failed"]


class ExportAccepted(msgspec.Struct):
    ticket_id: str
    status: TicketState


class ExportStatus(msgspec.Struct, kw_only=True):
    """A ticket as its owner sees it; `report_url` (signed afresh at each read) once complete."""

    ticket_id: str
    status: TicketState
    report_id: int
    report_name: str
    report_slug: str
    format: str
    parameters: dict[str, str | list[str]]
    created_at: datetime
    updated_at: datetime
    rows_written: int
    started_at: datetime | None = None
    completed_at: datetime | None = None
    total_rows: int | None = None
    total_bytes: int | None = None
    file_name: str | None = None
    expires_at: datetime | None = None
    cached: bool | None = None
    error: str | None = None
    report_url: str | None = None
    link_expires_in: int | None = None


class DocumentExportStatus(ExportStatus, kw_only=True):
    exportId: str  # noqa: N815 - seed 001's name


class DocumentExportAccepted(msgspec.Struct):
    exportId: str  # noqa: N815 - seed 001's name
    status: TicketState


class Redirect(msgspec.Struct):
    """The body of a 302: the same signed link as the Location header."""

    report_url: str


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it answers (status -> body type, None for a non-JSON body)."""

    method: str
    path: str  # OpenAPI's form: /api/call/{report_id}
    summary: str
    responses: dict[int, tuple[type | None, str]]
    request: type | None = None
    query: tuple[tuple[str, str], ...] = ()  # documented query parameters (name, description)
    free_query: bool = False  # the report's own fields, any names
    authenticated: bool = True
    content: str = "application/json"
    tags: tuple[str, ...] = field(default_factory=tuple)


_AUTH_ERRORS: dict[int, tuple[type | None, str]] = {
    401: (ErrorBody, "No, malformed, unknown, wrong, expired or deactivated token"),
    429: (ErrorBody, "Throttled"),
}
_REPORT_ERRORS: dict[int, tuple[type | None, str]] = {
    **_AUTH_ERRORS,
    403: (ErrorBody, "The token is not in a group that may run the report"),
    404: (ErrorBody, "Unknown report"),
}
_TICKET_ERRORS: dict[int, tuple[type | None, str]] = {**_AUTH_ERRORS, 404: (ErrorBody, "Unknown export ticket")}
_EXPORT_ANSWERS: dict[int, tuple[type | None, str]] = {
    **_REPORT_ERRORS,
    400: (ErrorBody, "A bad format, parameter or body (named in `parameter`)"),
}
_FILE_ANSWERS: dict[int, tuple[type | None, str]] = {
    302: (Redirect, "To the file, by a link signed now (Location)"),
    409: (ErrorBody, "The export is not complete"),
    410: (ErrorBody, "The file has expired or was deleted"),
    **_TICKET_ERRORS,
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/call/{report_id}",
        "Run a report: its rows as records (seed 000)",
        {
            200: (CallResult, "The report's rows"),
            400: (ErrorBody, "A bad parameter (named in `parameter`)"),
            413: (ErrorBody, "More rows or bytes than a call returns: request an export"),
            502: (ErrorBody, "The data source failed, or a value does not fit its column's type"),
            **_REPORT_ERRORS,
        },
        free_query=True,
        tags=("reports",),
    ),
    Operation("GET", "/api/reports", "The reports this token may run", {200: (ReportList, "")} | _AUTH_ERRORS),
    Operation(
        "GET",
        "/report/get/{report_id}",
        "A report's definition, fields in order (no SQL)",
        {200: (ReportDefinition, "")} | _REPORT_ERRORS,
        tags=("reports",),
    ),
    Operation(
        "GET",
        "/api/choices/{field_id}",
        "The choices of a choice field",
        {
            200: (FieldChoices, ""),
            502: (ErrorBody, "The choices' query failed"),
            **_REPORT_ERRORS,
            404: (ErrorBody, "Unknown field, or not a choice field"),
        },
        tags=("reports",),
    ),
    Operation("GET", "/api/server_time", "The server's time (UTC)", {200: (ServerTime, "")} | _AUTH_ERRORS),
    Operation("GET", "/api/server_iso_time", "The server's time, ISO 8601", {200: (ServerIsoTime, "")} | _AUTH_ERRORS),
    Operation(
        "POST",
        "/api/exports",
        f"Request an export ({', '.join(EXPORT_FORMATS)}) as a ticket",
        {
            202: (ExportAccepted, "Queued"),
            200: (ExportAccepted, "The same file from the report's cache period, complete at once"),
            **_EXPORT_ANSWERS,
        },
        request=ExportRequest,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/exports/{ticket_id}",
        "An export's status",
        {200: (ExportStatus, "")} | _TICKET_ERRORS,
        tags=("exports",),
    ),
    Operation("GET", "/api/exports/{ticket_id}/download", "Go to the export's file", _FILE_ANSWERS, tags=("exports",)),
    Operation(
        "POST",
        "/api/documents/export/report/{report_id}",
        "Request an export in seed 001's shape",
        {202: (DocumentExportAccepted, "Queued"), 200: (DocumentExportAccepted, "From the cache")} | _EXPORT_ANSWERS,
        request=DocumentExport,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/documents/export/status/{export_id}",
        "An export's status (seed 001)",
        {200: (DocumentExportStatus, "")} | _TICKET_ERRORS,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/documents/export/result/{export_id}",
        "Go to the export's file (seed 001)",
        _FILE_ANSWERS,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/openapi.json",
        "This document",
        {200: (None, "The OpenAPI 3.1 document")},
        authenticated=False,
        tags=("contract",),
    ),
    Operation(
        "GET",
        "/api/docs",
        "Swagger UI for this document (works offline)",
        {200: (None, "An HTML page")},
        authenticated=False,
        content="text/html",
        tags=("contract",),
    ),
)


@cache
def openapi_document(server_url: str = "/") -> bytes:
    """The OpenAPI 3.1 document of `OPERATIONS`, as JSON."""
    types = sorted(
        {t for op in OPERATIONS for t in [op.request, *(r[0] for r in op.responses.values())] if t is not None},
        key=lambda t: t.__name__,
    )
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = {t: s for t, s in zip(types, schemas, strict=True)}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "reportserver",
            "version": "1",
            "description": "Parameterised SQL reports over HTTP, and exports to files behind temporary links.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "token name : token secret"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "the token secret"},
            },
        },
    }
    return msgspec.json.encode(document)


# What API Gateway (or a failing function) may answer on any route, whatever the route itself does.
_ANY_ROUTE: dict[int, tuple[type | None, str]] = {
    400: (ErrorBody, "A malformed request (a bad Content-Length, a chunked body)"),
    500: (ErrorBody, "An internal error (its request id is in the logs), or the authorizer failed"),
    502: (ErrorBody, "The function failed or its response was over Lambda's 6 MB"),
}
_WITH_BODY: dict[int, tuple[type | None, str]] = {413: (ErrorBody, "A request body over API Gateway's 10 MB")}


def _operation(op: Operation, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.method.lower() + "_" + op.path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
        "tags": list(op.tags),
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _path_names(op.path)
    ]
    parameters += [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
        for n, d in op.query
    ]
    if op.free_query:
        parameters.append(
            {
                "name": "fields",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "The report's fields by name (GET /report/get/{report_id} lists them)",
            }
        )
    if parameters:
        described["parameters"] = parameters
    if op.request is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[op.request]}},
        }
    described["security"] = [{"basic": []}, {"bearer": []}] if op.authenticated else []
    answers = _ANY_ROUTE | (_WITH_BODY if op.method in ("POST", "PUT", "PATCH") else {}) | op.responses
    for status, (body, description) in sorted(answers.items()):
        answer: dict[str, Any] = {"description": description or "OK"}
        if body is not None:
            answer["content"] = {"application/json": {"schema": refs[body]}}
        elif status == 200:
            answer["content"] = {op.content: {"schema": {"type": "string"} if op.content != "application/json" else {}}}
        described["responses"][str(status)] = answer
    return described


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


@cache
def swagger_page(server_url: str = "/") -> str:
    """Swagger UI on this document, in one page: its script and styles are the ones Powertools ships
    (pinned with it), so the page needs nothing from the internet."""
    from importlib import resources  # noqa: PLC0415

    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html  # noqa: PLC0415

    assets = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    script = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    spec = openapi_document(server_url).decode("utf-8").replace("</", "<\\/")  # inside a <script>
    return generate_swagger_html(spec, script, styles, "", None)
