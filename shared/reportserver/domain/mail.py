"""A job run's mail as a proper MIME message (issue 10's delivery): a subject and body naming the report,
the parameter values and the run's time in the job's time zone, and the file attached, or a link to it
when it is a link delivery or too big for SES. Built with the standard library's `email` package, whose
SMTP policy folds and encodes headers (a caller-given name with a line break cannot add a header).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

# SES's largest raw message (SendRawEmail) is 10 MB, headers and encoding included. An attachment is sent
# as base64 (4 bytes for 3, in lines of 76 characters and a line break), so a file of this size or less
# leaves room for the bodies and headers; a bigger one is sent as a link.
SES_MAX_MESSAGE_BYTES = 10 * 1000 * 1000
MAX_ATTACHED_BYTES = 7 * 1000 * 1000
_SUBJECT_NAME = 120  # characters of the report's name in a subject


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    content_type: str  # "application/pdf", ...


@dataclass(frozen=True)
class RunMail:
    """What a run's mail says, and to whom."""

    sender: str
    recipients: tuple[str, ...]
    report_name: str
    job_name: str
    run_at: datetime  # aware
    zone: str  # the job's IANA time zone: the time is written on its clock
    parameters: Mapping[str, str] = field(default_factory=dict)
    rows: int | None = None
    attachment: Attachment | None = None
    link: str | None = None
    link_expires: datetime | None = None  # aware; when the link stops working


def attachable(size: int) -> bool:
    """Whether a file of `size` bytes goes in the mail rather than behind a link."""
    return size <= MAX_ATTACHED_BYTES


def run_message(mail: RunMail) -> EmailMessage:
    """The mail, ready for SES's raw send (`bytes(message)`)."""
    if not mail.recipients:
        raise ValueError("a mail needs at least one recipient")
    if mail.attachment is None and mail.link is None:
        raise ValueError("a run's mail carries its file or a link to it")
    zone = ZoneInfo(mail.zone)
    local = mail.run_at.astimezone(zone)
    when = f"{local:%d %b %Y %H:%M} {local.tzname()}"
    message = EmailMessage(policy=SMTP)
    message["From"] = mail.sender
    # One recipient sees its own address; several see none of the others' (SES sends to its Destinations).
    message["To"] = mail.recipients[0] if len(mail.recipients) == 1 else "undisclosed-recipients:;"
    message["Subject"] = f"{_one_line(mail.report_name, _SUBJECT_NAME)}: {when}"
    message["Date"] = format_datetime(mail.run_at)
    message["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    lines = [f"{mail.report_name}", f"Run of the job '{mail.job_name}' at {when} ({mail.zone}).", ""]
    if mail.parameters:
        lines.append("Parameters:")
        lines += [f"  {name}: {value}" for name, value in mail.parameters.items()]
        lines.append("")
    if mail.rows is not None:
        lines += [f"Rows: {mail.rows:,}", ""]
    if mail.attachment is not None:
        lines.append(f"The report is attached: {mail.attachment.name}.")
    if mail.link is not None:
        lines.append(f"The report: {mail.link}")
        if mail.link_expires is not None:
            expires = mail.link_expires.astimezone(zone)
            lines.append(f"The link works until {expires:%d %b %Y %H:%M} {expires.tzname()}.")
    text = "\n".join(lines) + "\n"
    message.set_content(text)
    message.add_alternative(_html(mail, when), subtype="html")
    if mail.attachment is not None:
        maintype, _slash, subtype = mail.attachment.content_type.partition("/")
        message.add_attachment(
            mail.attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=_one_line(mail.attachment.name, 200),
        )
    return message


def _html(mail: RunMail, when: str) -> str:
    escape = html.escape
    parts = [
        f"<h2>{escape(mail.report_name)}</h2>",
        f"<p>Run of the job &lsquo;{escape(mail.job_name)}&rsquo; at {escape(when)} ({escape(mail.zone)}).</p>",
    ]
    if mail.parameters:
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in mail.parameters.items())
        parts.append(f"<table>{rows}</table>")
    if mail.rows is not None:
        parts.append(f"<p>Rows: {mail.rows:,}</p>")
    if mail.attachment is not None:
        parts.append(f"<p>The report is attached: {escape(mail.attachment.name)}.</p>")
    if mail.link is not None:
        parts.append(f'<p><a href="{escape(mail.link, quote=True)}">Open the report</a></p>')
        if mail.link_expires is not None:
            expires = mail.link_expires.astimezone(ZoneInfo(mail.zone))
            parts.append(f"<p>The link works until {expires:%d %b %Y %H:%M} {escape(expires.tzname() or '')}.</p>")
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def _one_line(text: str, limit: int) -> str:
    """A caller-given name in a header: control characters (line breaks) as spaces, at most `limit`."""
    flat = "".join(" " if not c.isprintable() else c for c in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
