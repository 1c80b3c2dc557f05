"""A job's runs: each one recorded once, whatever delivers its message twice, and turned into an export
ticket for the existing queue and worker (issue 10).

A run starts from a message on the job-run queue: sent by the job's schedule (with the time it was
scheduled for) or by `POST /api/jobs/{id}/execute` (with the run's id and the time it was asked). Its key
(the scheduled time, or the asked time and id) is the run's item key: a second delivery of the same
message finds it written and does nothing, so no run is made twice. A job run one `at()` at a time gets
its next schedule as the run starts. The report is exported with the rights of the job's owner as they
are now (a token deleted, deactivated or expired, or a user gone, fails the run saying so), with the
job's parameters worked out at the run's time in the job's zone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from reportserver.domain.access import (
    AccessMode,
    Permission,
    Principal,
    ReportTarget,
    authorize_managing,
    decide,
    may_manage,
)
from reportserver.domain.access import Action as AccessAction
from reportserver.domain.bursts import RecipientMessage, recipients
from reportserver.domain.conditions import ConditionOutcome, evaluate
from reportserver.domain.errors import (
    DomainError,
    Forbidden,
    InvalidParameter,
    MailRefused,
    NotFound,
    TooManyRequests,
    shown,
)
from reportserver.domain.exports import ExportOrder, run_ticket_id
from reportserver.domain.identity import EMAIL_PATTERN, UserGroup, user_principal
from reportserver.domain.jobs import (
    DELIVERY_FORMATS,
    Job,
    JobSchedules,
    JobStore,
    calculated_text,
    job_number,
    parameter_text,
    utc_stamp,
)
from reportserver.domain.links import DownloadLink, LinkStore, link_hash, link_url, new_link_secret
from reportserver.domain.mail import Attachment, RunMail, attachable, run_message
from reportserver.domain.principals import acting_token
from reportserver.domain.schedules import SchedulerExpression, job_schedule
from reportserver.domain.tickets import ExportTicket
from reportserver.domain.tokens import ApiToken

log = logging.getLogger(__name__)

Trigger = Literal["schedule", "api"]
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MAIL_REQUESTS = 0  # the job id of `POST /report/mail/<report_id>/`'s runs: a report mailed once, no job
MAX_MAILS_PER_HOUR = 20  # mails asked over `/report/mail/` per caller
MAX_FORM_FIELDS = 100  # `/report/mail/`'s form: a report's parameters and where to
MAX_EXECUTES_PER_HOUR = 10  # runs asked over the API, per job: each is a full export of the report
MAX_RECIPIENTS_PER_MAIL = 50  # SES's limit of addresses in one message
DELIVERY_LEASE = timedelta(minutes=10)  # longer than the runner's timeout: a live delivery is never taken
# burst: its recipients' runs hold the outcomes; refreshing: its snapshot refresh does
RUN_STATUSES = ("exporting", "delivered", "skipped", "failed", "burst", "refreshing")
OPEN_STATUSES = ("exporting", "delivering")  # a run not ended yet: the sweeper sees it
SHARED_PREFIX = "shared/"  # a job's shared folders are key prefixes under this, in the export bucket
MAX_DELIVERY_ATTEMPTS = 5  # a delivery failing on passing faults (SES throttled, S3 down) this often fails
STUCK_AFTER = timedelta(minutes=20)  # a run unchanged this long is looked at by the sweeper


class RunMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A job-run queue message. From a schedule: `scheduled_time` (Scheduler's
    `<aws.scheduler.scheduled-time>`) and the job's `version` it was made for; from the API: `run_id`,
    `requested_at` and who asked (`requested_by`)."""

    job_id: int
    version: int | None = None
    scheduled_time: str | None = None
    run_id: str | None = None
    requested_at: str | None = None
    requested_by: str | None = None

    @property
    def trigger(self) -> Trigger:
        return "api" if self.run_id is not None else "schedule"

    def run_time(self) -> datetime:
        text = self.requested_at if self.run_id is not None else self.scheduled_time
        if not text:
            raise ValueError("a run message names no time")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("a run message's time has no offset")
        return moment.astimezone(UTC)

    def key(self) -> str:
        """The run's key: its time (UTC, to the second, sortable), and for an API run its id."""
        if self.run_id is not None and not _RUN_ID.fullmatch(self.run_id):
            raise ValueError("a run id is 32 hex digits")
        if not 0 < self.job_id < 10**12:
            raise ValueError("no such job id")
        stamp = key_time(self.run_time())
        return f"{stamp}.{self.run_id}" if self.run_id is not None else stamp


class DeliveryMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A job-run queue message from the export worker: the run's ticket is finished, deliver it."""

    job_id: int
    deliver: str  # the run's key


class RecipientStatus(msgspec.Struct, kw_only=True):
    address: str
    # bounced: SES said later that the address refused it for good; complained: marked as spam
    status: Literal["sent", "failed", "bounced", "complained"]
    message_id: str | None = None
    error: str | None = None


