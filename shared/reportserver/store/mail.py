"""Mail through Amazon SES: a raw MIME message, sent as is (its attachment intact)."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

from reportserver.domain.errors import MailRefused
from reportserver.store import aws

# SES's answers that are about this message (its sender, its addresses, its size), not a passing fault:
# the run records them; anything else is raised for the queue to retry.
_REFUSALS = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "ConfigurationSetDoesNotExist",
                       "AccountSendingPausedException", "InvalidParameterValue"})  # fmt: skip


class SesMailer:
    def __init__(self, sender: str) -> None:
        self._sender = sender

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> str:
        try:
            answer = aws.ses().send_raw_email(
                Source=self._sender, Destinations=list(recipients), RawMessage={"Data": bytes(message)}
            )
        except Exception as error:
            code = aws.error_code(error)
            if code in _REFUSALS:
                raise MailRefused(f"SES refused the mail ({code})") from None
            raise
        return str(answer["MessageId"])
