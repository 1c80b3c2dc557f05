"""REQUEST authorizer of the embedded report view: a nonce (`?nonce=`, used once) or the embed session's
cookie in, the nonce creator's rights (narrowed) out. Its cache is off (see README): a nonce is single-use,
and a cached decision would let its URL in again unseen."""

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from reportserver.domain.access import Principal
from reportserver.domain.embed import ViewSessions, cookie_value
from reportserver.domain.errors import Unauthenticated
from reportserver.http.authorizer import admission, denial
from reportserver.observability import logger
from reportserver.settings import ViewAuthSettings
from reportserver.store.identity import DynamoIdentityStore
from reportserver.store.tokens import DynamoTokenStore

settings = ViewAuthSettings.from_environ()
identity = DynamoIdentityStore(settings.identity_table)
tokens = DynamoTokenStore(settings.tokens_table)


def _maker_stands(maker: Principal) -> bool:
    """The nonce's maker, read now: a token still itself, active and unexpired; a user active."""
    if maker.user_id is not None:
        user = identity.user(maker.user_id)
        return user is not None and user.active
    token = tokens.find_by_name(maker.name)
    return (
        token is not None and token.owner_id == maker.owner_id and token.active and token.expires_at > datetime.now(UTC)
    )


sessions = ViewSessions(identity, lambda: datetime.now(UTC), settings.embed_session_seconds, _maker_stands)


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    query = event.query_string_parameters or {}
    try:
        grant, new_session = sessions.open(query.get("nonce"), cookie_value(event.headers.get("cookie")))
        principal = grant.principal()
    except Unauthenticated as rejected:
        logger.info("embed view refused", extra={"reason": rejected.message})
        return denial(event.method_arn, rejected.message)
    logger.append_keys(principal=principal.label)
    view = {
        "locked": json.dumps(grant.locked),
        # A session opened by this request's nonce: the view sets its cookie (never logged, never cached).
        "view_session": new_session or "",
        "session_seconds": str(settings.embed_session_seconds),  # the cookie's Max-Age, as the session's
    }
    return admission(event.method_arn, f"nonce:{principal.name}", principal.to_context() | view, principal.usage_key)
