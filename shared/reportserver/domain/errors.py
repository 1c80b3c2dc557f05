"""Domain exceptions; `reportserver.http.errors` maps each kind to an HTTP status and a JSON body."""


def shown(text: str, limit: int = 64) -> str:
    """Caller-given text as a message quotes it: never more than `limit` characters of it."""
    return text if len(text) <= limit else text[:limit] + "..."


def named(text: str, field: str = "name") -> str:
    """A name as given, without its surrounding spaces; one that is only spaces is refused (400)."""
    stripped = text.strip()
    if not stripped:
        raise InvalidParameter(field, f"'{field}' cannot be blank")
    return stripped


class DomainError(Exception):
    """A failure the caller can understand; `message` is safe to show to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(DomainError):
    """No credentials, malformed credentials, or credentials that do not identify a live token."""


class Forbidden(DomainError):
    """A valid token that lacks the group or permission the action needs."""


class NotFound(DomainError):
    """An unknown report, report field, data source or token."""


class InvalidParameter(DomainError):
    """A request parameter that is unknown, missing, repeated or of the wrong shape."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class InvalidDefinition(DomainError):
    """A report, field or token definition that cannot be stored as given."""


class AlreadyExists(DomainError):
    """A create that would overwrite an existing item (a token name, a report slug)."""


class VersionConflict(AlreadyExists):
    """An update made from a version that is no longer the stored one (409): a stale `optimisticLock`."""


class ResultTooLarge(DomainError):
    """A synchronous result over the configured row or byte cap."""


class TicketConflict(DomainError):
    """A transition an export ticket's current state does not allow (already taken, already finished)."""


class TooManyRequests(DomainError):
    """A caller over one of its limits; `retry_after` seconds is when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReady(DomainError):
    """The file of an export that is not complete."""


class FileGone(DomainError):
    """The file of a complete export that has expired or been deleted."""


class DataSourceFailed(DomainError):
    """The data source could not run the query; the message never carries SQL text or driver detail."""


class QueryTookTooLong(DataSourceFailed):
    """A query stopped at its data source's time limit."""

    def __init__(self) -> None:
        super().__init__("The report's query took longer than its time limit")


class SourceUnavailable(DataSourceFailed):
    """The data source cannot be reached or opened now: worth another attempt, unlike a bad query."""


class StatementRefused(DataSourceFailed):
    """The source would not prepare a statement. `detail` is the engine's own message (`relation "ordrs"
    does not exist`): an admin saving the statement is shown it; a report's caller never is."""

    def __init__(self, detail: str) -> None:
        super().__init__("The report's query failed on its data source")
        self.detail = detail


class RenderFailed(DomainError):
    """A file that cannot be made from these rows (a format limit, say); the message is for the owner."""


class TemplateRefused(RenderFailed):
    """A template report's template broke a bound (time, size) or tried what the sandbox forbids."""


class OutOfTime(DomainError):
    """An export that would outlast the worker's own time limit: failed while there is time to say so."""


class ValueDoesNotFit(DataSourceFailed):
    """A result value that its column's declared type cannot hold exactly: the result fails as a whole,
    never rounded, cut or shifted. `row` counts from 1, as a person reads a sheet."""

    def __init__(self, column: str, row: int, expected: str, value: object) -> None:
        super().__init__(f"Column '{column}', row {row}: {shown(repr(value), 40)} is not a {expected}")
        self.column = column
        self.row = row


class TicketBusy(Exception):
    """Another attempt holds the ticket under a live lease: the queue should deliver it again later.
    Not a `DomainError`: no caller sees it; the worker's message is returned to the queue."""


class LeaseLost(Exception):
    """This attempt no longer holds its ticket (another took it over, or it was failed)."""


class MailRefused(DomainError):
    """The mail service refused a message (a rejected address, an unverified sender, a message too big)."""
