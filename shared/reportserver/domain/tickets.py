"""Export tickets: the life of one requested file, pending -> in_progress -> complete | failed.

A ticket belongs to the token that asked for it; nobody else can see it. Transitions are made by the
store with conditional writes, so a duplicate queue delivery never renders twice and a finished
ticket never moves back. A worker holds a ticket under a lease; a worker that dies (timeout, out of
memory) lets the lease run out, and the next delivery takes the ticket over with the next attempt.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from reportserver import records
from reportserver.domain.errors import InvalidParameter, NotFound
from reportserver.domain.reports import EXPORT_FORMATS, FieldType, Report

DEFAULT_FORMAT = "xlsx"
TICKET_ID_BYTES = 16


class TicketStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"


FINAL_STATUSES = frozenset({TicketStatus.COMPLETE, TicketStatus.FAILED})


class ExportTicket(msgspec.Struct, kw_only=True):
    ticket_id: str
    owner: str
    report_id: int
    report_slug: str
    report_name: str
    format: str
    parameters: dict[str, list[str]]
    cache_key: str
    csv_bom: bool = False
    status: TicketStatus = TicketStatus.PENDING
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempt: int = 0
    lease_until: datetime | None = None
    rows_written: int = 0
    total_rows: int | None = None
    total_bytes: int | None = None
    error: str | None = None
    file_key: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    cached_from: str | None = None
    expires_at: datetime

    def public_view(self) -> dict[str, Any]:
        """What the owner sees; the download link is added by the caller, signed afresh each time."""
        view: dict[str, Any] = {
            "ticket_id": self.ticket_id,
            "status": self.status.value,
            "report_id": self.report_id,
            "report_name": self.report_name,
            "report_slug": self.report_slug,
            "format": self.format,
            "parameters": {k: v[0] if len(v) == 1 else v for k, v in self.parameters.items()},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "rows_written": self.rows_written,
            "progress": _progress(self),
        }
        if self.started_at:
            view["started_at"] = self.started_at
        if self.status is TicketStatus.COMPLETE:
            view.update(
                completed_at=self.completed_at,
                total_rows=self.total_rows,
                total_bytes=self.total_bytes,
                file_name=self.file_name,
                expires_at=self.expires_at,
                cached=self.cached_from is not None,
            )
        if self.status is TicketStatus.FAILED:
            view["error"] = self.error
        return view


def _progress(ticket: ExportTicket) -> float | None:
    if ticket.status is TicketStatus.COMPLETE:
        return 1.0
    return None  # the total is unknown until the source is exhausted


class TicketStore(Protocol):
    def create(self, ticket: ExportTicket) -> None: ...

    def get(self, ticket_id: str) -> ExportTicket | None: ...

    def find_complete_by_cache_key(self, cache_key: str, not_before: datetime) -> ExportTicket | None: ...

    def claim(self, ticket_id: str, now: datetime, lease_until: datetime) -> ExportTicket:
        """pending -> in_progress, or take over an in_progress ticket whose lease ran out (attempt + 1).
        Raise `TicketConflict` otherwise, `NotFound` if there is no such ticket."""
        ...

    def record_progress(self, ticket: ExportTicket, rows_written: int, now: datetime, lease_until: datetime) -> None:
        """Only while this attempt still holds the ticket; else `TicketConflict`."""
        ...

    def complete(
        self,
        ticket: ExportTicket,
        now: datetime,
        total_rows: int,
        total_bytes: int,
        file_key: str,
        file_name: str,
        content_type: str,
    ) -> ExportTicket: ...

    def fail(self, ticket_id: str, now: datetime, message: str, attempt: int | None = None) -> ExportTicket | None:
        """Mark failed unless already final (returns None then). With `attempt`, only if that attempt holds it."""
        ...


class ExportRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of POST /api/exports/ (seeds 001 and 002)."""

    report_name: str | None = None
    report_id: str | int | None = None
    format: str = DEFAULT_FORMAT
    parameters: dict[str, str | int | float | bool | list[str | int | float | bool] | None] = msgspec.field(
        default_factory=dict
    )
    start_time: int | float | None = None
    end_time: int | float | None = None
    force_update: bool = False
    csv_bom: bool = False

    def report_reference(self) -> str:
        if self.report_id is not None and str(self.report_id).strip():
            return str(self.report_id).strip()
        if self.report_name:
            return self.report_name.strip()
        raise InvalidParameter("report_id", "Give the report as report_name (name or slug) or report_id")


