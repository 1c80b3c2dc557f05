"""What both REQUEST authorizers answer API Gateway: a Deny carrying the reason (the template's
ACCESS_DENIED response shows it as a 401), or an Allow for every route with the principal's context."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse


def denial(method_arn: str, reason: str) -> dict[str, Any]:
    answer = APIGatewayAuthorizerResponse.from_route_arn(
        method_arn, principal_id="anonymous", context={"message": reason}
    )
    answer.deny_all_routes()
    return answer.asdict()


def admission(method_arn: str, principal_id: str, context: dict[str, str], usage_key: str) -> dict[str, Any]:
    """Every route allowed: API Gateway caches the policy per identity for all of the API's paths. The
    usage key names the caller's API key in the usage plan, which counts its requests (rate, burst)."""
    answer = APIGatewayAuthorizerResponse.from_route_arn(
        method_arn, principal_id=principal_id, context=context, usage_identifier_key=usage_key or None
    )
    answer.allow_all_routes()
    return answer.asdict()