class JobRun(msgspec.Struct, kw_only=True):
    """One run as recorded (seed 001's job result)."""

    job_id: int
    key: str
    trigger: Trigger
    requested_by: str
    run_at: datetime
    job_version: int
    status: str = "exporting"
    parameters: dict[str, str] = msgspec.field(default_factory=dict)
    format: str = ""
    ticket_id: str | None = None
    error: str | None = None
    recipients: list[RecipientStatus] = msgspec.field(default_factory=list)
    lease_until: datetime | None = None  # while "delivering": until when the delivery holds the run
    links: list[str] = msgspec.field(default_factory=list)  # hashes of the links its mails carry
    link_expires: datetime | None = None
    # A per-recipient run: the run has `burst` recipients, each a run of its own whose mail goes `to` its
    # one address only, and whose `parent` is the run's key.
    burst: int | None = None
    parent: str | None = None
    to: list[str] = msgspec.field(default_factory=list)
    condition: ConditionOutcome | None = None  # the job's condition as this run found it
    zone: str = "UTC"  # a mail on request: the clock its time is written on
    attempts: int = 0  # deliveries begun
    shared_files: list[str] = msgspec.field(default_factory=list)  # the copies put in the job's shared folders
    refresh_id: str | None = None  # a refresh job's run: the snapshot refresh it asked for
    file_key: str | None = None  # its file (runs/...), kept until `expires_at`, then removed by the sweeper
    file_deleted: bool = False
    owner_notified: str | None = None  # a failed run: the address its owner was told at
    updated_at: datetime
    expires_at: datetime  # the job's retentionPeriod after the run: the record's TTL

    @property
    def generated_id(self) -> str:
        """Seed 001's generatedDocumentId: `<job id>.<run key>`, safe in a path."""
        return f"{self.job_id}.{self.key}"

    def view(self, ticket: ExportTicket | None) -> dict[str, Any]:
        """A job result: the run, and its file's export as it stands."""
        status, error = self.status, self.error
        if status == "exporting" and ticket is not None and ticket.status.value in ("complete", "failed"):
            # Its file made (or not): the run stands there until delivery records more.
            status = "exported" if ticket.status.value == "complete" else "failed"
            error = error or ticket.error
        view: dict[str, Any] = {
            "id": self.generated_id,
            "jobId": self.job_id,
            "runAt": utc_stamp(self.run_at),
            "trigger": self.trigger,
            "requestedBy": self.requested_by,
            "status": status,
            "parameters": self.parameters,
            "format": self.format,
            "ticketId": self.ticket_id,
            "error": error,
            "recipients": [msgspec.to_builtins(r) for r in self.recipients],
            "linkExpiresAt": utc_stamp(self.link_expires) if self.link_expires else None,
            "recipientRuns": self.burst,
            "parentId": f"{self.job_id}.{self.parent}" if self.parent else None,
            "condition": msgspec.to_builtins(self.condition) if self.condition else None,
            "attempts": self.attempts,
            "sharedFiles": self.shared_files,
            "refreshId": self.refresh_id,
            "ownerNotified": self.owner_notified,
            "expiresAt": utc_stamp(self.expires_at),
        }
        if ticket is not None:
            view["export"] = {
                "status": ticket.status.value,
                "rows": ticket.total_rows,
                "bytes": ticket.total_bytes,
                "fileName": ticket.file_name,
                "error": ticket.error,
            }
        return view


class BouncedRecipient(msgspec.Struct, kw_only=True):
    emailAddress: str  # noqa: N815 - SES's names
    diagnosticCode: str | None = None  # noqa: N815


class Bounce(msgspec.Struct, kw_only=True):
    bounceType: str  # noqa: N815 - Permanent, Transient or Undetermined
    bouncedRecipients: list[BouncedRecipient] = msgspec.field(default_factory=list)  # noqa: N815


class Complaint(msgspec.Struct, kw_only=True):
    complainedRecipients: list[BouncedRecipient] = msgspec.field(default_factory=list)  # noqa: N815


class SentMail(msgspec.Struct, kw_only=True):
    messageId: str  # noqa: N815


class MailEvent(msgspec.Struct, kw_only=True):
    """SES's word on a mail it sent (its configuration set's event, by SNS, delivered raw to the job-run
    queue): a bounce or a complaint. Only the fields read here are named; SES sends more."""

    eventType: str  # noqa: N815
    mail: SentMail
    bounce: Bounce | None = None
    complaint: Complaint | None = None


class RunStore(Protocol):
    def record_run(self, run: JobRun) -> bool:
        """Write a new run; False when its key is written already (the message came twice)."""

    def update_run(self, run: JobRun) -> None: ...

    def update_exporting_run(self, run: JobRun) -> bool:
        """Write `run` only if the stored run is still exporting; False when it has moved on (a delivery
        finished meanwhile: a start retried must not put it back)."""

    def claim_run(self, run: JobRun, now: datetime) -> bool:
        """Write `run` (delivering) only if the stored run is exporting, or delivering with its lease over
        at `now`; False when another delivery holds it."""

    def runs(self, job_id: int, since: datetime, until: datetime) -> list[JobRun]: ...

    def run(self, job_id: int, key: str) -> JobRun | None: ...

    def open_runs(self, before: datetime) -> list[tuple[int, str]]:
        """(job id, run key) of the runs not ended (exporting, delivering) unchanged since `before`."""

    def record_mail(self, message_id: str, run: JobRun) -> None:
        """Which run a sent mail (SES's message id) belongs to, for as long as the run is kept."""

    def mail_run(self, message_id: str) -> tuple[int, str] | None: ...

    def expired_files(self, before: datetime) -> list[tuple[int, str]]:
        """(job id, run key) of the runs whose file is kept and whose retention ended before `before`."""


class RunQueue(Protocol):
    def send(self, message: RunMessage) -> None: ...


class RecipientQueue(Protocol):
    def send_recipients(self, messages: Sequence[RecipientMessage]) -> None:
        """Queue one message per recipient (in batches); raises if any was not taken."""


class OwnerDirectory(Protocol):
    def token(self, name: str) -> ApiToken | None: ...

    def user_by_name(self, name: str) -> Any: ...

    def groups(self) -> list[UserGroup]: ...


class Mailer(Protocol):
    def send(self, message: EmailMessage, recipients: Sequence[str]) -> str:
        """Send the raw message to these addresses; the provider's message id. Raises `MailRefused`."""


class FileReader(Protocol):
    def read(self, key: str) -> bytes: ...

    def copy(self, source: str, target: str) -> None: ...

    def delete(self, key: str) -> None: ...


class Exporter(Protocol):
    def request(
        self, principal: Principal, order: ExportOrder, run: str | None = None, keep_days: int | None = None
    ) -> ExportTicket: ...


