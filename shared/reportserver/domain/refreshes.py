"""Refreshes of data models' snapshots: asked for (over the API, or by a job), queued, run off the request
by the refresh worker, and followed to their end: queued -> running -> complete | failed.

One refresh of a model is under way at a time: the model's item holds it (a conditional write, with the
refresh's record in one transaction), so a second request while one is queued or running answers that
one. The worker runs the model's kept custom queries on the live database into a new SQLite file, shows
that every report on the model reads the same columns from it as from the live database, uploads it,
and makes it the model's snapshot with a conditional write on the time its rows are as of: a refresh
that finishes late never replaces a newer snapshot. The snapshot it replaced is deleted.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import msgspec

from reportserver.domain.access import AccessMode, Action, Principal, authorize, authorize_managing
from reportserver.domain.errors import AlreadyExists, DomainError, InvalidParameter, NotFound, StatementRefused, shown
from reportserver.domain.ports import DEFAULT_BATCH_SIZE, DataSource, QueryResult
from reportserver.domain.reports import Report
from reportserver.domain.snapshot_sql import reads_alike
from reportserver.domain.snapshots import (
    SNAPSHOT_PREFIX,
    KeptTable,
    Snapshot,
    SnapshotFile,
    keeps_snapshot,
    kept_queries,
)
from reportserver.domain.values import Column

log = logging.getLogger(__name__)

# A refresh holds its model while it waits in the queue (at most this long: a lost message frees it) and
# then while it runs (its lease).
QUEUED_HOLD = timedelta(hours=1)
RECENT_REFRESHES = 20
TRIGGERS = ("api", "schedule")
_REFRESH_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$")


class RefreshStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


FINISHED = frozenset({RefreshStatus.COMPLETE, RefreshStatus.FAILED})


class Refresh(msgspec.Struct, kw_only=True):
    """One refresh of a model's snapshot: who asked, when, and how it went."""

    id: str
    model_id: str
    requested_at: datetime
    requested_by: str  # the principal's label
    trigger: str = "api"  # "api" (POST .../refresh) or "schedule" (a job with mode refresh)
    status: RefreshStatus = RefreshStatus.QUEUED
    attempt: int = 0
    started_at: datetime | None = None
    lease_until: datetime | None = None
    taken_at: datetime | None = None  # when its queries began on the live database: what its rows are as of
    finished_at: datetime | None = None
    rows: int | None = None
    bytes: int | None = None
    tables: list[KeptTable] = msgspec.field(default_factory=list)
    error: str | None = None
    superseded: bool = False  # complete, but a newer snapshot had been stored first: this one was dropped

    def view(self, now: datetime) -> dict[str, Any]:
        """What a caller polling it sees. A refresh still running past its lease was cut short (its
        function ran out of time or memory): it is shown failed, though the queue may try it again."""
        status, error = self.status, self.error
        if status is RefreshStatus.RUNNING and self.lease_until is not None and self.lease_until < now:
            status = RefreshStatus.FAILED
            error = "The refresh stopped before it finished (out of time or memory); request it again"
        took = None
        if self.started_at is not None and self.finished_at is not None:
            took = round((self.finished_at - self.started_at).total_seconds(), 3)
        return {
            "id": self.id,
            "dataModelId": int(self.model_id),
            "status": status.value,
            "trigger": self.trigger,
            "requestedBy": self.requested_by,
            "requestedAt": self.requested_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "tookSeconds": took,
            "snapshotTakenAt": self.taken_at if status is RefreshStatus.COMPLETE else None,
            "rows": self.rows,
            "bytes": self.bytes,
            "tables": [{"name": t.name, "rows": t.rows} for t in self.tables],
            "superseded": self.superseded,
            "error": error,
            "statusUrl": f"/api/datamodels/{self.model_id}/refreshes/{self.id}",
        }


class RefreshMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The queue's message: which refresh of which model to run."""

    model_id: str
    refresh_id: str


class RefreshConflict(AlreadyExists):
    """A transition the refresh's stored state does not allow (another attempt holds it, or it is over)."""


class RefreshFailed(DomainError):
    """Why a refresh failed, for whoever follows it (never SQL text or a driver's detail about data)."""


class SnapshotSuperseded(DomainError):
    """A newer snapshot is stored than the one offered: the offered one is not kept."""


