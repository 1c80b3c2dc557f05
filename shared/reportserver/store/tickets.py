"""Export tickets in DynamoDB (TicketsTable; see `store.keys`), every transition a conditional write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reportserver.domain.errors import NotFound, TicketConflict
from reportserver.domain.tickets import ExportTicket, TicketStatus
from reportserver.store import aws, keys
from reportserver.store.items import attribute, from_item, stamp, to_item

_CONDITION_FAILED = ("ConditionalCheckFailedException",)


STORE_ONLY = ("ttl", "complete_cache_key")


def _item(ticket: ExportTicket) -> dict[str, Any]:
    return to_item(ticket, ttl=int(ticket.expires_at.timestamp()))


def _ticket(item: dict[str, Any]) -> ExportTicket:
    return from_item(item, ExportTicket, STORE_ONLY)


class DynamoTicketStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def create(self, ticket: ExportTicket) -> None:
        # Never indexed by cache key here: only a render (`complete`) starts a cache period. A ticket
        # created complete is a copy of a cached file, and indexing it would restart the period.
        item = _item(ticket)
        if not aws.written(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(ticket_id)"):
            raise TicketConflict(f"Export ticket {ticket.ticket_id} exists already")

    def get(self, ticket_id: str) -> ExportTicket | None:
        item = self._table.get_item(Key={"ticket_id": ticket_id}, ConsistentRead=True).get("Item")
        return _ticket(item) if item else None

    def find_complete_by_cache_key(self, cache_key: str, not_before: datetime) -> ExportTicket | None:
        response = self._table.query(
            IndexName=keys.CACHE_INDEX,
            KeyConditionExpression="complete_cache_key = :k AND completed_at >= :t",
            ExpressionAttributeValues={":k": cache_key, ":t": stamp(not_before)},
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        return _ticket(items[0]) if items else None

    def untouched(self, status: TicketStatus, updated_before: datetime) -> list[ExportTicket]:
        found = aws.pages(
            self._table.query,
            IndexName=keys.STATUS_INDEX,
            KeyConditionExpression="#s = :s AND updated_at < :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status.value, ":t": stamp(updated_before)},
        )
        return [_ticket(item) for page in found for item in page.get("Items", [])]

    def nudge(self, ticket: ExportTicket, now: datetime) -> bool:
        try:
            self._update(
                ticket.ticket_id,
                {"updated_at": now},
                "#status = :status AND #attempt = :attempt AND updated_at = :seen",
                {":status": ticket.status.value, ":attempt": ticket.attempt, ":seen": stamp(ticket.updated_at)},
            )
        except TicketConflict:
            return False
        return True

    def count_open(self, owner: str, created_since: datetime) -> int:
        found = aws.pages(
            self._table.query,
            IndexName=keys.OWNER_INDEX,
            KeyConditionExpression="#o = :o AND created_at >= :t",
            FilterExpression="#s IN (:pending, :running)",
            ExpressionAttributeNames={"#o": "owner", "#s": "status"},
            ExpressionAttributeValues={
                ":o": owner,
                ":t": stamp(created_since),
                ":pending": TicketStatus.PENDING.value,
                ":running": TicketStatus.IN_PROGRESS.value,
            },
            Select="COUNT",
        )
        return sum(int(page.get("Count", 0)) for page in found)

    def _update(
        self, ticket_id: str, changes: dict[str, Any], condition: str, condition_values: dict[str, Any]
    ) -> ExportTicket:
        names = {f"#{k}": k for k in changes}
        names |= {f"#{k}": k for k in ("status", "attempt") if f"#{k}" in condition}
        values = {f":{k}": v for k, v in attribute(changes).items()} | condition_values
        assignments = ", ".join(f"#{k} = :{k}" for k in changes)
        try:
            response = self._table.update_item(
                Key={"ticket_id": ticket_id},
                UpdateExpression=f"SET {assignments}",
                ConditionExpression=f"attribute_exists(ticket_id) AND ({condition})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if aws.error_code(error) in _CONDITION_FAILED:
                raise TicketConflict(f"Export '{ticket_id}' cannot make that change from its current state") from None
            raise
        return _ticket(response["Attributes"])

    def claim(self, ticket_id: str, now: datetime, lease_until: datetime) -> ExportTicket:
        current = self.get(ticket_id)
        if current is None:
            raise NotFound(f"Unknown export '{ticket_id}'")
        changes = {
            "status": TicketStatus.IN_PROGRESS,
            "attempt": current.attempt + 1,
            "lease_until": lease_until,
            "updated_at": now,
            "rows_written": 0,
        }
        if current.started_at is None:
            changes["started_at"] = now
        # Taken only from the state just read: pending, or in progress under a lease that ran out.
        condition = "#attempt = :seen AND (#status = :pending OR (#status = :in_progress AND lease_until < :now))"
        return self._update(
            ticket_id,
            changes,
            condition,
            {
                ":seen": current.attempt,
                ":pending": TicketStatus.PENDING.value,
                ":in_progress": TicketStatus.IN_PROGRESS.value,
                ":now": stamp(now),
            },
        )

    def record_progress(self, ticket: ExportTicket, rows_written: int, now: datetime, lease_until: datetime) -> None:
        self._update(
            ticket.ticket_id,
            {"rows_written": rows_written, "updated_at": now, "lease_until": lease_until},
            "#status = :in_progress AND #attempt = :attempt",
            {":in_progress": TicketStatus.IN_PROGRESS.value, ":attempt": ticket.attempt},
        )

    def complete(
        self,
        ticket: ExportTicket,
        now: datetime,
        total_rows: int,
        total_bytes: int,
        file_key: str,
        file_name: str,
        content_type: str,
    ) -> ExportTicket:
        changes = {
            "status": TicketStatus.COMPLETE,
            "completed_at": now,
            "updated_at": now,
            "rows_written": total_rows,
            "total_rows": total_rows,
            "total_bytes": total_bytes,
            "file_key": file_key,
            "file_name": file_name,
            "content_type": content_type,
            "complete_cache_key": ticket.cache_key,
        }
        return self._update(
            ticket.ticket_id,
            changes,
            "#status = :in_progress AND #attempt = :attempt",
            {":in_progress": TicketStatus.IN_PROGRESS.value, ":attempt": ticket.attempt},
        )

    def fail(self, ticket_id: str, now: datetime, message: str, attempt: int | None = None) -> ExportTicket | None:
        condition = "#status IN (:pending, :in_progress)"
        values: dict[str, Any] = {
            ":pending": TicketStatus.PENDING.value,
            ":in_progress": TicketStatus.IN_PROGRESS.value,
        }
        if attempt is not None:
            condition += " AND #attempt = :attempt"
            values[":attempt"] = attempt
        try:
            return self._update(
                ticket_id, {"status": TicketStatus.FAILED, "error": message, "updated_at": now}, condition, values
            )
        except TicketConflict:
            return None