@dataclass
class JobRunner:
    """Starts a job's runs from the job-run queue's messages."""

    jobs: JobStore
    runs: RunStore
    schedules: JobSchedules
    owners: OwnerDirectory
    exporter: Exporter
    clock: Callable[[], datetime]
    # Delivery: the run's ticket, its file, the users it mails, the mail service and the sender address.
    ticket: Callable[[str], ExportTicket | None] = lambda _ticket_id: None
    files: FileReader | None = None
    user_email: Callable[[int], str | None] = lambda _user_id: None
    mailer: Mailer | None = None
    sender: str = ""
    # Links in mails: where they are kept, and the service's public URL they point to.
    links: LinkStore | None = None
    service_url: str = ""
    new_link_secret: Callable[[], str] = new_link_secret
    # A data member's rows (column names, rows): a per-recipient run's recipients, a condition's result;
    # and the queue the recipients' runs go to.
    member_rows: Callable[[int, str], tuple[list[str], list[tuple[Any, ...]]]] | None = None
    recipient_queue: RecipientQueue | None = None
    # A refresh job's run: a data model's snapshot refresh asked as the owner; the refresh's id.
    refresh: Callable[[Principal, str], str] | None = None

    def deliver(self, message: DeliveryMessage) -> str:
        """Deliver a run whose export finished, once: "delivered", "skipped", "failed" or "duplicate".

        The run is claimed for `DELIVERY_LEASE` (a conditional write): a second message for it finds it
        taken and does nothing; one whose lease ran out (its function was killed) is taken again, and
        mails only those not yet recorded as mailed (each mail is recorded as it is sent)."""
        run = self.runs.run(message.job_id, message.deliver)
        if run is None or run.status not in ("exporting", "delivering"):
            return "duplicate"
        now = self.clock()
        claimed = msgspec.structs.replace(
            run,
            status="delivering",
            # A start cut short before it wrote its ticket's id: the ticket is the run's, by name.
            ticket_id=run.ticket_id or run_ticket_id(f"{run.job_id}:{run.key}"),
            lease_until=now + DELIVERY_LEASE,
            updated_at=now,
            attempts=run.attempts + 1,
        )
        if not self.runs.claim_run(claimed, now):
            return "duplicate"  # another delivery holds it
        statuses = list(run.recipients)  # those an earlier attempt mailed are not mailed again
        ticket: ExportTicket | None = None
        try:
            job = self.jobs.job(run.job_id)
            ticket = self.ticket(claimed.ticket_id or "")
            status, error = self._delivered(job, claimed, ticket, statuses)
        except DomainError as refusal:
            status, error = "failed", refusal.message
        except Exception as fault:
            if claimed.attempts < MAX_DELIVERY_ATTEMPTS:
                # A passing fault (SES throttled, S3 unreachable): the run goes back for the queue's retry (or
                # the sweeper's), with what was mailed so far, so that the retry mails only the rest.
                back = msgspec.structs.replace(claimed, status="exporting", lease_until=None, recipients=statuses)
                self.runs.update_run(msgspec.structs.replace(back, updated_at=self.clock()))
                raise
            status = "failed"
            error = f"Delivery gave up after {claimed.attempts} attempts: {type(fault).__name__}"
        done = msgspec.structs.replace(
            claimed, status=status, error=error, recipients=statuses, lease_until=None, updated_at=self.clock()
        )
        if ticket is not None and ticket.file_key and ticket.file_key.startswith("runs/"):
            done.file_key = ticket.file_key  # removed when the run's retention ends
        if status == "failed":
            self._notify_owner(done)
        self.runs.update_run(done)
        log.info("job run delivered", extra={"job_id": run.job_id, "run": run.key, "status": status})
        return status

    def _delivered(  # noqa: PLR0911 - one return per way a delivery ends
        self, job: Job | None, run: JobRun, ticket: ExportTicket | None, statuses: list[RecipientStatus]
    ) -> tuple[str, str | None]:
        """Mail the run's file; each recipient's outcome appended to `statuses` as it happens."""
        if job is None and run.job_id != MAIL_REQUESTS:
            return "failed", "The job was deleted before its file was delivered"
        if ticket is None or ticket.status.value != "complete" or ticket.file_key is None:
            return "failed", (ticket.error if ticket is not None else None) or "The run's export did not complete"
        if job is not None and not job.body.sendBlankDocument and not ticket.total_rows:
            return "skipped", "The report had no rows and the job does not send blank documents"
        job_name, zone, individually, addresses = self._plan(job, run)
        folders = list(job.body.sharedFolders) if job is not None and run.parent is None else []
        if not addresses and not folders:
            return "failed", "None of the job's recipients has an e-mail address"
        if self.files is None or self.mailer is None:
            raise RuntimeError("the job runner has no file store or mailer to deliver with")
        self._share(run, ticket, folders)
        if not addresses:
            return "delivered", None
        attachment: Attachment | None = None
        link: str | None = None
        if run.format == "url" or not attachable(ticket.total_bytes or 0):
            link = self._link(run, ticket)
        else:
            attachment = Attachment(ticket.file_name or "report", self.files.read(ticket.file_key),
                                    ticket.content_type or "application/octet-stream")  # fmt: skip
        mailed = {s.address.casefold() for s in statuses if s.status == "sent"}
        addresses = [a for a in addresses if a.casefold() not in mailed]
        statuses[:] = [s for s in statuses if s.status == "sent"]  # a refused one is tried again
        size = 1 if individually else MAX_RECIPIENTS_PER_MAIL
        groups = [addresses[i : i + size] for i in range(0, len(addresses), size)]
        for group in groups:
            mail = RunMail(
                sender=self.sender, recipients=tuple(group), report_name=ticket.report_name, job_name=job_name,
                run_at=run.run_at, zone=zone, parameters=run.parameters, rows=ticket.total_rows,
                attachment=attachment, link=link, link_expires=run.link_expires,
            )  # fmt: skip
            try:
                message_id = self.mailer.send(run_message(mail), group)
                statuses += [RecipientStatus(address=a, status="sent", message_id=message_id) for a in group]
                self.runs.record_mail(message_id, run)  # its bounces, if any, find the run
            except MailRefused as refused:
                statuses += [RecipientStatus(address=a, status="failed", error=refused.message) for a in group]
            # Recorded as it goes: a delivery killed midway (a timeout) mails only the rest when taken again.
            self.runs.update_run(msgspec.structs.replace(run, recipients=statuses, updated_at=self.clock()))
        failed = [s for s in statuses if s.status == "failed"]
        if failed:
            return "failed", f"{len(failed)} of {len(statuses)} recipients could not be mailed"
        return "delivered", None

    def _share(self, run: JobRun, ticket: ExportTicket, folders: list[str]) -> None:
        """The run's file copied into each shared folder (`shared/<folder>/`, checked on save), recorded on
        `run`; a retry finds the same name and copies each once."""
        assert self.files is not None and ticket.file_key is not None
        for folder in folders:
            target = f"{SHARED_PREFIX}{folder}/{run.key[:16]}-{ticket.file_name or 'report'}"
            if target not in run.shared_files:
                self.files.copy(ticket.file_key, target)
                run.shared_files.append(target)

    def mail_event(self, event: MailEvent) -> str:
        """A bounce or complaint SES reported for one of the runs' mails: each address it names is marked
        on its run. A permanent bounce fails the run (its owner told why); a transient one SES has retried
        already is recorded only; a complaint is recorded only (the address marked the mail as spam)."""
        found = self.runs.mail_run(event.mail.messageId)
        run = self.runs.run(*found) if found is not None else None
        if run is None:
            log.info("mail event for no kept run", extra={"message_id": event.mail.messageId})
            return "no run"
        if run.status == "delivering":
            # Its delivery is still writing the run: the event waits (the queue brings it back), so that
            # neither write loses the other's.
            raise RuntimeError("the run is being delivered: its mail event is taken again later")
        if event.bounce is not None and event.eventType == "Bounce":
            status, named = "bounced", event.bounce.bouncedRecipients
            permanent = event.bounce.bounceType == "Permanent"
            why = f"{event.bounce.bounceType} bounce"
        elif event.complaint is not None and event.eventType == "Complaint":
            status, named, permanent, why = "complained", event.complaint.complainedRecipients, False, "complaint"
        else:
            return "ignored"
        addresses = {r.emailAddress.casefold(): r for r in named}
        changed = 0
        for recipient in run.recipients:
            hit = addresses.get(recipient.address.casefold())
            if hit is not None and recipient.message_id == event.mail.messageId and recipient.status == "sent":
                recipient.status = status  # type: ignore[assignment]  # one of the Literal's values
                recipient.error = f"{why}: {hit.diagnosticCode}" if hit.diagnosticCode else why
                changed += 1
        if not changed:
            return "duplicate"
        if permanent and run.status in ("delivered", "failed"):
            bounced = [r for r in run.recipients if r.status == "bounced" and (r.error or "").startswith("Permanent")]
            run.status, run.error = "failed", f"{len(bounced)} of {len(run.recipients)} recipients bounced"
        run.updated_at = self.clock()
        self.runs.update_run(run)
        if permanent and run.owner_notified is None:
            self._notify_owner(run)
            if run.owner_notified:
                self.runs.update_run(run)
        return status

    def _notify_owner(self, run: JobRun) -> None:
        """Tell the job's owner that a run failed, and why (recorded on `run`). A user is told at their
        address; a token has none, and the job result is where its failure is read. A notice that cannot be
        sent is logged: it never hides the run's own outcome."""
        job = self.jobs.job(run.job_id) if run.job_id != MAIL_REQUESTS else None
        if job is None or job.owner_kind != "user" or self.mailer is None or not self.sender:
            return
        user = self.owners.user_by_name(job.owner_name)
        address = getattr(user, "email", None) if user is not None and getattr(user, "active", False) else None
        if not address:
            return
        parent = self.runs.run(run.job_id, run.parent) if run.parent else None
        if parent is not None and parent.owner_notified:
            return  # a per-recipient run tells its owner once, at its first failed recipient
        notice = EmailMessage()
        notice["From"], notice["To"] = self.sender, address
        notice["Subject"] = f"A run of the job '{job.body.name[:120]}' failed"
        notice.set_content(
            f"The run {run.generated_id} of the job '{job.body.name}' (report {job.body.documentId}) failed.\n\n"
            f"Why: {run.error}\n\nIts result: GET /api/jobs/jobresults/{run.generated_id}\n"
        )
        try:
            self.mailer.send(notice, [address])
            run.owner_notified = address
            if parent is not None:
                self.runs.update_run(msgspec.structs.replace(parent, owner_notified=address))
        except Exception:
            log.exception("the owner's failure notice was not sent", extra={"job_id": run.job_id, "run": run.key})

    def sweep(self) -> dict[str, int]:
        """No run stays unfinished: each unchanged for `STUCK_AFTER` is finished from where it stands. One
        whose file is made (or failed) but was never announced (a ticket failed by the export sweeper or the
        dead-letter handler), or whose delivery's lease ran out, is delivered now; one that never got its
        export (its start's message dead-lettered) fails, saying so. One whose export is still under way is
        left to the export sweeper, which ends its ticket."""
        now = self.clock()
        counts = {"delivered": 0, "failed": 0, "left": 0, "files removed": self._remove_files(now)}
        for job_id, key in self.runs.open_runs(now - STUCK_AFTER):
            run = self.runs.run(job_id, key)
            if run is None or run.status not in OPEN_STATUSES:
                continue
            try:
                counts[self._finish(run, now)] += 1
            except Exception:
                log.exception("a stuck run could not be finished now", extra={"job_id": job_id, "run": key})
                counts["left"] += 1
        log.info("job runs swept", extra=counts)
        return counts

    def _remove_files(self, now: datetime) -> int:
        """The files of runs past their job's retentionPeriod, removed (their links then say so)."""
        removed = 0
        for job_id, key in self.runs.expired_files(now):
            run = self.runs.run(job_id, key)
            if run is None or run.file_key is None or run.file_deleted or self.files is None:
                continue
            self.files.delete(run.file_key)
            self.runs.update_run(msgspec.structs.replace(run, file_deleted=True))
            removed += 1
        return removed

    def _finish(self, run: JobRun, now: datetime) -> str:
        if run.status == "delivering" and run.lease_until is not None and run.lease_until > now:
            return "left"
        ticket = self.ticket(run.ticket_id or run_ticket_id(f"{run.job_id}:{run.key}"))
        if ticket is not None and ticket.status.value not in ("complete", "failed") and run.status == "exporting":
            return "left"  # the export sweeper ends its ticket; the next sweep delivers it
        if ticket is None and run.status == "exporting":
            why = "its recipients were being queued" if run.burst else "its export was asked for"
            failed = self._failed(run, InvalidParameter("run", f"The run stopped before {why}"))
            return "failed" if failed == "failed" else "left"
        outcome = self.deliver(DeliveryMessage(job_id=run.job_id, deliver=run.key))
        return "failed" if outcome == "failed" else "delivered"

    def _plan(self, job: Job | None, run: JobRun) -> tuple[str, str, bool, list[str]]:
        """What a run's mails say and to whom: (its name, the clock its time is written on, one mail per
        address, the addresses)."""
        if job is None:  # mailed on request: to the addresses given, on the caller's clock
            return f"mailed on request by {run.requested_by}", run.zone, False, list(run.to)
        body = job.body
        addresses = list(run.to) if run.parent is not None else list(body.subscribedEmails)
        for user_id in body.internalSubscriberIds if run.parent is None else ():
            email = self.user_email(user_id)
            if email and email.casefold() not in {a.casefold() for a in addresses}:
                addresses.append(email)
        return body.name, body.timeZone, body.sendIndividualEmails, addresses

    def _link(self, run: JobRun, ticket: ExportTicket) -> str:
        """A new link to the run's file (recorded on `run`): it works while both the run and the file are
        kept. A delivery taken again makes another; the earlier one's mails keep working."""
        if self.links is None or not self.service_url:
            raise RuntimeError("the job runner has no link store or service URL to deliver links with")
        secret = self.new_link_secret()
        expires = min(run.expires_at, ticket.expires_at)
        link = DownloadLink(
            link_hash=link_hash(secret), job_id=run.job_id, run_key=run.key, file_key=ticket.file_key or "",
            file_name=ticket.file_name or "report", content_type=ticket.content_type or "application/octet-stream",
            created_at=self.clock(), expires_at=expires,
        )  # fmt: skip
        self.links.put_link(link)
        run.links.append(link_hash(secret))
        run.link_expires = expires
        return link_url(self.service_url, secret)

    def start(self, message: RunMessage) -> str:  # noqa: PLR0911 - one return per way a start ends
        """Record and start one run; what happened: "started", "burst", "skipped", "failed", "duplicate",
        "no job" or "disabled"."""
        job = self.jobs.job(message.job_id)
        if job is None:
            log.info("run of a deleted job dropped", extra={"job_id": message.job_id})
            return "no job"
        if message.trigger == "schedule" and not job.body.enabled:
            log.info("run of a disabled job dropped", extra={"job_id": job.id})
            return "disabled"
        now = self.clock()
        run_at = message.run_time()
        run = JobRun(
            job_id=job.id,
            key=message.key(),
            trigger=message.trigger,
            requested_by=message.requested_by or "schedule",
            run_at=run_at,
            job_version=job.version,
            format=job.body.emailDeliveryFormat,
            updated_at=now,
            expires_at=run_at + timedelta(days=job.body.retentionPeriod),
        )
        if not self.runs.record_run(run):
            recorded = self.runs.run(job.id, run.key)
            if recorded is None or recorded.status != "exporting" or recorded.ticket_id is not None:
                log.info("run delivered again: already recorded", extra={"job_id": job.id, "run": run.key})
                return "duplicate"
            # An earlier attempt recorded the run and stopped before its ticket: this one carries on (the
            # ticket is named by the run, so two attempts at once still make one).
            run = recorded
        if message.trigger == "schedule":
            self._schedule_next(job, message, run_at, now)
        try:
            run.parameters = run_parameters(job, run_at)
            owner = self._owner(job, now)
            if job.body.mode == "refresh":
                return self._refresh(job, run, owner)
            if not self._holds(job, run, owner):
                return "skipped"
            if job.body.mode == "billingStatement":
                return self._burst(job, run, owner)
        except DomainError as refusal:
            return self._failed(run, refusal)
        return self._export(job, run, now)

    def _failed(self, run: JobRun, refusal: DomainError) -> str:
        run.status, run.error, run.updated_at = "failed", refusal.message, self.clock()
        if not self.runs.update_exporting_run(run):
            return "duplicate"  # ended meanwhile by another attempt: its outcome stands
        self._notify_owner(run)
        if run.owner_notified:
            self.runs.update_run(run)  # failed now, and this attempt's: no other writes it
        log.info("job run failed", extra={"job_id": run.job_id, "run": run.key, "reason": refusal.message})
        return "failed"

    def _burst(self, job: Job, run: JobRun, principal: Principal) -> str:
        """A per-recipient run: its recipients read from the binding's rows as the owner may, and one
        message each queued; each becomes a run of its own (`start_recipient`). A start retried sends
        them again, and each recipient's run is still recorded once."""
        binding = job.body.billingStatementBinding
        if binding is None or self.recipient_queue is None:
            raise InvalidParameter("billingStatementBinding", "This job has no recipients to run for")
        names, rows = self._member_rows(principal, "billingStatementBinding", binding.dataModelId, binding.dataMember)
        found = recipients(job.body, job.id, run.key, names, rows)
        run.burst, run.updated_at = len(found), self.clock()
        if not self.runs.update_exporting_run(run):  # how many, before they are queued
            return "duplicate"
        self.recipient_queue.send_recipients(found)
        run.status, run.updated_at = ("burst" if found else "skipped"), self.clock()
        if not found:
            run.error = "The recipients' query gave no rows"
        self.runs.update_exporting_run(run)
        log.info("job run burst", extra={"job_id": job.id, "run": run.key, "recipients": len(found)})
        return run.status

    def _refresh(self, job: Job, run: JobRun, principal: Principal) -> str:
        """A refresh job's run: its data model's snapshot refresh asked (or the one under way joined); the
        refresh's own status says how it ends (`/api/datamodels/{id}/refreshes/{refresh_id}`)."""
        if self.refresh is None or job.body.dataModelId is None:
            raise InvalidParameter("mode", "This job runner cannot refresh data models")
        run.refresh_id = self.refresh(principal, str(job.body.dataModelId))
        run.status, run.updated_at = "refreshing", self.clock()
        self.runs.update_exporting_run(run)
        log.info("job run asked a refresh", extra={"job_id": job.id, "run": run.key, "refresh": run.refresh_id})
        return "refreshing"

    def _member_rows(
        self, principal: Principal, where: str, model_id: int, member: str
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        if not may_manage(principal, "dataModel", AccessMode.READ, model_id):
            raise InvalidParameter(
                f"{where}.dataModelId", f"The job's owner, {principal.label}, may no longer read data model {model_id}"
            )
        if self.member_rows is None:
            raise RuntimeError("the job runner has no way to read a data model")
        return self.member_rows(model_id, member)

    def _holds(self, job: Job, run: JobRun, principal: Principal) -> bool:
        """The job's condition, evaluated now and recorded on the run; True when it has none."""
        condition = job.body.condition
        if condition is None:
            return True
        names, rows = self._member_rows(principal, "condition", condition.dataModelId, condition.dataMember)
        run.condition = evaluate(condition, names, rows)
        if not run.condition.holds:
            seen = run.condition.observed if run.condition.observed is not None else "no number"
            run.status, run.error = "skipped", f"The condition {condition.text} did not hold: saw {seen}"
            run.updated_at = self.clock()
            self.runs.update_exporting_run(run)
            log.info("job run skipped: condition", extra={"job_id": job.id, "run": run.key, "observed": seen})
            return False
        return True

    def start_recipient(self, message: RecipientMessage) -> str:
        """One recipient's run of a per-recipient run: recorded once, exported with the run's parameters
        and the recipient's bound ones, then delivered to that recipient alone."""
        job = self.jobs.job(message.job_id)
        parent = self.runs.run(message.job_id, message.run) if job is not None else None
        if job is None or parent is None:
            log.info("recipient of a deleted job or run dropped", extra={"job_id": message.job_id})
            return "no job"
        now = self.clock()
        run = JobRun(
            job_id=job.id, key=message.key(), trigger=parent.trigger, requested_by=parent.requested_by,
            run_at=parent.run_at, job_version=job.version, format=job.body.emailDeliveryFormat,
            parameters={**parent.parameters, **message.parameters}, parent=parent.key, to=[message.address],
            updated_at=now, expires_at=parent.expires_at,
        )  # fmt: skip
        if not self.runs.record_run(run):
            recorded = self.runs.run(job.id, run.key)
            if recorded is None or recorded.status != "exporting" or recorded.ticket_id is not None:
                return "duplicate"
            run = recorded
        return self._export(job, run, now)

    def _export(self, job: Job, run: JobRun, now: datetime) -> str:
        """The run's file asked of the export worker, as the job's owner."""
        try:
            principal = self._owner(job, now)
            order = ExportOrder(
                report=str(job.body.documentId),
                format=DELIVERY_FORMATS[job.body.emailDeliveryFormat],
                parameters={name: [value] for name, value in run.parameters.items()},
            )
            run_id, keep_days = f"{job.id}:{run.key}", job.body.retentionPeriod
            ticket = self.exporter.request(principal, order, run=run_id, keep_days=keep_days)
        except DomainError as refusal:
            return self._failed(run, refusal)
        run.ticket_id, run.updated_at = ticket.ticket_id, self.clock()
        if not self.runs.update_exporting_run(run):
            return "duplicate"  # delivered meanwhile (a start retried while its first attempt's file went out)
        if ticket.status.value in ("complete", "failed"):
            # A start retried after its export finished: the worker has announced it already, to a run
            # that had no ticket yet, so the delivery is made here.
            self.deliver(DeliveryMessage(job_id=job.id, deliver=run.key))
        log.info("job run started", extra={"job_id": job.id, "run": run.key, "ticket_id": ticket.ticket_id})
        return "started"

    def _schedule_next(self, job: Job, message: RunMessage, run_at: datetime, now: datetime) -> None:
        """A job run one `at()` at a time: its next run's schedule, made as this one starts (a cron
        schedule fires again by itself). Only from the schedule of the job's current version: an older
        one's message (sent before a save) must not move the schedule the save made. The next run is the
        first after this run and after now, so a message delivered late never moves the chain back. A save
        that lands while this is written is put back: the job is read again afterwards."""
        if not job.schedule.startswith("at(") or message.version != job.version:
            return
        expression = _next_expression(job, max(run_at, now))
        if expression is None:
            log.info("job has no more runs", extra={"job_id": job.id})
            return
        self.schedules.put(job.id, job.version, expression, job.body.enabled)
        again = self.jobs.job(job.id)
        if again is None:
            self.schedules.delete(job.id)  # deleted meanwhile: no schedule outlives its job
        elif again.version != job.version:
            current = _next_expression(again, now) if again.schedule.startswith("at(") else None
            if current is not None:
                self.schedules.put(again.id, again.version, current, again.body.enabled)
            elif again.schedule:
                log.warning("job saved during a run: its schedule is the save's", extra={"job_id": job.id})

    def _owner(self, job: Job, now: datetime) -> Principal:
        """The job's owner as it is now: its rights, not those it had when it saved the job."""
        if job.owner_kind == "token":
            token = self.owners.token(job.owner_name)
            if token is None or not token.active or token.expires_at <= now:
                state = "no longer exists" if token is None else "is deactivated" if not token.active else "expired"
                raise InvalidParameter("owner", f"The job's owner, token '{job.owner_name}', {state}")
            return acting_token(token, self.owners.groups)
        if job.owner_kind == "user":
            user = self.owners.user_by_name(job.owner_name)
            if user is None:
                raise InvalidParameter("owner", f"The job's owner, user '{job.owner_name}', no longer exists")
            try:
                return user_principal(user, self.owners.groups())
            except DomainError:
                raise InvalidParameter("owner", f"The job's owner, user '{job.owner_name}', is deactivated") from None
        raise InvalidParameter("owner", f"The job's owner, {job.owner}, cannot run jobs")


def _next_expression(job: Job, after: datetime) -> SchedulerExpression | None:
    """The Scheduler expression of the job's first run after `after`; None when it has no more."""
    body = job.body
    try:
        schedule = job_schedule(body.recurrenceRule, body.startDate or after, body.timeZone, after)
    except InvalidParameter:
        return None  # no run left (a counted or ended rule): nothing to schedule
    return schedule.scheduler_expression(after)


def run_parameters(job: Job, run_at: datetime) -> dict[str, str]:
    """The report's parameters for a run at `run_at`: static values as given, calculated ones worked out
    in the job's time zone (dates as ISO dates, times as ISO date-times in that zone)."""
    values: dict[str, str] = {}
    zone = job.body.timeZone
    for parameter in job.body.parameters:
        text = parameter_text(parameter.value)
        if text is None:
            continue
        if parameter.source == "calculated":
            values[parameter.name] = calculated_text(text, run_at, zone)
        elif parameter.source == "static":
            values[parameter.name] = text
        # bound: per recipient (billing statements), not a run's
    return values


def key_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


_RECIPIENT_SUFFIX = re.compile(r"\.r[0-9]{5}$")


def parse_generated_id(text: str) -> tuple[int, str]:
    """A generatedDocumentId as (job id, run key); NotFound for anything that is none. A recipient's run
    of a per-recipient run ends in `.r<5 digits>`."""
    job, _dot, key = text.partition(".")
    suffix = _RECIPIENT_SUFFIX.search(key)
    run_key = key[: suffix.start()] if suffix else key
    indexed = suffix is None or suffix.group() != ".r00000"  # recipients count from 1
    stamp, _dot, run_id = run_key.partition(".")
    try:
        stamped = len(stamp) == 16 and key_time(datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)) == stamp
    except ValueError:
        stamped = False
    valid = (
        job.isascii() and job.isdigit() and (job == "0" or not job.startswith("0")) and len(job) <= 12
        and stamped and indexed
        and ((run_id == "" and not run_key.endswith(".")) or _RUN_ID.fullmatch(run_id) is not None)
    )  # fmt: skip
    if not valid:
        raise NotFound(f"No generated document '{shown(text)}'")
    return int(job), key