class RefreshStore(Protocol):
    def start(self, refresh: Refresh, hold_until: datetime, now: datetime, finished_holder: str | None) -> str | None:
        """Record `refresh` and make it its model's one refresh under way (until `hold_until`), in one
        write; None if done. Else nothing is written and the id of the refresh under way is returned.
        A hold whose time is past, or by `finished_holder` (one known to be over), is taken over."""
        ...

    def refresh(self, model_id: str, refresh_id: str) -> Refresh | None: ...

    def refreshes(self, model_id: str, limit: int) -> list[Refresh]:
        """The model's latest refreshes, newest first."""
        ...

    def claim(self, refresh: Refresh, now: datetime, lease_until: datetime) -> Refresh:
        """Running, attempt + 1, under a lease: from queued, or from running with its lease past;
        `RefreshConflict` otherwise. The model's hold is extended to the lease."""
        ...

    def finish(self, refresh: Refresh) -> None:
        """Store its final state while this attempt holds it (`RefreshConflict` if not)."""
        ...

    def let_go(self, model_id: str, refresh_id: str) -> None:
        """The model is no longer held, if this refresh holds it."""
        ...

    def snapshot(self, model_id: str) -> Snapshot | None: ...

    def replace_snapshot(self, snapshot: Snapshot) -> Snapshot | None:
        """Make `snapshot` the model's, unless the stored one is as new or newer (`SnapshotSuperseded`);
        the one it replaced."""
        ...


