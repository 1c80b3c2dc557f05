"""The export queue in SQS: one message per ticket to render."""

from __future__ import annotations

import msgspec

from reportserver.store import aws


class SqsExportQueue:
    def __init__(self, queue_url: str) -> None:
        self._url = queue_url  # given by the template (!Ref): looking it up would need sqs:GetQueueUrl

    def send(self, ticket_id: str) -> None:
        aws.sqs().send_message(QueueUrl=self._url, MessageBody=msgspec.json.encode({"ticket_id": ticket_id}).decode())

    def waiting(self) -> int:
        attributes = aws.sqs().get_queue_attributes(QueueUrl=self._url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """A received message comes back after `seconds` instead of the queue's visibility timeout."""
        aws.sqs().change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)


def ticket_id_of(message_body: str) -> str:
    """The ticket a queue message names; a malformed message raises ValueError."""
    try:
        body = msgspec.json.decode(message_body)
    except msgspec.DecodeError:
        raise ValueError("export message is not JSON") from None
    ticket_id = body.get("ticket_id") if isinstance(body, dict) else None
    if not isinstance(ticket_id, str) or not ticket_id:
        raise ValueError("export message names no ticket")
    return ticket_id
