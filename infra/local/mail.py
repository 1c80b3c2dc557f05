"""The local stack's outbox: every mail moto's SES accepts, kept as an `.eml` file, and a command to list them.

    python -m infra.local.mail [--state-dir .local] [--show N]     (N: as listed; -1 the newest)

moto keeps what SES sent in memory only (and only while the stack runs). Here each accepted mail is
also written to the stack's mail folder (`mail_dir` in stack.json, `.local/mail/` by default): a raw
mail (SendRawEmail, SESv2's raw content) as the exact bytes sent, so its attachments read back
intact; a simple one (SendEmail) as the MIME message SES would make of it. The file's name starts with
the time SES accepted it (UTC, to the microsecond) and ends with SES's message id: names sort by time
and never collide. Beside each, `<name>.json` holds its envelope: the sender and the addresses SES
delivers to (its Destinations, or the message's To, Cc and Bcc when none were given), which a mail to
several shows none of (undisclosed-recipients).

The hook is on moto's SES backend, where both SES APIs end, so it keeps whatever code sends and
whichever identity sends it, after moto's own checks: a mail SES refuses is not written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MAIL_FOLDER = "mail"
_folder: Path | None = None
_lock = threading.Lock()


def capture(folder: Path) -> Path:
    """From now on every mail moto's SES accepts in this process is written to `folder` (made if need be)."""
    global _folder  # noqa: PLW0603 - one outbox per process, as moto's SES is one per process
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _install()
    with _lock:
        _folder = folder
    return folder


def stop_capture() -> None:
    global _folder  # noqa: PLW0603
    with _lock:
        _folder = None


def _install() -> None:
    from moto.ses.models import SESBackend  # noqa: PLC0415 - moto is the local stack's, not Lambda's

    if getattr(SESBackend, "_kept_as_eml", False):
        return
    send_raw = SESBackend.send_raw_email
    send_simple = SESBackend.send_email

    def send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
        given = list(destinations or [])  # moto adds the headers' addresses to this very list
        sent = send_raw(self, source, destinations, raw_data)
        # moto decoded the bytes sent as UTF-8 (strictly), so encoding gives those bytes back exactly.
        data = raw_data.encode("utf-8")
        _keep(data, sent.id, sent.source, given or _header_addresses(data))
        return sent

    def send_email(self: Any, source: str, subject: str, body: str, destinations: dict[str, list[str]]) -> Any:
        sent = send_simple(self, source, subject, body, destinations)
        message = EmailMessage()
        message["From"] = source
        for header, key in (("To", "ToAddresses"), ("Cc", "CcAddresses")):
            if destinations.get(key):
                message[header] = ", ".join(destinations[key])
        message["Subject"] = subject
        message["Message-ID"] = f"<{sent.id}@email.amazonses.com>"
        # moto keeps one body, the HTML one when there was one.
        message.set_content(body, subtype="html" if body.lstrip().startswith("<") else "plain")
        envelope = [a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(key, [])]
        _keep(bytes(message), sent.id, source, envelope)
        return sent

    SESBackend.send_raw_email = send_raw_email  # type: ignore[method-assign]
    SESBackend.send_email = send_email  # type: ignore[method-assign]
    setattr(SESBackend, "_kept_as_eml", True)  # noqa: B010


def _header_addresses(data: bytes) -> list[str]:
    message = message_from_bytes(data)
    fields = [value for header in ("To", "Cc", "Bcc") for value in message.get_all(header, [])]
    return [address for _, address in getaddresses(fields) if address]


def _keep(data: bytes, message_id: str, source: str | None, recipients: list[str]) -> None:
    with _lock:
        folder = _folder
    if folder is None:
        return
    received = datetime.now(UTC)
    stem = f"{received:%Y%m%dT%H%M%S%fZ}-{re.sub(r'[^A-Za-z0-9-]', '_', message_id)}"
    envelope = {"message_id": message_id, "received": received.isoformat(), "from": source, "to": recipients}
    # Each file appears whole or not at all: written aside, then renamed (a reader never sees half a mail).
    for name, content in ((f"{stem}.json", json.dumps(envelope, indent=2).encode()), (f"{stem}.eml", data)):
        partial = folder / f".{name}.partial"
        partial.write_bytes(content)
        os.replace(partial, folder / name)


@dataclass(frozen=True)
class Mail:
    """One kept mail, as the listing shows it."""

    path: Path
    received: datetime
    sender: str
    recipients: list[str]
    subject: str
    attachments: list[tuple[str, int]]  # file name, size in bytes (decoded)

    def text(self) -> str:
        """The mail's text: its plain-text body, else its HTML."""
        message = message_from_bytes(self.path.read_bytes(), policy=default)
        body = message.get_body(preferencelist=("plain", "html"))
        return str(body.get_content()) if body is not None else ""


def mails(folder: Path) -> list[Mail]:
    """The mails kept in `folder`, oldest first."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=default)
        sidecar = path.with_suffix(".json")
        envelope = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        attachments = []
        for part in message.iter_attachments():
            payload = part.get_payload(decode=True) or b""
            attachments.append((part.get_filename() or "(unnamed)", len(payload)))
        stamp = path.name.split("-", 1)[0]
        found.append(
            Mail(
                path=path,
                received=datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC),
                sender=str(envelope.get("from") or message.get("From", "")),
                recipients=list(envelope.get("to") or [a for _, a in getaddresses(message.get_all("To", []))]),
                subject=str(message.get("Subject", "")),
                attachments=attachments,
            )
        )
    return found


def mail_folder(state_dir: Path) -> Path:
    """The running stack's mail folder (stack.json's `mail_dir`); the default one when no stack runs."""
    state = state_dir / "stack.json"
    if state.exists():
        named = json.loads(state.read_text(encoding="utf-8")).get("mail_dir")
        if named:
            return Path(named)
    return state_dir / MAIL_FOLDER


def listing(found: list[Mail], base: Path = ROOT) -> str:
    if not found:
        return "No mail yet."
    lines = []
    for number, mail in enumerate(found, start=1):
        path = mail.path.relative_to(base) if mail.path.is_relative_to(base) else mail.path
        lines.append(f"{number:>3}  {mail.received:%Y-%m-%d %H:%M:%S} UTC  from {mail.sender}")
        lines.append(f"     to       {', '.join(mail.recipients) or '(nobody)'}")
        lines.append(f"     subject  {mail.subject}")
        for name, size in mail.attachments:
            lines.append(f"     attached {name} ({size:,} bytes)")
        lines.append(f"     file     {path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local", help="the stack's state folder")
    parser.add_argument("--show", type=int, metavar="N", help="print the text of mail N of the list (-1: the newest)")
    args = parser.parse_args(argv)
    folder = mail_folder(args.state_dir)
    found = mails(folder) if folder.is_dir() else []
    if args.show is None:
        print(listing(found))
        return 0
    index = args.show - 1 if args.show > 0 else len(found) + args.show
    if args.show == 0 or not 0 <= index < len(found):
        print(f"error: no mail {args.show}: there are {len(found)} in {folder}", file=sys.stderr)
        return 2
    mail = found[index]
    print(f"From: {mail.sender}\nTo: {', '.join(mail.recipients)}\nSubject: {mail.subject}\n")
    print(mail.text())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # its reader stopped early (`make mail | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
