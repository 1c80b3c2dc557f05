"""Exports: asking for a file (a ticket and a queue message), following it, and rendering it.

`ExportService` serves the API: it validates the request as a report call would, reuses a finished
file within the report's cache period, and signs download links afresh each time. `ExportWorker`
serves the queue: it takes a ticket under a lease, streams the report's sheets through a renderer
into a scratch file, uploads it and completes the ticket.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec

from reportserver import records
from reportserver.domain.access import Principal
from reportserver.domain.calls import CallLimits, Catalog, ReportRunner, find_report
from reportserver.domain.errors import (
    DataSourceFailed,
    DomainError,
    FileGone,
    InvalidParameter,
    LeaseLost,
    NotFound,
    NotReady,
    OutOfTime,
    SourceUnavailable,
    TicketBusy,
    TicketConflict,
    TooManyRequests,
)
from reportserver.domain.ports import (
    OutputKind,
    Progress,
    ReadAgain,
    ReadPlan,
    RenderContext,
    Renderer,
    Sheet,
    Source,
)
from reportserver.domain.reports import EXPORT_FORMATS, FieldType, Report, ReportQuery
from reportserver.domain.tickets import (
    FINAL_STATUSES,
    ExportTicket,
    TicketStatus,
    TicketStore,
    new_ticket_id,
    own_ticket,
)

DEFAULT_FORMAT = "xlsx"
# A template report exports these as its page (others as its rows), within these bounds.
TEMPLATE_KINDS = {
    "html": OutputKind("html", "text/html; charset=utf-8"),
    "pdf": OutputKind("pdf", "application/pdf"),
}
TEMPLATE_EXPORT_ROWS = 100_000
TEMPLATE_EXPORT_BYTES = 50_000_000
TEMPLATE_EXPORT_SECONDS = 120.0
Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExportQueue(Protocol):
    def send(self, ticket_id: str) -> None: ...

    def waiting(self) -> int:
        """Messages in the queue that no worker has received yet (SQS's approximate count)."""
        ...


class FileStore(Protocol):
    def place(
        self, ticket_id: str, report_slug: str, created_at: datetime, extension: str, folder: str = "exports"
    ) -> tuple[str, str]:
        """Where an export's file goes (under `folder/`), and the name its reader sees: (key, file name)."""
        ...

    def upload(self, path: Path, key: str, content_type: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def download_url(self, key: str, file_name: str, content_type: str, expires_seconds: int) -> str: ...


@dataclass(frozen=True)
class ExportOrder:
    """What is asked for, whatever the request's shape (seed 001 or 002): the report by id, slug or
    name; its parameters as text lists, as a query string gives them; and a time range in UNIX seconds."""

    report: str
    format: str = DEFAULT_FORMAT
    parameters: dict[str, list[str]] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None
    force_update: bool = False
    csv_bom: bool = False
    csv_neutralise_formulas: bool | None = None  # None: as the report says


def check_format(report: Report, requested: str | None) -> str:
    export_format = (requested or DEFAULT_FORMAT).strip().lower()
    if export_format not in EXPORT_FORMATS:
        raise InvalidParameter("format", f"Unknown format '{export_format[:20]}'; allowed: {', '.join(EXPORT_FORMATS)}")
    if export_format not in report.formats:
        raise InvalidParameter(
            "format",
            f"Report '{report.slug}' cannot be exported as {export_format}; it allows: {', '.join(report.formats)}",
        )
    return export_format


def order_parameters(report: Report, order: ExportOrder) -> dict[str, list[str]]:
    """The order's parameters with its time range put in the report's declared range fields."""
    raw = dict(order.parameters)
    for bound, field_name in ((order.start_time, "start_time"), (order.end_time, "end_time")):
        if bound is None:
            continue
        target = report.time_range_field(field_name)
        if target is None:
            raise InvalidParameter(field_name, f"Report '{report.slug}' does not take a time range ({field_name})")
        try:
            moment = datetime.fromtimestamp(float(bound), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidParameter(field_name, f"'{field_name}' must be UNIX seconds (UTC)") from None
        declared = report.field(target)
        text = moment.date().isoformat() if declared and declared.type is FieldType.DATE else moment.isoformat()
        raw[target] = [text]
    return raw


def cache_key(report: Report, export_format: str, bound: Mapping[str, Any]) -> str:
    """Same report (and version), same normalised values, same format: the same file."""
    canonical = records.dumps(
        {
            "report": report.id,
            "version": report.version,
            "format": export_format,
            "parameters": {k: bound[k] for k in sorted(bound)},
        }
    )
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class ExportPolicy:
    retention_days: int
    link_seconds: int
    max_open_tickets: int = 10  # a token's pending and in-progress exports, at most
    # Tickets older than this are not counted as open however they look: no retry runs that long, so
    # one still pending is stranded (and left to its TTL), not work that holds a slot.
    open_window: timedelta = timedelta(days=1)
    retry_after_seconds: int = 30


@dataclass(frozen=True)
class ExportService:
    catalog: Catalog
    runner: ReportRunner
    tickets: TicketStore
    queue: ExportQueue
    files: FileStore
    policy: ExportPolicy
    clock: Clock = utc_now

    def request(
        self, principal: Principal, order: ExportOrder, run: str | None = None, keep_days: int | None = None
    ) -> ExportTicket:
        """A ticket for the export, queued. For a job's `run` ("<job id>:<run key>"), a fresh file is made
        (no cached one: a run shows the data of its time) and the owner's cap on open exports does not
        apply (a job's runs are bounded by its schedule, not by a caller's retries)."""
        report = find_report(self.catalog, principal, order.report)
        export_format = check_format(report, order.format)
        raw = order_parameters(report, order)
        # Bad values are refused now, not in the worker; a job's run (no caller waits on it) leaves the
        # choices read from the database to the worker, which reads the database and fails the ticket.
        bound = self.runner.bind(report if run is None else _choices_unread(report), raw)
        neutralise = (
            report.csv_neutralise_formulas if order.csv_neutralise_formulas is None else order.csv_neutralise_formulas
        )
        options = {"__csv_bom": order.csv_bom, "__csv_neutralise_formulas": neutralise}
        key = cache_key(report, export_format, bound | options)
        now = self.clock()
        if report.cache_seconds and not order.force_update and run is None:
            cached = self._cached(principal, report, key, now)
            if cached is not None:
                return cached
        # A report mailed on request (job "0") is its caller's export, counted and seen as theirs.
        on_request = run is not None and run.startswith("0:")
        if run is None or on_request:
            self._check_open(principal, now)
        ticket = ExportTicket(
            ticket_id=new_ticket_id() if run is None else run_ticket_id(run),
            # A job run's file is the job's (read through its results), not counted among its owner's exports.
            owner=principal.owner_id if run is None or on_request else f"job:{run.partition(':')[0]}",
            report_id=report.id,
            report_slug=report.slug,
            report_name=report.name,
            format=export_format,
            parameters=raw,
            cache_key=key,
            csv_bom=order.csv_bom,
            csv_neutralise_formulas=neutralise,
            created_at=now,
            updated_at=now,
            # A job run's ticket lives as long as the run (the job's retentionPeriod).
            expires_at=now + timedelta(days=keep_days or self.policy.retention_days),
            run=run,
        )
        try:
            self.tickets.create(ticket)
        except TicketConflict:
            # A run's ticket is named by the run: one made by an earlier attempt of the same start is that
            # run's, and queued again (a finished ticket is skipped by the worker).
            existing = self.tickets.get(ticket.ticket_id) if run is not None else None
            if existing is None or existing.run != run:
                raise
            ticket = existing
        try:
            self.queue.send(ticket.ticket_id)
        except Exception:
            self.tickets.fail(ticket.ticket_id, self.clock(), "The export could not be queued; please retry")
            raise
        log.info(
            "export requested", extra={"ticket_id": ticket.ticket_id, "report": report.slug, "format": export_format}
        )
        return ticket

    def _check_open(self, principal: Principal, now: datetime) -> None:
        """One token's open exports are capped, so that it cannot fill the workers for everyone. A soft
        cap: requests of the same token at the same instant may each see one slot left (API Gateway's
        throttle bounds how many); a counter would need every path that ends a ticket to give its slot
        back, and a stranded ticket would then hold one for ever."""
        limit = self.policy.max_open_tickets
        if self.tickets.count_open(principal.owner_id, now - self.policy.open_window) >= limit:
            raise TooManyRequests(
                f"The {principal.label} has {limit} exports pending or in progress, as many as it may; "
                "wait for one to finish",
                self.policy.retry_after_seconds,
            )

    def _cached(self, principal: Principal, report: Report, key: str, now: datetime) -> ExportTicket | None:
        """A new ticket, complete at once, for a file rendered within the report's cache period. The
        period runs from the render: the store finds rendered tickets only, never these copies."""
        found = self.tickets.find_complete_by_cache_key(key, now - timedelta(seconds=report.cache_seconds))
        if found is None or not found.file_key or not self.files.exists(found.file_key):
            return None
        # The same file under a new ticket of the caller's, complete at once.
        ticket = msgspec.structs.replace(
            found,
            ticket_id=new_ticket_id(),
            owner=principal.owner_id,
            report_name=report.name,
            cache_key=key,
            created_at=now,
            updated_at=now,
            started_at=now,
            completed_at=now,
            cached_from=found.ticket_id,
        )
        self.tickets.create(ticket)
        log.info("export served from cache", extra={"ticket_id": ticket.ticket_id, "cached_from": found.ticket_id})
        return ticket

    def status(self, principal: Principal, ticket_id: str) -> dict[str, Any]:
        ticket = own_ticket(self.tickets, principal.owner_id, ticket_id)
        view = ticket.public_view()
        if ticket.status is TicketStatus.COMPLETE:
            view["report_url"] = self._link(ticket)
            view["link_expires_in"] = self.policy.link_seconds
        return view

    def download_url(self, principal: Principal, ticket_id: str) -> str:
        ticket = own_ticket(self.tickets, principal.owner_id, ticket_id)
        if ticket.status is not TicketStatus.COMPLETE:
            reason = f": {ticket.error}" if ticket.error else ""
            raise NotReady(f"Export '{ticket_id}' is {ticket.status.value}{reason}; its file is not ready")
        if not ticket.file_key or not self.files.exists(ticket.file_key):
            raise FileGone(f"The file of export '{ticket_id}' has expired or was deleted; request the export again")
        return self._link(ticket)

    def _link(self, ticket: ExportTicket) -> str:
        assert ticket.file_key and ticket.file_name and ticket.content_type
        return self.files.download_url(ticket.file_key, ticket.file_name, ticket.content_type, self.policy.link_seconds)


def run_ticket_id(run: str) -> str:
    """A job run's one ticket id: the same for every attempt to start the run."""
    return hashlib.sha256(f"job run {run}".encode()).hexdigest()[: len(new_ticket_id())]


def _choices_unread(report: Report) -> Report:
    """The report with its database-read choices taken as text (their values are checked where read)."""
    if not any(f.choices_sql for f in report.fields):
        return report
    fields = [
        msgspec.structs.replace(f, type=FieldType.STRING, choices_sql=None) if f.choices_sql else f
        for f in report.fields
    ]
    return msgspec.structs.replace(report, fields=fields)


def out_of_attempts(attempts: int) -> str:
    """What a ticket that has had every attempt says (the worker's cap, the sweeper, the dead letters)."""
    return f"The export could not be completed after {attempts} attempts; please request it again"


class RetryLater(Exception):
    """An attempt that failed for a reason that may pass (a source that is down): retry the message."""


def retry_delay(receives: int, busy: bool = False, lease_seconds: int = 960) -> int:
    """Seconds until a failed attempt's message comes back: 30 s, then 2 min, then 8 min (at most 15),
    not the queue's visibility timeout (90 min); a ticket another attempt holds, after its lease."""
    if busy:
        return lease_seconds
    return min(900, 30 * 4 ** max(receives - 1, 0))


@dataclass(frozen=True)
class WorkerPolicy:
    lease_seconds: int
    progress_seconds: float
    scratch_dir: Path
    finish_seconds: float = 60.0  # kept back from the time left to upload the file and complete the ticket
    max_attempts: int = 3  # the queue's maxReceiveCount: attempts a ticket gets, over all its messages


def unlimited() -> float:
    return float("inf")


@dataclass(frozen=True)
class ExportWorker:
    catalog: Catalog
    runner: ReportRunner
    tickets: TicketStore
    files: FileStore
    renderer_for: Callable[[str], Renderer]
    policy: WorkerPolicy
    clock: Clock = utc_now
    # A template report's page as an html or pdf file (`reportserver.render.template_page.write_page`).
    page_writer: Callable[[str, str, Path, RenderContext], object] | None = None
    # Told a job run's ticket is finished ("<job id>:<run key>"): the run's delivery step follows.
    finished: Callable[[str], None] | None = None

    def run(self, ticket_id: str, time_left: Callable[[], float] = unlimited, final_attempt: bool = False) -> str:
        """Render one ticket; return "complete", "failed" or "skipped" (a finished or unknown ticket).
        Raise `TicketBusy` to have the message retried, and let unexpected errors raise for a retry.

        `time_left` gives the seconds this invocation has left (Lambda's remaining time). Rendering
        stops, and the ticket fails saying why, once less than `finish_seconds` is left: a worker the
        runtime kills mid-render would leave its ticket in progress until its lease runs out, and then
        the retry would be killed the same way."""
        ticket = self._claim(ticket_id)
        if ticket is None:
            # Finished already. A job run's ticket is announced again: the message may be the retry of one
            # whose announcement failed (a repeated announcement delivers nothing twice).
            done = self.tickets.get(ticket_id) if self.finished is not None else None
            if done is not None and done.run is not None and done.status in FINAL_STATUSES and self.finished:
                self.finished(done.run)
            return "skipped"
        outcome = self._render(ticket, time_left, final_attempt)
        if outcome in ("complete", "failed") and ticket.run is not None and self.finished is not None:
            # The job run's next step, its delivery; if this fails, the message fails and its retry
            # announces the finished ticket again (above).
            self.finished(ticket.run)
        return outcome

    def _render(self, ticket: ExportTicket, time_left: Callable[[], float], final_attempt: bool) -> str:
        ticket_id = ticket.ticket_id
        if ticket.attempt > self.policy.max_attempts:
            # Messages of one ticket (a retry, the sweeper's) each count from one; the ticket counts all.
            message = out_of_attempts(ticket.attempt - 1)
            self.tickets.fail(ticket.ticket_id, self.clock(), message, attempt=ticket.attempt)
            return "failed"
        final_attempt = final_attempt or ticket.attempt >= self.policy.max_attempts
        self._clear_scratch()
        scratch: Path | None = None
        rows = 0
        try:
            report = self.catalog.report_by_id(ticket.report_id)
            if report is None:
                raise NotFound(f"Report '{ticket.report_slug}' no longer exists")
            context = self._context(report, ticket)
            as_page = report.type == "template" and ticket.format in TEMPLATE_KINDS and self.page_writer is not None
            kind = self._kind(report, ticket.format, as_page)
            scratch = self.policy.scratch_dir / f"{ticket.ticket_id}.{kind.extension}"
            write = self._template_file if as_page else self._table_file
            rows = write(report, ticket, scratch, context, time_left)
            # A job run's file is kept for the job's retentionPeriod (under runs/, removed by the runs' sweeper),
            # any other for the bucket's export retention (exports/, removed by S3's lifecycle).
            folder = "runs" if ticket.run is not None and not ticket.run.startswith("0:") else "exports"
            key, name = self.files.place(ticket.ticket_id, report.slug, ticket.created_at, kind.extension, folder)
            size = scratch.stat().st_size
            self.files.upload(scratch, key, kind.content_type)
            self.tickets.complete(ticket, self.clock(), rows, size, key, name, kind.content_type)
            log.info("export complete", extra={"ticket_id": ticket_id, "rows": rows, "bytes": size})
            return "complete"
        except SourceUnavailable as down:
            if not final_attempt:
                # Transient: the lease goes back and the message is retried (soon: see `retry_delay`).
                self._release(ticket, rows)
                log.warning("export source unavailable; retrying", extra={"ticket_id": ticket_id})
                raise RetryLater(down.message) from None
            message = f"{down.message} (after {ticket.attempt} attempts); please request the export again later"
            self.tickets.fail(ticket.ticket_id, self.clock(), message, attempt=ticket.attempt)
            log.info("export failed", extra={"ticket_id": ticket_id, "reason": message})
            return "failed"
        except DomainError as refusal:
            message = refusal.message
            self.tickets.fail(ticket.ticket_id, self.clock(), message, attempt=ticket.attempt)
            log.info("export failed", extra={"ticket_id": ticket_id, "reason": message})
            return "failed"
        except LeaseLost:
            log.warning("export lease lost; another attempt owns the ticket", extra={"ticket_id": ticket_id})
            return "skipped"
        except Exception:
            # Unexpected (an S3 or DynamoDB hiccup, a bug): give the lease back so that the retry the
            # queue makes can take the ticket at once, and let the message fail.
            self._release(ticket, rows)
            raise
        finally:
            if scratch is not None:
                scratch.unlink(missing_ok=True)

    def _kind(self, report: Report, export_format: str, as_page: bool) -> OutputKind:
        if as_page:
            return TEMPLATE_KINDS[export_format]
        return self.renderer_for(export_format).output(len(report.queries))

    def _table_file(
        self, report: Report, ticket: ExportTicket, target: Path, context: RenderContext, time_left: Callable[[], float]
    ) -> int:
        """The report's sheets streamed through the format's renderer into `target`; the rows written."""
        renderer = self.renderer_for(ticket.format)
        progress = _ProgressReporter(self, ticket, self.policy.progress_seconds, time_left)
        bound = self.runner.bind(report, ticket.parameters)
        source = self.runner.source_for(report)
        return render_queries(source, report.queries, bound, renderer, target, context, progress)

    def _template_file(
        self, report: Report, ticket: ExportTicket, target: Path, context: RenderContext, time_left: Callable[[], float]
    ) -> int:
        """A template report's page (its rows through its template, bounded as a page is, with more room)
        written as the ticket's format; the rows it was made from."""
        from reportserver.domain import templates  # noqa: PLC0415 - template reports only

        assert self.page_writer is not None
        seconds = max(1.0, min(TEMPLATE_EXPORT_SECONDS, time_left() - self.policy.finish_seconds))
        budget = templates.Budget(seconds=seconds, max_bytes=TEMPLATE_EXPORT_BYTES)
        limits = CallLimits(max_rows=TEMPLATE_EXPORT_ROWS, max_bytes=TEMPLATE_EXPORT_BYTES)
        contents, rows = self.runner.template_page(report, ticket.parameters, limits, context.generated_at, budget)
        self.page_writer(ticket.format, templates.whole_page(report.name, contents), target, context)
        return rows

    def _claim(self, ticket_id: str) -> ExportTicket | None:
        now = self.clock()
        try:
            return self.tickets.claim(ticket_id, now, now + timedelta(seconds=self.policy.lease_seconds))
        except NotFound:
            log.warning("export message for an unknown ticket", extra={"ticket_id": ticket_id})
            return None
        except TicketConflict:
            current = self.tickets.get(ticket_id)
            if current is None or current.status in FINAL_STATUSES:
                log.info("duplicate delivery of a finished export", extra={"ticket_id": ticket_id})
                return None
            raise TicketBusy(f"export {ticket_id} is being rendered by another attempt") from None

    def _clear_scratch(self) -> None:
        """A container runs one export at a time, so anything in the scratch folder is left by an attempt
        that was cut short (a timeout, a crash): removed, or /tmp would fill over a container's life."""
        folder = self.policy.scratch_dir
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.iterdir():
            if leftover.is_file():
                log.warning("removing a scratch file left by an earlier attempt", extra={"file": leftover.name})
                leftover.unlink(missing_ok=True)

    def _release(self, ticket: ExportTicket, rows: int) -> None:
        now = self.clock()
        try:
            self.tickets.record_progress(ticket, rows, now, now)
        except Exception:
            log.exception("could not release the export's lease", extra={"ticket_id": ticket.ticket_id})

    def _context(self, report: Report, ticket: ExportTicket) -> RenderContext:
        return RenderContext(
            title=report.name,
            sheet_count=len(report.queries),
            generated_at=self.clock(),
            parameters=ticket.shown_parameters(),
            options={"csv_bom": ticket.csv_bom, "csv_neutralise_formulas": ticket.csv_neutralise_formulas},
        )

    def record_progress(self, ticket: ExportTicket, rows: int) -> None:
        now = self.clock()
        try:
            self.tickets.record_progress(ticket, rows, now, now + timedelta(seconds=self.policy.lease_seconds))
        except TicketConflict:
            raise LeaseLost(ticket.ticket_id) from None


class _ProgressReporter:
    """Told the rows after every batch: stops the render when the invocation's time runs short, and
    writes the rows (renewing the lease) every few seconds only."""

    def __init__(
        self, worker: ExportWorker, ticket: ExportTicket, every_seconds: float, time_left: Callable[[], float]
    ) -> None:
        self._worker = worker
        self._ticket = ticket
        self._every = every_seconds
        self._next = time.monotonic() + self._every
        self._time_left = time_left

    def __call__(self, rows: int) -> None:
        if self._time_left() < self._worker.policy.finish_seconds:
            raise OutOfTime(
                f"The export was stopped after {rows:,} rows: it would not finish within the export worker's"
                " time limit. Ask for fewer rows (narrower parameters) or a lighter format such as csv"
            )
        if time.monotonic() >= self._next:
            self._worker.record_progress(self._ticket, rows)
            self._next = time.monotonic() + self._every


MAX_READS = 16


def render_queries(
    source: Source,
    queries: list[ReportQuery],
    bound: Mapping[str, Any],
    renderer: Renderer,
    target: Path,
    context: RenderContext,
    progress: Progress,
) -> int:
    """Stream each query's result into the renderer, one sheet at a time, never the whole result.

    A source that finds part-way that it must read a result differently (see `ReadAgain`) has the file
    made again from the start with the plan it asks for; nothing already written is patched.
    """
    plans: dict[int, ReadPlan] = {}
    reading: list[int] = [0]

    def sheets() -> Iterator[Sheet]:
        for number, query in enumerate(queries):
            reading[0] = number
            with source.run_arrow(query.sql, bound, plans.get(number)) as result:
                yield Sheet(query.sheet_name, result.schema, result.batches)

    for _ in range(MAX_READS):
        try:
            return renderer.render(sheets(), target, context, progress)
        except ReadAgain as again:
            log.info("reading a sheet again", extra={"sheet": reading[0], "reason": again.reason})
            target.unlink(missing_ok=True)
            plans[reading[0]] = again.plan
    raise DataSourceFailed("The report's columns kept changing type; declare their types in the report's SQL")


SWEEP_RESERVE_SECONDS = 10.0  # the sweep stops this long before its invocation's end


@dataclass(frozen=True)
class ExportSweeper:
    """Run on a schedule: no ticket stays pending or in progress for ever.

    A ticket pending and untouched for `stranded_seconds` lost its message (the request crashed between
    the ticket and the message, or the message was never delivered): the message is sent again. One in
    progress whose lease ran out that long ago lost its worker and its retry: sent again, or failed once
    it has had `max_attempts`. Each ticket is nudged (its `updated_at` moved) with a conditional write,
    so two sweeps never send it twice in one period, and a ticket a worker took meanwhile is left alone.
    """

    tickets: TicketStore
    queue: ExportQueue
    stranded_seconds: int
    max_attempts: int
    clock: Clock = utc_now

    def sweep(self, time_left: Callable[[], float] = unlimited) -> dict[str, int]:
        """In-progress tickets first (they hold workers' attempts), then pending ones, while more than
        `SWEEP_RESERVE_SECONDS` of the invocation is left; one ticket's error never stops the rest."""
        now = self.clock()
        before = now - timedelta(seconds=self.stranded_seconds)
        counts = {"resent": 0, "failed": 0, "skipped": 0}
        for ticket in self.tickets.untouched(TicketStatus.IN_PROGRESS, before):
            if time_left() < SWEEP_RESERVE_SECONDS:
                break
            if ticket.lease_until is not None and ticket.lease_until > before:
                counts["skipped"] += 1  # a worker may still hold it
            elif ticket.attempt >= self.max_attempts:
                message = out_of_attempts(ticket.attempt)
                counts["failed"] += (
                    self.tickets.fail(ticket.ticket_id, now, message, attempt=ticket.attempt) is not None
                )
            else:
                counts["resent"] += self._send_again(ticket, now)
        # A pending ticket's message may be waiting behind the workers' concurrency: only while no message
        # waits in the queue is an old pending ticket sure to have lost its message.
        if self.queue.waiting() == 0:
            for ticket in self.tickets.untouched(TicketStatus.PENDING, before):
                if time_left() < SWEEP_RESERVE_SECONDS:
                    break
                counts["resent"] += self._send_again(ticket, now)
        log.info("exports swept", extra=counts)
        return counts

    def _send_again(self, ticket: ExportTicket, now: datetime) -> int:
        try:
            if not self.tickets.nudge(ticket, now):
                return 0  # changed since it was read: taken by a worker, or by another sweep
            self.queue.send(ticket.ticket_id)
        except Exception:
            log.exception("could not send an export's message again", extra={"ticket_id": ticket.ticket_id})
            return 0
        return 1


def fail_dead_letter(tickets: TicketStore, ticket_id: str, now: datetime) -> bool:
    """A message that died in the dead-letter queue leaves its ticket failed, never in progress for ever.
    The message counts the ticket's own attempts (the queue's receive count is one more by then: the
    dead-letter queue's own delivery counts too)."""
    ticket = tickets.get(ticket_id)
    if (
        ticket is not None
        and ticket.status is TicketStatus.IN_PROGRESS
        and ticket.lease_until
        and ticket.lease_until > now
    ):
        # A message of this ticket died while another attempt renders it: that attempt finishes it.
        log.info("dead-lettered message of a ticket still rendering", extra={"ticket_id": ticket_id})
        return False
    attempts = ticket.attempt if ticket is not None else 0
    if attempts:
        message = out_of_attempts(attempts)
    else:
        message = "The export could not be started; please request it again"
    return tickets.fail(ticket_id, now, message, attempt=ticket.attempt if ticket is not None else None) is not None
