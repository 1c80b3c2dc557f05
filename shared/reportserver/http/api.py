"""What every API function's resolver shares: JSON responses, the caller, and one error mapping."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from reportserver import records
from reportserver.domain.errors import DomainError
from reportserver.domain.tokens import Principal
from reportserver.http.errors import INTERNAL_ERROR_BODY, NOT_FOUND_BODY, error_body, status_for
from reportserver.observability import logger


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON response; `document` may be bytes already encoded (a report call's records)."""
    body = document if isinstance(document, bytes) else records.dumps(document)
    return Response(status_code=status, content_type="application/json", body=body.decode("utf-8"), headers=headers)


def caller(app: APIGatewayRestResolver) -> Principal:
    """The principal the authorizer put in the request context; it names every log line after it."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    principal = Principal.from_context(context)
    logger.append_keys(token_name=principal.token_name)
    return principal


def install_error_handlers(app: APIGatewayRestResolver) -> None:
    """Domain errors become their status and `{ok: false, message}`; anything else a bare 500."""

    @app.exception_handler(DomainError)
    def domain_error(error: DomainError) -> Response[str]:
        status = status_for(error)
        logger.info("request refused", extra={"status": status, "reason": error.message})
        return json_response(error_body(error), status)

    @app.not_found
    def unknown_route(_: NotFoundError) -> Response[str]:
        return json_response(NOT_FOUND_BODY, 404)

    @app.exception_handler(Exception)
    def internal_error(_: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return json_response(INTERNAL_ERROR_BODY, 500)
