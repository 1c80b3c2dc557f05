"""Reports defined over the API (seed 001's documents), their categories and revisions.

A report is saved only when its SQL would run: every statement is one read statement in its data
model's dialect (`domain.statements`), prepares on the model's database, and uses exactly the fields
declared. Every save keeps a revision (the whole definition, its comment, who saved it and when) that
can be read back. Every change carries the version read (`optimisticLock`) and lands only while it is
still the stored one; a category that holds reports cannot go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import msgspec

from reportserver import sqltext
from reportserver.domain.access import AccessMode, Principal, authorize_managing, covers, may_manage
from reportserver.domain.datamodels import DataModelAdmin
from reportserver.domain.errors import (
    AlreadyExists,
    Forbidden,
    InvalidDefinition,
    InvalidParameter,
    NotFound,
    VersionConflict,
    named,
    shown,
)
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import (
    EXPORT_FORMATS,
    Category,
    Choice,
    Expected,
    FieldType,
    Report,
    ReportField,
    ReportQuery,
    Revision,
    TimeRange,
)
from reportserver.domain.snapshots import Snapshot
from reportserver.domain.statements import check_bind_variables, check_read_statement, lexer_dialect
from reportserver.domain.templates import compile_template
from reportserver.domain.tokens import GROUP_PATTERN

CategoryName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
EntityNumber = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
Comment = Annotated[str, msgspec.Meta(max_length=1000)]
MAX_REPORT_FIELDS = 45  # a change writes each field's pointer in one transaction (at most 100 items)
MAX_SHEETS = 50


# Categories


class CategoryCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: CategoryName
    optimisticLock: int | None = None  # noqa: N815 - seed 001 shows it on create too; it is not used


class CategoryChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Seed 001's modify: the category's `id` is in the body."""

    id: EntityNumber
    optimisticLock: int  # noqa: N815
    name: CategoryName


# Reports


class FieldBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A report field as an admin writes it (its id is the server's)."""

    name: str
    label: str = ""
    type: FieldType = FieldType.STRING
    required: bool = False
    default: str | None = None
    choices: list[Choice] | None = None
    choices_sql: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)] | None = None
    field_order: int = 0
    max_length: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    sensitive: bool = False


class QueryBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sql: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    sheet_name: Annotated[str, msgspec.Meta(min_length=1, max_length=31)] = "Sheet1"


class ReportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A report's whole definition (`POST /api/reports/`, and a document's `layout`)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    dataModelId: EntityNumber  # noqa: N815
    queries: Annotated[list[QueryBody], msgspec.Meta(min_length=1, max_length=MAX_SHEETS)]
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    categoryId: EntityNumber | None = None  # noqa: N815
    fields: Annotated[list[FieldBody], msgspec.Meta(max_length=MAX_REPORT_FIELDS)] = msgspec.field(default_factory=list)
    # Who may run it besides those with a document grant; none by default (a new report is not public).
    groups: list[str] = msgspec.field(default_factory=list)
    formats: list[str] = msgspec.field(default_factory=lambda: list(EXPORT_FORMATS))
    cache_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0
    time_range: TimeRange | None = None
    type: Literal["table", "template"] = "table"
    template: Annotated[str, msgspec.Meta(max_length=200_000)] = ""
    csv_neutralise_formulas: bool = True


class ReportChange(ReportBody, forbid_unknown_fields=True, kw_only=True):
    """A modify replaces the definition; it carries the version it was made from."""

    optimisticLock: int  # noqa: N815
    revisionComment: Comment = ""  # noqa: N815


# Seed 001's document bodies over the same reports


class DocumentCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    layout: Annotated[str, msgspec.Meta(min_length=2, max_length=1_000_000)]  # a ReportBody as JSON text
    categoryId: EntityNumber | None = None  # noqa: N815
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    revisionComment: Comment = ""  # noqa: N815
    documentType: Literal["report", "dashboard"] = "report"  # noqa: N815
    autoRefreshInterval: int | None = None  # noqa: N815 - a dashboard's; kept by no report


class DocumentChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Seed 001's update: name, description and category; the document's `id` is in the body."""

    id: EntityNumber
    optimisticLock: int  # noqa: N815
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    categoryId: EntityNumber | None = None  # noqa: N815


class DocumentSave(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815
    layout: Annotated[str, msgspec.Meta(min_length=2, max_length=1_000_000)]
    revisionComment: Comment = ""  # noqa: N815
    autoRefreshInterval: int | None = None  # noqa: N815


class CatalogStore(Protocol):
    # Categories
    def next_category_id(self) -> int: ...

    def categories(self) -> list[Category]: ...

    def category(self, category_id: int) -> Category | None: ...

    def create_category(self, category: Category) -> None: ...

    def replace_category(self, category: Category, previous_version: int) -> None: ...

    def delete_category(self, category: Category) -> None: ...

    # Reports
    def report_by_id(self, report_id: int) -> Report | None: ...

    def list_reports(self) -> list[Report]: ...

    def create_report(
        self, report: Report, revision: Revision | None = None, expected: Expected | None = None
    ) -> Report: ...

    def replace_report(
        self, report: Report, previous: Report, revision: Revision, expected: Expected | None = None
    ) -> Report:
        """Write `report` (fields numbered anew where new) while `previous.version` is the stored one
        (`VersionConflict` if not; `AlreadyExists` if its new slug is taken), with its revision."""
        ...

    def delete_report(self, report: Report) -> None: ...

    def revisions(self, report_id: int) -> list[Revision]: ...

    def revision(self, report_id: int, revision_id: int) -> Revision | None: ...

    def data_source(self, data_source_id: str) -> DataSource | None: ...


GroupNames = Callable[[], set[str]]


def definition_of(report: Report) -> dict[str, Any]:
    """A report's definition as its admin writes it (`ReportBody`'s fields, as builtins)."""
    return {
        "name": report.name,
        "description": report.description,
        "dataModelId": int(report.data_source_id),
        "categoryId": report.category_id or None,
        "queries": [{"sql": q.sql, "sheet_name": q.sheet_name} for q in report.queries],
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "type": f.type.value,
                "required": f.required,
                "default": f.default,
                "choices": msgspec.to_builtins(f.choices),
                "choices_sql": f.choices_sql,
                "field_order": f.field_order,
                "max_length": f.max_length,
                "sensitive": f.sensitive,
            }
            for f in report.fields
        ],
        "groups": report.groups,
        "formats": report.formats,
        "cache_seconds": report.cache_seconds,
        "time_range": msgspec.to_builtins(report.time_range),
        "type": report.type,
        "template": report.template,
        "csv_neutralise_formulas": report.csv_neutralise_formulas,
    }


def layout_of(report: Report) -> str:
    """A report's definition as a document's layout: the JSON of `ReportBody`."""
    return msgspec.json.encode(definition_of(report)).decode()


def admin_view(report: Report) -> dict[str, Any]:
    """What an admin sees of a report: its whole definition, its type and its version."""
    return {
        "id": report.id,
        "slug": report.slug,
        "type": report.type,
        "optimisticLock": report.version,
        **definition_of(report),
    }


def document_view(report: Report) -> dict[str, Any]:
    """Seed 001's document over a report."""
    return {
        "id": report.id,
        "name": report.name,
        "description": report.description,
        "categoryId": report.category_id or None,
        "documentType": "report",
        "type": report.type,
        "slug": report.slug,
        "optimisticLock": report.version,
    }


