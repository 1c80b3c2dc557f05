"""The DynamoDB key design, written down in one place.

TokensTable (one item per API token)
    key          name (S)                      the token's name, unique
    index        BySecretHash: secret_hash (S) Bearer lookups; projects all attributes
    attributes   secret_hash (SHA-256 hex), groups (L), permissions (L), expires_at (ISO-8601 UTC),
                 active (BOOL), created_at, created_by, description
    writes       create is conditional on attribute_not_exists(name); tokens are never updated,
                 only deleted and re-created (seed 000)

CatalogTable (reports, their fields, data sources; small and read-mostly)
    key          pk (S), sk (S)
    pk=REPORT      sk=<report id, 12 digits>   definition (S, JSON), slug, name, version (N)
    pk=SLUG        sk=<slug>                   report_id (N)   slug -> id; conditional on not taken
    pk=FIELD       sk=<field id, 12 digits>    report_id (N)   /api/choices/<field id>/ -> report
    pk=DATASOURCE  sk=<data model id>          definition (S, JSON; never a password: the name of its
                                               secret), name, version (N); every change conditional
                                               on the version read (optimisticLock)
    pk=CATEGORY    sk=<category id, 12 digits> definition (S, JSON), version (N)
    pk=REVISION<report id, 12 digits>  sk=<version, 12 digits>   definition (S, JSON: the report as
                                               saved, its comment, who and when); written in the same
                                               transaction as the report it keeps
    pk=COUNTER     sk=report | field | datamodel | category   value (N)   atomic ADD allocates ids
    pk=SNAPSHOT    sk=<data model id>          snapshot (S, JSON: the model's current snapshot, its file
                                               under snapshots/ in the bucket), taken_at (S, stamped: what
                                               its rows are as of; a snapshot is stored only over an older
                                               one), checked (M: report id -> version, the reports shown to
                                               read it alike: by its refresh, then by each report's save,
                                               conditional on taken_at), active and active_until (the one
                                               refresh under way and until when it holds the model: taken
                                               only when free or past, in the transaction that records it)
    pk=REFRESH<data model id, 12 digits>  sk=<refresh id: yyyymmddThhmmssffffffZ-<hex>>   a refresh,
                                               its fields as attributes; claimed from queued (or from
                                               running past its lease) and finished conditionally on its
                                               status and attempt; listed newest first
    A report, its slug and its field pointers are written in one transaction.
"""

# IdentityTable (users, user groups, users' access tokens, failed logins, embed nonces)
#     key          pk (S), sk (S)
#     pk=GROUP       sk=<group id, 12 digits>   the group (name, permissions, version)
#     pk=GROUPNAME   sk=<name, lower case>      group_id: a name is unique; written with the group
#     pk=USER        sk=<user id, 12 digits>    the user (password's scrypt hash, version, ...)
#     pk=USERNAME    sk=<user name, lower case> user_id: written with the user
#     pk=COUNTER     sk=user | group            value (N): atomic ADD allocates ids
#     pk=SESSION<access token's SHA-256>, sk=SESSION   user_id, credential_epoch, expires_at; ttl
#     pk=LOGIN<user:name | addr:name:ip>, sk=LOGIN      count (N, atomic ADD), hold_until; ttl
#     pk=NONCE<nonce's SHA-256>, sk=NONCE            the creator's rights, locked parameters; ttl
#                  taken by a conditional delete (ReturnValues ALL_OLD): used once, also when raced
#     pk=VIEW<session's SHA-256>, sk=VIEW            an embed session the nonce opened; ttl
#     writes       every update of a user or group is conditional on its version (optimisticLock)
#     ttl          ttl (N, epoch seconds) on access tokens and failed-login counts
GROUP = "GROUP"
GROUP_NAME = "GROUPNAME"
USER = "USER"
USER_NAME = "USERNAME"
SESSION = "SESSION"
LOGIN = "LOGIN"
NONCE = "NONCE"
VIEW = "VIEW"

REPORT = "REPORT"
SLUG = "SLUG"
FIELD = "FIELD"
DATASOURCE = "DATASOURCE"
CATEGORY = "CATEGORY"
REVISION = "REVISION"
COUNTER = "COUNTER"
SNAPSHOT = "SNAPSHOT"
REFRESH = "REFRESH"
SECRET_HASH_INDEX = "BySecretHash"  # noqa: S105 - an index name


def numeric_sort_key(number: int) -> str:
    return f"{number:012d}"


# TicketsTable (one item per export ticket; see `reportserver.domain.tickets`)
#     key          ticket_id (S)
#     index        ByCompleteCacheKey: complete_cache_key (S), completed_at (S); sparse, set only when a
#                  ticket completes, so the export cache finds the newest finished file for a request
#     ttl          ttl (N, epoch seconds): the ticket goes with its file (the bucket's lifecycle rule)
#     writes       every status change is conditional on the current status (and the worker's attempt)
#     index        ByOwner: owner (S), created_at (S), with status: how many of a token's tickets are open
CACHE_INDEX = "ByCompleteCacheKey"
OWNER_INDEX = "ByOwner"
#     index        ByStatus: status (S), updated_at (S): the sweeper's pending and in-progress tickets
STATUS_INDEX = "ByStatus"

# AuditTable (one item per audited request; see `reportserver.domain.audit`)
#     key          pk (S) = D#<yyyy-mm-dd> (the day, UTC), sk (S) = <time, stamped>#<request id>
#     index        ByPrincipal: principal (S), sk: one caller's records, newest first
#     index        ByReport: report (S), sk: sparse (only records of a report)
#     ttl          ttl (N): the record goes AUDIT_RETENTION_DAYS after its time
#     writes       BatchWriteItem from the audit writer; a record delivered twice is one item (same key)
AUDIT_DAY = "D#"
AUDIT_BY_PRINCIPAL = "ByPrincipal"
AUDIT_BY_REPORT = "ByReport"

# JobsTable (jobs and, with their runs, what they delivered; see `reportserver.domain.jobs`)
#     key          pk (S), sk (S)
#     pk=JOB         sk=<job id, 12 digits>   definition (S, JSON: the job as checked, its owner, version),
#                                             version (N), document_id (N); every change and delete
#                                             conditional on the version read (optimisticLock)
#     pk=COUNTER     sk=job                   value (N): atomic ADD allocates ids
#     pk=RUN<job id, 12 digits>  sk=<run time: yyyymmddThhmmssZ>[.<run id>]   a run (job result):
#                                             definition (S, JSON), status; created conditional on
#                                             attribute_not_exists (a message delivered twice is one run)
#     pk=LINK<secret's SHA-256>  sk=LINK      a link in a run's mail (`domain.links`): definition (S,
#                                             JSON: the file, expiry, revoked); the secret is never stored
#     pk=MAIL<SES message id>  sk=MAIL        job_id (N), run (S): the run a sent mail belongs to (its
#                                             bounces and complaints find it); ttl as the run's
#     index        OpenRuns: open_runs (S, "OPEN") + updated (N, epoch seconds); sparse: only runs not
#                  ended (exporting, delivering) carry open_runs; the runs' sweeper reads it (keys only)
#     index        RunFiles: kept_file (S, "FILE") + file_expires (N, epoch seconds); sparse: only runs
#                  whose file (runs/...) is kept; the sweeper removes files past their retention
#     ttl          ttl (N, epoch seconds) on a job's results and links: its retentionPeriod
JOB = "JOB"
OPEN_RUNS_INDEX = "OpenRuns"
RUN_FILES_INDEX = "RunFiles"
RUN = "RUN"
LINK = "LINK"
MAIL = "MAIL"
