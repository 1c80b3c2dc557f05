"""Each token's API key in the API's usage plan (TokenUsagePlan), which gives it its own request rate
and burst: API Gateway counts a request against the key the authorizer names (usageIdentifierKey) and
answers 429 past the plan's limits, before the request's function runs (the authorizer has run by
then, or its decision was cached)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from datetime import datetime, timedelta
from typing import Any

from reportserver.domain.tokens import USAGE_KEY_PATTERN
from reportserver.store import aws

KEY_DESCRIPTION = "reportserver token"  # how each key this service makes starts its description


class UsagePlanKeys:
    """A usage plan's keys; the plan named by its id, or by its name (found once, on first use)."""

    def __init__(self, usage_plan_id: str = "", usage_plan_name: str = "") -> None:
        self._id = usage_plan_id
        self._name = usage_plan_name

    @property
    def _usage_plan_id(self) -> str:
        if not self._id and not self._name:
            raise ValueError("name the usage plan by its id or its name")
        if not self._id:
            found = [p["id"] for p in listing(aws.apigateway().get_usage_plans) if p.get("name") == self._name]
            if len(found) != 1:
                raise RuntimeError(f"{len(found)} usage plans are named {self._name!r}; expected one")
            self._id = str(found[0])
        return self._id

    def add(self, name: str, owner_id: str, value: str) -> str:
        if not USAGE_KEY_PATTERN.fullmatch(value):
            # API Gateway refuses it; moto would not: refused here, so the local stack fails as AWS does.
            raise ValueError("an API key's value is 20 to 128 letters and digits")
        client = aws.apigateway()
        key = client.create_api_key(
            name=name,
            description=f"{KEY_DESCRIPTION} {name} ({owner_id}); made and deleted with it",
            value=value,
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


class AuthorizerCache:
    """API Gateway's cache of the authorizer's decisions, for one stage."""

    def flush(self, api_id: str, stage: str) -> None:
        """Forget every cached decision: the next request of each caller is authorized anew."""
        aws.apigateway().flush_stage_authorizers_cache(restApiId=api_id, stageName=stage)


def listing(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of an API Gateway listing, following `position`."""
    while True:
        page = call(limit=500, **request)
        yield from page.get("items", [])
        if not page.get("position"):
            return
        request["position"] = page["position"]
