"""The API's contract: every operation with its request and response types, and the OpenAPI 3.1
document made from them (`GET /api/openapi.json`, shown by Swagger UI at `GET /api/docs`).

The handlers' routes and `template.yaml`'s events are checked against `OPERATIONS` by tests, and the
schemathesis run checks every response against the document, so none of the three can drift.
The schemas are msgspec's (`msgspec.json.schema_components`) of the same types the handlers decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal

import msgspec

from reportserver.domain.access import Grant
from reportserver.domain.audit import AuditRecord
from reportserver.domain.conditions import ConditionOutcome
from reportserver.domain.datamodels import CustomQueryBody, DataModelChange, DataModelCreate, DataModelRename
from reportserver.domain.documents import (
    CategoryChange,
    CategoryCreate,
    DocumentChange,
    DocumentCreate,
    DocumentSave,
    ReportBody,
    ReportChange,
)
from reportserver.domain.embed import NonceRequest
from reportserver.domain.identity import (
    GroupChange,
    GroupCreate,
    PasswordChange,
    PermissionsChange,
    UserChange,
    UserCreate,
    VersionOnly,
)
from reportserver.domain.jobs import BillingStatementBinding, DeliveryCondition, JobBody, JobChange, JobParameter
from reportserver.domain.ports import ColumnInfo, ProcedureInfo, QueryParameter, TableInfo
from reportserver.domain.reports import EXPORT_FORMATS
from reportserver.domain.token_admin import TokenRequest
from reportserver.http.exports import DocumentExport, ExportRequest


class ErrorBody(msgspec.Struct):
    """Every refusal: a human message; `parameter` names the bad parameter of a 400."""

    ok: Literal[False]
    message: str
    parameter: str | None = None


class CallResult(msgspec.Struct):
    """Seed 000's answer: the report's rows, each column as the typing contract writes it."""

    message: str
    ok: Literal[True]
    records: list[dict[str, Any]]


class ChoiceView(msgspec.Struct):
    value: str
    label: str


class FieldView(msgspec.Struct):
    id: int
    name: str
    label: str
    type: Literal["string", "integer", "number", "date", "datetime", "boolean", "choice"]
    required: bool
    default: str | None
    field_order: int
    has_choices: bool
    choices: list[ChoiceView] | None  # static choices; None when they come from a query


class ReportView(msgspec.Struct):
    """A report as a caller sees it: never its SQL or its data source."""

    id: int
    name: str
    slug: str
    description: str
    category: str
    type: Literal["table", "template"]
    formats: list[str]
    groups: list[str]
    sheets: list[str]
    time_range: bool
    cache_seconds: int
    csv_neutralise_formulas: bool
    fields: list[FieldView]


class ReportList(msgspec.Struct):
    ok: Literal[True]
    message: str
    reports: list[ReportView]


class ReportDefinition(msgspec.Struct):
    ok: Literal[True]
    message: str
    report: ReportView


class FieldChoices(msgspec.Struct):
    ok: Literal[True]
    message: str
    field: FieldView
    choices: list[ChoiceView]


class ServerTime(msgspec.Struct):
    ok: Literal[True]
    message: str
    server_time: str
    epoch: float


class ServerIsoTime(msgspec.Struct):
    ok: Literal[True]
    message: str
    server_iso_time: str


TicketState = Literal["pending", "in_progress", "complete", "failed"]


class ExportAccepted(msgspec.Struct):
    ticket_id: str
    status: TicketState


class ExportStatus(msgspec.Struct, kw_only=True):
    """A ticket as its owner sees it; `report_url` (signed afresh at each read) once complete."""

    ticket_id: str
    status: TicketState
    report_id: int
    report_name: str
    report_slug: str
    format: str
    parameters: dict[str, str | list[str]]
    created_at: datetime
    updated_at: datetime
    rows_written: int
    started_at: datetime | None = None
    completed_at: datetime | None = None
    total_rows: int | None = None
    total_bytes: int | None = None
    file_name: str | None = None
    expires_at: datetime | None = None
    cached: bool | None = None
    error: str | None = None
    report_url: str | None = None
    link_expires_in: int | None = None


class DocumentExportStatus(ExportStatus, kw_only=True):
    exportId: str  # noqa: N815 - seed 001's name


class DocumentExportAccepted(msgspec.Struct):
    exportId: str  # noqa: N815 - seed 001's name
    status: TicketState


class Redirect(msgspec.Struct):
    """The body of a 302: the same signed link as the Location header."""

    report_url: str


class Done(msgspec.Struct):
    ok: Literal[True]
    message: str


class TokenView(msgspec.Struct, kw_only=True):
    """Seed 000's token list entry, with permissions, description and last use (to the hour)."""

    name: str
    active: Literal["Y", "N"]
    age_days: int
    created: str
    created_by: str
    expiry: str
    groups: str  # comma-separated, as seed 000 shows them
    permissions: list[Grant | str]
    description: str
    last_used: str | None


class TokenHeaders(msgspec.Struct):
    basic: str
    bearer: str


class TokenCreated(msgspec.Struct, kw_only=True):
    """The secret, shown this once, and the Authorization header values made of it."""

    ok: Literal[True]
    message: str
    token: TokenView
    secret: str
    headers: TokenHeaders


class TokenAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    token: TokenView


class TokenList(msgspec.Struct):
    ok: Literal[True]
    message: str
    tokens: list[TokenView]


class GroupView(msgspec.Struct):
    id: int
    name: str
    optimisticLock: int  # noqa: N815 - seed 001's names


class GroupAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    group: GroupView


