"""SQS -> export worker: each message names a ticket; failures are reported per message (partial batch)."""

from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.calls import ReportRunner
from reportserver.domain.exports import ExportWorker, WorkerPolicy
from reportserver.observability import logger
from reportserver.render import renderer_for
from reportserver.settings import ExportWorkerSettings
from reportserver.sources.registry import open_source
from reportserver.store.catalog import CachedCatalog, DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.queue import ticket_id_of
from reportserver.store.tickets import DynamoTicketStore

settings = ExportWorkerSettings.from_environ()
catalog = CachedCatalog(DynamoCatalog(settings.catalog_table), settings.catalog_cache_seconds)
worker = ExportWorker(
    catalog,
    ReportRunner(catalog, open_source),
    DynamoTicketStore(settings.tickets_table),
    S3FileStore(settings.export_bucket),
    renderer_for,
    WorkerPolicy(
        lease_seconds=settings.lease_seconds,
        progress_seconds=settings.progress_seconds,
        scratch_dir=Path(settings.scratch_dir),
        finish_seconds=settings.finish_seconds,
    ),
)
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
    if lambda_context is None:
        return worker.run(ticket_id)
    return worker.run(ticket_id, lambda: lambda_context.get_remaining_time_in_millis() / 1000)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=render_ticket, processor=processor, context=context)