@dataclass(frozen=True)
class CatalogAdmin:
    """The categories, reports and documents endpoints' decisions."""

    store: CatalogStore
    models: DataModelAdmin
    group_names: GroupNames
    clock: Callable[[], datetime]

    # Categories

    def create_category(self, principal: Principal, body: CategoryCreate) -> Category:
        authorize_managing(principal, "category", AccessMode.CREATE)
        name = named(body.name)
        self._category_name_free(name, None)
        category = Category(id=self.store.next_category_id(), name=name)
        self.store.create_category(category)
        return category

    def list_categories(self, principal: Principal) -> list[Category]:
        found = [c for c in self.store.categories() if may_manage(principal, "category", AccessMode.READ, c.id)]
        if not found:
            authorize_managing(principal, "category", AccessMode.READ)
        return sorted(found, key=lambda c: c.id)

    def category(self, principal: Principal, category_id: str | int, mode: AccessMode = AccessMode.READ) -> Category:
        number = _number(category_id, "category")
        authorize_managing(principal, "category", mode, number)
        category = self.store.category(number)
        if category is None:
            raise NotFound(f"No category {number}")
        return category

    def rename_category(self, principal: Principal, body: CategoryChange) -> Category:
        """A new name; the reports in it are shown under the new name from then on."""
        current = self.category(principal, body.id, AccessMode.MODIFY)
        _at_version(current.version, body.optimisticLock, f"Category {current.id}")
        name = named(body.name)
        self._category_name_free(name, current.id)
        changed = Category(id=current.id, name=name, version=current.version + 1)
        self.store.replace_category(changed, current.version)
        for report in self._in_category(current.id):
            self._recategorised(report, changed)
        return changed

    def delete_category(self, principal: Principal, category_id: str, version: int | None) -> None:
        current = self.category(principal, category_id, AccessMode.DELETE)
        if version is not None:
            _at_version(current.version, version, f"Category {current.id}")
        holding = [r.slug for r in self._in_category(current.id)]
        if holding:
            raise AlreadyExists(
                f"Category {current.id} holds the reports {', '.join(holding[:10])}: move or delete them first"
            )
        self.store.delete_category(current)

    def _in_category(self, category_id: int) -> list[Report]:
        return sorted((r for r in self.store.list_reports() if r.category_id == category_id), key=lambda r: r.id)

    def _recategorised(self, report: Report, category: Category) -> None:
        """The report shown under its category's new name (the same definition otherwise)."""
        for _attempt in range(5):
            current = self.store.report_by_id(report.id)
            if current is None or current.category_id != category.id or current.category == category.name:
                return
            changed = msgspec.structs.replace(current, category=category.name, version=current.version + 1)
            revision = self._revision(changed, f"Category renamed to {category.name!r}", "category rename")
            try:
                self.store.replace_report(changed, current, revision)
                return
            except VersionConflict:
                continue

    def _category_name_free(self, name: str, own_id: int | None) -> None:
        folded = name.casefold()
        taken = next((c for c in self.store.categories() if c.name.casefold() == folded and c.id != own_id), None)
        if taken is not None:
            raise AlreadyExists(f"A category named '{shown(name)}' already exists ({taken.id})")

    # Reports

    def create_report(self, principal: Principal, body: ReportBody, comment: str = "") -> Report:
        authorize_managing(principal, "document", AccessMode.CREATE, category_id=body.categoryId)
        report, expected, snapshot = self._checked(principal, body, None)
        revision = self._revision(report, comment or "Created", principal.label)
        stored = self.store.create_report(report, revision, expected)
        self.models.note_checked(snapshot, stored.id, stored.version)
        return stored

    def report(self, principal: Principal, report_id: str | int, mode: AccessMode = AccessMode.READ) -> Report:
        number = _number(report_id, "report")
        report = self.store.report_by_id(number)
        # Whether a report exists is told only to who may manage it (or every document).
        if report is None:
            authorize_managing(principal, "document", mode, number)
            raise NotFound(f"No report {number}")
        authorize_managing(principal, "document", mode, number, report.category_id or None)
        return report

    def list_documents(self, principal: Principal) -> list[Report]:
        found = [
            r
            for r in self.store.list_reports()
            if may_manage(principal, "document", AccessMode.READ, r.id, r.category_id or None)
        ]
        if not found:
            authorize_managing(principal, "document", AccessMode.READ)
        return sorted(found, key=lambda r: r.id)

    def change_report(self, principal: Principal, report_id: str, body: ReportChange) -> Report:
        current = self.report(principal, report_id, AccessMode.MODIFY)
        _at_version(current.version, body.optimisticLock, f"Report {current.id}")
        if body.categoryId != (current.category_id or None):
            authorize_managing(principal, "document", AccessMode.MODIFY, category_id=body.categoryId)
        changed, expected, snapshot = self._checked(principal, body, current)
        revision = self._revision(changed, body.revisionComment or "Changed", principal.label)
        stored = self.store.replace_report(changed, current, revision, expected)
        self.models.note_checked(snapshot, stored.id, stored.version)
        return stored

    def delete_report(self, principal: Principal, report_id: str, version: int | None) -> None:
        current = self.report(principal, report_id, AccessMode.DELETE)
        if version is not None:
            _at_version(current.version, version, f"Report {current.id}")
        self.store.delete_report(current)

    def layout(self, principal: Principal, report_id: str) -> Report:
        """A report with its SQL: for who may change it (to run it is not to read its statements)."""
        return self.report(principal, report_id, AccessMode.MODIFY)

    def revisions(self, principal: Principal, report_id: str) -> list[Revision]:
        report = self.report(principal, report_id, AccessMode.MODIFY)
        return sorted(self.store.revisions(report.id), key=lambda r: r.id, reverse=True)

    def revision(self, principal: Principal, report_id: str, revision_id: str) -> Revision:
        report = self.report(principal, report_id, AccessMode.MODIFY)
        number = _number(revision_id, "revision")
        found = self.store.revision(report.id, number)
        if found is None:
            raise NotFound(f"Report {report.id} has no revision {number}")
        return found

    # Seed 001's documents

    def create_document(self, principal: Principal, body: DocumentCreate) -> Report:
        if body.documentType != "report":
            raise InvalidParameter("documentType", "This server keeps reports; documentType 'dashboard' is not one")
        layout = _layout(body.layout)
        layout = msgspec.structs.replace(
            layout, name=body.name, description=body.description or layout.description,
            categoryId=body.categoryId if body.categoryId is not None else layout.categoryId,
        )  # fmt: skip
        return self.create_report(principal, layout, body.revisionComment)

    def change_document(self, principal: Principal, body: DocumentChange) -> Report:
        current = self.report(principal, body.id, AccessMode.MODIFY)
        layout = msgspec.convert(definition_of(current), ReportBody)
        change = ReportChange(
            **{
                **msgspec.structs.asdict(layout),
                "name": body.name if body.name is not None else current.name,
                "description": body.description if body.description is not None else current.description,
                "categoryId": body.categoryId if body.categoryId is not None else layout.categoryId,
            },
            optimisticLock=body.optimisticLock,
            revisionComment="Name, description or category changed",
        )
        return self.change_report(principal, str(body.id), change)

    def save_document(self, principal: Principal, report_id: str, body: DocumentSave) -> Report:
        current = self.report(principal, report_id, AccessMode.MODIFY)
        layout = _layout(body.layout)
        change = ReportChange(
            **msgspec.structs.asdict(layout),
            optimisticLock=body.optimisticLock,
            revisionComment=body.revisionComment or "Saved",
        )
        return self.change_report(principal, str(current.id), change)

    # Checks

    def _checked(
        self, principal: Principal, body: ReportBody, current: Report | None
    ) -> tuple[Report, Expected, Snapshot | None]:
        """The report the body defines, once everything in it would run, and the versions of its data
        model and category it was checked against, and its model's snapshot it was checked against (if it
        keeps one: the report reads it)."""
        model = self.models.get(principal, str(body.dataModelId))  # the caller may read the model
        category = self.category(principal, body.categoryId) if body.categoryId is not None else None
        self._groups_exist(body.groups)
        # Only what the change adds: an editor need not be in every group the report was already open to.
        added = [g for g in body.groups if current is None or g not in current.groups]
        lacking = covers(principal, added, [])
        if lacking is not None:  # as a token: no one hands on more than it holds
            raise Forbidden(f"The {principal.label} may not open a report to {lacking}: it is not in that group")
        try:
            report = msgspec.convert(
                {
                    "name": named(body.name),
                    "data_source_id": model.id,
                    "queries": [ReportQuery(sql=q.sql, sheet_name=q.sheet_name) for q in body.queries],
                    "description": body.description,
                    "category": category.name if category else "",
                    "category_id": category.id if category else 0,
                    "fields": [ReportField(**msgspec.structs.asdict(f)) for f in body.fields],
                    "groups": sorted(set(body.groups)),
                    "formats": list(dict.fromkeys(body.formats)),
                    "cache_seconds": body.cache_seconds,
                    "time_range": body.time_range,
                    "type": body.type,
                    "template": body.template,
                    "csv_neutralise_formulas": body.csv_neutralise_formulas,
                    "id": current.id if current else 0,
                    "version": current.version + 1 if current else 1,
                },
                Report,
                from_attributes=True,
            )
        except (msgspec.ValidationError, ValueError) as error:
            raise InvalidDefinition(f"Invalid report definition: {error}") from None
        if current is not None:  # a field keeps its id (and /api/choices/<id>/ its link) while its name stays
            ids = {f.name: f.id for f in current.fields}
            for field in report.fields:
                field.id = ids.get(field.name, 0)
        names = [q.sheet_name for q in report.queries]
        if len(set(names)) != len(names):
            raise InvalidDefinition("Sheet names must be unique within a report")
        declared = [f.name for f in report.fields]
        used: set[str] = set()
        for query in report.queries:
            where = f"sheet '{query.sheet_name}'"
            check_read_statement(query.sql, model.kind, where)
            in_query = _names(query.sql, model)
            check_bind_variables(query.sql, [n for n in declared if n in in_query], model.kind, where)
            used |= set(in_query)
        unused = [n for n in declared if n not in used]
        if unused:
            raise InvalidDefinition(
                f"The fields {', '.join(unused)} are declared but no sheet's SQL uses them (as :name)"
            )
        for field in report.fields:
            if field.choices_sql is not None:
                where = f"choices of field '{field.name}'"
                check_read_statement(field.choices_sql, model.kind, where)
                check_bind_variables(field.choices_sql, [], model.kind, where)
        if report.type == "template":
            compile_template(report.template)
        elif report.template:
            raise InvalidDefinition("Only a report of type 'template' has a template")
        snapshot = self._statements_run(report, model)
        expected = Expected(model=model.version, category=category.version if category else None)
        return report, expected, snapshot

    def _statements_run(self, report: Report, model: DataSource) -> Snapshot | None:
        """Every statement of the report prepares on its model's database, and reads alike from the model's
        snapshot if it keeps one; that snapshot."""
        statements = [(q.sql, f"sheet '{q.sheet_name}'") for q in report.queries]
        statements += [(f.choices_sql, f"choices of field '{f.name}'") for f in report.fields if f.choices_sql]
        for sql, where in statements:
            self.models.check_statement(model, sql, where)
        snapshot = self.models.snapshot_of(model)
        if snapshot is not None:
            for sql, where in statements:
                self.models.check_on_snapshot(model, snapshot, sql, where, report.field_types())
        return snapshot

    def _groups_exist(self, groups: list[str]) -> None:
        wanted = [g for g in groups if g != "*"]
        for group in wanted:
            if not GROUP_PATTERN.fullmatch(group):
                raise InvalidParameter("groups", f"'{shown(group)}' is not a group name")
        if not wanted:
            return
        known = self.group_names()
        missing = [g for g in wanted if g not in known]
        if missing:
            raise InvalidParameter("groups", f"No user group named {', '.join(repr(shown(g)) for g in missing)}")

    def _revision(self, report: Report, comment: str, saved_by: str) -> Revision:
        return Revision(
            id=report.version,
            report_id=report.id,
            comment=comment,
            saved_at=self.clock(),
            saved_by=saved_by,
            definition=report,
        )


def _names(sql: str, model: DataSource) -> list[str]:
    try:
        return sqltext.names(sql, lexer_dialect(model.kind))
    except sqltext.UnterminatedSql as error:
        raise InvalidDefinition(f"The SQL cannot be read: {error}") from None


def _layout(text: str) -> ReportBody:
    """A document's layout: the JSON text of a report's definition (`ReportBody`)."""
    try:
        return msgspec.json.decode(text, type=ReportBody)
    except msgspec.ValidationError as error:
        raise InvalidParameter("layout", f"Invalid layout: {error}") from None
    except msgspec.DecodeError:
        raise InvalidParameter("layout", "The layout is not JSON text of a report's definition") from None
    except RecursionError:
        raise InvalidParameter("layout", "The layout is nested too deeply") from None


def _number(value: str | int, what: str) -> int:
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 15 or int(text) < 1:
        raise NotFound(f"No {what} '{shown(text)}'")
    return int(text)


def _at_version(stored: int, given: int, what: str) -> None:
    if stored != given:
        raise VersionConflict(f"{what} has changed (optimisticLock {stored}, not {given}): read it again")