class GroupList(msgspec.Struct):
    ok: Literal[True]
    message: str
    groups: list[GroupView]


class UserView(msgspec.Struct, kw_only=True):
    """Seed 001's user; never its password."""

    id: int
    userName: str  # noqa: N815
    firstName: str  # noqa: N815
    lastName: str  # noqa: N815
    email: str
    groupsId: list[int]  # noqa: N815
    accountType: Literal["reportServer", "windows", "external"]  # noqa: N815
    active: bool
    optimisticLock: int  # noqa: N815


class UserAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    user: UserView


class UserList(msgspec.Struct):
    ok: Literal[True]
    message: str
    users: list[UserView]


class PermissionsAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    optimisticLock: int  # noqa: N815
    permissions: list[Grant]


class NonceAnswer(msgspec.Struct):
    """A single-use nonce for an iframe, and the view's URL with it."""

    nonce: str
    expires_in: int
    url: str


class AuditPage(msgspec.Struct):
    """Audit records, newest first; `cursor` (when not null) gives the next page."""

    ok: Literal[True]
    message: str
    records: list[AuditRecord]
    cursor: str | None


class ProviderView(msgspec.Struct, kw_only=True):
    """A data model's connection (seed 001's providerModel), never its password."""

    providerType: Literal["sqLite", "postgresql", "athena"]  # noqa: N815 - seed 001's names
    database: str
    serverName: str | None = None  # noqa: N815
    port: int | None = None
    userName: str | None = None  # noqa: N815
    sslMode: str | None = None  # noqa: N815
    hasPassword: bool | None = None  # noqa: N815
    workgroup: str | None = None
    outputLocation: str | None = None  # noqa: N815
    catalog: str | None = None
    region: str | None = None


class DataModelView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str
    commandTimeout: int  # noqa: N815
    providerType: Literal["sqLite", "postgresql", "athena"]  # noqa: N815
    snapshot: bool  # marked for snapshots: its reports read every custom query's rows as a refresh kept them
    optimisticLock: int  # noqa: N815


class KeptTableView(msgspec.Struct):
    """A kept custom query in a snapshot: the table of its name, and its rows."""

    name: str
    rows: int


class SnapshotView(msgspec.Struct, kw_only=True):
    """The snapshot a model's reports read: which refresh made it, and what its rows are as of."""

    refreshId: str  # noqa: N815
    takenAt: datetime  # noqa: N815 - when its queries began on the live database
    rows: int
    bytes: int
    tables: list[KeptTableView]


class DataModelFull(DataModelView, kw_only=True):
    providerModel: ProviderView  # noqa: N815
    # GET of one model: its current snapshot (null: none, or the model is not marked); absent elsewhere.
    currentSnapshot: SnapshotView | None = None  # noqa: N815


class DataModelAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    dataModel: DataModelFull  # noqa: N815


class DataModelList(msgspec.Struct):
    ok: Literal[True]
    message: str
    dataModels: list[DataModelView]  # noqa: N815


class ConnectionAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    providerModel: ProviderView  # noqa: N815


class ConnectionTested(msgspec.Struct):
    ok: Literal[True]
    message: str
    elapsedMs: float  # noqa: N815


class TableList(msgspec.Struct):
    ok: Literal[True]
    message: str
    tables: list[TableInfo]


class ColumnList(msgspec.Struct):
    ok: Literal[True]
    message: str
    columns: list[ColumnInfo]


class ProcedureList(msgspec.Struct):
    ok: Literal[True]
    message: str
    procedures: list[ProcedureInfo]


class DataMember(msgspec.Struct):
    name: str
    type: Literal["table", "view", "query"]


class DataMemberList(msgspec.Struct):
    ok: Literal[True]
    message: str
    dataMembers: list[DataMember]  # noqa: N815


class CustomQueryView(msgspec.Struct):
    name: str
    query: str
    parameters: list[QueryParameter]
    snapshot: bool  # its rows are kept in the model's snapshot, as a table of its name


class RefreshView(msgspec.Struct, kw_only=True):
    """One refresh of a model's snapshot (seed 004): queued -> running -> complete | failed."""

    id: str
    dataModelId: int  # noqa: N815
    status: Literal["queued", "running", "complete", "failed"]
    trigger: Literal["api", "schedule"]
    requestedBy: str  # noqa: N815
    requestedAt: datetime  # noqa: N815
    startedAt: datetime | None  # noqa: N815
    finishedAt: datetime | None  # noqa: N815
    tookSeconds: float | None  # noqa: N815
    snapshotTakenAt: datetime | None  # noqa: N815 - complete: what the new snapshot's rows are as of
    rows: int | None
    bytes: int | None
    tables: list[KeptTableView]
    superseded: bool  # complete, but a newer snapshot was kept first: this one was dropped
    error: str | None
    statusUrl: str  # noqa: N815 - where to poll it


class RefreshAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    refresh: RefreshView


class RefreshList(msgspec.Struct):
    ok: Literal[True]
    message: str
    refreshes: list[RefreshView]


class CustomQueryList(msgspec.Struct):
    ok: Literal[True]
    message: str
    queries: list[CustomQueryView]


class CustomQueryAnswer(msgspec.Struct, kw_only=True):
    ok: Literal[True]
    message: str
    query: CustomQueryView
    optimisticLock: int | None = None  # noqa: N815 - the data model's, after a save


class CategoryView(msgspec.Struct):
    id: int
    name: str
    optimisticLock: int  # noqa: N815


class CategoryAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    category: CategoryView


class CategoryList(msgspec.Struct):
    ok: Literal[True]
    message: str
    categories: list[CategoryView]


