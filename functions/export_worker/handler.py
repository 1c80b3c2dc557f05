"""SQS -> export worker: each message names a ticket; failures are reported per message (partial batch)."""

from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import ReportRunner
from reportserver.domain.errors import TicketBusy
from reportserver.domain.exports import ExportWorker, WorkerPolicy, retry_delay
from reportserver.observability import logger
from reportserver.render import renderer_for, write_template_page
from reportserver.settings import ExportWorkerSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.aws import AthenaClients
from reportserver.store.catalog import CachedCatalog, DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.jobs import SqsRunQueue
from reportserver.store.queue import SqsExportQueue, ticket_id_of
from reportserver.store.secrets import SecretPasswords
from reportserver.store.snapshots import S3SnapshotCopies
from reportserver.store.tickets import DynamoTicketStore

settings = ExportWorkerSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
# A report on a data model that keeps a snapshot is exported from it, as it is called.
snapshots = S3SnapshotCopies(
    settings.catalog_table, settings.snapshot_bucket, Path(settings.snapshot_dir), settings.catalog_cache_seconds
)
worker = ExportWorker(
    catalog,
    ReportRunner(catalog, SourceOpener(SecretPasswords(), AthenaClients()), snapshots),
    DynamoTicketStore(settings.tickets_table),
    S3FileStore(settings.export_bucket),
    renderer_for,
    WorkerPolicy(
        lease_seconds=settings.lease_seconds,
        progress_seconds=settings.progress_seconds,
        scratch_dir=Path(settings.scratch_dir),
        finish_seconds=settings.finish_seconds,
        max_attempts=settings.max_receives,
    ),
    page_writer=write_template_page,
    finished=SqsRunQueue(settings.job_run_queue_url).announce_export,
)
queue = SqsExportQueue(settings.export_queue_url)
# Every record failed is reported as such (and retried), not raised as one batch error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def render_ticket(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    try:
        ticket_id = ticket_id_of(record.body)
    except ValueError as error:
        logger.error(
            "dropping a malformed export message", extra={"message_id": record.message_id, "reason": str(error)}
        )
        return "dropped"  # no retry can mend it: succeed, so that it leaves the queue
    logger.append_keys(ticket_id=ticket_id)
    receives = int(record.raw_event.get("attributes", {}).get("ApproximateReceiveCount") or 1)
    final = receives >= settings.max_receives
    try:
        if lambda_context is None:
            return worker.run(ticket_id, final_attempt=final)
        return worker.run(ticket_id, lambda: lambda_context.get_remaining_time_in_millis() / 1000, final)
    except Exception as error:
        _retry_soon(record, receives, isinstance(error, TicketBusy))
        raise


def _retry_soon(record: SQSRecord, receives: int, busy: bool) -> None:
    """The failed message comes back in seconds to minutes (`retry_delay`), not after the queue's
    visibility timeout; should that call fail, the queue's timeout still brings it back."""
    delay = retry_delay(receives, busy, settings.lease_seconds)
    try:
        queue.retry_in(record.receipt_handle, delay)
    except Exception:
        logger.exception("could not shorten the failed message's visibility", extra={"delay": delay})
        return
    logger.info("export retried later", extra={"receives": receives, "delay_seconds": delay})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=render_ticket, processor=processor, context=context)
