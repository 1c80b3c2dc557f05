"""Export tickets: the life of one requested file, pending -> in_progress -> complete | failed.

A ticket belongs to the token that asked for it; nobody else can see it. Transitions are made by the
store with conditional writes, so a duplicate queue delivery never renders twice and a finished
ticket never moves back. A worker holds a ticket under a lease; a worker that dies (timeout, out of
memory) lets the lease run out, and the next delivery takes the ticket over with the next attempt.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from reportserver.domain.errors import NotFound, shown

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
    csv_neutralise_formulas: bool = True
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
    run: str | None = None  # the job run it is for ("<job id>:<run key>"), if any

    def shown_parameters(self) -> dict[str, str | list[str]]:
        """The values as a person gave them: one value as itself, several as a list."""
        return {k: v[0] if len(v) == 1 else v for k, v in self.parameters.items()}

    def public_view(self) -> dict[str, Any]:
        """What the owner sees; the download link is added by the caller, signed afresh each time."""
        view: dict[str, Any] = {
            "ticket_id": self.ticket_id,
            "status": self.status.value,
            "report_id": self.report_id,
            "report_name": self.report_name,
            "report_slug": self.report_slug,
            "format": self.format,
            "parameters": self.shown_parameters(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "rows_written": self.rows_written,
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


class TicketStore(Protocol):
    def create(self, ticket: ExportTicket) -> None: ...

    def get(self, ticket_id: str) -> ExportTicket | None: ...

    def find_complete_by_cache_key(self, cache_key: str, not_before: datetime) -> ExportTicket | None: ...

    def untouched(self, status: TicketStatus, updated_before: datetime) -> list[ExportTicket]:
        """Tickets in this state whose last change is older than `updated_before`."""
        ...

    def nudge(self, ticket: ExportTicket, now: datetime) -> bool:
        """Mark a ticket as looked at now, if it is still as read; False when it changed meanwhile."""
        ...

    def count_open(self, owner: str, created_since: datetime) -> int:
        """How many of an owner's tickets created since then are pending or in progress."""
        ...

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


def new_ticket_id() -> str:
    return secrets.token_hex(TICKET_ID_BYTES)


def own_ticket(store: TicketStore, owner: str, ticket_id: str) -> ExportTicket:
    """Another token's ticket is as unknown as a missing one: no leak that it exists."""
    ticket = store.get(ticket_id) if _plausible_id(ticket_id) else None
    if ticket is None or ticket.owner != owner:
        raise NotFound(f"Unknown export '{shown(ticket_id)}'")
    return ticket


def _plausible_id(ticket_id: str) -> bool:
    return len(ticket_id) == TICKET_ID_BYTES * 2 and all(c in "0123456789abcdef" for c in ticket_id)