MAX_RESULTS_DAYS = 366  # the widest window of job results one request reads


@dataclass
class JobResults:
    """`POST /api/jobs/{id}/execute` and the job results endpoints."""

    jobs: JobStore
    runs: RunStore
    queue: RunQueue
    ticket: Callable[[str], ExportTicket | None]
    report_groups: Callable[[int], tuple[str, ...] | None]
    clock: Callable[[], datetime]
    new_run_id: Callable[[], str]
    links: LinkStore | None = None

    def revoke_links(self, principal: Principal, generated_id: str) -> None:
        """Revoke every link the run's mails carry: each opens nothing from now on (410)."""
        job_id, key = parse_generated_id(generated_id)
        if job_id == MAIL_REQUESTS:  # a report mailed on request: its caller's, and the admins'
            run = self.runs.run(job_id, key)
            if run is not None and run.requested_by != principal.label:
                authorize_managing(principal, "scheduledJob", AccessMode.MODIFY)
        else:
            authorize_managing(principal, "scheduledJob", AccessMode.MODIFY, job_id)
            run = self.runs.run(job_id, key) if self.jobs.job(job_id) is not None else None
        if run is None or run.expires_at <= self.clock():
            raise NotFound(f"No generated document '{shown(generated_id)}'")
        if self.links is None:
            raise RuntimeError("the job results have no link store")
        # A per-recipient run's links are its recipients' runs'
        runs = [run, *(r for r in self.runs.runs(job_id, run.run_at, run.run_at) if r.parent == run.key)]
        for hashed in (h for r in runs for h in r.links):
            self.links.revoke_link(hashed)

    def execute(self, principal: Principal, job_id: str) -> str:
        """Queue a run of the job now; its generatedDocumentId. A caller needs `execute_subscription` and
        either a scope on the job or a group that may run the job's report."""
        number = job_number(job_id)
        if not principal.holds(Permission.EXECUTE_SUBSCRIPTION):
            raise Forbidden(f"The {principal.label} lacks the 'execute_subscription' permission")
        job = self.jobs.job(number)
        allowed = job is not None and (
            may_manage(principal, "scheduledJob", AccessMode.READ, number) or self._runs_report(principal, job)
        )
        if not allowed:
            # An unknown job and one the caller may not see answer alike: ids are not probed this way.
            raise Forbidden(f"The {principal.label} may not execute job {number}")
        assert job is not None
        now = self.clock()
        recent = [
            r for r in self.runs.runs(job.id, now - timedelta(hours=1), now) if r.trigger == "api" and r.parent is None
        ]
        if len(recent) >= MAX_EXECUTES_PER_HOUR:
            raise TooManyRequests(
                f"Job {job.id} was run {len(recent)} times over the API in the last hour, as many as it may", 600
            )
        message = RunMessage(
            job_id=job.id, run_id=self.new_run_id(), requested_at=utc_stamp(now), requested_by=principal.label
        )
        self.queue.send(message)
        return f"{job.id}.{message.key()}"

    def _runs_report(self, principal: Principal, job: Job) -> bool:
        groups = self.report_groups(job.body.documentId)
        if groups is None:
            return False
        target = ReportTarget(id=job.body.documentId, groups=groups)
        return decide(principal, AccessAction.RUN_REPORT, target).allowed

    def job_results(
        self, principal: Principal, job_id: str, since: str | None, until: str | None
    ) -> list[dict[str, Any]]:
        number = job_number(job_id)
        authorize_managing(principal, "scheduledJob", AccessMode.READ, number)
        if self.jobs.job(number) is None:
            raise NotFound(f"No job {number}")
        start, end = self._window(since, until)
        return [run.view(self._ticket(run)) for run in self.runs.runs(number, start, end)]

    def document_results(
        self, principal: Principal, document_id: str, since: str | None, until: str | None
    ) -> list[dict[str, Any]]:
        """Every run of the jobs of one report that the caller may read, oldest first."""
        if not document_id.isascii() or not document_id.isdigit() or len(document_id) > 12:
            raise NotFound(f"No document '{shown(document_id)}'")
        start, end = self._window(since, until)
        jobs = [
            j for j in self.jobs.jobs()
            if j.body.documentId == int(document_id) and may_manage(principal, "scheduledJob", AccessMode.READ, j.id)
        ]  # fmt: skip
        if not jobs:
            authorize_managing(principal, "scheduledJob", AccessMode.READ)  # none visible: say why, if it is that
        runs = [run for job in jobs for run in self.runs.runs(job.id, start, end)]
        return [run.view(self._ticket(run)) for run in sorted(runs, key=lambda r: (r.run_at, r.job_id))]

    def result(self, principal: Principal, generated_id: str) -> dict[str, Any]:
        job_id, key = parse_generated_id(generated_id)
        if job_id == MAIL_REQUESTS:  # a mail on request: its caller's, and the admins'
            run = self.runs.run(job_id, key)
            if run is not None and run.requested_by != principal.label:
                authorize_managing(principal, "scheduledJob", AccessMode.READ)
            if run is None or run.expires_at <= self.clock():
                raise NotFound(f"No generated document '{shown(generated_id)}'")
            return run.view(self._ticket(run))
        authorize_managing(principal, "scheduledJob", AccessMode.READ, job_id)
        run = self.runs.run(job_id, key) if self.jobs.job(job_id) is not None else None
        if run is None or run.expires_at <= self.clock():
            raise NotFound(f"No generated document '{shown(generated_id)}'")
        return run.view(self._ticket(run))

    def _ticket(self, run: JobRun) -> ExportTicket | None:
        return self.ticket(run.ticket_id) if run.ticket_id else None

    def _window(self, since: str | None, until: str | None) -> tuple[datetime, datetime]:
        now = self.clock()
        end = _moment(until, "endDate", end_of_day=True) if until else now
        try:
            start = _moment(since, "startDate", end_of_day=False) if since else end - timedelta(days=30)
        except OverflowError:
            raise InvalidParameter("endDate", "endDate is before the calendar's first month") from None
        if start > end:
            raise InvalidParameter("startDate", "startDate is after endDate")
        if end - start > timedelta(days=MAX_RESULTS_DAYS):
            raise InvalidParameter("startDate", f"Ask for at most {MAX_RESULTS_DAYS} days of results at a time")
        return start, end


