"""Lambda REQUEST authorizer: an API token (Basic or Bearer) or a user's access token (Bearer) in, an IAM
policy and the principal out."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.errors import Unauthenticated
from reportserver.domain.principals import Authenticator
from reportserver.http.authorizer import admission, denial
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
        logger.info("credentials rejected", extra={"reason": rejected.message})
        return denial(event.method_arn, rejected.message)
    logger.append_keys(principal=principal.label)
    return admission(
        event.method_arn, f"{principal.kind}:{principal.name}", principal.to_context(), principal.usage_key
    )
