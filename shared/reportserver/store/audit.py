"""Audit records in DynamoDB (AuditTable; see `store.keys`): written in batches, read newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from reportserver.domain.audit import AuditRecord, AuditSearch
from reportserver.domain.errors import InvalidParameter
from reportserver.store import aws, keys
from reportserver.store.items import from_item, stamp, to_item

_STORE_ONLY = ("pk", "sk", "ttl")
DAYS_A_PAGE = 31
# Queries a request makes at most on one day or index: a filter that matches little (a principal's
# records of one report) answers with a cursor, never with a read of everything.
PAGES_A_REQUEST = 10
_CURSOR_KEYS = frozenset({"pk", "sk", "principal", "report", "day"})


class DynamoAuditStore:
    def __init__(self, table_name: str, retention_days: int = 90) -> None:
        self._table_name = table_name
        self._retention = timedelta(days=retention_days)

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def _item(self, record: AuditRecord) -> dict[str, Any]:
        item = to_item(
            record,
            pk=keys.AUDIT_DAY + record.at.strftime("%Y-%m-%d"),
            sk=f"{stamp(record.at)}#{record.request_id}",
            ttl=int((record.at + self._retention).timestamp()),
        )
        if not item.get("report"):
            item.pop("report", None)  # the index ByReport is sparse: a key attribute is never empty
        return item

    def put_records(self, records: Sequence[AuditRecord]) -> None:
        """Stored in batches (boto3's batch writer: 25 a request, what DynamoDB leaves unprocessed sent
        again). The same record twice (a log line delivered twice) is one item: its key is its time and id."""
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for record in records:
                batch.put_item(Item=self._item(record))

    def query(self, search: AuditSearch, start_after: Any) -> tuple[list[AuditRecord], Any]:
        position = _checked_cursor(start_after)
        low, high = stamp(search.since), stamp(search.until) + "~"  # '~' after every request id
        if search.principal is not None or search.report is not None:
            by = "principal" if search.principal is not None else "report"
            request: dict[str, Any] = {
                "IndexName": keys.AUDIT_BY_PRINCIPAL if by == "principal" else keys.AUDIT_BY_REPORT,
                "KeyConditionExpression": "#k = :k AND sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#k": by},
                "ExpressionAttributeValues": {":k": getattr(search, by), ":low": low, ":high": high},
            }
            if by == "principal" and search.report is not None:
                request["FilterExpression"] = "report = :r"
                request["ExpressionAttributeValues"][":r"] = search.report
            return self._collect(request, search.limit, position, None)
        return self._by_days(search, low, high, position)

    def _by_days(self, search: AuditSearch, low: str, high: str, position: Any) -> tuple[list[AuditRecord], Any]:
        day = search.until.date()
        day_text = position.pop("day", None) if position is not None else None
        if day_text is not None:
            day = datetime.strptime(day_text, "%Y-%m-%d").date()
        found: list[AuditRecord] = []
        walked = 0
        # At most DAYS_A_PAGE days are read a request: a sparse log over a long range answers with a
        # cursor to go on from, never with one request that reads every day of the range.
        while day >= search.since.date() and len(found) < search.limit and walked < DAYS_A_PAGE:
            walked += 1
            request = {
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {":pk": keys.AUDIT_DAY + day.isoformat(), ":low": low, ":high": high},
            }
            page, after = self._collect(request, search.limit - len(found), position or None, day.isoformat())
            found += page
            position = None
            if after is not None:
                return found, after
            day -= timedelta(days=1)
        more = day >= search.since.date()
        return found, ({"day": day.isoformat()} if more else None)

    def _collect(
        self, request: dict[str, Any], limit: int, position: Any, day: str | None
    ) -> tuple[list[AuditRecord], Any]:
        found: list[AuditRecord] = []
        request = {**request, "ScanIndexForward": False}
        if position:
            request["ExclusiveStartKey"] = position
        pages = 0
        while len(found) < limit and pages < PAGES_A_REQUEST:
            pages += 1
            try:
                page = self._table.query(**request, Limit=limit - len(found))
            except Exception as error:
                if aws.error_code(error) == "ValidationException":  # a start key DynamoDB will not take
                    raise InvalidParameter("cursor", "'cursor' is not one this server gave") from None
                raise
            found += [from_item(i, AuditRecord, _STORE_ONLY) for i in page.get("Items", [])]
            last = page.get("LastEvaluatedKey")
            if last is None:
                return found, None
            request["ExclusiveStartKey"] = last
        last = request.get("ExclusiveStartKey")
        if last is None:
            return found, None
        return found, ({**last, "day": day} if day is not None else dict(last))


def _checked_cursor(cursor: Any) -> Any:
    """A cursor is what this store gave: a few key names, each a short string. Anything else is a 400
    (never handed to DynamoDB, which would answer a malformed key with an error of its own)."""
    if cursor is None:
        return None
    if (
        not isinstance(cursor, dict)
        or not set(cursor) <= _CURSOR_KEYS
        or not all(isinstance(v, str) and 0 < len(v) <= 300 for v in cursor.values())
        or ("day" in cursor and not _is_day(cursor["day"]))
    ):
        raise InvalidParameter("cursor", "'cursor' is not one this server gave")
    return dict(cursor)


def _is_day(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True
