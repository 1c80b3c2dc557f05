"""Jobs (seed 001's `/api/jobs`): a report delivered on a schedule, each saved with its one EventBridge
Scheduler schedule.

A job is checked whole when it is saved, so that a run never meets what could have been refused then:
its report exists and its owner may run it; every static parameter is one of the report's fields with a
value of the field's type, every calculated one an expression that evaluates, every bound one a column
of the billing statement's rows; the schedule runs again; the recipients are addresses or users that
have one. The job is stored first (conditional on the version read: a stale `optimisticLock` is 409),
then its schedule is made to match it: created, changed, disabled with the job; a schedule that cannot be
written undoes the save. A delete removes the job, then its schedule. Each schedule's runs name the
version they were made for, so a run can tell a schedule that a later save or a delete passed by.
A job runs with the rights of whoever saved it last (its owner), who must be allowed to run its report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from reportserver.domain import relative_dates
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
from reportserver.domain.errors import InvalidParameter, NotFound, VersionConflict, named, shown
from reportserver.domain.identity import EMAIL_PATTERN
from reportserver.domain.ports import DataSource
from reportserver.domain.reports import FieldType, Report, ReportField, convert_value
from reportserver.domain.schedules import SchedulerExpression, job_schedule

MODES = ("document", "billingStatement", "refresh")  # refresh: the data model `dataModelId`'s snapshot
PARAMETER_SOURCES = ("static", "calculated", "bound")
# Seed 001's delivery formats, and csv; each a file the export worker makes (`url`: a link to an xlsx).
DELIVERY_FORMATS = {"url": "xlsx", "pdf": "pdf", "excel": "xlsx", "html": "html", "csv": "csv"}
MAX_RECIPIENTS = 100
MAX_PARAMETERS = 100
MAX_FOLDERS = 10
MAX_RETENTION_DAYS = 3650
# A shared folder is a key prefix in the stack's own bucket (`shared/<folder>/`): no other bucket, no '..'.
_FOLDER = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# [catalog.][schema.]name: a data model's table or view as a job names it (and a run reads it: no quoting needed)
TABLE_MEMBER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62}){0,2}$")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Addresses = Annotated[list[Annotated[str, msgspec.Meta(max_length=320)]], msgspec.Meta(max_length=MAX_RECIPIENTS)]
Folders = Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=MAX_FOLDERS)]
UserIds = Annotated[list[int], msgspec.Meta(max_length=MAX_RECIPIENTS)]


class JobParameter(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A report parameter's value in each run: given (`static`), worked out at the run in the job's time
    zone (`calculated`: `relative_dates`), or taken from the recipient's row (`bound`: a column name)."""

    name: Name
    source: str = "static"
    value: Any = None


