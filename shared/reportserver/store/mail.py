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
    """Sends through SES, with the stack's configuration set when it has one: SES then publishes each
    mail's bounces and complaints (to SNS, and on to the job-run queue)."""

    def __init__(self, sender: str, configuration_set: str = "") -> None:
        self._sender = sender
        self._configuration_set = configuration_set

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> str:
        request = {"Source": self._sender, "Destinations": list(recipients), "RawMessage": {"Data": bytes(message)}}
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            answer = aws.ses().send_raw_email(**request)
        except Exception as error:
            code = aws.error_code(error)
            if code in _REFUSALS:
                raise MailRefused(f"SES refused the mail ({code})") from None
            raise
        return str(answer["MessageId"])
