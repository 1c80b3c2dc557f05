"""Lambda REQUEST authorizer: an API token (Basic or Bearer) or a user's access token (Bearer) in, an IAM
policy and the principal out."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.errors import Unauthenticated
from reportserver.domain.principals import Authenticator
from reportserver.observability import logger
from reportserver.settings import AuthSettings
from reportserver.store.identity import CachedGroups, DynamoIdentityStore
from reportserver.store.tokens import CachedTokenStore, DynamoTokenStore

settings = AuthSettings.from_environ()
tokens = CachedTokenStore(DynamoTokenStore(settings.tokens_table), settings.token_cache_seconds)
identity = DynamoIdentityStore(settings.identity_table)
authenticator = Authenticator(
    tokens=tokens,
    identity=CachedGroups(identity, settings.group_cache_seconds),
    sessions=identity,
    guest_enabled=settings.guest_account == "on",
    note_use=tokens.note_use,
)


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    header = event.headers.get("authorization")  # case-insensitive in Powertools v3
    try:
        principal = authenticator.principal(header, datetime.now(UTC))
    except Unauthenticated as rejected:
        # A Deny carries the reason; the template's ACCESS_DENIED gateway response shows it as a 401.
        logger.info("credentials rejected", extra={"reason": rejected.message})
        denial = APIGatewayAuthorizerResponse.from_route_arn(
            event.method_arn, principal_id="anonymous", context={"message": rejected.message}
        )
        denial.deny_all_routes()
        return denial.asdict()
    logger.append_keys(principal=principal.label)
    grant = APIGatewayAuthorizerResponse.from_route_arn(
        event.method_arn,
        principal_id=f"{principal.kind}:{principal.name}",
        context=principal.to_context(),
        # The caller's own API key in the usage plan: API Gateway counts its requests there (rate, burst).
        usage_identifier_key=principal.usage_key or None,
    )
    # Allow every route: API Gateway caches this policy per Authorization header for all of the API's paths.
    grant.allow_all_routes()
    return grant.asdict()
