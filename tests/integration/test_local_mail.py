"""The local outbox (`infra/local/mail.py`) under moto: a mail SES accepts is kept as an `.eml` file of the
exact bytes sent, its attachment parsing back byte for byte; the command lists and shows it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import boto3
import pytest
from reportserver.domain.errors import MailRefused
from reportserver.store.mail import SesMailer

from infra.local import mail
from tests.integration.conftest import TEMPLATE, Stack

SENDER = str(TEMPLATE.values["MailFrom"])


@pytest.fixture
def outbox(stack: Stack, tmp_path: Path) -> Iterator[Path]:
    folder = mail.capture(tmp_path / "mail")
    try:
        yield folder
    finally:
        mail.stop_capture()


def _message(attachment: bytes) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "undisclosed-recipients:;"
    message["Subject"] = "Sales by Day: July — ünïcode"
    message.set_content("Your report is attached.\nLine two: ñ\n")
    message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="sales by day.bin")
    return message


def test_a_raw_mail_is_kept_as_the_exact_bytes_sent_its_attachment_intact(outbox: Path) -> None:
    # Given a MIME mail with a binary attachment, sent through SES to two addresses
    attachment = os.urandom(50_000) + b"\r\n\x00\xff"
    message = _message(attachment)
    message_id = SesMailer(SENDER).send(message, ["a@example.com", "b@example.com"])
    # Then one .eml holds exactly what was sent, named by its time and SES's message id
    (kept,) = outbox.glob("*.eml")
    assert kept.name.endswith(f"-{message_id}.eml")
    assert kept.read_bytes() == bytes(message)
    # And its attachment parses back byte for byte
    parsed = message_from_bytes(kept.read_bytes(), policy=default)
    (part,) = parsed.iter_attachments()
    assert part.get_filename() == "sales by day.bin"
    assert part.get_content() == attachment
    # And its envelope names the addresses SES delivers to (the mail itself shows none)
    envelope = json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))
    assert envelope["to"] == ["a@example.com", "b@example.com"]
    assert envelope["from"] == SENDER and envelope["message_id"] == message_id


def test_mails_are_listed_oldest_first_with_their_attachments_and_shown(
    outbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a raw mail, then a simple one (SendEmail), both accepted
    SesMailer(SENDER).send(_message(b"x" * 1234), ["finance@example.com"])
    boto3.client("ses").send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["ops@example.com"], "BccAddresses": ["audit@example.com"]},
        Message={"Subject": {"Data": "Plain hello"}, "Body": {"Text": {"Data": "Hello from SES.\n"}}},
    )
    # Then both are listed, in the order sent, with what each carries
    first, second = mail.mails(outbox)
    assert (first.subject, first.recipients, first.attachments) == (
        "Sales by Day: July — ünïcode",
        ["finance@example.com"],
        [("sales by day.bin", 1234)],
    )
    assert (second.subject, second.sender, second.recipients, second.attachments) == (
        "Plain hello",
        SENDER,
        ["ops@example.com", "audit@example.com"],
        [],
    )
    assert first.received <= second.received and first.path.name < second.path.name
    # And the command lists them from the stack's state folder (stack.json's mail_dir), and shows one
    state = outbox.parent / "state"
    state.mkdir()
    (state / "stack.json").write_text(json.dumps({"mail_dir": str(outbox)}), encoding="utf-8")
    assert mail.main(["--state-dir", str(state)]) == 0
    listed = capsys.readouterr().out
    assert listed.index("Sales by Day") < listed.index("Plain hello")
    assert "sales by day.bin (1,234 bytes)" in listed and str(second.path) in listed
    assert mail.main(["--state-dir", str(state), "--show", "1"]) == 0
    assert "Your report is attached.\nLine two: ñ" in capsys.readouterr().out
    assert mail.main(["--state-dir", str(state), "--show", "-1"]) == 0
    assert "Hello from SES." in capsys.readouterr().out
    for missing in ("3", "0", "-3"):
        assert mail.main(["--state-dir", str(state), "--show", missing]) == 2


def test_a_mail_ses_refuses_is_not_kept(outbox: Path) -> None:
    with pytest.raises(MailRefused):
        SesMailer("nobody@unverified.example").send(_message(b"x"), ["a@example.com"])
    assert list(outbox.iterdir()) == []


def test_nothing_is_kept_once_capture_stops(stack: Stack, tmp_path: Path) -> None:
    folder = mail.capture(tmp_path / "mail")
    mail.stop_capture()
    SesMailer(SENDER).send(_message(b"x"), ["a@example.com"])
    assert list(folder.iterdir()) == []
