"""Typed settings, one struct per function, read once from the environment at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

import msgspec

from reportserver.http.lambda_proxy import MAX_BODY_WEIGHT_BYTES

TableName = Annotated[str, msgspec.Meta(min_length=3, max_length=255)]


class SettingsError(RuntimeError):
    """A function started without the configuration it needs: fail at start, not on a request."""


class _Settings(msgspec.Struct, frozen=True, kw_only=True):
    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        try:
            # strict=False: environment values are text, converted to each field's type.
            return msgspec.convert(dict(os.environ if environ is None else environ), cls, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{cls.__name__} is not configured: {error}") from None


RetentionDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]
Flag = Annotated[str, msgspec.Meta(pattern=r"^(on|off)$")]
# scrypt's cost: OWASP's floor (2**17) in AWS; the tests run with less.
ScryptCost = Annotated[int, msgspec.Meta(ge=2**10, le=2**20)]


class AuthSettings(_Settings, frozen=True, kw_only=True):
    tokens_table: TableName = msgspec.field(name="TOKENS_TABLE")
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")
    guest_account: Flag = msgspec.field(name="GUEST_ACCOUNT", default="off")
    group_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] = msgspec.field(
        name="GROUP_CACHE_SECONDS", default=0.0
    )
    # Bounded by API Gateway's own authorizer cache (30 s): revocation is never slower than that.
    token_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] = msgspec.field(
        name="TOKEN_CACHE_SECONDS", default=0.0
    )


CatalogCacheSeconds = Annotated[float, msgspec.Meta(ge=0, le=3600)]


QueueUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+/\d{12}/\S+$")]
BucketName = Annotated[str, msgspec.Meta(min_length=3)]
# Where a function that reads reports keeps its copies of data models' snapshots (Lambda's /tmp).
SNAPSHOT_DIR_DEFAULT = "/tmp/snapshots"  # noqa: S108


class ReportsSettings(_Settings, frozen=True, kw_only=True):
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")  # embed nonces
    call_max_rows: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = msgspec.field(
        name="CALL_MAX_ROWS", default=50_000
    )
    # What the body weighs in the response Lambda sends (see `http.lambda_proxy`), under its 6 MB limit.
    call_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=MAX_BODY_WEIGHT_BYTES)] = msgspec.field(
        name="CALL_MAX_BYTES", default=5_000_000
    )
    catalog_cache_seconds: CatalogCacheSeconds = msgspec.field(name="CATALOG_CACHE_SECONDS", default=30.0)
    snapshot_bucket: BucketName = msgspec.field(name="SNAPSHOT_BUCKET")  # data models' snapshots
    snapshot_dir: str = msgspec.field(name="SNAPSHOT_DIR", default=SNAPSHOT_DIR_DEFAULT)


class ExportsSettings(_Settings, frozen=True, kw_only=True):
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")
    export_queue_url: QueueUrl = msgspec.field(name="EXPORT_QUEUE_URL")
    export_bucket: Annotated[str, msgspec.Meta(min_length=3)] = msgspec.field(name="EXPORT_BUCKET")
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = msgspec.field(name="EXPORT_RETENTION_DAYS", default=7)
    # Minutes, not days: a leaked link dies soon, and each status read signs a fresh one.
    download_url_seconds: Annotated[int, msgspec.Meta(ge=10, le=3600)] = msgspec.field(
        name="DOWNLOAD_URL_SECONDS", default=300
    )
    max_open_tickets: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(
        name="EXPORT_MAX_OPEN_TICKETS", default=10
    )
    catalog_cache_seconds: CatalogCacheSeconds = msgspec.field(name="CATALOG_CACHE_SECONDS", default=30.0)
    jobs_table: TableName = msgspec.field(name="JOBS_TABLE")  # the links in job runs' mails
    # A choice field's choices come from the snapshot where its report reads one.
    snapshot_bucket: BucketName = msgspec.field(name="SNAPSHOT_BUCKET")
    snapshot_dir: str = msgspec.field(name="SNAPSHOT_DIR", default=SNAPSHOT_DIR_DEFAULT)


class ExportWorkerSettings(_Settings, frozen=True, kw_only=True):
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    export_queue_url: QueueUrl = msgspec.field(name="EXPORT_QUEUE_URL")
    # The queue's maxReceiveCount: on the last delivery a transient failure fails the ticket.
    max_receives: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(name="EXPORT_MAX_RECEIVES", default=3)
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")
    export_bucket: Annotated[str, msgspec.Meta(min_length=3)] = msgspec.field(name="EXPORT_BUCKET")
    lease_seconds: Annotated[int, msgspec.Meta(ge=5, le=7200)] = msgspec.field(name="EXPORT_LEASE_SECONDS", default=960)
    progress_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = msgspec.field(
        name="EXPORT_PROGRESS_SECONDS", default=3.0
    )
    # Kept back from the function's remaining time to upload the file and complete (or fail) the ticket.
    finish_seconds: Annotated[float, msgspec.Meta(ge=5, le=300)] = msgspec.field(
        name="EXPORT_FINISH_SECONDS", default=60.0
    )
    # A folder of its own on Lambda's only disk: emptied at the start of every export (see ExportWorker).
    scratch_dir: str = msgspec.field(name="EXPORT_SCRATCH_DIR", default="/tmp/exports")  # noqa: S108
    catalog_cache_seconds: CatalogCacheSeconds = msgspec.field(name="CATALOG_CACHE_SECONDS", default=30.0)
    # Where a job run's finished export is announced (its delivery follows).
    job_run_queue_url: QueueUrl = msgspec.field(name="JOB_RUN_QUEUE_URL")
    snapshot_bucket: BucketName = msgspec.field(name="SNAPSHOT_BUCKET")  # data models' snapshots
    snapshot_dir: str = msgspec.field(name="SNAPSHOT_DIR", default=SNAPSHOT_DIR_DEFAULT)


class SweeperSettings(_Settings, frozen=True, kw_only=True):
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")
    export_queue_url: QueueUrl = msgspec.field(name="EXPORT_QUEUE_URL")
    stranded_seconds: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = msgspec.field(
        name="EXPORT_STRANDED_SECONDS", default=900
    )
    max_receives: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(name="EXPORT_MAX_RECEIVES", default=3)


class DeadLetterSettings(_Settings, frozen=True, kw_only=True):
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")


class AdminSettings(_Settings, frozen=True, kw_only=True):
    tokens_table: TableName = msgspec.field(name="TOKENS_TABLE")
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    usage_plan_name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] = msgspec.field(
        name="TOKEN_USAGE_PLAN_NAME"
    )
    scrypt_cost: ScryptCost = msgspec.field(name="PASSWORD_SCRYPT_N", default=2**17)
    audit_table: TableName = msgspec.field(name="AUDIT_TABLE")
    audit_retention_days: RetentionDays = msgspec.field(name="AUDIT_RETENTION_DAYS", default=90)


class CatalogAdminSettings(_Settings, frozen=True, kw_only=True):
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")  # the groups a report names
    # Where new data model passwords are kept (the functions that open sources may read only these).
    secret_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9/_+=.@-]{1,400}/$")] = msgspec.field(
        name="DATA_SOURCE_SECRET_PREFIX"
    )
    # A SQLite data model reads a file on the server's disk: the local stack's demo only, never in AWS.
    sqlite_data_models: Flag = msgspec.field(name="SQLITE_DATA_MODELS", default="off")
    refresh_queue_url: QueueUrl = msgspec.field(name="REFRESH_QUEUE_URL")  # snapshot refreshes asked for


class DataRefreshSettings(_Settings, frozen=True, kw_only=True):
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    snapshot_bucket: BucketName = msgspec.field(name="SNAPSHOT_BUCKET")
    # Longer than the function's timeout: a refresh whose function died is taken by the queue's next delivery.
    lease_seconds: Annotated[int, msgspec.Meta(ge=5, le=7200)] = msgspec.field(
        name="REFRESH_LEASE_SECONDS", default=960
    )
    # Every function that reads a model's reports keeps a copy in its /tmp (512 MB unless raised).
    max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024, le=8 * 1024**3)] = msgspec.field(
        name="SNAPSHOT_MAX_BYTES", default=200 * 1024 * 1024
    )
    scratch_dir: str = msgspec.field(name="REFRESH_SCRATCH_DIR", default="/tmp/refreshes")  # noqa: S108


Arn = Annotated[str, msgspec.Meta(pattern=r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$")]


class JobsSettings(_Settings, frozen=True, kw_only=True):
    jobs_table: TableName = msgspec.field(name="JOBS_TABLE")
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")  # the report a job delivers
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")  # its subscribers' addresses
    schedule_group: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-zA-Z._-]{1,64}$")] = msgspec.field(
        name="JOB_SCHEDULE_GROUP"
    )
    job_run_queue_arn: Arn = msgspec.field(name="JOB_RUN_QUEUE_ARN")  # where each schedule sends its runs
    scheduler_role_arn: Arn = msgspec.field(name="JOB_SCHEDULER_ROLE_ARN")  # the role Scheduler sends as
    job_run_queue_url: QueueUrl = msgspec.field(name="JOB_RUN_QUEUE_URL")  # runs asked over the API
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")  # how each run's export stands
    # `/report/mail/`: the export it asks for
    export_queue_url: QueueUrl = msgspec.field(name="EXPORT_QUEUE_URL")
    export_bucket: Annotated[str, msgspec.Meta(min_length=3)] = msgspec.field(name="EXPORT_BUCKET")
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = msgspec.field(name="EXPORT_RETENTION_DAYS", default=7)
    max_open_tickets: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(
        name="EXPORT_MAX_OPEN_TICKETS", default=10
    )


class JobRunnerSettings(_Settings, frozen=True, kw_only=True):
    jobs_table: TableName = msgspec.field(name="JOBS_TABLE")
    # SES publishes the bounces and complaints of mails sent with it (to the job-run queue, by SNS)
    mail_configuration_set: str = msgspec.field(name="MAIL_CONFIGURATION_SET", default="")
    refresh_queue_url: QueueUrl = msgspec.field(name="REFRESH_QUEUE_URL")  # a refresh job's snapshot refresh
    catalog_table: TableName = msgspec.field(name="CATALOG_TABLE")
    tokens_table: TableName = msgspec.field(name="TOKENS_TABLE")  # a job's owner, as it is now
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")
    tickets_table: TableName = msgspec.field(name="TICKETS_TABLE")
    export_queue_url: QueueUrl = msgspec.field(name="EXPORT_QUEUE_URL")
    export_bucket: Annotated[str, msgspec.Meta(min_length=3)] = msgspec.field(name="EXPORT_BUCKET")
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = msgspec.field(name="EXPORT_RETENTION_DAYS", default=7)
    schedule_group: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-zA-Z._-]{1,64}$")] = msgspec.field(
        name="JOB_SCHEDULE_GROUP"
    )
    job_run_queue_arn: Arn = msgspec.field(name="JOB_RUN_QUEUE_ARN")
    job_run_queue_url: QueueUrl = msgspec.field(name="JOB_RUN_QUEUE_URL")  # a per-recipient run's messages
    scheduler_role_arn: Arn = msgspec.field(name="JOB_SCHEDULER_ROLE_ARN")
    mail_from: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] = msgspec.field(name="MAIL_FROM")
    # The API's public address: links in mails point to it (`/api/links/...`), never to S3.
    service_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = msgspec.field(
        name="SERVICE_URL"
    )


class LoginSettings(_Settings, frozen=True, kw_only=True):
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")
    access_token_seconds: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = msgspec.field(
        name="ACCESS_TOKEN_SECONDS", default=1200
    )
    guest_account: Flag = msgspec.field(name="GUEST_ACCOUNT", default="off")
    scrypt_cost: ScryptCost = msgspec.field(name="PASSWORD_SCRYPT_N", default=2**17)


class ViewAuthSettings(_Settings, frozen=True, kw_only=True):
    identity_table: TableName = msgspec.field(name="IDENTITY_TABLE")
    tokens_table: TableName = msgspec.field(name="TOKENS_TABLE")
    embed_session_seconds: Annotated[int, msgspec.Meta(ge=60, le=43_200)] = msgspec.field(
        name="EMBED_SESSION_SECONDS", default=900
    )


class AuditWriterSettings(_Settings, frozen=True, kw_only=True):
    audit_table: TableName = msgspec.field(name="AUDIT_TABLE")
    retention_days: RetentionDays = msgspec.field(name="AUDIT_RETENTION_DAYS", default=90)