class BillingStatementBinding(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a per-recipient job finds its recipients: one row each of a data model's table, view or
    custom query, with the column holding the address (and, optionally, the recipient's name)."""

    dataModelId: int  # noqa: N815 - seed 001's names
    dataMember: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # noqa: N815
    emailAddressField: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # noqa: N815
    emailRecipientField: Annotated[str, msgspec.Meta(max_length=128)] | None = None  # noqa: N815


CONDITION_OPERATORS = (">", ">=", "<", "<=", "=", "!=")


class DeliveryCondition(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Deliver only when a query's result holds a test (beyond seed 001, as Superset's alerts): `measure`
    is `rows` (how many rows `dataMember` gives) or a column of its first row, compared with `threshold`
    as exact decimals. Each run records what it saw and whether the test held."""

    dataModelId: int  # noqa: N815
    dataMember: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # noqa: N815
    measure: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] = "rows"
    operator: str = ">"
    threshold: Annotated[str, msgspec.Meta(max_length=64)] = "0"

    @property
    def text(self) -> str:
        return f"{self.measure} {self.operator} {self.threshold}"


class JobBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Seed 001's job, as `POST /api/jobs` takes it (`PUT` adds `id` and requires `optimisticLock`)."""

    name: Name
    documentId: int = 0  # noqa: N815 - seed 001's names; a refresh job has none
    recurrenceRule: Annotated[str, msgspec.Meta(max_length=1000)]  # noqa: N815
    mode: str = "document"
    retentionPeriod: Annotated[int, msgspec.Meta(ge=1, le=MAX_RETENTION_DAYS)] = 30  # noqa: N815 - days
    enabled: bool = True
    startDate: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # noqa: N815 - default: now
    timeZone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"  # noqa: N815
    parameters: Annotated[list[JobParameter], msgspec.Meta(max_length=MAX_PARAMETERS)] = msgspec.field(
        default_factory=list
    )
    billingStatementBinding: BillingStatementBinding | None = None  # noqa: N815
    emailDeliveryFormat: str = "pdf"  # noqa: N815
    sendIndividualEmails: bool = False  # noqa: N815
    sendBlankDocument: bool = True  # noqa: N815
    subscribedEmails: Addresses = msgspec.field(default_factory=list)  # noqa: N815
    sharedFolders: Folders = msgspec.field(default_factory=list)  # noqa: N815
    internalSubscriberIds: UserIds = msgspec.field(default_factory=list)  # noqa: N815
    condition: DeliveryCondition | None = None
    dataModelId: int | None = None  # noqa: N815 - a refresh job's data model (beyond seed 001)
    optimisticLock: int | None = None  # noqa: N815 - seed 001 sends it on create too; it is ignored there


class JobChange(JobBody, forbid_unknown_fields=True, kw_only=True):
    """`PUT /api/jobs`: the whole job again, with its `id` and the `optimisticLock` it was read at."""

    id: int


class Job(msgspec.Struct, kw_only=True):
    """A job as stored: its body as checked, who owns it (runs act with the owner's rights), its version."""

    id: int
    body: JobBody
    owner: str  # the principal's label at creation ("token 'x'", "user 'x'")
    owner_kind: str
    owner_name: str
    version: int = 1
    created_at: str = ""
    updated_at: str = ""
    schedule: str = ""  # the Scheduler expression it was saved with ("" when disabled)


class User(Protocol):
    email: str


class JobStore(Protocol):
    def next_job_id(self) -> int: ...

    def job(self, job_id: int) -> Job | None: ...

    def jobs(self) -> list[Job]: ...

    def create_job(self, job: Job) -> None: ...

    def replace_job(self, job: Job, previous_version: int) -> None:
        """Raises `VersionConflict` when the stored job is no longer at `previous_version`."""

    def delete_job(self, job: Job) -> None:
        """Raises `VersionConflict` when the stored job changed since it was read."""


class JobSchedules(Protocol):
    """EventBridge Scheduler: one schedule a job. Each run it sends names the job's version it was made
    for, so that a run finds out whether a later save (or a delete) has passed its schedule by."""

    def put(self, job_id: int, version: int, expression: SchedulerExpression, enabled: bool) -> None: ...

    def delete(self, job_id: int) -> None: ...


@dataclass
class JobAdmin:
    """The `/api/jobs` decisions; each asks `authorize_managing` first (scopes allScheduledJobs,
    scheduledJob)."""

    store: JobStore
    schedules: JobSchedules
    report_by_id: Callable[[int], Report | None]
    user_by_id: Callable[[int], User | None]
    data_model_by_id: Callable[[str], DataSource | None]
    clock: Callable[[], datetime]

    def create(self, principal: Principal, body: JobBody) -> Job:
        authorize_managing(principal, "scheduledJob", AccessMode.CREATE)
        now = self.clock()
        stored, expression = self._checked(principal, body, now)
        job = Job(
            id=self.store.next_job_id(),
            body=stored,
            owner=principal.label,
            owner_kind=principal.kind,
            owner_name=principal.name,
            created_at=utc_stamp(now),
            updated_at=utc_stamp(now),
            schedule=expression.expression if body.enabled else "",
        )
        self.store.create_job(job)
        try:
            self.schedules.put(job.id, job.version, expression, body.enabled)
        except BaseException:
            self.store.delete_job(job)  # no job without its schedule: the caller may send it again
            raise
        return job

    def list_jobs(self, principal: Principal) -> list[Job]:
        found = [j for j in self.store.jobs() if may_manage(principal, "scheduledJob", AccessMode.READ, j.id)]
        if not found:
            authorize_managing(principal, "scheduledJob", AccessMode.READ)  # none visible: say why, if it is that
        return sorted(found, key=lambda j: j.id)

    def get(self, principal: Principal, job_id: str | int, mode: AccessMode = AccessMode.READ) -> Job:
        number = job_number(job_id)
        authorize_managing(principal, "scheduledJob", mode, number)
        job = self.store.job(number)
        if job is None:
            raise NotFound(f"No job {number}")
        return job

    def change(self, principal: Principal, body: JobChange) -> Job:
        current = self.get(principal, body.id, AccessMode.MODIFY)
        if body.optimisticLock is None:
            raise InvalidParameter("optimisticLock", "'optimisticLock' is required: the version the job was read at")
        _at_version(current, body.optimisticLock)
        now = self.clock()
        stored, expression = self._checked(principal, body, now)
        # The job runs with the rights of whoever saved it last: that caller was checked above.
        changed = msgspec.structs.replace(
            current,
            body=stored,
            version=current.version + 1,
            owner=principal.label,
            owner_kind=principal.kind,
            owner_name=principal.name,
            updated_at=utc_stamp(now),
            schedule=expression.expression if body.enabled else "",
        )
        self.store.replace_job(changed, current.version)
        try:
            self.schedules.put(changed.id, changed.version, expression, body.enabled)
        except BaseException:
            # The job as it was, with the schedule it still has (a later save by another wins: it is newer).
            self.store.replace_job(current, changed.version)
            raise
        return changed

    def delete(self, principal: Principal, job_id: str, version: int | None) -> None:
        job = self.get(principal, job_id, AccessMode.DELETE)
        if version is not None:
            _at_version(job, version)
        # The job first, at the version read: a schedule left behind by a failure after it sends runs that
        # find no job (and stop there); a job left without its schedule would never run again, unseen.
        self.store.delete_job(job)
        self.schedules.delete(job.id)

    # Checks

    def _checked(self, principal: Principal, body: JobBody, now: datetime) -> tuple[JobBody, SchedulerExpression]:
        """Every check of a job's body; the body as kept (its name trimmed, its start the one used) and the
        Scheduler expression of its schedule."""
        name = named(body.name)
        if any(not character.isprintable() for character in name):
            raise InvalidParameter("name", "A job's name has no control characters")
        _one_of("mode", body.mode, MODES)
        _one_of("emailDeliveryFormat", body.emailDeliveryFormat, tuple(DELIVERY_FORMATS))
        # Without a start, the job starts now, to the minute, on its own clock; the start used is kept.
        start = body.startDate
        if start is None:
            start = now.astimezone(_zone_of(body.timeZone)).strftime("%Y-%m-%dT%H:%M:00")
        schedule = job_schedule(body.recurrenceRule, start, body.timeZone, now)
        expression = schedule.scheduler_expression(now)
        if expression is None:  # job_schedule refuses a rule without a next run: this cannot be reached
            raise InvalidParameter("recurrenceRule", "The recurrenceRule never runs again")
        if body.mode == "refresh":
            self._refreshed(principal, body)
            return _stored(body, name=name, startDate=start), expression
        if body.dataModelId is not None:
            raise InvalidParameter("dataModelId", "Only a refresh job names a dataModelId")
        report = self._report(principal, body.documentId)
        self._binding(principal, body)
        self._condition(principal, body.condition)
        self._parameters(body, report, now)
        self._recipients(body)
        return _stored(body, name=name, startDate=start), expression

    def _report(self, principal: Principal, report_id: int) -> Report:
        report = self.report_by_id(report_id) if report_id > 0 else None
        if report is None:
            raise InvalidParameter("documentId", f"No report {report_id}")
        target = ReportTarget(id=report.id, groups=tuple(report.groups), category=report.category)
        decision = decide(principal, AccessAction.RUN_REPORT, target)
        if not decision.allowed:
            # A job runs with its owner's rights: one who may not run the report may not schedule it.
            raise InvalidParameter("documentId", f"{decision.reason}: it cannot be scheduled by this caller")
        return report

    def _refreshed(self, principal: Principal, body: JobBody) -> None:
        """A refresh job: the data model whose snapshot it refreshes, which its saver may refresh; it has no
        report, recipients, parameters, binding or condition (it mails nobody)."""
        if body.dataModelId is None:
            raise InvalidParameter("dataModelId", "A refresh job names the dataModelId whose snapshot it refreshes")
        model = self.data_model_by_id(str(body.dataModelId)) if body.dataModelId > 0 else None
        if model is None:
            raise InvalidParameter("dataModelId", f"No data model {body.dataModelId}")
        if not principal.holds(Permission.REFRESH_DATA) or not may_manage(
            principal, "dataModel", AccessMode.READ, model.number
        ):
            raise InvalidParameter(
                "dataModelId", f"The {principal.label} may not refresh data model {model.number} (refresh_data)"
            )
        extra = [
            name for name, given in (
                ("billingStatementBinding", body.billingStatementBinding), ("condition", body.condition),
                ("parameters", body.parameters), ("subscribedEmails", body.subscribedEmails),
                ("internalSubscriberIds", body.internalSubscriberIds), ("sharedFolders", body.sharedFolders),
            ) if given
        ]  # fmt: skip
        if extra:
            raise InvalidParameter(
                extra[0], f"A refresh job has no {extra[0]}: it refreshes a snapshot and mails nobody"
            )

    def _condition(self, principal: Principal, condition: DeliveryCondition | None) -> None:
        if condition is None:
            return
        _one_of("condition.operator", condition.operator, CONDITION_OPERATORS)
        try:
            threshold = Decimal(condition.threshold)
        except ArithmeticError:
            threshold = Decimal("NaN")
        if not threshold.is_finite():
            raise InvalidParameter("condition.threshold", "threshold is a decimal number, such as 0 or 1500.25")
        if condition.measure != "rows" and not _COLUMN.fullmatch(condition.measure):
            raise InvalidParameter("condition.measure", "measure is 'rows' or a column of the query's first row")
        self._member(principal, "condition", condition.dataModelId, condition.dataMember)

    def _member(self, principal: Principal, where: str, model_id: int, member: str) -> None:
        """A data model's table, view or custom query that the saver may read."""
        model = self.data_model_by_id(str(model_id)) if model_id > 0 else None
        if model is None:
            raise InvalidParameter(f"{where}.dataModelId", f"No data model {model_id}")
        if model.kind == "athena":
            # The runner does not query Athena (its role has no Athena rights): refused now, not at each run.
            raise InvalidParameter(
                f"{where}.dataModelId", f"Data model {model_id} is on Athena: use a PostgreSQL or SQLite model here"
            )
        if not may_manage(principal, "dataModel", AccessMode.READ, model.number):
            raise InvalidParameter(
                f"{where}.dataModelId",
                f"The {principal.label} may not read data model {model.number} (accessMode 2 on 'dataModel')",
            )
        queries = {q.name for q in model.custom_queries}
        if member not in queries and not TABLE_MEMBER.fullmatch(member):
            raise InvalidParameter(
                f"{where}.dataMember",
                "dataMember names a table, a view or one of the model's custom queries "
                f"({', '.join(sorted(queries)) or 'none'})",
            )

    def _binding(self, principal: Principal, body: JobBody) -> None:
        binding = body.billingStatementBinding
        if body.mode == "billingStatement" and binding is None:
            raise InvalidParameter(
                "billingStatementBinding",
                "A billingStatement job needs billingStatementBinding: where its recipients are",
            )
        if body.mode != "billingStatement" and binding is not None:
            raise InvalidParameter(
                "billingStatementBinding", "Only a billingStatement job has a billingStatementBinding"
            )
        if binding is None:
            return
        self._member(principal, "billingStatementBinding", binding.dataModelId, binding.dataMember)
        for field in ("emailAddressField", "emailRecipientField"):
            value = getattr(binding, field)
            if value is not None and not _COLUMN.fullmatch(value):
                raise InvalidParameter(f"billingStatementBinding.{field}", f"{field} must name a column")

    def _parameters(self, body: JobBody, report: Report, now: datetime) -> None:
        seen: set[str] = set()
        for index, parameter in enumerate(body.parameters):
            where = f"parameters[{index}]"
            _one_of(f"{where}.source", parameter.source, PARAMETER_SOURCES)
            field = report.field(parameter.name)
            if field is None:
                allowed = ", ".join(f.name for f in report.sorted_fields()) or "none"
                raise InvalidParameter(
                    f"{where}.name",
                    f"Report {report.id} has no parameter '{shown(parameter.name)}'; it takes: {allowed}",
                )
            if parameter.name in seen:
                raise InvalidParameter(f"{where}.name", f"Parameter '{parameter.name}' is given more than once")
            seen.add(parameter.name)
            _check_value(parameter, field, where, body.mode, body.timeZone, now)
        for field in report.fields:
            if field.required and not field.default and field.name not in seen:
                raise InvalidParameter("parameters", f"Report {report.id} requires the parameter '{field.name}'")

    def _recipients(self, body: JobBody) -> None:
        for field, values in (
            ("subscribedEmails", [a.casefold() for a in body.subscribedEmails]),
            ("internalSubscriberIds", body.internalSubscriberIds),
            ("sharedFolders", body.sharedFolders),
        ):
            repeated = next((i for i, v in enumerate(values) if v in values[:i]), None)
            if repeated is not None:
                raise InvalidParameter(f"{field}[{repeated}]", f"{field} names the same recipient twice")
        for index, address in enumerate(body.subscribedEmails):
            if not EMAIL_PATTERN.fullmatch(address) or "." not in address.rpartition("@")[2]:
                raise InvalidParameter(f"subscribedEmails[{index}]", f"'{shown(address)}' is not an e-mail address")
        for index, user_id in enumerate(body.internalSubscriberIds):
            user = self.user_by_id(user_id) if user_id > 0 else None
            if user is None:
                raise InvalidParameter(f"internalSubscriberIds[{index}]", f"No user {user_id}")
            if not user.email:
                raise InvalidParameter(f"internalSubscriberIds[{index}]", f"User {user_id} has no e-mail address")
        for index, folder in enumerate(body.sharedFolders):
            if not _FOLDER.fullmatch(folder) or any(part in (".", "..") for part in folder.split("/")):
                raise InvalidParameter(
                    f"sharedFolders[{index}]", "A shared folder is a path of letters, digits, '.', '_' and '-' parts"
                )
        if body.mode == "document" and not (body.subscribedEmails or body.internalSubscriberIds or body.sharedFolders):
            raise InvalidParameter(
                "subscribedEmails",
                "A job delivers somewhere: give subscribedEmails, internalSubscriberIds or sharedFolders",
            )


def _check_value(parameter: JobParameter, field: ReportField, where: str, mode: str, zone: str, now: datetime) -> None:
    """A parameter's value as its source takes it: of the field's type (static), an expression that
    evaluates in the job's zone (calculated), a column of the recipients' rows (bound)."""
    if parameter.value is not None and not isinstance(parameter.value, str | int | float | bool):
        raise InvalidParameter(f"{where}.value", "A parameter's value is a string, a number or a boolean")
    text = parameter_text(parameter.value)
    if parameter.source == "static":
        if text is None or text == "":
            if field.required and not field.default:
                raise InvalidParameter(f"{where}.value", f"Parameter '{field.name}' is required: give its value")
            return
        try:
            _as_field_reads(field, text)
        except InvalidParameter as error:
            raise InvalidParameter(f"{where}.value", error.message) from None
    elif parameter.source == "calculated":
        if text is None:
            raise InvalidParameter(f"{where}.value", "A calculated parameter's value is its expression")
        try:
            # Its value now, read as the field reads it: `now` in a date field fails here, not at each run.
            _as_field_reads(field, calculated_text(text, now, zone))
        except InvalidParameter as error:
            raise InvalidParameter(f"{where}.value", error.message) from None
    else:
        if mode != "billingStatement":
            raise InvalidParameter(f"{where}.source", "A bound parameter needs a billingStatement job")
        if text is None or not _COLUMN.fullmatch(text):
            raise InvalidParameter(f"{where}.value", "A bound parameter's value names a column of the rows")


def calculated_text(expression: str, at: datetime, zone: str) -> str:
    """A calculated parameter's value at `at` as the report reads it: a date as YYYY-MM-DD, a time as an
    ISO date-time with the job's zone's offset (the expression's value is on that zone's wall clock)."""
    value = relative_dates.evaluate(expression, at, zone)
    if isinstance(value, datetime):
        return value.replace(tzinfo=ZoneInfo(zone)).isoformat()
    return value.isoformat()


def _as_field_reads(field: ReportField, text: str) -> None:
    """A value checked as the report's field reads it: its type, and a static choice among the field's
    choices; choices read from the database are checked where the database is read (the worker)."""
    if field.type is FieldType.CHOICE and field.choices is None:
        return
    convert_value(field, text, lambda f: f.choices or [])


def job_view(job: Job) -> dict[str, Any]:
    """Seed 001's job, as the API answers it: its body, with `id`, `optimisticLock` and who owns it."""
    body = msgspec.to_builtins(job.body)
    body.pop("optimisticLock", None)
    return {
        "id": job.id,
        "optimisticLock": job.version,
        **body,
        "owner": job.owner,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "scheduleExpression": job.schedule,
    }


def job_number(job_id: str | int) -> int:
    text = str(job_id)
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise NotFound(f"No job '{shown(text)}'")
    return int(text)


def _stored(body: JobBody, **changes: Any) -> JobBody:
    """The body as kept: a plain `JobBody` (a change's `id` is the job's own), without the lock it carried."""
    fields = {f: getattr(body, f) for f in JobBody.__struct_fields__}
    fields["optimisticLock"] = None
    return JobBody(**(fields | changes))


def _zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParameter(
            "timeZone", f"Unknown timeZone {shown(name)!r}: give an IANA name such as 'Australia/Sydney'"
        ) from None


def _one_of(field: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InvalidParameter(field, f"Invalid {field} '{shown(value)}'; allowed: {', '.join(allowed)}")


def parameter_text(value: Any) -> str | None:
    """A parameter's value as text, as the report's fields read it (booleans as true/false)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _at_version(job: Job, version: int) -> None:
    if job.version != version:
        raise VersionConflict(f"Job {job.id} has changed (optimisticLock {job.version}, not {version}): read it again")


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
