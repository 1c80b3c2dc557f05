"""What every API function's resolver shares: JSON responses, the caller, and one error mapping."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qs

import msgspec

from reportserver import records
from reportserver.domain.access import Principal
from reportserver.domain.errors import DomainError, InvalidParameter, shown
from reportserver.domain.identity import VersionOnly
from reportserver.domain.snapshots import Snapshot
from reportserver.http.errors import INTERNAL_ERROR_BODY, NOT_FOUND_BODY, error_body, status_for
from reportserver.http.resolver import NotFoundError, Resolver, Response
from reportserver.observability import logger


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON response; `document` may be bytes already encoded (a report call's records)."""
    body = document if isinstance(document, bytes) else records.dumps(document)
    return Response(status_code=status, content_type="application/json", body=body.decode("utf-8"), headers=headers)


S = TypeVar("S", bound=msgspec.Struct)


def json_body(app: Resolver, kind: type[S]) -> S:
    """The request's JSON object as a `kind`; a refusal names the offending field."""
    try:
        text = app.current_event.decoded_body or ""
    except ValueError:  # not base64 (binascii.Error, or a character outside ASCII), or not UTF-8
        raise InvalidParameter("body", "The body cannot be read as base64-encoded UTF-8 text") from None
    return decode_object(text, kind)


MAX_FORM_FIELDS = 200


def form_fields(app: Resolver) -> dict[str, list[str]]:
    """The request's form body (application/x-www-form-urlencoded), every name with all its values."""
    event = app.current_event
    content_type = (event.headers.get("content-type", "") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidParameter("body", "Send the fields as a form (application/x-www-form-urlencoded)")
    try:
        return parse_qs(event.decoded_body or "", keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # not base64 or UTF-8, or too many fields
        raise InvalidParameter("body", f"The form cannot be read (at most {MAX_FORM_FIELDS} fields)") from None


def has_body(app: Resolver) -> bool:
    """Whether the request carries a body (one that is not text counts: `json_body` refuses it)."""
    try:
        return bool((app.current_event.decoded_body or "").strip())
    except ValueError:
        return True


def decode_object(text: str, kind: type[S]) -> S:
    """A JSON object as a `kind`, converted field by field, so that a refusal names its field from the
    structure (the struct's fields), never from the wording of a library's message."""
    if not text.strip():
        raise InvalidParameter("body", "Send a JSON body")
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise InvalidParameter("body", "The body is not valid JSON") from None
    except RecursionError:  # found: `[` nested 100,000 deep was a 500
        raise InvalidParameter("body", "The body is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidParameter("body", "The body must be a JSON object")
    fields = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    if kind.__struct_config__.forbid_unknown_fields:
        for name in document:
            if name not in fields:
                allowed = ", ".join(fields)
                raise InvalidParameter(shown(name), f"Unknown field '{shown(name)}'; allowed: {allowed}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in document:
            if field.required:
                raise InvalidParameter(name, f"'{name}' is required")
            continue
        try:
            values[field.name] = msgspec.convert(document[name], field.type)
        except msgspec.ValidationError as error:
            raise InvalidParameter(name, f"Invalid '{name}': {error}") from None
    return kind(**values)


def query_parameters(app: Resolver) -> dict[str, list[str]]:
    """The request's query string, every name with all its values (in the order given)."""
    event = app.current_event
    multi = event.multi_value_query_string_parameters
    if multi:
        return {name: list(values) for name, values in multi.items()}
    return {name: [value] for name, value in (event.query_string_parameters or {}).items()}


def delete_lock(app: Resolver) -> int | None:
    """A delete's optimisticLock, from its body if it has one (seed 001 sends it; it may be left out)."""
    return json_body(app, VersionOnly).optimisticLock if has_body(app) else None


def one_query_value(app: Resolver, name: str, refusal: str) -> str:
    """A query parameter that must be given exactly once (seed 001's `?id=` of a delete)."""
    values = query_parameters(app).get(name) or []
    if len(values) != 1:
        raise InvalidParameter(name, refusal)
    return values[0]


SNAPSHOT_HEADER = "X-Snapshot-Taken-At"


def snapshot_headers(snapshot: Snapshot | None) -> dict[str, str]:
    """What an answer read from a data model's snapshot says of it: when it was taken (as JSON writes times)."""
    if snapshot is None:
        return {}
    return {SNAPSHOT_HEADER: records.dumps(snapshot.taken_at).decode("ascii").strip('"')}


def caller(app: Resolver) -> Principal:
    """The principal the authorizer put in the request context; it names every log line after it."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    principal = Principal.from_context(context)
    logger.append_keys(principal=principal.label)
    return principal


def install_error_handlers(app: Resolver) -> None:
    """Domain errors become their status and `{ok: false, message}`; anything else a bare 500."""

    @app.exception_handler(DomainError)
    def domain_error(error: DomainError) -> Response[str]:
        status = status_for(error)
        logger.info("request refused", extra={"status": status, "reason": error.message})
        retry = getattr(error, "retry_after", None)
        return json_response(error_body(error), status, {"Retry-After": str(retry)} if retry else None)

    @app.not_found
    def unknown_route(_: NotFoundError) -> Response[str]:
        return json_response(NOT_FOUND_BODY, 404)

    @app.exception_handler(Exception)
    def internal_error(_: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return json_response(INTERNAL_ERROR_BODY, 500)
