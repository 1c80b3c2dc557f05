"""Domain exceptions; `reportserver.http.errors` maps each kind to an HTTP status and a JSON body."""


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


class ResultTooLarge(DomainError):
    """A synchronous result over the configured row or byte cap."""


class TicketConflict(DomainError):
    """A transition an export ticket's current state does not allow (already taken, already finished)."""


class NotReady(DomainError):
    """The file of an export that is not complete."""


class FileGone(DomainError):
    """The file of a complete export that has expired or been deleted."""


class DataSourceFailed(DomainError):
    """The data source could not run the query; the message never carries SQL text or driver detail."""
