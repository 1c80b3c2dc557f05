"""OAuth 2.0 password grant (seed 001): `POST /oauth/token` with a form body -> a user's access token."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.sessions import OAuthError, PasswordGrant
from reportserver.http import audit
from reportserver.http.api import install_error_handlers, json_response
from reportserver.http.resolver import Resolver, Response
from reportserver.observability import logger, metrics
from reportserver.settings import LoginSettings
from reportserver.store.identity import DynamoIdentityStore

settings = LoginSettings.from_environ()
store = DynamoIdentityStore(settings.identity_table)
grant = PasswordGrant(
    users=store,
    sessions=store,
    attempts=store,
    hasher=PasswordHasher(n=settings.scrypt_cost),
    clock=lambda: datetime.now(UTC),
    lifetime_seconds=settings.access_token_seconds,
    guest_enabled=settings.guest_account == "on",
)
app = Resolver()
install_error_handlers(app)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1


@app.post("/oauth/token")
def token() -> Response[str]:
    event = app.current_event
    content_type = event.headers.get("content-type", "") or ""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send the grant as a form (application/x-www-form-urlencoded)")
    try:
        form = parse_qs(event.decoded_body or "", keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except ValueError:
        raise OAuthError("invalid_request", "The form body could not be read") from None
    named = form.get("username") or [""]
    audit.note(
        principal=f"login:{named[0][:128].lower()}"
    )  # as names are matched: in any letter case  # who tried, whatever the outcome; never the password
    answer = grant.token(form, event.request_context.identity.source_ip or "")
    metrics.add_metric(name="Logins", unit=MetricUnit.Count, value=1)
    return json_response(answer, 200, NO_STORE)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return audit.recorded(event, lambda: app.resolve(event, context))
