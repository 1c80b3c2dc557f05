"""EventBridge schedule -> export sweeper: tickets left pending or in progress get their message again,
or fail once they have had every attempt."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.exports import ExportSweeper
from reportserver.observability import logger
from reportserver.settings import SweeperSettings
from reportserver.store.queue import SqsExportQueue
from reportserver.store.tickets import DynamoTicketStore

settings = SweeperSettings.from_environ()
sweeper = ExportSweeper(
    DynamoTicketStore(settings.tickets_table),
    SqsExportQueue(settings.export_queue_url),
    stranded_seconds=settings.stranded_seconds,
    max_attempts=settings.max_receives,
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return sweeper.sweep(lambda: context.get_remaining_time_in_millis() / 1000)
