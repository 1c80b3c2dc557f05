"""SQS -> refresh worker: each message names one refresh of a data model's snapshot, run start to end."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.ports import DataSource
from reportserver.domain.refreshes import RefreshPolicy, RefreshWorker
from reportserver.observability import logger
from reportserver.settings import DataRefreshSettings
from reportserver.sources.registry import SourceOpener, at_one_moment
from reportserver.sources.snapshot import SqliteSnapshot
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.refreshes import DynamoRefreshStore, refresh_message_of
from reportserver.store.secrets import SecretPasswords
from reportserver.store.snapshots import S3SnapshotFiles

settings = DataRefreshSettings.from_environ()


def _new_snapshot(path: Path, model: DataSource) -> SqliteSnapshot:
    return SqliteSnapshot(path, settings.max_bytes, model.query_timeout_seconds)


worker = RefreshWorker(
    catalog=DynamoCatalog(settings.catalog_table),  # read afresh: a refresh keeps the model as it is now
    store=DynamoRefreshStore(settings.catalog_table),
    # A password just changed is read at once; snapshots are of PostgreSQL and SQLite models only.
    read_live=at_one_moment(SourceOpener(SecretPasswords(ttl_seconds=0))),
    new_file=_new_snapshot,
    files=S3SnapshotFiles(settings.snapshot_bucket),
    policy=RefreshPolicy(
        lease_seconds=settings.lease_seconds,
        scratch_dir=Path(settings.scratch_dir),
        max_bytes=settings.max_bytes,
    ),
    clock=lambda: datetime.now(UTC),
)
# Every record failed is reported as such (and retried), not raised as one batch error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def run_refresh(record: SQSRecord) -> str:
    try:
        message = refresh_message_of(record.body)
    except ValueError as error:
        reason = {"message_id": record.message_id, "reason": str(error)}
        logger.error("dropping a malformed refresh message", extra=reason)
        return "dropped"  # no retry can mend it: succeed, so that it leaves the queue
    logger.append_keys(data_model=message.model_id, refresh=message.refresh_id)
    return worker.run(message.model_id, message.refresh_id)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=run_refresh, processor=processor, context=context)
