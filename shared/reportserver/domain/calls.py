"""Report calls: find the report a token may run, bind its parameters, run it within the caps."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reportserver import records
from reportserver.domain.errors import Forbidden, NotFound, ResultTooLarge
from reportserver.domain.reports import Choice, FieldType, Report, ReportField, bind_parameters
from reportserver.domain.tokens import Principal
from reportserver.sources.base import DataSource, Source

REPORT_ID = re.compile(r"^\d{1,18}$")
REPORT_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_CHOICES = 10_000


class Catalog(Protocol):
    """Read access to report definitions and data sources."""

    def report_by_id(self, report_id: int) -> Report | None: ...

    def report_by_slug(self, slug: str) -> Report | None: ...

    def report_by_field_id(self, field_id: int) -> Report | None: ...

    def list_reports(self) -> list[Report]: ...

    def data_source(self, data_source_id: str) -> DataSource | None: ...


SourceOpener = Callable[[DataSource], Source]


@dataclass(frozen=True, slots=True)
class CallLimits:
    max_rows: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class CallResult:
    report: Report
    row_count: int
    body: bytes


def find_report(catalog: Catalog, principal: Principal, reference: str) -> Report:
    """Seed 000: a report is named by its numeric id or by the slug of its name."""
    report = None
    if REPORT_ID.match(reference):
        report = catalog.report_by_id(int(reference))
    elif REPORT_SLUG.match(reference):
        report = catalog.report_by_slug(reference)
    if report is None:
        raise NotFound(f"Unknown report '{_shown(reference)}'")
    if not principal.may_run(report.groups):
        raise Forbidden(f"Token '{principal.token_name}' is not in a group that may run this report")
    return report


def _shown(text: str) -> str:
    return text if len(text) <= 64 else text[:64] + "..."


def readable_reports(catalog: Catalog, principal: Principal) -> list[Report]:
    return [r for r in catalog.list_reports() if principal.may_run(r.groups)]


class ReportRunner:
    """Runs a report's statements on its data source; shared by calls, choices and (later) exports."""

    def __init__(self, catalog: Catalog, open_source: SourceOpener) -> None:
        self._catalog = catalog
        self._open_source = open_source

    def source_for(self, report: Report) -> Source:
        definition = self._catalog.data_source(report.data_source_id)
        if definition is None:
            raise NotFound(f"Report '{report.slug}' names an unknown data source")
        return self._open_source(definition)

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

    def call(self, report: Report, raw: Mapping[str, Sequence[str]], limits: CallLimits) -> CallResult:
        """The first sheet's rows as seed 000's `{message, ok, records}`, or 413 past the caps."""
        params = self.bind(report, raw)
        rows: list[Any] = []
        with self.source_for(report).run(report.queries[0].sql, params) as result:
            for batch in result.batches:
                rows.extend(batch)
                if len(rows) > limits.max_rows:
                    raise ResultTooLarge(
                        f"The result has more than {limits.max_rows} rows, more than a report call "
                        "returns; request it as a file with POST /api/exports/ instead"
                    )
            columns = result.columns
        body = records.dumps({"message": "", "ok": True, "records": records.records(columns, rows)})
        if len(body) > limits.max_bytes:
            raise ResultTooLarge(
                f"The result is {len(body)} bytes, more than the {limits.max_bytes} a report call "
                "returns; request it as a file with POST /api/exports/ instead"
            )
        return CallResult(report=report, row_count=len(rows), body=body)


def _choice(row: Sequence[Any]) -> Choice:
    value = "" if row[0] is None else str(row[0])
    label = value if len(row) < 2 or row[1] is None else str(row[1])
    return Choice(value=value, label=label)


def field_by_id(catalog: Catalog, principal: Principal, field_id: str) -> tuple[Report, ReportField]:
    report = catalog.report_by_field_id(int(field_id)) if REPORT_ID.match(field_id) else None
    field = next((f for f in report.fields if str(f.id) == field_id), None) if report else None
    if report is None or field is None:
        raise NotFound(f"Unknown report field '{_shown(field_id)}'")
    if not principal.may_run(report.groups):
        raise Forbidden(f"Token '{principal.token_name}' is not in a group that may run this report")
    if field.type is not FieldType.CHOICE:
        raise NotFound(f"Report field '{field_id}' has no choices")
    return report, field
