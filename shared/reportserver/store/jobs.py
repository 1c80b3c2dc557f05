"""Jobs in DynamoDB (JobsTable; see `store.keys`) and their schedules in EventBridge Scheduler."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from reportserver.domain.bursts import RecipientMessage
from reportserver.domain.errors import AlreadyExists, VersionConflict
from reportserver.domain.job_runs import OPEN_STATUSES, DeliveryMessage, JobRun, RunMessage, key_time
from reportserver.domain.jobs import Job
from reportserver.domain.links import DownloadLink
from reportserver.domain.schedules import SchedulerExpression
from reportserver.store import aws, keys
from reportserver.store.items import from_document, to_document

RECORD_GRACE = timedelta(days=2)


class DynamoJobStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def next_job_id(self) -> int:
        response = self._table.update_item(
            Key={"pk": keys.COUNTER, "sk": "job"},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"])

    def job(self, job_id: int) -> Job | None:
        item = self._table.get_item(Key={"pk": keys.JOB, "sk": keys.numeric_sort_key(job_id)}).get("Item")
        return from_document(item["definition"], Job) if item else None

    def jobs(self) -> list[Job]:
        found = aws.pages(
            self._table.query, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": keys.JOB}
        )
        return [from_document(i["definition"], Job) for page in found for i in page.get("Items", [])]

    @staticmethod
    def _item(job: Job) -> dict[str, Any]:
        return {
            "pk": keys.JOB,
            "sk": keys.numeric_sort_key(job.id),
            "version": job.version,
            "document_id": job.body.documentId,
            "definition": to_document(job),
        }

    def create_job(self, job: Job) -> None:
        if not aws.written(self._table.put_item, Item=self._item(job), ConditionExpression="attribute_not_exists(pk)"):
            raise AlreadyExists(f"Job {job.id} exists already")

    def replace_job(self, job: Job, previous_version: int) -> None:
        if not aws.written(
            self._table.put_item,
            Item=self._item(job),
            ConditionExpression="#v = :previous",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":previous": previous_version},
        ):
            raise VersionConflict(f"Job {job.id} has changed or was deleted since it was read: read it again")

    def delete_job(self, job: Job) -> None:
        if not aws.written(
            self._table.delete_item,
            Key={"pk": keys.JOB, "sk": keys.numeric_sort_key(job.id)},
            ConditionExpression="#v = :version",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":version": job.version},
        ):
            raise VersionConflict(f"Job {job.id} has changed or was deleted since it was read: read it again")

    # Runs (job results)

    @staticmethod
    def _run_item(run: JobRun) -> dict[str, Any]:
        item = {
            "pk": f"{keys.RUN}{keys.numeric_sort_key(run.job_id)}",
            "sk": run.key,
            "status": run.status,
            "lease": int(run.lease_until.timestamp()) if run.lease_until else 0,
            "definition": to_document(run),
            # Two days past its retention: the sweeper removes its file (RunFiles) before DynamoDB removes it.
            "ttl": int((run.expires_at + RECORD_GRACE).timestamp()),
            "updated": int(run.updated_at.timestamp()),
        }
        if run.status in OPEN_STATUSES:
            item["open_runs"] = "OPEN"  # in the OpenRuns index until it ends
        if run.file_key and not run.file_deleted:
            item["kept_file"], item["file_expires"] = "FILE", int(run.expires_at.timestamp())
        return item

    def expired_files(self, before: datetime) -> list[tuple[int, str]]:
        from boto3.dynamodb.conditions import Key  # noqa: PLC0415 - boto3 only once a function calls AWS

        condition = Key("kept_file").eq("FILE") & Key("file_expires").lt(int(before.timestamp()))
        found = aws.pages(self._table.query, IndexName=keys.RUN_FILES_INDEX, KeyConditionExpression=condition)
        return [(int(i["pk"][len(keys.RUN) :]), str(i["sk"])) for page in found for i in page.get("Items", [])]

    def open_runs(self, before: datetime) -> list[tuple[int, str]]:
        """(job id, run key) of the runs not ended whose last change is before `before`, oldest first."""
        from boto3.dynamodb.conditions import Key  # noqa: PLC0415 - boto3 only once a function calls AWS

        condition = Key("open_runs").eq("OPEN") & Key("updated").lt(int(before.timestamp()))
        found = aws.pages(self._table.query, IndexName=keys.OPEN_RUNS_INDEX, KeyConditionExpression=condition)
        return [(int(i["pk"][len(keys.RUN) :]), str(i["sk"])) for page in found for i in page.get("Items", [])]

    def record_run(self, run: JobRun) -> bool:
        item = self._run_item(run)
        return aws.written(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def update_run(self, run: JobRun) -> None:
        self._table.put_item(Item=self._run_item(run))

    def update_exporting_run(self, run: JobRun) -> bool:
        return aws.written(
            self._table.put_item,
            Item=self._run_item(run),
            ConditionExpression="#s = :exporting",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":exporting": "exporting"},
        )

    def claim_run(self, run: JobRun, now: datetime) -> bool:
        return aws.written(
            self._table.put_item,
            Item=self._run_item(run),
            ConditionExpression="#s = :exporting OR (#s = :delivering AND #lease < :now)",
            ExpressionAttributeNames={"#s": "status", "#lease": "lease"},
            ExpressionAttributeValues={
                ":exporting": "exporting",
                ":delivering": "delivering",
                ":now": int(now.timestamp()),
            },
        )

    def run(self, job_id: int, key: str) -> JobRun | None:
        item = self._table.get_item(Key={"pk": f"{keys.RUN}{keys.numeric_sort_key(job_id)}", "sk": key}).get("Item")
        return from_document(item["definition"], JobRun) if item else None

    def runs(self, job_id: int, since: datetime, until: datetime) -> list[JobRun]:
        """The job's runs from `since` to `until` (UTC), oldest first; a record past its TTL that DynamoDB has
        not removed yet is not shown."""
        from boto3.dynamodb.conditions import Key  # noqa: PLC0415 - boto3 only once a function calls AWS

        condition = Key("pk").eq(f"{keys.RUN}{keys.numeric_sort_key(job_id)}") & Key("sk").between(
            key_time(since), key_time(until) + "~"
        )
        found = aws.pages(self._table.query, KeyConditionExpression=condition)
        now = datetime.now(since.tzinfo)
        runs = [from_document(i["definition"], JobRun) for page in found for i in page.get("Items", [])]
        return [r for r in runs if r.expires_at > now]

    # Mails sent (SES's message id -> their run), so that SES's bounces find their run

    def record_mail(self, message_id: str, run: JobRun) -> None:
        item = {"pk": f"{keys.MAIL}{message_id}", "sk": keys.MAIL, "job_id": run.job_id, "run": run.key,
                "ttl": int((run.expires_at + RECORD_GRACE).timestamp())}  # fmt: skip
        self._table.put_item(Item=item)

    def mail_run(self, message_id: str) -> tuple[int, str] | None:
        item = self._table.get_item(Key={"pk": f"{keys.MAIL}{message_id}", "sk": keys.MAIL}).get("Item")
        return (int(item["job_id"]), str(item["run"])) if item else None

    # Links in mails (`domain.links`): by the secret's hash, with the run's TTL

    @staticmethod
    def _link_key(link_hash: str) -> dict[str, str]:
        return {"pk": f"{keys.LINK}{link_hash}", "sk": keys.LINK}

    def _link_item(self, link: DownloadLink) -> dict[str, Any]:
        ttl = int(link.expires_at.timestamp())
        return {**self._link_key(link.link_hash), "definition": to_document(link), "ttl": ttl}

    def put_link(self, link: DownloadLink) -> None:
        self._table.put_item(Item=self._link_item(link))

    def link(self, link_hash: str) -> DownloadLink | None:
        item = self._table.get_item(Key=self._link_key(link_hash)).get("Item")
        return from_document(item["definition"], DownloadLink) if item else None

    def revoke_link(self, link_hash: str) -> bool:
        link = self.link(link_hash)
        if link is None:
            return False
        item = self._link_item(msgspec.structs.replace(link, revoked=True))
        return aws.written(self._table.put_item, Item=item, ConditionExpression="attribute_exists(pk)")


class SqsRunQueue:
    """The job-run queue: runs asked over the API (the schedules send to it themselves), and the export
    worker's word that a run's file is made."""

    def __init__(self, queue_url: str) -> None:
        self._url = queue_url

    def send(self, message: RunMessage) -> None:
        aws.sqs().send_message(QueueUrl=self._url, MessageBody=msgspec.json.encode(message).decode())

    def send_recipients(self, messages: Sequence[RecipientMessage]) -> None:
        """One message per recipient, ten to a call; raises if SQS did not take them all (a retried start
        sends them again: each recipient's run is recorded once)."""
        client = aws.sqs()
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(n), "MessageBody": msgspec.json.encode(m).decode()}
                for n, m in enumerate(messages[start : start + 10])
            ]
            failed = client.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed") or []
            if failed:
                raise RuntimeError(f"{len(failed)} recipients' messages were not queued: {failed[0].get('Code')}")

    def announce_export(self, run: str) -> None:
        """The export worker's word that a run's ticket is finished (`run`: "<job id>:<run key>")."""
        job_id, _colon, key = run.partition(":")
        message = DeliveryMessage(job_id=int(job_id), deliver=key)
        aws.sqs().send_message(QueueUrl=self._url, MessageBody=msgspec.json.encode(message).decode())


