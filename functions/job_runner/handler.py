"""SQS (the job-run queue) -> job runner: each message starts one run of a job as an export ticket."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.bursts import RecipientMessage, member_rows
from reportserver.domain.calls import ReportRunner
from reportserver.domain.exports import ExportPolicy, ExportService
from reportserver.domain.identity import User, UserGroup
from reportserver.domain.job_runs import DeliveryMessage, JobRunner, MailEvent, RunMessage
from reportserver.domain.refreshes import Refreshes
from reportserver.domain.tokens import ApiToken
from reportserver.observability import logger
from reportserver.settings import JobRunnerSettings
from reportserver.sources.registry import SourceOpener
from reportserver.store.aws import AthenaClients
from reportserver.store.catalog import DynamoCatalog
from reportserver.store.files import S3FileStore
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.jobs import DynamoJobStore, SchedulerJobSchedules, SqsRunQueue
from reportserver.store.mail import SesMailer
from reportserver.store.queue import SqsExportQueue
from reportserver.store.refreshes import DynamoRefreshStore, SqsRefreshQueue
from reportserver.store.secrets import SecretPasswords
from reportserver.store.tickets import DynamoTicketStore
from reportserver.store.tokens import DynamoTokenStore

settings = JobRunnerSettings.from_environ()
catalog = DynamoCatalog(settings.catalog_table)  # not cached: a run reads the report as it is now
jobs = DynamoJobStore(settings.jobs_table)


@dataclass(frozen=True)
class Owners:
    """Where a job's owner is found: its token, or its user and the groups."""

    tokens: DynamoTokenStore
    identity: DynamoIdentityStore

    def token(self, name: str) -> ApiToken | None:
        return self.tokens.find_by_name(name, fresh=True)

    def user_by_name(self, name: str) -> User | None:
        return self.identity.user_by_name(name)

    def groups(self) -> list[UserGroup]:
        return self.identity.groups()


identity = DynamoIdentityStore(settings.identity_table)
tickets = DynamoTicketStore(settings.tickets_table)
files = S3FileStore(settings.export_bucket)


def _user_email(user_id: int) -> str | None:
    user = identity.user(user_id)
    return user.email if user is not None and user.active else None


sources = SourceOpener(SecretPasswords(), AthenaClients())
refreshes = Refreshes(
    catalog=catalog,
    store=DynamoRefreshStore(settings.catalog_table),
    queue=SqsRefreshQueue(settings.refresh_queue_url),
    clock=lambda: datetime.now(UTC),
)
runner = JobRunner(
    jobs=jobs,
    runs=jobs,
    schedules=SchedulerJobSchedules(settings.schedule_group, settings.job_run_queue_arn, settings.scheduler_role_arn),
    owners=Owners(DynamoTokenStore(settings.tokens_table), identity),
    exporter=ExportService(
        catalog,
        # Never opens a source here: a run's choices read from the database are checked by the worker.
        ReportRunner(catalog, sources),
        tickets,
        SqsExportQueue(settings.export_queue_url),
        files,
        ExportPolicy(retention_days=settings.retention_days, link_seconds=300),
    ),
    clock=lambda: datetime.now(UTC),
    ticket=tickets.get,
    files=files,
    user_email=_user_email,
    mailer=SesMailer(settings.mail_from, settings.mail_configuration_set),
    sender=settings.mail_from,
    links=jobs,
    service_url=settings.service_url,
    member_rows=lambda model_id, member: member_rows(model_id, member, catalog.data_source, sources),
    recipient_queue=SqsRunQueue(settings.job_run_queue_url),
    refresh=lambda principal, model_id: refreshes.request(principal, model_id, "schedule")[0].id,
)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


Message = TypeVar("Message", bound=msgspec.Struct)


def _decoded(body: str, kind: type[Message]) -> Message | None:
    """The message as a `kind`, or None when it is another kind (or none at all)."""
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def start_run(record: SQSRecord) -> str:
    """One job-run queue message, whichever of its kinds it is: a finished export to deliver, one recipient
    of a per-recipient run, SES's word on a sent mail, or a run to start."""
    if (delivery := _decoded(record.body, DeliveryMessage)) is not None:
        logger.append_keys(job_id=delivery.job_id)
        return runner.deliver(delivery)
    recipient = _decoded(record.body, RecipientMessage)
    if recipient is not None and _keyed(recipient):
        logger.append_keys(job_id=recipient.job_id)
        return runner.start_recipient(recipient)
    if (event := _decoded(record.body, MailEvent)) is not None:  # SES's bounce or complaint, by SNS
        return runner.mail_event(event)
    try:
        message = msgspec.json.decode(record.body, type=RunMessage)
        message.key()  # its time is readable
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        dropped = {"message_id": record.message_id, "reason": str(error)}
        logger.error("dropping a malformed job-run message", extra=dropped)
        return "dropped"  # no retry can mend it: succeed, so that it leaves the queue
    logger.append_keys(job_id=message.job_id)
    return runner.start(message)


def _keyed(message: RecipientMessage) -> bool:
    try:
        message.key()
    except ValueError:
        return False  # read as a run message below, which drops it saying why
    return True


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, int]:
    if event.get("detail-type") == "Scheduled Event":  # every 5 minutes: the runs' sweeper
        return runner.sweep()
    return process_partial_response(event=event, record_handler=start_run, processor=processor, context=context)
