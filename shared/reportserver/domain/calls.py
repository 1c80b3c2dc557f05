"""Report calls: find the report a token may run, bind its parameters, run it within the caps."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from reportserver import records
from reportserver.domain.access import Action, Principal, ReportTarget, authorize, decide
from reportserver.domain.errors import NotFound, NotReady, ResultTooLarge, shown
from reportserver.domain.ports import DataSource, Source
from reportserver.domain.reports import SLUG_PATTERN, Choice, FieldType, Report, ReportField, bind_parameters, slugify
from reportserver.domain.snapshots import Snapshot, SnapshotCopies, keeps_snapshot

if TYPE_CHECKING:
    from reportserver.domain.templates import Budget

REPORT_ID = re.compile(r"^[0-9]{1,18}$")
MAX_CHOICES = 10_000
MAX_NAME_LENGTH = 200


class Catalog(Protocol):
    """Read access to report definitions and data sources."""

    def report_by_id(self, report_id: int) -> Report | None: ...

    def report_by_slug(self, slug: str) -> Report | None: ...

    def report_by_field_id(self, field_id: int) -> Report | None: ...

    def list_reports(self) -> list[Report]: ...

    def data_source(self, data_source_id: str) -> DataSource | None: ...


SourceOpener = Callable[[DataSource], Source]


def _unmeasured(chunk: bytes) -> int:
    return len(chunk)


@dataclass(frozen=True, slots=True)
class CallLimits:
    """The synchronous caps. `measure` tells what a piece of the body will weigh in the response that
    is actually sent (the HTTP edge knows how its runtime serialises it); the byte cap applies to that."""

    max_rows: int
    max_bytes: int
    measure: Callable[[bytes], int] = _unmeasured


@dataclass(frozen=True, slots=True)
class CallResult:
    report: Report
    row_count: int
    body: bytes
    snapshot: Snapshot | None = None  # the data model's snapshot the rows came from, if they did


def find_report(catalog: Catalog, principal: Principal, reference: str) -> Report:
    """A report named by its numeric id, its slug, or its name ("GST Balance"), as seed 000 names them."""
    reference = reference.strip()
    report = None
    if REPORT_ID.fullmatch(reference):
        report = catalog.report_by_id(int(reference))
    elif SLUG_PATTERN.fullmatch(reference):
        report = catalog.report_by_slug(reference)
    if report is None and reference and len(reference) <= MAX_NAME_LENGTH:
        report = _by_name(catalog, reference)
    if report is None:
        raise NotFound(f"Unknown report '{shown(reference)}'")
    authorize(principal, Action.RUN_REPORT, report_target(report))
    return report


def report_target(report: Report) -> ReportTarget:
    return ReportTarget(report.id, tuple(report.groups), report.category)


def _by_name(catalog: Catalog, name: str) -> Report | None:
    wanted = name.casefold()
    slug = slugify(name)
    report = catalog.report_by_slug(slug) if SLUG_PATTERN.fullmatch(slug) else None
    if report is not None and report.name.casefold() == wanted:
        return report
    return next((r for r in catalog.list_reports() if r.name.casefold() == wanted), None)


def readable_reports(catalog: Catalog, principal: Principal) -> list[Report]:
    return [r for r in catalog.list_reports() if decide(principal, Action.RUN_REPORT, report_target(r)).allowed]


class ReportRunner:
    """Runs a report's statements on its data source; shared by calls, choices and exports.

    A report on a data model that keeps a snapshot reads the model's current snapshot (with `snapshots`:
    the functions that read reports), once the report has been checked against it; else the live database."""

    def __init__(self, catalog: Catalog, open_source: SourceOpener, snapshots: SnapshotCopies | None = None) -> None:
        self._catalog = catalog
        self._open_source = open_source
        self._snapshots = snapshots

    def source_for(self, report: Report) -> Source:
        return self.reading(report)[0]

    def reading(self, report: Report) -> tuple[Source, Snapshot | None]:
        """The source the report reads now, and the snapshot it is (None: the live database)."""
        definition = self._definition(report)
        found = self._snapshot(report, definition)
        if found is None:
            return self._open_source(definition), None
        snapshot, path = found
        copy = DataSource(
            id=definition.id,
            name=definition.name,
            kind="sqlite",
            database=path,
            query_timeout_seconds=definition.query_timeout_seconds,
        )
        return self._open_source(copy), snapshot

    def snapshot_for(self, report: Report) -> Snapshot | None:
        """The snapshot the report reads now (None: the live database)."""
        found = self._snapshot(report, self._definition(report))
        return found[0] if found else None

    def _definition(self, report: Report) -> DataSource:
        definition = self._catalog.data_source(report.data_source_id)
        if definition is None:
            raise NotFound(f"Report '{report.slug}' names an unknown data source")
        return definition

    def _snapshot(self, report: Report, model: DataSource) -> tuple[Snapshot, str] | None:
        if self._snapshots is None or not keeps_snapshot(model):
            return None
        found = self._snapshots.current(model.id)
        if found is not None and not found[0].checked(report.id, report.version):
            # Only a report shown to read the same columns from the snapshot as from the live database
            # reads it: a sum SQLite would make a float of must never answer as one.
            raise NotReady(
                f"Report '{report.slug}' was saved after the snapshot of its data model {model.number} was taken, "
                f"so it is not yet checked against it: refresh the data model (POST /api/datamodels/{model.number}"
                "/refresh)"
            )
        return found

    def choices(self, report: Report, field: ReportField) -> list[Choice]:
        if field.choices is not None:
            return field.choices
        if field.choices_sql is None:
            return []
        with self.source_for(report).run(field.choices_sql, {}, batch_size=MAX_CHOICES) as result:
            rows = next(result.batches, [])
        return [_choice(row) for row in rows]

    def bind(self, report: Report, raw: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        return bind_parameters(report, raw, lambda f: self.choices(report, f))

    def page(
        self, report: Report, raw: Mapping[str, Sequence[str]], offset: int, size: int
    ) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        """One page of the first sheet's rows (the report view's): its column names, the rows from
        `offset`, at most `size`, and whether more follow. The source stops being read past the page."""
        params = self.bind(report, raw)
        rows: list[tuple[Any, ...]] = []
        seen = 0
        with self.source_for(report).run(report.queries[0].sql, params) as result:
            names = list(result.names)
            for batch in result.batches:
                for row in batch:
                    if seen >= offset:
                        if len(rows) == size:
                            return names, rows, True
                        rows.append(tuple(row))
                    seen += 1
        return names, rows, False

    def call(self, report: Report, raw: Mapping[str, Sequence[str]], limits: CallLimits) -> CallResult:
        """The first sheet's rows as seed 000's `{message, ok, records}`, or 413 past the caps.

        The body is built batch by batch while its rows and its weight in the response are counted, so
        a result over a cap is refused as soon as it passes it, never after holding all of it."""
        params = self.bind(report, raw)
        head, tail = b'{"message":"","ok":true,"records":[', b"]}"
        pieces = [head]
        size = limits.measure(head) + limits.measure(tail)
        rows = 0
        source, snapshot = self.reading(report)
        with source.run(report.queries[0].sql, params) as result:
            names = result.names
            for batch in result.batches:
                rows += len(batch)
                if rows > limits.max_rows:
                    raise ResultTooLarge(
                        f"The result has more than {limits.max_rows} rows, more than a report call "
                        "returns; request it as a file with POST /api/exports/ instead"
                    )
                chunk = records.encode_records(names, batch)[1:-1]
                if not chunk:
                    continue
                if len(pieces) > 1:
                    chunk = b"," + chunk
                size += limits.measure(chunk)
                if size > limits.max_bytes:
                    raise ResultTooLarge(
                        f"The result is more than the {limits.max_bytes} bytes a report call returns; "
                        "request it as a file with POST /api/exports/ instead"
                    )
                pieces.append(chunk)
        pieces.append(tail)
        return CallResult(report=report, row_count=rows, body=b"".join(pieces), snapshot=snapshot)

    def template_page(
        self,
        report: Report,
        raw: Mapping[str, Sequence[str]],
        limits: CallLimits,
        now: datetime,
        budget: Budget | None = None,
    ) -> tuple[str, int]:
        """A template report's page (seed 000's `/template/`) and its rows: every sheet's rows, within
        the row cap, put through the report's template in the sandbox (within `budget`)."""
        from reportserver.domain import templates  # noqa: PLC0415 - template reports only

        if report.type != "template":
            raise NotFound(f"Report '{report.slug}' is not a template report: call it at /api/call/{report.slug}/")
        params = self.bind(report, raw)
        sheets = []
        total = 0
        weight = 0  # the rows' bytes, as a call counts them: a few huge values cannot fill the function
        for query in report.queries:
            with self.source_for(report).run(query.sql, params) as result:
                names = list(result.names)
                rows = []
                for batch in result.batches:
                    total += len(batch)
                    if total > limits.max_rows:
                        raise ResultTooLarge(
                            f"The report has more than {limits.max_rows} rows, more than a template page shows; "
                            "request it as a file with POST /api/exports/ instead"
                        )
                    weight += len(records.encode_records(names, batch))
                    if weight > limits.max_bytes:
                        raise ResultTooLarge(
                            f"The report's rows are more than the {limits.max_bytes} bytes a template page reads; "
                            "request it as a file with POST /api/exports/ instead"
                        )
                    rows += [{n: templates.template_value(v) for n, v in zip(names, row, strict=True)} for row in batch]
            sheets.append(templates.Sheet(query.sheet_name, names, rows))
        about = {"name": report.name, "description": report.description, "slug": report.slug}
        return templates.render_template(report.template, sheets, params, about, now, budget), total


def _choice(row: Sequence[Any]) -> Choice:
    value = "" if row[0] is None else str(row[0])
    label = value if len(row) < 2 or row[1] is None else str(row[1])
    return Choice(value=value, label=label)


def field_by_id(catalog: Catalog, principal: Principal, field_id: str) -> tuple[Report, ReportField]:
    report = catalog.report_by_field_id(int(field_id)) if REPORT_ID.fullmatch(field_id) else None
    field = next((f for f in report.fields if str(f.id) == field_id), None) if report else None
    if report is None or field is None:
        raise NotFound(f"Unknown report field '{shown(field_id)}'")
    authorize(principal, Action.RUN_REPORT, report_target(report))
    if field.type is not FieldType.CHOICE:
        raise NotFound(f"Report field '{field_id}' has no choices")
    return report, field