class AdminReportView(ReportBody, kw_only=True):
    """A report as its admin sees it: the whole definition (its SQL too), its slug and version."""

    id: int
    slug: str
    optimisticLock: int  # noqa: N815


class ReportAdminAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    report: AdminReportView


class DocumentView(msgspec.Struct, kw_only=True):
    """Seed 001's document: one of the reports."""

    id: int
    name: str
    description: str
    categoryId: int | None  # noqa: N815
    documentType: Literal["report"]  # noqa: N815
    type: Literal["table", "template"]
    slug: str
    optimisticLock: int  # noqa: N815


class DocumentAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    document: DocumentView


class DocumentList(msgspec.Struct):
    ok: Literal[True]
    message: str
    documents: list[DocumentView]


class LayoutAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    layout: str  # the report's definition as JSON text (`ReportBody`)
    optimisticLock: int  # noqa: N815


class RevisionView(msgspec.Struct):
    id: int
    comment: str
    savedAt: str  # noqa: N815
    savedBy: str  # noqa: N815


class RevisionList(msgspec.Struct):
    ok: Literal[True]
    message: str
    revisions: list[RevisionView]


class RevisionLayoutAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    layout: str
    revision: RevisionView


class JobView(msgspec.Struct, kw_only=True):
    """Seed 001's job as saved, with its id, version, owner and the Scheduler expression that fires it."""

    id: int
    optimisticLock: int  # noqa: N815 - seed 001's names
    name: str
    mode: Literal["document", "billingStatement", "refresh"]
    documentId: int  # noqa: N815
    retentionPeriod: int  # noqa: N815
    enabled: bool
    startDate: str | None  # noqa: N815
    timeZone: str  # noqa: N815
    recurrenceRule: str  # noqa: N815
    parameters: list[JobParameter]
    billingStatementBinding: BillingStatementBinding | None  # noqa: N815
    emailDeliveryFormat: Literal["url", "pdf", "excel", "html", "csv"]  # noqa: N815
    sendIndividualEmails: bool  # noqa: N815
    sendBlankDocument: bool  # noqa: N815
    subscribedEmails: list[str]  # noqa: N815
    sharedFolders: list[str]  # noqa: N815
    internalSubscriberIds: list[int]  # noqa: N815
    condition: DeliveryCondition | None = None  # deliver only when its test holds
    dataModelId: int | None = None  # noqa: N815 - a refresh job's data model
    owner: str  # the caller that made it: its runs act with this caller's rights
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    scheduleExpression: str  # noqa: N815 - cron(...) or at(...) in timeZone; "" while disabled


class JobAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    job: JobView


class JobList(msgspec.Struct):
    ok: Literal[True]
    message: str
    jobs: list[JobView]


class RunExport(msgspec.Struct):
    """A run's export ticket as it stands."""

    status: Literal["pending", "in_progress", "complete", "failed"]
    rows: int | None
    bytes: int | None
    fileName: str | None  # noqa: N815
    error: str | None


class RecipientView(msgspec.Struct, kw_only=True):
    address: str
    status: Literal["sent", "failed", "bounced", "complained"]  # bounced, complained: SES said so later
    message_id: str | None = None
    error: str | None = None


class JobResultView(msgspec.Struct, kw_only=True):
    """One run of a job (seed 001's generated document): when, why, with what, and how it went."""

    id: str  # the generatedDocumentId: <job id>.<run time>[.<run id>][.r<recipient, 5 digits>]
    jobId: int  # noqa: N815
    runAt: str  # noqa: N815
    trigger: Literal["schedule", "api"]
    requestedBy: str  # noqa: N815
    # burst: a per-recipient run, whose recipients' runs (parentId: this id) hold the outcomes
    # refreshing: a refresh job's run, whose snapshot refresh (refreshId) says how it ends
    status: Literal["exporting", "exported", "delivering", "delivered", "skipped", "failed", "burst", "refreshing"]
    parameters: dict[str, str]
    format: str
    ticketId: str | None  # noqa: N815
    error: str | None
    expiresAt: str  # noqa: N815 - the job's retentionPeriod after the run
    recipients: list[RecipientView]
    linkExpiresAt: str | None = None  # noqa: N815 - when the link its mails carry stops working
    recipientRuns: int | None = None  # noqa: N815 - a per-recipient run: how many recipients' runs
    parentId: str | None = None  # noqa: N815 - a recipient's run: its per-recipient run
    condition: ConditionOutcome | None = None  # the job's condition as the run found it
    attempts: int = 0  # deliveries begun (a passing fault is retried; the fifth failure is final)
    sharedFiles: list[str] = msgspec.field(default_factory=list)  # noqa: N815 - copies in its shared folders
    refreshId: str | None = None  # noqa: N815 - a refresh job's run: GET /api/datamodels/{id}/refreshes/{it}
    ownerNotified: str | None = None  # noqa: N815 - a failed run: the address its owner was told at
    export: RunExport | None = None


class JobResultList(msgspec.Struct):
    ok: Literal[True]
    message: str
    jobResults: list[JobResultView]  # noqa: N815


class JobResultAnswer(msgspec.Struct):
    ok: Literal[True]
    message: str
    jobResult: JobResultView  # noqa: N815


class JobExecuted(msgspec.Struct):
    ok: Literal[True]
    message: str
    generatedDocumentId: str  # noqa: N815


class MailForm(msgspec.Struct):
    """`/report/mail/`'s form: where to, in what format, on which clock; the report's own fields as well."""

    to: str  # addresses, comma-separated (or the field repeated), at most 50
    format: Literal["url", "pdf", "excel", "html", "csv"] = "pdf"
    timeZone: str = "UTC"  # noqa: N815


