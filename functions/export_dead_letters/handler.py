"""The export dead-letter queue -> failed tickets: a message that died there never leaves its ticket
pending or in progress for ever."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.exports import fail_dead_letter, utc_now
from reportserver.observability import logger
from reportserver.settings import DeadLetterSettings
from reportserver.store.queue import ticket_id_of
from reportserver.store.tickets import DynamoTicketStore

settings = DeadLetterSettings.from_environ()
tickets = DynamoTicketStore(settings.tickets_table)
clock = utc_now  # (tests move it with the worker's)
# Every record failed is reported as such (and retried), not raised as one batch error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def fail_ticket(record: SQSRecord) -> bool:
    try:
        ticket_id = ticket_id_of(record.body)
    except ValueError:
        logger.error("malformed message in the dead-letter queue", extra={"message_id": record.message_id})
        return False
    failed = fail_dead_letter(tickets, ticket_id, clock())
    logger.warning("export dead-lettered", extra={"ticket_id": ticket_id, "ticket_failed": failed})
    return failed


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=fail_ticket, processor=processor, context=context)
