"""API tokens in DynamoDB (TokensTable; see `store.keys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reportserver.domain.errors import AlreadyExists
from reportserver.domain.token_admin import LAST_USE_PRECISION
from reportserver.domain.tokens import ApiToken, TokenStore
from reportserver.store import aws, keys
from reportserver.store.items import from_item, stamp, to_item
from reportserver.store.ttl_cache import TtlCache


class DynamoTokenStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
        item = self._table.get_item(Key={"name": name}, ConsistentRead=True).get("Item")
        return _token(item) if item else None

    def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None:
        response = self._table.query(
            IndexName=keys.SECRET_HASH_INDEX,
            KeyConditionExpression="secret_hash = :h",
            ExpressionAttributeValues={":h": secret_hash},
            Limit=2,
        )
        items = response.get("Items", [])
        return _token(items[0]) if len(items) == 1 else None

    def create(self, token: ApiToken) -> None:
        if not aws.written(
            self._table.put_item,
            Item=to_item(token),
            ConditionExpression="attribute_not_exists(#n)",
            ExpressionAttributeNames={"#n": "name"},
        ):
            raise AlreadyExists(f"A token named {token.name!r} already exists")

    def delete(self, name: str, secret_hash: str | None = None) -> bool:
        """Delete the token of this name; with `secret_hash`, only while it is still that token (every
        token has its own secret's hash, also those made before token ids), not one made again under the
        name meanwhile. False: there is no such token (any more)."""
        condition, values = "attribute_exists(#n)", {}
        if secret_hash is not None:
            condition, values = condition + " AND secret_hash = :h", {":h": secret_hash}
        return aws.written(
            self._table.delete_item,
            Key={"name": name},
            ConditionExpression=condition,
            ExpressionAttributeNames={"#n": "name"},
            **({"ExpressionAttributeValues": values} if values else {}),
        )

    def set_active(self, token: ApiToken, active: bool) -> bool:
        """Deactivate or activate a token, if it is still that token (its secret's hash). False: not."""
        return aws.written(
            self._table.update_item,
            Key={"name": token.name},
            UpdateExpression="SET active = :a",
            ConditionExpression="secret_hash = :h",
            ExpressionAttributeValues={":a": active, ":h": token.secret_hash},
        )

    def set_usage_key(self, token: ApiToken, usage_key: str, usage_key_id: str) -> bool:
        """Give a token a new API key, if it is still that token (its secret's hash) and still has the key
        it was read with (`token.usage_key`: none for a token made before rate limits)."""
        if token.usage_key:
            held, values = "usage_key = :old", {":old": token.usage_key}
        else:
            held, values = "(attribute_not_exists(usage_key) OR usage_key = :old)", {":old": ""}
        return aws.written(
            self._table.update_item,
            Key={"name": token.name},
            UpdateExpression="SET usage_key = :k, usage_key_id = :i",
            ConditionExpression=f"secret_hash = :h AND {held}",
            ExpressionAttributeValues={":k": usage_key, ":i": usage_key_id, ":h": token.secret_hash, **values},
        )

    def note_use(self, token: ApiToken, now: datetime) -> None:
        """Note when a token was last used, at most once an `LAST_USE_PRECISION` (a write an hour, not
        one a request); a lost race or a token deleted meanwhile is nothing to report."""
        aws.written(
            self._table.update_item,
            Key={"name": token.name},
            UpdateExpression="SET last_used_at = :now",
            ConditionExpression="secret_hash = :h AND (attribute_not_exists(last_used_at) OR last_used_at < :cutoff)",
            ExpressionAttributeValues={
                ":now": stamp(now),
                ":h": token.secret_hash,
                ":cutoff": stamp(now - LAST_USE_PRECISION),
            },
        )

    def list_tokens(self) -> list[ApiToken]:
        items = (item for page in aws.pages(self._table.scan) for item in page.get("Items", []))
        return sorted((_token(i) for i in items), key=lambda t: t.name)


class CachedTokenStore:
    """Keeps found tokens for a few seconds per container, so a warm authorizer skips DynamoDB.

    Expiry is still checked on every request (against the cached expiry); a deletion or deactivation
    takes effect within the TTL, as it already does within API Gateway's authorizer cache. Unknown
    names and hashes are never cached: a new token works at once, and guesses fill no memory.
    """

    def __init__(self, inner: TokenStore, ttl_seconds: float) -> None:
        self._inner = inner
        self._cache: TtlCache[ApiToken] = TtlCache(ttl_seconds, keep_misses=False)

    def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
        """`fresh`: read now, past the cache (the authorizer's check after an index hit)."""
        if fresh:
            self._cache.forget(("name", name))
        return self._cache.get_or_load(("name", name), lambda: self._inner.find_by_name(name))

    def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None:
        return self._cache.get_or_load(("hash", secret_hash), lambda: self._inner.find_by_secret_hash(secret_hash))

    def create(self, token: ApiToken) -> None:
        self._inner.create(token)

    def note_use(self, token: ApiToken, now: datetime) -> None:
        if isinstance(self._inner, DynamoTokenStore):
            self._inner.note_use(token, now)
        token.last_used_at = now  # the cached copy too: it is not noted again before the hour is out


def _token(item: dict[str, Any]) -> ApiToken:
    return from_item(item, ApiToken)