class MailQueued(msgspec.Struct):
    ok: Literal[True]
    message: str
    generatedDocumentId: str  # noqa: N815 - follow it at /api/jobs/jobresults/{generatedDocumentId}
    ticketId: str  # noqa: N815
    recipients: list[str]


class PasswordGrantForm(msgspec.Struct):
    """RFC 6749's password grant, as a form body."""

    grant_type: Literal["password"]
    username: str
    password: str


class AccessToken(msgspec.Struct):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class OAuthErrorBody(msgspec.Struct):
    """RFC 6749's error answer."""

    error: Literal["invalid_request", "unsupported_grant_type", "invalid_grant"]
    error_description: str


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it answers (status -> body type, None for a non-JSON body)."""

    method: str
    path: str  # OpenAPI's form: /api/call/{report_id}
    summary: str
    responses: dict[int, tuple[type | None, str]]
    request: type | None = None
    request_optional: bool = False  # a body that may be left out (a delete's optimisticLock)
    form: bool = False  # the request body is a form (application/x-www-form-urlencoded), not JSON
    query: tuple[tuple[str, str], ...] = ()  # documented query parameters (name, description)
    free_query: bool = False  # the report's own fields, any names
    authenticated: bool = True
    content: str = "application/json"
    tags: tuple[str, ...] = field(default_factory=tuple)
    security: tuple[str, ...] = ("basic", "bearer")  # the security schemes that authenticate it
    headers: tuple[tuple[str, str], ...] = ()  # response headers a 200 may carry (name, description)


_AUTH_ERRORS: dict[int, tuple[type | None, str]] = {
    401: (ErrorBody, "No, malformed, unknown, wrong, expired or deactivated token"),
    429: (ErrorBody, "Throttled"),
}
_REPORT_ERRORS: dict[int, tuple[type | None, str]] = {
    **_AUTH_ERRORS,
    403: (ErrorBody, "The token is not in a group that may run the report"),
    404: (ErrorBody, "Unknown report"),
}
# What reads a report's rows (or its choices): a report changed since its data model's snapshot was taken.
_READ_ERRORS: dict[int, tuple[type | None, str]] = {
    **_REPORT_ERRORS,
    409: (ErrorBody, "The report's data model keeps a snapshot, and the report changed after it was taken: refresh it"),
}
# A report on a data model that keeps a snapshot reads it: the answer says what its rows are as of.
_SNAPSHOT_HEADERS = (
    ("X-Snapshot-Taken-At", "When the data model's snapshot the rows come from was taken (absent: the live database)"),
)
_ADMIN_ERRORS: dict[int, tuple[type | None, str]] = {
    **_AUTH_ERRORS,
    400: (ErrorBody, "A bad body, field, permission, scope or group (named in the message)"),
    403: (ErrorBody, "Not an admin (or, for tokens, asking more rights than the caller holds)"),
    404: (ErrorBody, "No such object, or not one the caller may see"),
    409: (ErrorBody, "A stale optimisticLock, a name taken, or an object still in use"),
}
_TICKET_ERRORS: dict[int, tuple[type | None, str]] = {**_AUTH_ERRORS, 404: (ErrorBody, "Unknown export ticket")}
_EXPORT_ANSWERS: dict[int, tuple[type | None, str]] = {
    **_READ_ERRORS,
    400: (ErrorBody, "A bad format, parameter or body (named in `parameter`)"),
}
_FILE_ANSWERS: dict[int, tuple[type | None, str]] = {
    302: (Redirect, "To the file, by a link signed now (Location)"),
    409: (ErrorBody, "The export is not complete"),
    410: (ErrorBody, "The file has expired or was deleted"),
    **_TICKET_ERRORS,
}


_CREATED = (
    "/api/tokens",
    "/api/users",
    "/api/usergroups",
    "/api/datamodels",
    "/api/datamodels/{model_id}/customsqlquery",
    "/api/categories",
    "/api/reports",
    "/api/documents",
    "/api/jobs",
)


def _admin(method: str, path: str, summary: str, answer: type, tag: str, **extra: Any) -> Operation:
    status = 201 if method == "POST" and path in _CREATED else 200
    return Operation(method, path, summary, {status: (answer, "")} | _ADMIN_ERRORS, tags=(tag,), **extra)


_SOURCE_ERRORS: dict[int, tuple[type | None, str]] = {
    502: (ErrorBody, "The data model's database failed, refused the login, or did not answer within its commandTimeout")
}


def _model(method: str, path: str, summary: str, answer: type, *, reaches: bool = False, **extra: Any) -> Operation:
    """A data model route; one that `reaches` its database may also answer 502."""
    op = _admin(method, path, summary, answer, "datamodels", **extra)
    if reaches:
        op = Operation(**{**op.__dict__, "responses": op.responses | _SOURCE_ERRORS})
    return op


_MODEL = "/api/datamodels/{model_id}"
_DATA_MODEL_OPERATIONS = (
    _model(
        "POST",
        "/api/datamodels",
        "Add a data model (seed 001); its password goes to Secrets Manager",
        DataModelAnswer,
        request=DataModelCreate,
    ),
    _model("GET", "/api/datamodels", "The data models the caller may read", DataModelList),
    _model("GET", _MODEL, "One data model, with its connection (never its password)", DataModelAnswer),
    _model("PUT", _MODEL, "Change a data model (what is left out stays)", DataModelAnswer, request=DataModelChange),
    _model("DELETE", _MODEL, "Delete a data model no report uses", Done, request=VersionOnly, request_optional=True),
    _model("PUT", f"{_MODEL}/rename", "Rename a data model", DataModelAnswer, request=DataModelRename),
    _model("GET", f"{_MODEL}/connection", "A data model's connection (never its password)", ConnectionAnswer),
    _model(
        "POST",
        f"{_MODEL}/test",
        "Connect to the data model's database and run SELECT 1",
        ConnectionTested,
        reaches=True,
    ),
    _model("GET", f"{_MODEL}/tables", "The tables and views the model's login may read", TableList, reaches=True),
    _model("GET", f"{_MODEL}/tables/{{table_name}}/columns", "A table's or view's columns", ColumnList, reaches=True),
    _model("GET", f"{_MODEL}/procedures", "Functions and procedures (none on SQLite)", ProcedureList, reaches=True),
    _model(
        "GET",
        f"{_MODEL}/procedures/{{procedure_name}}/columns",
        "A function's parameters",
        ColumnList,
        reaches=True,
    ),
    _model(
        "GET",
        f"{_MODEL}/datamembers",
        "What reports and jobs may bind to: tables, views, custom queries",
        DataMemberList,
        reaches=True,
    ),
    _model("GET", f"{_MODEL}/queries", "The model's custom SQL queries", CustomQueryList),
    _model(
        "POST",
        f"{_MODEL}/customsqlquery",
        "Add a custom SQL query (one read statement, checked on the database)",
        CustomQueryAnswer,
        request=CustomQueryBody,
        reaches=True,
    ),
    _model("GET", f"{_MODEL}/customsqlquery/{{name}}", "One custom SQL query", CustomQueryAnswer),
    _model(
        "PUT",
        f"{_MODEL}/customsqlquery/{{name}}",
        "Change (or rename) a custom SQL query",
        CustomQueryAnswer,
        request=CustomQueryBody,
        reaches=True,
    ),
    Operation(
        "POST",
        f"{_MODEL}/refresh",
        "Refresh the model's snapshot (seed 004: a token holding refresh_data may, for the models it may read); "
        "follow it at its statusUrl",
        {
            202: (RefreshAnswer, "Queued"),
            200: (RefreshAnswer, "A refresh of the model is under way already: that one"),
            **_ADMIN_ERRORS,
            400: (ErrorBody, "The model is not marked for snapshots, or keeps no custom query"),
            403: (ErrorBody, "No refresh_data permission, or no read access to the model"),
        },
        tags=("datamodels",),
    ),
    _model("GET", f"{_MODEL}/refreshes", "The model's latest refreshes, newest first", RefreshList),
    _model("GET", f"{_MODEL}/refreshes/{{refresh_id}}", "One refresh: how it stands", RefreshAnswer),
)


_RESULT_WINDOW = (
    ("startDate", "ISO date or date-time (UTC without an offset); default: 30 days before endDate"),
    ("endDate", "ISO date (its whole day) or date-time; default: now"),
)
_JOB_OPERATIONS = (
    _admin(
        "POST",
        "/api/jobs",
        "Schedule a report's delivery (seed 001): the job is checked whole and its schedule made",
        JobAnswer,
        "jobs",
        request=JobBody,
    ),
    _admin("GET", "/api/jobs", "The jobs the caller may read", JobList, "jobs"),
    _admin("GET", "/api/jobs/{job_id}", "One job", JobAnswer, "jobs"),
    _admin(
        "PUT",
        "/api/jobs",
        "Change a job (the whole job, its id in the body); its schedule follows",
        JobAnswer,
        "jobs",
        request=JobChange,
    ),
    Operation(
        "POST",
        "/api/jobs/{job_id}/execute",
        "Run a job now (seed 004: a token holding execute_subscription may, for the jobs it may see or run)",
        {202: (JobExecuted, "Queued: follow it as the generated document")} | _ADMIN_ERRORS,
        tags=("jobs",),
    ),
    _admin(
        "GET",
        "/api/jobs/{job_id}/jobresults",
        "A job's runs (default: the last 30 days)",
        JobResultList,
        "jobs",
        query=_RESULT_WINDOW,
    ),
    _admin("GET", "/api/jobs/jobresults/{generated_id}", "One run of a job", JobResultAnswer, "jobs"),
    Operation(
        "POST",
        "/report/mail/{report_id}",
        "Run a report now and mail it (seed 000); its parameters, `to`, `format` and `timeZone` as form data. "
        "The caller needs `execute_subscription` (or admin) as well as the right to run the report",
        {202: (MailQueued, "Queued: mailed when its file is made")} | _EXPORT_ANSWERS,
        request=MailForm,
        form=True,
        tags=("jobs",),
    ),
    _admin(
        "DELETE",
        "/api/jobs/jobresults/{generated_id}/link",
        "Revoke the links the run's mails carry",
        Done,
        "jobs",
    ),
    _admin(
        "GET",
        "/api/documents/{document_id}/jobresults",
        "The runs of a report's jobs",
        JobResultList,
        "jobs",
        query=_RESULT_WINDOW,
    ),
    _admin(
        "DELETE",
        "/api/jobs",
        "Delete a job and its schedule",
        Done,
        "jobs",
        query=(("id", "the job's id"),),
        request=VersionOnly,
        request_optional=True,
    ),
)


_ADMIN_OPERATIONS = (
    _admin(
        "POST",
        "/api/tokens",
        "Make a token: its secret is shown this once",
        TokenCreated,
        "tokens",
        request=TokenRequest,
    ),
    _admin("GET", "/api/tokens", "The tokens (an admin's: all; others': those they made)", TokenList, "tokens"),
    _admin("GET", "/api/tokens/{name}", "One token", TokenAnswer, "tokens"),
    _admin("DELETE", "/api/tokens/{name}", "Delete a token (and deactivate those it made)", Done, "tokens"),
    _admin("POST", "/api/tokens/{name}/deactivate", "Deactivate a token", TokenAnswer, "tokens"),
    _admin("POST", "/api/tokens/{name}/activate", "Activate a token again", TokenAnswer, "tokens"),
    _admin("POST", "/api/usergroups", "Add a user group (seed 001)", GroupAnswer, "users", request=GroupCreate),
    _admin("GET", "/api/usergroups", "The user groups", GroupList, "users"),
    _admin("GET", "/api/usergroups/{group_id}", "One user group", GroupAnswer, "users"),
    _admin("PUT", "/api/usergroups/{group_id}", "Rename a user group", GroupAnswer, "users", request=GroupChange),
    _admin(
        "DELETE",
        "/api/usergroups/{group_id}",
        "Delete a user group without members",
        Done,
        "users",
        request=VersionOnly,
        request_optional=True,
    ),
    _admin("GET", "/api/usergroups/{group_id}/permissions", "A group's permissions", PermissionsAnswer, "users"),
    _admin(
        "POST",
        "/api/usergroups/{group_id}/permissions",
        "Add permissions to a group",
        PermissionsAnswer,
        "users",
        request=PermissionsChange,
    ),
    _admin(
        "POST",
        "/api/usergroups/{group_id}/permissions/delete",
        "Remove permissions from a group",
        PermissionsAnswer,
        "users",
        request=PermissionsChange,
    ),
    _admin("POST", "/api/users", "Add a user (seed 001), with a password", UserAnswer, "users", request=UserCreate),
    _admin("GET", "/api/users", "The users", UserList, "users"),
    _admin(
        "GET",
        "/api/audit",
        "The audit log, newest first (admin)",
        AuditPage,
        "audit",
        query=(
            ("principal", "token:<name>, user:<name>, nonce:<maker> or login:<user name>"),
            ("report", "a report's slug"),
            ("from", "ISO 8601 time or date (UTC without an offset); default: the retention's start"),
            ("to", "ISO 8601 time or date; default: now"),
            ("limit", "records a page, 1-200 (50)"),
            ("cursor", "the previous page's cursor"),
        ),
    ),
    _admin("GET", "/api/users/{user_id}", "One user (a user may read itself)", UserAnswer, "users"),
    _admin("PUT", "/api/users/{user_id}", "Change a user", UserAnswer, "users", request=UserChange),
    _admin("DELETE", "/api/users/{user_id}", "Delete a user (its access tokens stop at once)", Done, "users"),
    _admin(
        "PUT",
        "/api/users/{user_id}/password",
        "Set a user's password (a user its own, with currentPassword)",
        UserAnswer,
        "users",
        request=PasswordChange,
    ),
    _admin("GET", "/api/users/{user_id}/permissions", "A user's own permissions", PermissionsAnswer, "users"),
    _admin(
        "POST",
        "/api/users/{user_id}/permissions",
        "Add permissions to a user",
        PermissionsAnswer,
        "users",
        request=PermissionsChange,
    ),
    _admin(
        "POST",
        "/api/users/{user_id}/permissions/delete",
        "Remove permissions from a user",
        PermissionsAnswer,
        "users",
        request=PermissionsChange,
    ),
)

_SAVE_ERRORS: dict[int, tuple[type | None, str]] = {
    400: (ErrorBody, "A bad body; SQL that is not one read statement, does not prepare on the data model, or "
          "uses a field not declared (or declares one it never uses)"),
    502: (ErrorBody, "The data model's database failed or did not answer while the SQL was checked"),
}  # fmt: skip
_DELETE_BY_ID = (("id", "the id to delete (seed 001)"),)


def _report_admin(method: str, path: str, summary: str, answer: type, saves: bool = False, **extra: Any) -> Operation:
    op = _admin(method, path, summary, answer, "documents", **extra)
    return Operation(**{**op.__dict__, "responses": op.responses | _SAVE_ERRORS}) if saves else op


_DOCUMENT = "/api/documents/{document_id}"
_REPORT_ADMIN_OPERATIONS = (
    _report_admin("POST", "/api/categories", "Add a category (seed 001)", CategoryAnswer, request=CategoryCreate),
    _report_admin("GET", "/api/categories", "The categories the caller may read", CategoryList),
    _report_admin("GET", "/api/categories/{category_id}", "One category", CategoryAnswer),
    _report_admin(
        "PUT", "/api/categories", "Rename a category (its id in the body)", CategoryAnswer, request=CategoryChange
    ),
    _report_admin(
        "DELETE",
        "/api/categories",
        "Delete a category that holds no report",
        Done,
        query=_DELETE_BY_ID,
        request=VersionOnly,
        request_optional=True,
    ),
    _report_admin(
        "POST",
        "/api/reports",
        "Define a report; its SQL is checked on its data model",
        ReportAdminAnswer,
        saves=True,
        request=ReportBody,
    ),
    _report_admin(
        "PUT",
        "/api/reports/{report_id}",
        "Replace a report's definition (a new revision)",
        ReportAdminAnswer,
        saves=True,
        request=ReportChange,
    ),
    _report_admin(
        "DELETE", "/api/reports/{report_id}", "Delete a report", Done, request=VersionOnly, request_optional=True
    ),
    _report_admin(
        "POST",
        "/api/documents",
        "Add a document (seed 001): a report whose layout is its definition",
        DocumentAnswer,
        saves=True,
        request=DocumentCreate,
    ),
    _report_admin("GET", "/api/documents", "The documents (reports) the caller may manage", DocumentList),
    _report_admin("GET", _DOCUMENT, "One document", DocumentAnswer),
    _report_admin(
        "PUT",
        "/api/documents",
        "Change a document's name, description or category (its id in the body)",
        DocumentAnswer,
        saves=True,
        request=DocumentChange,
    ),
    _report_admin(
        "DELETE",
        "/api/documents",
        "Delete a document",
        Done,
        query=_DELETE_BY_ID,
        request=VersionOnly,
        request_optional=True,
    ),
    _report_admin(
        "PUT",
        f"{_DOCUMENT}/save",
        "Save a document's layout (a new revision)",
        DocumentAnswer,
        saves=True,
        request=DocumentSave,
    ),
    _report_admin("GET", f"{_DOCUMENT}/layout", "A document's layout: its definition as JSON text", LayoutAnswer),
    _report_admin("GET", f"{_DOCUMENT}/revisions", "A document's saved revisions, newest first", RevisionList),
    _report_admin(
        "GET", f"{_DOCUMENT}/revisionLayout/{{revision_id}}", "The layout of one revision", RevisionLayoutAnswer
    ),
)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/call/{report_id}",
        "Run a report: its rows as records (seed 000)",
        {
            200: (CallResult, "The report's rows"),
            400: (ErrorBody, "A bad parameter (named in `parameter`)"),
            413: (ErrorBody, "More rows or bytes than a call returns: request an export"),
            502: (ErrorBody, "The data source failed, or a value does not fit its column's type"),
            **_READ_ERRORS,
        },
        free_query=True,
        tags=("reports",),
        headers=_SNAPSHOT_HEADERS,
    ),
    Operation(
        "GET",
        "/template/{report_id}",
        "A template report's page (seed 000): its rows through its HTML template; template_only=Y: the contents",
        {
            200: (None, "An HTML page"),
            400: (ErrorBody, "A bad parameter (named in `parameter`)"),
            413: (ErrorBody, "More rows than a page shows: request an export"),
            502: (ErrorBody, "The data source failed, or the template broke a bound (time, size, the sandbox)"),
            **_READ_ERRORS,
            404: (ErrorBody, "Unknown report, or not a template report"),
        },
        query=(("template_only", "Y: only the template's rendered contents, not a whole page"),),
        free_query=True,
        content="text/html",
        tags=("reports",),
        headers=_SNAPSHOT_HEADERS,
    ),
    Operation("GET", "/api/reports", "The reports this token may run", {200: (ReportList, "")} | _AUTH_ERRORS),
    Operation(
        "GET",
        "/report/get/{report_id}",
        "A report's definition, fields in order (no SQL)",
        {200: (ReportDefinition, "")} | _REPORT_ERRORS,
        tags=("reports",),
    ),
    Operation(
        "GET",
        "/api/choices/{field_id}",
        "The choices of a choice field",
        {
            200: (FieldChoices, ""),
            502: (ErrorBody, "The choices' query failed"),
            **_READ_ERRORS,
            404: (ErrorBody, "Unknown field, or not a choice field"),
        },
        tags=("reports",),
        headers=_SNAPSHOT_HEADERS,
    ),
    Operation("GET", "/api/server_time", "The server's time (UTC)", {200: (ServerTime, "")} | _AUTH_ERRORS),
    Operation("GET", "/api/server_iso_time", "The server's time, ISO 8601", {200: (ServerIsoTime, "")} | _AUTH_ERRORS),
    Operation(
        "POST",
        "/api/exports",
        f"Request an export ({', '.join(EXPORT_FORMATS)}) as a ticket",
        {
            202: (ExportAccepted, "Queued"),
            200: (ExportAccepted, "The same file from the report's cache period, complete at once"),
            **_EXPORT_ANSWERS,
        },
        request=ExportRequest,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/exports/{ticket_id}",
        "An export's status",
        {200: (ExportStatus, "")} | _TICKET_ERRORS,
        tags=("exports",),
    ),
    Operation("GET", "/api/exports/{ticket_id}/download", "Go to the export's file", _FILE_ANSWERS, tags=("exports",)),
    Operation(
        "GET",
        "/api/links/{link}",
        "Open a link from a job run's mail (the link is the credential): to the file, by a link signed now",
        {
            302: (Redirect, "To the file, by a link signed now (Location)"),
            404: (ErrorBody, "No such link"),
            410: (ErrorBody, "The link expired or was revoked, or its file was deleted"),
            429: (ErrorBody, "Throttled"),
        },
        authenticated=False,
        tags=("jobs",),
    ),
    Operation(
        "POST",
        "/api/documents/export/report/{report_id}",
        "Request an export in seed 001's shape",
        {202: (DocumentExportAccepted, "Queued"), 200: (DocumentExportAccepted, "From the cache")} | _EXPORT_ANSWERS,
        request=DocumentExport,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/documents/export/status/{export_id}",
        "An export's status (seed 001)",
        {200: (DocumentExportStatus, "")} | _TICKET_ERRORS,
        tags=("exports",),
    ),
    Operation(
        "GET",
        "/api/documents/export/result/{export_id}",
        "Go to the export's file (seed 001)",
        _FILE_ANSWERS,
        tags=("exports",),
    ),
    Operation(
        "POST",
        "/api/v1/nonce-tokens",
        "A single-use nonce for embedding a report in an iframe (seed 003)",
        {
            201: (NonceAnswer, "The nonce (single-use, short-lived) and the view's URL with it"),
            400: (ErrorBody, "A bad body or a bad fixed parameter (named)"),
            **_READ_ERRORS,
        },
        request=NonceRequest,
        tags=("embedding",),
    ),
    Operation(
        "GET",
        "/report/view/{report_id}",
        "The embedded report view: one page of rows as HTML (the nonce opens its session cookie)",
        {
            200: (None, "An HTML page"),
            302: (None, "The nonce was taken: to the same page without it, with the session's cookie"),
            400: (ErrorBody, "A bad parameter or page (named)"),
            401: (ErrorBody, "No, a used, an expired or an unknown nonce; no or an ended session"),
            403: (ErrorBody, "Another report than the nonce's, or a parameter the embedding page fixed"),
            404: (ErrorBody, "Unknown report"),
            409: (ErrorBody, "The report changed after its data model's snapshot was taken: refresh the model"),
            429: (ErrorBody, "Throttled"),
            502: (ErrorBody, "The data source failed"),
        },
        free_query=True,
        content="text/html",
        security=("nonce", "viewSession"),
        headers=_SNAPSHOT_HEADERS,
        tags=("embedding",),
    ),
    *_ADMIN_OPERATIONS,
    *_DATA_MODEL_OPERATIONS,
    *_REPORT_ADMIN_OPERATIONS,
    *_JOB_OPERATIONS,
    Operation(
        "POST",
        "/oauth/token",
        "Log in as a user: the OAuth 2.0 password grant (seed 001) gives a Bearer access token",
        {
            200: (AccessToken, "The access token, to send as Authorization: Bearer"),
            400: (OAuthErrorBody, "An RFC 6749 error: invalid_request, unsupported_grant_type or invalid_grant"),
            429: (OAuthErrorBody, "Too many failed logins for this user name: wait Retry-After seconds"),
        },
        request=PasswordGrantForm,
        form=True,
        authenticated=False,
        tags=("users",),
    ),
    Operation(
        "GET",
        "/api/openapi.json",
        "This document",
        {200: (None, "The OpenAPI 3.1 document")},
        authenticated=False,
        tags=("contract",),
    ),
    Operation(
        "GET",
        "/api/docs",
        "Swagger UI for this document (works offline)",
        {200: (None, "An HTML page")},
        authenticated=False,
        content="text/html",
        tags=("contract",),
    ),
)


@cache
def openapi_document(server_url: str = "/") -> bytes:
    """The OpenAPI 3.1 document of `OPERATIONS`, as JSON."""
    types = sorted(
        {t for op in OPERATIONS for t in [op.request, *(r[0] for r in op.responses.values())] if t is not None},
        key=lambda t: t.__name__,
    )
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = {t: s for t, s in zip(types, schemas, strict=True)}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "reportserver",
            "version": "1",
            "description": "Parameterised SQL reports over HTTP, and exports to files behind temporary links.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "token name : token secret"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token's secret, or a user's access token from POST /oauth/token",
                },
                "nonce": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "nonce",
                    "description": "a single-use nonce from POST /api/v1/nonce-tokens (the report view only)",
                },
                "viewSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "rs_view",
                    "description": "the embed session the nonce opened (the report view only)",
                },
            },
        },
    }
    return msgspec.json.encode(document)


# What API Gateway (or a failing function) may answer on any route, whatever the route itself does.
_ANY_ROUTE: dict[int, tuple[type | None, str]] = {
    400: (ErrorBody, "A malformed request (a bad Content-Length, a chunked body)"),
    500: (ErrorBody, "An internal error (its request id is in the logs), or the authorizer failed"),
    502: (ErrorBody, "The function failed or its response was over Lambda's 6 MB"),
}
_WITH_BODY: dict[int, tuple[type | None, str]] = {413: (ErrorBody, "A request body over API Gateway's 10 MB")}


def _operation(op: Operation, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.method.lower() + "_" + op.path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
        "tags": list(op.tags),
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _path_names(op.path)
    ]
    parameters += [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
        for n, d in op.query
    ]
    if op.free_query:
        parameters.append(
            {
                "name": "fields",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "description": "The report's fields by name (GET /report/get/{report_id} lists them)",
            }
        )
    if parameters:
        described["parameters"] = parameters
    if op.request is not None:
        media = "application/x-www-form-urlencoded" if op.form else "application/json"
        described["requestBody"] = {
            "required": not op.request_optional,
            "content": {media: {"schema": refs[op.request]}},
        }
    described["security"] = [{scheme: []} for scheme in op.security] if op.authenticated else []
    answers = _ANY_ROUTE | (_WITH_BODY if op.method in ("POST", "PUT", "PATCH") else {}) | op.responses
    for status, (body, description) in sorted(answers.items()):
        answer: dict[str, Any] = {"description": description or "OK"}
        if body is not None:
            answer["content"] = {"application/json": {"schema": refs[body]}}
        elif status == 200:
            answer["content"] = {op.content: {"schema": {"type": "string"} if op.content != "application/json" else {}}}
        if status == 200 and op.headers:
            answer["headers"] = {
                name: {"description": text, "schema": {"type": "string", "format": "date-time"}}
                for name, text in op.headers
            }
        described["responses"][str(status)] = answer
    return described


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


@cache
def swagger_page(server_url: str = "/") -> str:
    """Swagger UI on this document, in one page: its script and styles are the ones Powertools ships
    (pinned with it), so the page needs nothing from the internet."""
    from importlib import resources  # noqa: PLC0415

    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html  # noqa: PLC0415

    assets = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    script = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    spec = openapi_document(server_url).decode("utf-8").replace("</", "<\\/")  # inside a <script>
    return generate_swagger_html(spec, script, styles, "", None)
