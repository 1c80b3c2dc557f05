"""Each token's API key in the API's usage plan (TokenUsagePlan), which gives it its own request rate
and burst: API Gateway counts a request against the key the authorizer names (usageIdentifierKey) and
answers 429 past the plan's limits, before the request's function runs (the authorizer has run by
then, or its decision was cached)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from datetime import datetime, timedelta
from typing import Any

from reportserver.domain.tokens import USAGE_KEY_PATTERN, ApiToken
from reportserver.store import aws

KEY_DESCRIPTION = "reportserver token"  # how each key this service makes starts its description


class UsagePlanKeys:
    def __init__(self, usage_plan_id: str) -> None:
        self._usage_plan_id = usage_plan_id

    def add(self, token: ApiToken) -> str:
        if not USAGE_KEY_PATTERN.fullmatch(token.usage_key):
            # API Gateway refuses it; moto would not: refused here, so the local stack fails as AWS does.
            raise ValueError("an API key's value is 20 to 128 letters and digits")
        client = aws.apigateway()
        key = client.create_api_key(
            name=token.name,
            description=f"{KEY_DESCRIPTION} {token.name} ({token.token_id}); made and deleted with the token",
            value=token.usage_key,
            enabled=True,
        )
        try:
            client.create_usage_plan_key(usagePlanId=self._usage_plan_id, keyId=key["id"], keyType="API_KEY")
        except BaseException:
            self.remove(key["id"])  # a key in no plan would be refused anyway: leave none behind
            raise
        return str(key["id"])

    def member_ids(self) -> set[str]:
        """The ids of the live keys in the plan."""
        client = aws.apigateway()
        members = {m["id"] for m in listing(client.get_usage_plan_keys, usagePlanId=self._usage_plan_id)}
        return members & {key["id"] for key in listing(client.get_api_keys)}

    def orphans(self, live_values: Set[str], now: datetime, grace: timedelta) -> list[str]:
        """The ids of the plan's keys that this service made (by their description), whose value is no
        token's, made more than `grace` ago (a token being issued has its key a moment before it is
        stored: a young key may still get its token). Keys of the plan made otherwise are left alone."""
        client = aws.apigateway()
        members = {m["id"] for m in listing(client.get_usage_plan_keys, usagePlanId=self._usage_plan_id)}
        return [
            key["id"]
            for key in listing(client.get_api_keys, includeValues=True)
            if key["id"] in members
            and str(key.get("description", "")).startswith(KEY_DESCRIPTION)
            and key.get("value") not in live_values
            and key["createdDate"] < now - grace
        ]

    def remove(self, key_id: str) -> None:
        if not key_id:
            return
        try:
            aws.apigateway().delete_api_key(apiKey=key_id)
        except Exception as error:
            if aws.error_code(error) != "NotFoundException":
                raise


def listing(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of an API Gateway listing, following `position`."""
    while True:
        page = call(limit=500, **request)
        yield from page.get("items", [])
        if not page.get("position"):
            return
        request["position"] = page["position"]