def _moment(text: str, field: str, end_of_day: bool) -> datetime:
    """An ISO date (its whole day) or date-time (UTC without an offset)."""
    try:
        if len(text) == 10 and text[4] == "-":
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end_of_day else day
        if "T" not in text[10:11]:
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            field, f"Invalid {field} {shown(text)!r}: give an ISO date (YYYY-MM-DD) or date-time"
        ) from None


@dataclass
class MailRequests:
    """`POST /report/mail/<report_id>/` (seed 000): run a report now and mail it to the addresses given,
    with the caller's rights; made and delivered as a job's run is (job id `MAIL_REQUESTS`), so it is
    followed as a generated document, and its mail is sent once."""

    runs: RunStore
    exporter: Exporter
    clock: Callable[[], datetime]
    new_run_id: Callable[[], str]
    retention_days: int = 7

    def mail(self, principal: Principal, report: str, form: dict[str, list[str]]) -> tuple[JobRun, ExportTicket]:
        # Mailing sends the server's mail to addresses the caller names: only a caller trusted to deliver
        # (seed 004's `execute_subscription`, or an admin) may, never every token that may run a report.
        if not principal.holds(Permission.EXECUTE_SUBSCRIPTION):
            raise Forbidden(
                f"The {principal.label} lacks the 'execute_subscription' permission, which mailing a report needs"
            )
        fields = dict(form)
        oversized = any(
            len(name) > 128 or len(values) > 100 or any(len(v) > 1000 for v in values)
            for name, values in fields.items()
        )
        if len(fields) > MAX_FORM_FIELDS or oversized:
            raise InvalidParameter(
                "body", f"At most {MAX_FORM_FIELDS} fields, names of 128 characters and values of 1,000"
            )
        addresses = [a.strip() for value in fields.pop("to", []) for a in value.split(",") if a.strip()]
        if not addresses:
            raise InvalidParameter("to", "Give the addresses to mail the report to as 'to' (comma-separated)")
        if len(addresses) > MAX_RECIPIENTS_PER_MAIL:
            raise InvalidParameter("to", f"At most {MAX_RECIPIENTS_PER_MAIL} addresses")
        for address in addresses:
            if not EMAIL_PATTERN.fullmatch(address) or "." not in address.rpartition("@")[2]:
                raise InvalidParameter("to", f"{shown(address)!r} is not an e-mail address")
        format_name = _one_form_value(fields, "format", "pdf")
        if format_name not in DELIVERY_FORMATS:
            allowed = ", ".join(DELIVERY_FORMATS)
            raise InvalidParameter("format", f"Unknown format {shown(format_name)!r}; allowed: {allowed}")
        zone = _one_form_value(fields, "timeZone", "UTC")
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise InvalidParameter("timeZone", f"Unknown time zone {shown(zone)!r}: give an IANA name") from None
        now = self.clock()
        recent = self.runs.runs(MAIL_REQUESTS, now - timedelta(hours=1), now)
        mine = [r for r in recent if r.requested_by == principal.label]
        if len(mine) >= MAX_MAILS_PER_HOUR:
            message = f"The {principal.label} asked {len(mine)} mails in the last hour, as many as it may"
            raise TooManyRequests(message, 600)
        run = JobRun(
            job_id=MAIL_REQUESTS, key=f"{key_time(now)}.{self.new_run_id()}", trigger="api",
            requested_by=principal.label, run_at=now, job_version=0, format=format_name, to=addresses, zone=zone,
            parameters={name: ", ".join(values) for name, values in fields.items()},
            updated_at=now, expires_at=now + timedelta(days=self.retention_days),
        )  # fmt: skip
        order = ExportOrder(report=report, format=DELIVERY_FORMATS[format_name], parameters=fields)
        # Recorded before its export is queued, so that the worker's word that the file is made finds it.
        if not self.runs.record_run(run):
            raise RuntimeError("a mail's run key was taken")  # a fresh uuid each time: cannot happen
        try:
            ticket = self.exporter.request(principal, order, run=f"{MAIL_REQUESTS}:{run.key}")
        except DomainError as refusal:
            run.status, run.error, run.updated_at = "failed", refusal.message, self.clock()
            self.runs.update_run(run)
            raise  # a bad report, format or parameter: the caller's 400 (or 403, 404) now
        run.ticket_id, run.updated_at = ticket.ticket_id, self.clock()
        self.runs.update_run(run)
        return run, ticket


def _one_form_value(fields: dict[str, list[str]], name: str, default: str) -> str:
    values = fields.pop(name, [])
    if len(values) > 1:
        raise InvalidParameter(name, f"Give {name} once")
    return values[0].strip() if values else default