class LiveReading(Protocol):
    """A model's live database as a refresh reads it: every statement at one moment (`one_moment`)."""

    def run(
        self, sql: str, params: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AbstractContextManager[QueryResult]: ...

    def describe(self, sql: str) -> list[Column]: ...

    def text_order(self) -> str | None:
        """The database's text order (its collation's name), which a snapshot's SQLite may or may not share."""
        ...


# Opens a model's live database for one refresh: its statements share one moment (one transaction).
LiveOpener = Callable[[DataSource], AbstractContextManager[LiveReading]]


class RefreshQueue(Protocol):
    def send(self, message: RefreshMessage) -> None: ...


class ModelCatalog(Protocol):
    def data_source(self, data_source_id: str) -> DataSource | None: ...

    def list_reports(self) -> list[Report]: ...


class SnapshotFiles(Protocol):
    def upload(self, path: Path, key: str) -> None: ...

    def delete(self, key: str) -> None: ...


def new_refresh_id(now: datetime) -> str:
    """Sortable by time (the store lists a model's refreshes newest first by it), then random."""
    return now.strftime("%Y%m%dT%H%M%S%f") + "Z-" + secrets.token_hex(4)


@dataclass(frozen=True)
class Refreshes:
    """Refreshes asked for and followed: the API's `POST /api/datamodels/{id}/refresh` and its status, and
    the entry point of a job whose mode is refresh (`request`)."""

    catalog: ModelCatalog
    store: RefreshStore
    queue: RefreshQueue
    clock: Callable[[], datetime]

    def request(self, principal: Principal, model_id: str, trigger: str = "api") -> tuple[Refresh, bool]:
        """Queue a refresh of the model's snapshot as `principal` (who needs `refresh_data` and read
        access to the model; an admin has both); the refresh, and whether it is a new one (False: the
        one already under way, which this request joins). A model not marked for snapshots is refused.

        `trigger`: "api" for a caller's request, "schedule" for a job's run (whose principal is the job's
        owner as it is now). The refresh's `view` gives its status URL to follow."""
        if trigger not in TRIGGERS:
            raise ValueError(f"a refresh's trigger is one of {TRIGGERS}, not {trigger!r}")
        authorize(principal, Action.REFRESH_DATA)
        model = self._model(principal, model_id)
        if not keeps_snapshot(model):
            raise InvalidParameter(
                "snapshot",
                f"Data model {model.number} is not marked for snapshots: mark it, or one of its custom queries, "
                '("snapshot": true) first',
            )
        if not kept_queries(model):
            raise InvalidParameter(
                "snapshot",
                f"Data model {model.number} is marked for snapshots but has no custom query to keep: add one "
                "(its rows become a table of its name, which the model's reports read)",
            )
        now = self.clock()
        refresh = Refresh(
            id=new_refresh_id(now),
            model_id=model.id,
            requested_at=now,
            requested_by=principal.label,
            trigger=trigger,
        )
        holder = self.store.start(refresh, now + QUEUED_HOLD, now, None)
        if holder is not None:
            running = self.store.refresh(model.id, holder)
            if running is not None and running.status not in FINISHED:
                return running, False
            # The hold outlived its refresh (its worker stopped before letting go): take it over.
            holder = self.store.start(refresh, now + QUEUED_HOLD, now, holder)
            if holder is not None:  # another request took it over first: answer that one
                other = self.store.refresh(model.id, holder)
                if other is None:
                    raise RefreshConflict(f"Data model {model.number} is being refreshed; ask again in a moment")
                return other, False
        try:
            self.queue.send(RefreshMessage(model_id=model.id, refresh_id=refresh.id))
        except Exception:
            refresh.status, refresh.error, refresh.finished_at = RefreshStatus.FAILED, "It could not be queued", now
            self.store.finish(refresh)
            self.store.let_go(model.id, refresh.id)
            raise
        log.info("refresh requested", extra={"model": model.id, "refresh": refresh.id, "trigger": refresh.trigger})
        return refresh, True

    def status(self, principal: Principal, model_id: str, refresh_id: str) -> Refresh:
        model = self._model(principal, model_id)
        found = self.store.refresh(model.id, refresh_id) if _REFRESH_ID.fullmatch(refresh_id) else None
        if found is None:
            raise NotFound(f"Data model {model.number} has no refresh '{shown(refresh_id)}'")
        return found

    def recent(self, principal: Principal, model_id: str) -> list[Refresh]:
        model = self._model(principal, model_id)
        return self.store.refreshes(model.id, RECENT_REFRESHES)

    def snapshot(self, model: DataSource) -> Snapshot | None:
        """The model's current snapshot (the one its reports read), if it is marked and has one."""
        return self.store.snapshot(model.id) if keeps_snapshot(model) else None

    def view(self, refresh: Refresh) -> dict[str, Any]:
        return refresh.view(self.clock())

    def _model(self, principal: Principal, model_id: str) -> DataSource:
        """The model, for a principal that may read it (as data model reads are decided: 403 without a
        scope on it, else 404 when there is none of that number)."""
        if not model_id.isascii() or not model_id.isdigit() or len(model_id) > 12 or int(model_id) < 1:
            raise NotFound(f"No data model '{shown(model_id)}'")
        number = int(model_id)
        authorize_managing(principal, "dataModel", AccessMode.READ, number)
        model = self.catalog.data_source(str(number))
        if model is None:
            raise NotFound(f"No data model {number}")
        return model


@dataclass(frozen=True)
class RefreshPolicy:
    lease_seconds: int  # longer than the worker's timeout: a worker that dies lets the next delivery take over
    scratch_dir: Path  # where the new file is written (the function's /tmp)
    max_bytes: int  # a snapshot larger than this fails (every function that reads it keeps a copy in /tmp)


SnapshotOpener = Callable[[Path, DataSource], SnapshotFile]


@dataclass(frozen=True)
class RefreshWorker:
    """Runs one refresh, start to end (the refresh function's one job)."""

    catalog: ModelCatalog
    store: RefreshStore
    read_live: LiveOpener
    new_file: SnapshotOpener
    files: SnapshotFiles
    policy: RefreshPolicy
    clock: Callable[[], datetime]

    def run(self, model_id: str, refresh_id: str) -> str:
        """The refresh's outcome: complete, failed, or skipped (another attempt has it, or it is over)."""
        refresh = self.store.refresh(model_id, refresh_id)
        if refresh is None:
            log.warning("refresh message for an unknown refresh", extra={"model": model_id, "refresh": refresh_id})
            return "skipped"
        now = self.clock()
        try:
            refresh = self.store.claim(refresh, now, now + timedelta(seconds=self.policy.lease_seconds))
        except RefreshConflict:
            log.info("refresh taken or over already", extra={"model": model_id, "refresh": refresh_id})
            return "skipped"
        path = self.policy.scratch_dir / f"{model_id}-{refresh_id}.sqlite"
        try:
            self._refresh(refresh, path)
        except DomainError as refused:
            self._end(refresh, RefreshStatus.FAILED, error=refused.message)
        except Exception:
            # Unexpected (S3 or DynamoDB failing, a bug): this refresh fails, and may be asked for again.
            log.exception("refresh failed", extra={"model": model_id, "refresh": refresh_id})
            self._end(refresh, RefreshStatus.FAILED, error="The refresh failed on an internal error; ask for it again")
        finally:
            path.unlink(missing_ok=True)
            self.store.let_go(model_id, refresh_id)
        log.info(
            "refresh finished",
            extra={"model": model_id, "refresh": refresh_id, "status": refresh.status.value, "rows": refresh.rows},
        )
        return refresh.status.value

    def _refresh(self, refresh: Refresh, path: Path) -> None:
        model = self.catalog.data_source(refresh.model_id)
        if model is None:
            raise NotFound(f"Data model {refresh.model_id} was deleted")
        queries = kept_queries(model)
        if not queries:
            raise InvalidParameter("snapshot", f"Data model {model.number} no longer keeps any custom query")
        self.policy.scratch_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        taken_at = self.clock()
        snapshot_file = self.new_file(path, model)
        tables = []
        # Every kept query and every report's description at one moment of the live database.
        with self.read_live(model) as live:
            text_order = live.text_order()
            for query in queries:
                try:
                    live.describe(query.query)  # SQL that no longer prepares (a table gone) fails here, in words
                    with live.run(query.query, {}) as result:
                        tables.append(snapshot_file.add_table(query.name, result.columns, result.batches))
                except StatementRefused as refused:  # the engine's own words on SQL that does not prepare
                    raise RefreshFailed(f"Custom query '{query.name}' failed: {shown(refused.detail, 300)}") from None
                except DomainError as failed:
                    raise RefreshFailed(f"Custom query '{query.name}' failed: {failed.message}") from None
            reports = self._checked_reports(model, live, snapshot_file, tables, text_order)
        size = snapshot_file.finish()
        key = f"{SNAPSHOT_PREFIX}{model.id}/{refresh.id}.sqlite"
        self.files.upload(path, key)
        rows = sum(t.rows for t in tables)
        snapshot = Snapshot(
            model_id=model.id,
            refresh_id=refresh.id,
            key=key,
            taken_at=taken_at,
            rows=rows,
            bytes=size,
            tables=tables,
            reports=reports,
            text_order=text_order,
        )
        superseded = False
        try:
            replaced = self.store.replace_snapshot(snapshot)
        except SnapshotSuperseded:
            superseded, replaced = True, None
            self._delete(key)
        if replaced is not None and replaced.key != key:
            self._delete(replaced.key)
        refresh.taken_at, refresh.rows, refresh.bytes, refresh.tables = taken_at, rows, size, tables
        refresh.superseded = superseded
        self._end(refresh, RefreshStatus.COMPLETE)
        log.info("snapshot made", extra={"rows": rows, "bytes": size, "seconds": round(time.monotonic() - started, 3)})

    def _checked_reports(
        self,
        model: DataSource,
        live: LiveReading,
        snapshot_file: SnapshotFile,
        tables: list[KeptTable],
        text_order: str | None,
    ) -> dict[str, int]:
        """Every report on the model, each statement of it (sheets, choices) shown to compute from the
        snapshot what it computes on the live database (`snapshot_sql`); the reports (id: version) so checked."""
        checked = {}
        for report in sorted(self.catalog.list_reports(), key=lambda r: r.id):
            if report.data_source_id != model.id:
                continue
            statements = [(q.sql, f"sheet '{q.sheet_name}'") for q in report.queries]
            statements += [(f.choices_sql, f"the choices of field '{f.name}'") for f in report.fields if f.choices_sql]
            fields = report.field_types()
            for sql, where in statements:
                try:
                    kept = snapshot_file.describe(sql)
                except StatementRefused as refused:
                    raise RefreshFailed(
                        f"Report '{report.slug}' ({where}) does not run on the snapshot: {shown(refused.detail, 300)}. "
                        "A snapshot holds the model's kept custom queries, each as a table of its name"
                    ) from None
                difference = reads_alike(sql, model.kind, live.describe(sql), kept, tables, text_order, fields)
                if difference is not None:
                    statement = f"Report '{report.slug}' ({where})"
                    raise RefreshFailed(f"{statement} reads otherwise from the snapshot: {difference}")
            checked[str(report.id)] = report.version
        return checked

    def _delete(self, key: str) -> None:
        """A file no snapshot names any more; one left behind costs only its storage, so a refresh that
        has made its snapshot the model's is not failed for it."""
        try:
            self.files.delete(key)
        except Exception:
            log.exception("could not delete a replaced snapshot's file", extra={"key": key})

    def _end(self, refresh: Refresh, status: RefreshStatus, error: str | None = None) -> None:
        refresh.status, refresh.error, refresh.finished_at = status, error, self.clock()
        refresh.lease_until = None
        try:
            self.store.finish(refresh)
        except RefreshConflict:
            log.warning("refresh lost its lease before it finished", extra={"refresh": refresh.id})
