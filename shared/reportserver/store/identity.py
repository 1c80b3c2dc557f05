"""Users, user groups, access tokens and failed-login counts in DynamoDB (IdentityTable; see `store.keys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from reportserver.domain.embed import EmbedGrant
from reportserver.domain.errors import AlreadyExists
from reportserver.domain.identity import User, UserGroup, VersionConflict
from reportserver.domain.sessions import AccessSession
from reportserver.store import aws, keys
from reportserver.store.items import from_item, stamp, to_item
from reportserver.store.ttl_cache import TtlCache

_KEYS = ("pk", "sk", "ttl")
DECOY_USER_ID = 1  # the first user, read for an unknown name (if there is none, no user can be told apart)


class DynamoIdentityStore:
    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> Any:
        return aws.dynamodb().Table(self._table_name)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return item

    def _query(self, pk: str) -> list[dict[str, Any]]:
        found = aws.pages(
            self._table.query,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": pk},
            ConsistentRead=True,
        )
        return [item for page in found for item in page.get("Items", [])]

    def next_id(self, kind: Literal["user", "group"]) -> int:
        response = self._table.update_item(
            Key={"pk": keys.COUNTER, "sk": kind},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"])

    def _transact(self, items: list[dict[str, Any]], conflict: Exception) -> None:
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except Exception as error:
            if aws.error_code(error) == "TransactionCanceledException":
                raise conflict from None
            raise

    # Groups: the group's item, and its name's (lower-cased), so that two groups never share a name.

    def create_group(self, group: UserGroup) -> None:
        self._transact(
            [
                self._put(to_item(group, pk=keys.GROUP, sk=keys.numeric_sort_key(group.id)), new=True),
                self._put({"pk": keys.GROUP_NAME, "sk": group.name.lower(), "group_id": group.id}, new=True),
            ],
            AlreadyExists(f"A user group named '{group.name}' already exists"),
        )

    def group(self, group_id: int) -> UserGroup | None:
        item = self._get(keys.GROUP, keys.numeric_sort_key(group_id))
        return from_item(item, UserGroup, _KEYS) if item else None

    def groups(self) -> list[UserGroup]:
        return [from_item(i, UserGroup, _KEYS) for i in self._query(keys.GROUP)]

    def replace_group(self, group: UserGroup, previous: UserGroup) -> None:
        items = [self._put(to_item(group, pk=keys.GROUP, sk=keys.numeric_sort_key(group.id)), version=previous.version)]
        if group.name.lower() != previous.name.lower():
            items.append(self._put({"pk": keys.GROUP_NAME, "sk": group.name.lower(), "group_id": group.id}, new=True))
            items.append(self._delete(keys.GROUP_NAME, previous.name.lower()))
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except Exception as error:
            if aws.error_code(error) != "TransactionCanceledException":
                raise
            raise _conflict(self._version_of(keys.GROUP, group.id), previous.version, group.name) from None

    def delete_group(self, group: UserGroup) -> None:
        self._transact(
            [
                self._delete(keys.GROUP, keys.numeric_sort_key(group.id), version=group.version),
                self._delete(keys.GROUP_NAME, group.name.lower()),
            ],
            _stale(group.version),
        )

    # Users: the user's item, and its name's (lower-cased).

    def create_user(self, user: User) -> None:
        self._transact(
            [
                self._put(to_item(user, pk=keys.USER, sk=keys.numeric_sort_key(user.id)), new=True),
                self._put({"pk": keys.USER_NAME, "sk": user.user_name.lower(), "user_id": user.id}, new=True),
            ],
            AlreadyExists(f"A user named '{user.user_name}' already exists"),
        )

    def user(self, user_id: int) -> User | None:
        item = self._get(keys.USER, keys.numeric_sort_key(user_id))
        return from_item(item, User, _KEYS) if item else None

    def user_by_name(self, user_name: str) -> User | None:
        """Two reads whether or not the user exists (an unknown name reads a user that cannot be), so a
        login for an unknown user takes the time a wrong password does."""
        pointer = self._get(keys.USER_NAME, user_name.lower())
        if pointer is None:
            self.user(DECOY_USER_ID)  # read (and decoded) as a found user is: the same work, then nothing
            return None
        return self.user(int(pointer["user_id"]))

    def users(self) -> list[User]:
        return [from_item(i, User, _KEYS) for i in self._query(keys.USER)]

    def replace_user(self, user: User, previous_version: int) -> None:
        if not aws.written(
            self._table.put_item,
            Item=to_item(user, pk=keys.USER, sk=keys.numeric_sort_key(user.id)),
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": previous_version},
        ):
            raise _stale(previous_version)

    def delete_user(self, user: User) -> None:
        self._transact(
            [
                self._delete(keys.USER, keys.numeric_sort_key(user.id), version=user.version),
                self._delete(keys.USER_NAME, user.user_name.lower()),
            ],
            _stale(user.version),
        )

    # Access tokens (by their hash) and failed logins (by user name, and by user name and address)

    def put_session(self, session: AccessSession) -> None:
        item = to_item(session, pk=keys.SESSION + session.token_hash, sk=keys.SESSION, ttl=_epoch(session.expires_at))
        self._table.put_item(Item=item)

    def session(self, token_hash: str) -> AccessSession | None:
        item = self._get(keys.SESSION + token_hash, keys.SESSION)
        return from_item(item, AccessSession, _KEYS) if item else None

    def failures(self, key: str, now: datetime) -> tuple[int, datetime | None]:
        item = self._get(keys.LOGIN + key, keys.LOGIN)
        if item is None or int(item.get("ttl", 0)) <= int(now.timestamp()):
            return 0, None
        until = item.get("hold_until")
        return int(item.get("count", 0)), datetime.fromisoformat(until) if until else None

    def record_failure(self, key: str, now: datetime, hold_until: datetime | None, forget_at: datetime) -> int:
        update = "ADD #c :one SET #t = :ttl" + (", hold_until = :until" if hold_until else "")
        values: dict[str, Any] = {":one": 1, ":ttl": _epoch(forget_at)}
        if hold_until:
            values[":until"] = stamp(hold_until)
        response = self._table.update_item(
            Key={"pk": keys.LOGIN + key, "sk": keys.LOGIN},
            UpdateExpression=update,
            ExpressionAttributeNames={"#c": "count", "#t": "ttl"},
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["count"])

    def clear(self, key: str) -> None:
        self._table.delete_item(Key={"pk": keys.LOGIN + key, "sk": keys.LOGIN})

    def remember(self, key: str, forget_at: datetime) -> None:
        self._table.put_item(Item={"pk": keys.LOGIN + key, "sk": keys.LOGIN, "ttl": _epoch(forget_at)})

    def remembered(self, key: str, now: datetime) -> bool:
        item = self._get(keys.LOGIN + key, keys.LOGIN)
        return item is not None and int(item.get("ttl", 0)) > int(now.timestamp())

    # Embedding: nonces (taken once, by a conditional delete) and the view sessions they open

    def put_nonce(self, nonce_hash: str, grant: EmbedGrant) -> None:
        item = to_item(grant, pk=keys.NONCE + nonce_hash, sk=keys.NONCE, ttl=_epoch(grant.expires_at))
        self._table.put_item(Item=item)

    def take_nonce(self, nonce_hash: str) -> EmbedGrant | None:
        try:
            response = self._table.delete_item(
                Key={"pk": keys.NONCE + nonce_hash, "sk": keys.NONCE},
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except Exception as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                return None  # never issued, or taken already (by a request that raced this one)
            raise
        return from_item(response["Attributes"], EmbedGrant, _KEYS)

    def put_view(self, session_hash: str, grant: EmbedGrant) -> None:
        item = to_item(grant, pk=keys.VIEW + session_hash, sk=keys.VIEW, ttl=_epoch(grant.expires_at))
        self._table.put_item(Item=item)

    def view(self, session_hash: str) -> EmbedGrant | None:
        item = self._get(keys.VIEW + session_hash, keys.VIEW)
        return from_item(item, EmbedGrant, _KEYS) if item else None

    # Transaction parts

    def _put(self, item: dict[str, Any], *, new: bool = False, version: int | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table_name, "Item": item}
        if new:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        elif version is not None:
            put |= {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": version}}
        return {"Put": put}

    def _delete(self, pk: str, sk: str, *, version: int | None = None) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self._table_name, "Key": {"pk": pk, "sk": sk}}
        if version is not None:
            delete |= {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": version}}
        return {"Delete": delete}

    def _version_of(self, pk: str, number: int) -> int | None:
        item = self._get(pk, keys.numeric_sort_key(number))
        return int(item["version"]) if item else None


def _stale(version: int) -> VersionConflict:
    return VersionConflict(f"optimisticLock {version} is not the current version: read it again and retry")


def _conflict(stored: int | None, expected: int, name: str) -> Exception:
    """A cancelled group write: its version moved (409 as a stale one) or its new name is taken."""
    if stored != expected:
        return _stale(expected)
    return AlreadyExists(f"A user group named '{name}' already exists")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class CachedGroups:
    """The authorizer's view of the groups (a token's groups' permissions): read at most every few
    seconds per container; users and access tokens are always read now."""

    def __init__(self, inner: DynamoIdentityStore, ttl_seconds: float) -> None:
        self._inner = inner
        self._cache: TtlCache[list[UserGroup]] = TtlCache(ttl_seconds)

    def groups(self) -> list[UserGroup]:
        return self._cache.get_or_load("groups", self._inner.groups) or []

    def user(self, user_id: int) -> User | None:
        return self._inner.user(user_id)
