"""Each token's API key in the API's usage plan (TokenUsagePlan), which gives it its own request rate
and burst: API Gateway counts a request against the key the authorizer names (usageIdentifierKey) and
answers 429 past the plan's limits, before any function runs."""

from __future__ import annotations

from reportserver.domain.tokens import ApiToken
from reportserver.store import aws


class UsagePlanKeys:
    def __init__(self, usage_plan_id: str) -> None:
        self._usage_plan_id = usage_plan_id

    def add(self, token: ApiToken) -> str:
        client = aws.apigateway()
        key = client.create_api_key(
            name=token.name,
            description=f"reportserver token {token.name} ({token.token_id}); made and deleted with the token",
            value=token.usage_key,
            enabled=True,
        )
        try:
            client.create_usage_plan_key(usagePlanId=self._usage_plan_id, keyId=key["id"], keyType="API_KEY")
        except BaseException:
            self.remove(key["id"])  # a key in no plan would be refused anyway: leave none behind
            raise
        return str(key["id"])

    def remove(self, key_id: str) -> None:
        if not key_id:
            return
        try:
            aws.apigateway().delete_api_key(apiKey=key_id)
        except Exception as error:
            if aws.error_code(error) != "NotFoundException":
                raise