def new_ticket_id() -> str:
    return secrets.token_hex(TICKET_ID_BYTES)


def check_format(report: Report, requested: str | None) -> str:
    export_format = (requested or DEFAULT_FORMAT).strip().lower()
    if export_format not in EXPORT_FORMATS:
        raise InvalidParameter("format", f"Unknown format '{export_format[:20]}'; allowed: {', '.join(EXPORT_FORMATS)}")
    if export_format not in report.formats:
        raise InvalidParameter(
            "format",
            f"Report '{report.slug}' cannot be exported as {export_format}; it allows: {', '.join(report.formats)}",
        )
    return export_format


def request_parameters(report: Report, request: ExportRequest) -> dict[str, list[str]]:
    """The request's parameters as text lists (as a query string gives them), with the time range applied."""
    raw: dict[str, list[str]] = {}
    for name, value in request.parameters.items():
        values = value if isinstance(value, list) else [value]
        raw[name] = [_as_text(v) for v in values if v is not None]
    for bound, field_name in ((request.start_time, "start_time"), (request.end_time, "end_time")):
        if bound is None:
            continue
        target = report.time_range_field(field_name)
        if target is None:
            raise InvalidParameter(field_name, f"Report '{report.slug}' does not take a time range ({field_name})")
        try:
            moment = datetime.fromtimestamp(float(bound), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidParameter(field_name, f"'{field_name}' must be UNIX seconds (UTC)") from None
        field = report.field(target)
        text = moment.date().isoformat() if field and field.type is FieldType.DATE else moment.isoformat()
        raw[target] = [text]
    return raw


def _as_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cache_key(report: Report, export_format: str, bound: Mapping[str, Any]) -> str:
    """Same report (and version), same normalised values, same format: the same file."""
    canonical = records.dumps(
        {
            "report": report.id,
            "version": report.version,
            "format": export_format,
            "parameters": {k: bound[k] for k in sorted(bound)},
        }
    )
    return hashlib.sha256(canonical).hexdigest()


def file_name(report: Report, created_at: datetime, extension: str) -> str:
    return f"{report.slug}-{created_at.strftime('%Y%m%d-%H%M%S')}.{extension}"


def own_ticket(store: TicketStore, owner: str, ticket_id: str) -> ExportTicket:
    """Another token's ticket is as unknown as a missing one: no leak that it exists."""
    ticket = store.get(ticket_id) if _plausible_id(ticket_id) else None
    if ticket is None or ticket.owner != owner:
        raise NotFound(f"Unknown export '{ticket_id[:64]}'")
    return ticket


def _plausible_id(ticket_id: str) -> bool:
    return len(ticket_id) == TICKET_ID_BYTES * 2 and all(c in "0123456789abcdef" for c in ticket_id)


def seed001_request(
    report_id: str, export_options: Mapping[str, Any], document_parameters: list[dict[str, Any]]
) -> ExportRequest:
    """Seed 001's export body as an export request: `documentParameters` is a list of named values."""
    parameters: dict[str, Any] = {}
    for entry in document_parameters:
        name = entry.get("name", entry.get("Name"))
        if not isinstance(name, str) or not name:
            raise InvalidParameter("documentParameters", "Each document parameter needs a name")
        value = entry.get("value", entry.get("Value", entry.get("values", entry.get("Values"))))
        if value is not None and not isinstance(value, str | int | float | bool | list):
            raise InvalidParameter(name, f"Parameter '{name}' must be a value or a list of values")
        parameters[name] = value
    export_format = export_options.get("exportFormat", DEFAULT_FORMAT)
    if not isinstance(export_format, str):
        raise InvalidParameter("exportFormat", "exportOptions.exportFormat must be text")
    return ExportRequest(
        report_id=report_id,
        format=export_format,
        parameters=parameters,
        force_update=bool(export_options.get("forceUpdate", False)),
    )
