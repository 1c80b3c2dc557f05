"""Data models' refreshes and current snapshots in DynamoDB (CatalogTable; see `store.keys`), and the
refresh queue in SQS. Every state change is a conditional write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from reportserver.domain.refreshes import (
    Refresh,
    RefreshConflict,
    RefreshMessage,
    RefreshStatus,
    SnapshotSuperseded,
)
from reportserver.domain.snapshots import Snapshot
from reportserver.store import aws, keys
from reportserver.store.items import from_document, from_item, stamp, to_document, to_item

_STORE_ONLY = ("pk", "sk")
_CONDITION_FAILED = "ConditionalCheckFailedException"
# The snapshot item's attributes are named in expressions by placeholders: `snapshot` is a reserved word.


def _refresh_key(model_id: str, refresh_id: str) -> dict[str, str]:
    return {"pk": f"{keys.REFRESH}{keys.numeric_sort_key(int(model_id))}", "sk": refresh_id}


def _snapshot_key(model_id: str) -> dict[str, str]:
    return {"pk": keys.SNAPSHOT, "sk": model_id}


class DynamoRefreshStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def start(self, refresh: Refresh, hold_until: datetime, now: datetime, finished_holder: str | None) -> str | None:
        key = _snapshot_key(refresh.model_id)
        condition = "attribute_not_exists(#active) OR #until < :now"
        values: dict[str, Any] = {":id": refresh.id, ":until": stamp(hold_until), ":now": stamp(now)}
        if finished_holder is not None:
            condition += " OR #active = :finished"
            values[":finished"] = finished_holder
        items = [
            {
                "Put": {
                    "TableName": self._table_name,
                    "Item": to_item(refresh, **_refresh_key(refresh.model_id, refresh.id)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table_name,
                    "Key": key,
                    "UpdateExpression": "SET #active = :id, #until = :until",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#active": "active", "#until": "active_until"},
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except Exception as error:
            if aws.error_code(error) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in getattr(error, "response", {}).get("CancellationReasons", [])]
            if reasons[1:2] != ["ConditionalCheckFailed"]:
                raise
            held = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
            return str(held.get("active") or "")
        return None

    def refresh(self, model_id: str, refresh_id: str) -> Refresh | None:
        item = self._table.get_item(Key=_refresh_key(model_id, refresh_id), ConsistentRead=True).get("Item")
        return from_item(item, Refresh, _STORE_ONLY) if item else None

    def refreshes(self, model_id: str, limit: int) -> list[Refresh]:
        found = self._table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _refresh_key(model_id, "")["pk"]},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_item(item, Refresh, _STORE_ONLY) for item in found.get("Items", [])]

    def claim(self, refresh: Refresh, now: datetime, lease_until: datetime) -> Refresh:
        try:
            response = self._table.update_item(
                Key=_refresh_key(refresh.model_id, refresh.id),
                UpdateExpression="SET #status = :running, #attempt = #attempt + :one, #started = :now, #lease = :lease",
                ConditionExpression="attribute_exists(pk) AND (#status = :queued OR "
                "(#status = :running AND #lease < :now))",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#attempt": "attempt",
                    "#started": "started_at",
                    "#lease": "lease_until",
                },
                ExpressionAttributeValues={
                    ":running": RefreshStatus.RUNNING.value,
                    ":queued": RefreshStatus.QUEUED.value,
                    ":one": 1,
                    ":now": stamp(now),
                    ":lease": stamp(lease_until),
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if aws.error_code(error) == _CONDITION_FAILED:
                raise RefreshConflict(f"Refresh {refresh.id} is under way or over") from None
            raise
        # The model stays held while the refresh runs (a hold that passed to another is left to it).
        aws.written(
            self._table.update_item,
            Key=_snapshot_key(refresh.model_id),
            UpdateExpression="SET #until = :lease",
            ConditionExpression="#active = :id",
            ExpressionAttributeNames={"#active": "active", "#until": "active_until"},
            ExpressionAttributeValues={":lease": stamp(lease_until), ":id": refresh.id},
        )
        return from_item(response["Attributes"], Refresh, _STORE_ONLY)

    def finish(self, refresh: Refresh) -> None:
        written = aws.written(
            self._table.put_item,
            Item=to_item(refresh, **_refresh_key(refresh.model_id, refresh.id)),
            ConditionExpression="#attempt = :attempt AND #status IN (:queued, :running)",
            ExpressionAttributeNames={"#status": "status", "#attempt": "attempt"},
            ExpressionAttributeValues={
                ":attempt": refresh.attempt,
                ":queued": RefreshStatus.QUEUED.value,
                ":running": RefreshStatus.RUNNING.value,
            },
        )
        if not written:
            raise RefreshConflict(f"Refresh {refresh.id} was taken by another attempt")

    def let_go(self, model_id: str, refresh_id: str) -> None:
        aws.written(
            self._table.update_item,
            Key=_snapshot_key(model_id),
            UpdateExpression="REMOVE #active, #until",
            ConditionExpression="#active = :id",
            ExpressionAttributeNames={"#active": "active", "#until": "active_until"},
            ExpressionAttributeValues={":id": refresh_id},
        )

    def snapshot(self, model_id: str) -> Snapshot | None:
        item = self._table.get_item(Key=_snapshot_key(model_id)).get("Item") or {}
        if "snapshot" not in item:
            return None
        snapshot = from_document(item["snapshot"], Snapshot)
        # The reports checked against it: those its refresh checked, and those saved since (`note_checked`).
        snapshot.reports = {str(k): int(v) for k, v in item.get("checked", {}).items()}
        return snapshot

    def note_checked(self, snapshot: Snapshot, report_id: int, version: int) -> None:
        aws.written(
            self._table.update_item,
            Key=_snapshot_key(snapshot.model_id),
            UpdateExpression="SET #checked.#report = :version",
            ConditionExpression="#taken = :taken",
            ExpressionAttributeNames={"#checked": "checked", "#report": str(report_id), "#taken": "taken_at"},
            ExpressionAttributeValues={":version": version, ":taken": stamp(snapshot.taken_at)},
        )

    def replace_snapshot(self, snapshot: Snapshot) -> Snapshot | None:
        try:
            response = self._table.update_item(
                Key=_snapshot_key(snapshot.model_id),
                UpdateExpression="SET #snapshot = :snapshot, #taken = :taken, #checked = :checked",
                ConditionExpression="attribute_not_exists(#taken) OR #taken < :taken",
                ExpressionAttributeNames={"#snapshot": "snapshot", "#taken": "taken_at", "#checked": "checked"},
                ExpressionAttributeValues={
                    ":snapshot": to_document(snapshot),
                    ":taken": stamp(snapshot.taken_at),
                    ":checked": snapshot.reports,
                },
                ReturnValues="UPDATED_OLD",
            )
        except Exception as error:
            if aws.error_code(error) == _CONDITION_FAILED:
                raise SnapshotSuperseded(
                    f"Data model {snapshot.model_id} has a snapshot as new as this one or newer"
                ) from None
            raise
        old = response.get("Attributes", {}).get("snapshot")
        return from_document(old, Snapshot) if old else None


class SqsRefreshQueue:
    def __init__(self, queue_url: str) -> None:
        self._url = queue_url  # given by the template (!Ref): looking it up would need sqs:GetQueueUrl

    def send(self, message: RefreshMessage) -> None:
        aws.sqs().send_message(QueueUrl=self._url, MessageBody=msgspec.json.encode(message).decode())


def refresh_message_of(body: str) -> RefreshMessage:
    """The refresh a queue message names; a malformed message raises ValueError."""
    try:
        return msgspec.json.decode(body, type=RefreshMessage)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ValueError("refresh message does not name a data model and a refresh") from None