class SchedulerJobSchedules:
    """One EventBridge Scheduler schedule a job (`job-<id>`), in the stack's schedule group, firing a
    message `{"job_id": <id>, "version": <the job's version>}` into the job-run queue with the role
    Scheduler assumes to send it. A one-time `at()` schedule deletes itself once it has fired (the next
    is made when the run starts)."""

    def __init__(self, group: str, queue_arn: str, role_arn: str) -> None:
        self._group = group
        self._queue_arn = queue_arn
        self._role_arn = role_arn

    @staticmethod
    def name(job_id: int) -> str:
        return f"job-{job_id}"

    def put(self, job_id: int, version: int, expression: SchedulerExpression, enabled: bool) -> None:
        request: dict[str, Any] = {
            "Name": self.name(job_id),
            "GroupName": self._group,
            "ScheduleExpression": expression.expression,
            "ScheduleExpressionTimezone": expression.zone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {
                "Arn": self._queue_arn,
                "RoleArn": self._role_arn,
                # Scheduler fills in the time each run was scheduled for: the run's key (a message sent twice
                # is one run).
                "Input": json.dumps(
                    {"job_id": job_id, "version": version, "scheduled_time": "<aws.scheduler.scheduled-time>"}
                ),
                # Scheduler's own retries of a send the queue refused; the runs' retries are the queue's.
                "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
            },
            "ActionAfterCompletion": "NONE" if expression.recurring else "DELETE",
        }
        client = aws.scheduler()
        try:
            client.update_schedule(**request)
        except Exception as error:
            # Update first: a job is saved more often than made. One that fired and deleted itself (`at()`)
            # or was never made is created.
            if aws.error_code(error) != "ResourceNotFoundException":
                raise
            client.create_schedule(**request)

    def delete(self, job_id: int) -> None:
        try:
            aws.scheduler().delete_schedule(Name=self.name(job_id), GroupName=self._group)
        except Exception as error:
            if aws.error_code(error) != "ResourceNotFoundException":  # gone already (an `at()` that fired)
                raise
