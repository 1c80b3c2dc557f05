"""A run's mail (`domain.mail`): parsed back as a mail client reads it, whatever the names, parameters and
file bytes; nothing a caller names can add a header; the time is on the job's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reportserver.domain.mail import (
    MAX_ATTACHED_BYTES,
    SES_MAX_MESSAGE_BYTES,
    Attachment,
    RunMail,
    attachable,
    run_message,
)

RUN_AT = datetime(2026, 4, 4, 22, 0, tzinfo=UTC)  # 08:00 on 5 April in Sydney, hours after clocks went back (AEST)


def _parsed(mail: RunMail) -> EmailMessage:
    parsed = message_from_bytes(bytes(run_message(mail)), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _mail(**changes: object) -> RunMail:
    fields: dict[str, object] = {
        "sender": "reports@example.com",
        "recipients": ("finance@example.com", "ops@example.com"),
        "report_name": "Sales by Day",
        "job_name": "Monthly sales",
        "run_at": RUN_AT,
        "zone": "Australia/Sydney",
        "parameters": {"date_from": "2026-03-01", "date_to": "2026-03-31"},
        "rows": 31,
        "attachment": Attachment("sales-by-day.pdf", b"%PDF-1.7 ...", "application/pdf"),
    }
    return RunMail(**(fields | changes))  # type: ignore[arg-type]


def test_the_mail_names_the_report_its_parameters_and_the_run_time_on_the_jobs_clock() -> None:
    parsed = _parsed(_mail())
    assert parsed["Subject"] == "Sales by Day: 05 Apr 2026 08:00 AEST"
    assert parsed["To"] == "undisclosed-recipients:;"  # no recipient sees the others
    text = parsed.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "date_from: 2026-03-01" in body and "date_to: 2026-03-31" in body and "Rows: 31" in body
    html = parsed.get_body(("html",))
    assert html is not None and "<th>date_from</th><td>2026-03-01</td>" in html.get_content()
    (attached,) = parsed.iter_attachments()
    assert attached.get_filename() == "sales-by-day.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == b"%PDF-1.7 ..."


def test_a_link_delivery_says_how_long_the_link_lives() -> None:
    expires = RUN_AT + timedelta(days=7)
    parsed = _parsed(_mail(attachment=None, link="https://reports.example.com/l/abc", link_expires=expires))
    assert list(parsed.iter_attachments()) == []
    text = parsed.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "https://reports.example.com/l/abc" in body
    assert "The link works until 12 Apr 2026 08:00 AEST." in body


def test_a_mail_without_recipients_or_without_its_file_is_refused() -> None:
    with pytest.raises(ValueError, match="recipient"):
        run_message(_mail(recipients=()))
    with pytest.raises(ValueError, match="file or a link"):
        run_message(_mail(attachment=None))


_NAMES = st.text(min_size=1, max_size=300)
_VALUES = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True), st.text(max_size=80), max_size=6)


@settings(max_examples=150, deadline=None)
@given(report=_NAMES, job=_NAMES, file_name=_NAMES, parameters=_VALUES, content=st.binary(max_size=4096))
def test_any_names_and_bytes_read_back_and_add_no_header(
    report: str, job: str, file_name: str, parameters: dict[str, str], content: bytes
) -> None:
    mail = _mail(report_name=report, job_name=job, parameters=parameters,
                 attachment=Attachment(file_name, content, "application/octet-stream"))  # fmt: skip
    parsed = _parsed(mail)
    # The same headers, whatever the names hold (a line break cannot start a header of its own)
    assert sorted(parsed.keys()) == ["Content-Type", "Date", "From", "MIME-Version", "Message-ID", "Subject", "To"]
    assert parsed["To"] == "undisclosed-recipients:;"
    flat = " ".join("".join(" " if not c.isprintable() else c for c in report).split())
    assert " ".join(str(parsed["Subject"]).split()).startswith(flat[:100].strip())
    # The file's bytes, exactly
    (attached,) = parsed.iter_attachments()
    assert attached.get_content() == content
    # The parameters, as given
    text = parsed.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    for name, value in parameters.items():
        assert f"  {name}: " in body
        if value.isprintable():
            assert value.strip() in body


def test_the_largest_attached_file_fits_in_an_ses_message() -> None:
    assert attachable(MAX_ATTACHED_BYTES) and not attachable(MAX_ATTACHED_BYTES + 1)
    big = bytes(range(256)) * (MAX_ATTACHED_BYTES // 256)
    raw = bytes(run_message(_mail(attachment=Attachment("big.xlsx", big, "application/octet-stream"))))
    assert len(raw) < SES_MAX_MESSAGE_BYTES


def test_a_single_recipient_sees_its_own_address() -> None:
    assert _parsed(_mail(recipients=("finance@example.com",)))["To"] == "finance@example.com"
