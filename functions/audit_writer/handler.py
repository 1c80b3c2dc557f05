"""The audit writer: CloudWatch Logs hands it the API functions' audit lines (their log groups'
subscription filters); it stores them in AuditTable, in batches, off every request's path."""

from typing import Any

import msgspec
from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.audit import AUDIT_MARK, AuditRecord
from reportserver.observability import logger
from reportserver.settings import AuditWriterSettings
from reportserver.store.audit import DynamoAuditStore

settings = AuditWriterSettings.from_environ()
store = DynamoAuditStore(settings.audit_table, settings.retention_days)


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=CloudWatchLogsEvent)
def lambda_handler(event: CloudWatchLogsEvent, context: LambdaContext) -> dict[str, Any]:
    records = []
    skipped = 0
    for line in event.parse_logs_data().log_events:
        try:
            payload = msgspec.json.decode(line.message)
            if not isinstance(payload, dict) or payload.pop(AUDIT_MARK, None) != 1:
                skipped += 1
                continue
            records.append(msgspec.convert(payload, AuditRecord, strict=False))
        except (msgspec.DecodeError, msgspec.ValidationError):
            skipped += 1  # not a record (the filter let another line through): nothing to store
    store.put_records(records)
    logger.info("audit records stored", extra={"stored": len(records), "skipped": skipped})
    return {"stored": len(records), "skipped": skipped}
