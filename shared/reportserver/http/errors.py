"""The one mapping from domain exceptions to HTTP statuses and seed 000's `{ok, message}` bodies."""

from __future__ import annotations

from typing import Any

from reportserver.domain import errors
from reportserver.domain.sessions import OAuthError

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.InvalidParameter: 400,
    errors.InvalidDefinition: 400,
    errors.AlreadyExists: 409,  # and a stale optimisticLock (identity.VersionConflict)
    errors.ResultTooLarge: 413,
    errors.TooManyRequests: 429,
    errors.TicketConflict: 409,
    errors.NotReady: 409,
    errors.FileGone: 410,
    errors.DataSourceFailed: 502,
    errors.TemplateRefused: 502,  # the report's template, not the caller's request, is at fault
    errors.MailRefused: 502,
}


def status_for(error: errors.DomainError) -> int:
    if isinstance(error, OAuthError):
        return error.status
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


def error_body(error: errors.DomainError) -> dict[str, Any]:
    if isinstance(error, OAuthError):  # RFC 6749's shape, for OAuth clients
        return {"error": error.code, "error_description": error.message}
    body: dict[str, Any] = {"ok": False, "message": error.message}
    if isinstance(error, errors.InvalidParameter):
        body["parameter"] = error.parameter
    return body


INTERNAL_ERROR_BODY = {"ok": False, "message": "Internal error; the request id is in the logs"}
NOT_FOUND_BODY = {"ok": False, "message": "Not found"}
