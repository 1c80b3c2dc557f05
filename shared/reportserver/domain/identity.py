"""Users and user groups (seed 001's bodies), and what only an admin may change of them.

Every change carries the object's version (`optimisticLock`); the store writes it only while the
stored version is that one, so of two updates made from the same read exactly one lands and the
other is a 409 that changes nothing. Users belong to groups by id; tokens and reports name groups by
name, so a group's name cannot change or go while a token or report names it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import msgspec

from reportserver.domain.access import GUEST, Action, Grant, Principal, authorize, checked_grants
from reportserver.domain.backoff import LoginAttempts, count_failure, refuse_if_held
from reportserver.domain.errors import (
    AlreadyExists,
    Forbidden,
    InvalidDefinition,
    NotFound,
    Unauthenticated,
    VersionConflict,
)
from reportserver.domain.passwords import PasswordHasher
from reportserver.domain.tokens import GROUP_PATTERN, USAGE_KEY_PREFIX, UsageKeys

USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
ACCOUNT_TYPES = ("reportServer", "windows", "external")
MAX_NAME = 128
MAX_GROUPS = 100


class UserGroup(msgspec.Struct, kw_only=True):
    id: int
    name: str
    permissions: list[Grant] = msgspec.field(default_factory=list)
    version: int = 1
    created_at: datetime
    updated_at: datetime

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "optimisticLock": self.version}


class User(msgspec.Struct, kw_only=True):
    id: int
    user_name: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    groups_id: list[int] = msgspec.field(default_factory=list)
    account_type: str = "reportServer"
    active: bool = True
    permissions: list[Grant] = msgspec.field(default_factory=list)
    password_hash: str = ""  # never shown, never logged
    # Raised by a password change or a deactivation: access tokens issued before it stop working.
    credential_epoch: int = 0
    version: int = 1
    usage_key: str = ""
    usage_key_id: str = ""
    created_at: datetime
    updated_at: datetime
    created_by: str = ""

    @property
    def owner_id(self) -> str:
        return f"user-{self.id}"

    def view(self) -> dict[str, Any]:
        """Seed 001's user, never its password."""
        return {
            "id": self.id,
            "userName": self.user_name,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "groupsId": self.groups_id,
            "accountType": self.account_type,
            "active": self.active,
            "optimisticLock": self.version,
        }


class UserDirectory(Protocol):
    """What authentication reads: a user (always now) and the groups (perhaps cached)."""

    def user(self, user_id: int) -> User | None: ...

    def groups(self) -> list[UserGroup]: ...


class IdentityStore(Protocol):
    def next_id(self, kind: Literal["user", "group"]) -> int: ...

    def create_group(self, group: UserGroup) -> None:
        """Store a new group; `AlreadyExists` if its name is taken (in any letter case)."""
        ...

    def group(self, group_id: int) -> UserGroup | None: ...

    def groups(self) -> list[UserGroup]: ...

    def replace_group(self, group: UserGroup, previous: UserGroup) -> None:
        """Write `group` while `previous` (its version, its name) is what is stored; `VersionConflict`
        if not, `AlreadyExists` if a new name is taken."""
        ...

    def delete_group(self, group: UserGroup) -> None:
        """Delete it while it is at `group.version`; `VersionConflict` if not."""
        ...

    def create_user(self, user: User) -> None: ...

    def user(self, user_id: int) -> User | None: ...

    def user_by_name(self, user_name: str) -> User | None: ...

    def users(self) -> list[User]: ...

    def replace_user(self, user: User, previous_version: int) -> None:
        """`VersionConflict` if the stored version is not `previous_version`."""
        ...

    def delete_user(self, user: User) -> None:
        """Delete it while it is at `user.version`; `VersionConflict` if not."""
        ...


class GroupCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    permissions: list[Grant | str] = msgspec.field(default_factory=list)


class GroupChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815 - seed 001's names
    name: str


class VersionOnly(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815


class PermissionsChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815
    permissions: list[Grant | str]


Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]


class UserCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    userName: str  # noqa: N815
    password: str = ""  # required but for the guest account (blank)
    firstName: Name = ""  # noqa: N815
    lastName: Name = ""  # noqa: N815
    email: Annotated[str, msgspec.Meta(max_length=320)] = ""
    groupsId: list[int] = msgspec.field(default_factory=list)  # noqa: N815
    accountType: Literal["reportServer", "windows", "external"] = "reportServer"  # noqa: N815
    active: bool = True
    permissions: list[Grant | str] = msgspec.field(default_factory=list)


class UserChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    optimisticLock: int  # noqa: N815
    firstName: Name | None = None  # noqa: N815
    lastName: Name | None = None  # noqa: N815
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    groupsId: list[int] | None = None  # noqa: N815
    accountType: Literal["reportServer", "windows", "external"] | None = None  # noqa: N815
    active: bool | None = None


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    password: str
    currentPassword: str | None = None  # noqa: N815 - a user changing its own


# Whether a group name is named by a token or a report: what names it, or None.
GroupUse = Callable[[str], str | None]


@dataclass(frozen=True)
class IdentityAdmin:
    """The users and groups endpoints' decisions; each asks `authorize` first."""

    store: IdentityStore
    usage: UsageKeys
    hasher: PasswordHasher
    clock: Callable[[], datetime]
    group_use: GroupUse = lambda _: None
    # Deactivates the tokens a user made (its personal access tokens), when it is deactivated or deleted.
    revoke_tokens: Callable[[str], int] = lambda _: 0
    # Called once rights were taken away: the API's cached authorizer decisions are flushed.
    revoked: Callable[[], None] = lambda: None
    # A user's wrong current passwords, held back as wrong logins are (a stolen session cannot guess it).
    attempts: LoginAttempts | None = None

    # Groups

    def create_group(self, principal: Principal, body: GroupCreate) -> UserGroup:
        authorize(principal, Action.ADMIN)
        name = _group_name(body.name)
        now = self.clock()
        group = UserGroup(
            id=self.store.next_id("group"),
            name=name,
            permissions=checked_grants(body.permissions),
            created_at=now,
            updated_at=now,
        )
        self.store.create_group(group)
        return group

    def list_groups(self, principal: Principal) -> list[UserGroup]:
        authorize(principal, Action.ADMIN)
        return sorted(self.store.groups(), key=lambda g: g.id)

    def group(self, principal: Principal, group_id: str) -> UserGroup:
        authorize(principal, Action.ADMIN)
        return self._group(group_id)

    def rename_group(self, principal: Principal, group_id: str, body: GroupChange) -> UserGroup:
        authorize(principal, Action.ADMIN)
        group = self._at_version(self._group(group_id), body.optimisticLock)
        name = _group_name(body.name)
        if name != group.name:
            user = self.group_use(group.name)
            if user is not None:
                raise AlreadyExists(f"Group '{group.name}' is named by {user}: its name cannot change")
        changed = msgspec.structs.replace(group, name=name, version=group.version + 1, updated_at=self.clock())
        self.store.replace_group(changed, group)
        return changed

    def delete_group(self, principal: Principal, group_id: str, body: VersionOnly | None) -> None:
        authorize(principal, Action.ADMIN)
        group = self._group(group_id)
        if body is not None:
            self._at_version(group, body.optimisticLock)
        members = [u.user_name for u in self.store.users() if group.id in u.groups_id]
        if members:
            raise AlreadyExists(f"Group '{group.name}' has members ({', '.join(members[:5])}): remove them first")
        user = self.group_use(group.name)
        if user is not None:
            raise AlreadyExists(f"Group '{group.name}' is named by {user}: it cannot be deleted")
        self.store.delete_group(group)

    def group_permissions(
        self, principal: Principal, group_id: str, body: PermissionsChange | None, remove: bool = False
    ) -> UserGroup:
        """Read (no body), add to, or remove from (`remove`) a group's permissions."""
        authorize(principal, Action.ADMIN)
        group = self._group(group_id)
        if body is None:
            return group
        self._at_version(group, body.optimisticLock)
        permissions = _changed(group.permissions, checked_grants(body.permissions), remove)
        changed = msgspec.structs.replace(
            group, permissions=permissions, version=group.version + 1, updated_at=self.clock()
        )
        self.store.replace_group(changed, group)
        self.revoked()
        return changed

    # Users

    def create_user(self, principal: Principal, body: UserCreate) -> User:
        authorize(principal, Action.ADMIN)
        if not USER_NAME_PATTERN.fullmatch(body.userName):
            raise InvalidDefinition(
                "userName must be 1-128 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit"
            )
        guest = body.userName.lower() == GUEST
        if guest and (body.userName != GUEST or body.password or body.permissions):
            raise InvalidDefinition(
                f"The guest account is the user {GUEST!r} with a blank password and no permissions (only groups)"
            )
        _check_email(body.email)
        self._check_groups(body.groupsId)
        now = self.clock()
        user_id = self.store.next_id("user")
        user = User(
            id=user_id,
            user_name=body.userName,
            first_name=body.firstName,
            last_name=body.lastName,
            email=body.email,
            groups_id=sorted(set(body.groupsId)),
            account_type=body.accountType,
            active=body.active,
            permissions=checked_grants(body.permissions),
            password_hash="" if guest else self.hasher.hash(body.password),
            usage_key=f"{USAGE_KEY_PREFIX}user{user_id}x{secrets.token_hex(8)}",
            created_at=now,
            updated_at=now,
            created_by=principal.label,
        )
        if self.store.user_by_name(user.user_name) is not None:
            raise AlreadyExists(f"A user named '{user.user_name}' already exists")
        user.usage_key_id = self.usage.add(f"user-{user.user_name}", user.owner_id, user.usage_key)
        try:
            self.store.create_user(user)
        except Exception:
            self.usage.remove(user.usage_key_id)
            raise
        return user

    def list_users(self, principal: Principal) -> list[User]:
        authorize(principal, Action.ADMIN)
        return sorted(self.store.users(), key=lambda u: u.id)

    def user(self, principal: Principal, user_id: str) -> User:
        """An admin reads any user; a user reads itself (asked before the read: whether another exists
        is not told)."""
        self._admin_unless_self(principal, user_id)
        return self._user(user_id)

    @staticmethod
    def _admin_unless_self(principal: Principal, user_id: str) -> None:
        if principal.user_id is None or str(principal.user_id) != user_id:
            authorize(principal, Action.ADMIN)

    def change_user(self, principal: Principal, user_id: str, body: UserChange) -> User:
        authorize(principal, Action.ADMIN)
        user = self._at_version(self._user(user_id), body.optimisticLock)
        if body.email is not None:
            _check_email(body.email)
        if body.groupsId is not None:
            self._check_groups(body.groupsId)
        changes: dict[str, Any] = {
            "first_name": body.firstName,
            "last_name": body.lastName,
            "email": body.email,
            "groups_id": None if body.groupsId is None else sorted(set(body.groupsId)),
            "account_type": body.accountType,
            "active": body.active,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if body.active is False and user.active:
            changes["credential_epoch"] = user.credential_epoch + 1  # its access tokens stop now
        changed = msgspec.structs.replace(user, **changes, version=user.version + 1, updated_at=self.clock())
        self.store.replace_user(changed, user.version)
        if not changed.active or changed.groups_id != user.groups_id:
            # What it made was bounded by what it held: with fewer rights (or none), those tokens go.
            self.revoke_tokens(user.owner_id)
        self.revoked()  # its groups may be fewer, or it inactive
        return changed

    def delete_user(self, principal: Principal, user_id: str) -> None:
        authorize(principal, Action.ADMIN)
        user = self._user(user_id)
        if principal.user_id == user.id:
            raise Forbidden("A user cannot delete itself")
        self.store.delete_user(user)
        self.revoke_tokens(user.owner_id)
        self.revoked()
        self.usage.remove(user.usage_key_id)

    def user_permissions(
        self, principal: Principal, user_id: str, body: PermissionsChange | None, remove: bool = False
    ) -> User:
        if body is None:
            return self.user(principal, user_id)
        authorize(principal, Action.ADMIN)  # so a user cannot raise its own
        user = self._at_version(self._user(user_id), body.optimisticLock)
        if user.user_name == GUEST and not remove:
            raise InvalidDefinition("The guest account is read-only: it has groups, never permissions")
        permissions = _changed(user.permissions, checked_grants(body.permissions), remove)
        changed = msgspec.structs.replace(
            user, permissions=permissions, version=user.version + 1, updated_at=self.clock()
        )
        self.store.replace_user(changed, user.version)
        if remove:
            self.revoke_tokens(user.owner_id)  # made with rights it no longer holds
        self.revoked()
        return changed

    def change_password(self, principal: Principal, user_id: str, body: PasswordChange) -> User:
        """An admin sets anyone's; a user its own, giving its current one. Access tokens issued before
        stop working."""
        self._admin_unless_self(principal, user_id)
        user = self._user(user_id)
        if user.user_name == GUEST:
            raise InvalidDefinition("The guest account's password is blank and stays so")
        if principal.user_id == user.id and not principal.is_admin:
            self._check_current(user, body.currentPassword)
        changed = msgspec.structs.replace(
            user,
            password_hash=self.hasher.hash(body.password),
            credential_epoch=user.credential_epoch + 1,
            version=user.version + 1,
            updated_at=self.clock(),
        )
        self.store.replace_user(changed, user.version)
        # A new password ends every way in the old one opened: its access tokens (their epoch) and the
        # tokens made with them (a stolen session's personal tokens, say).
        self.revoke_tokens(user.owner_id)
        self.revoked()
        return changed

    # Shared checks

    def _check_current(self, user: User, given: str | None) -> None:
        key, now = f"password:{user.id}", self.clock()
        if self.attempts is not None:
            refuse_if_held(self.attempts, key, now, "current passwords")
        if given is None or not self.hasher.verify(user.password_hash, given):
            if self.attempts is not None:
                count_failure(self.attempts, key, now, free=3, cap=900)
            raise Forbidden("Give your current password (currentPassword) to change it")
        if self.attempts is not None:
            self.attempts.clear(key)

    def _group(self, group_id: str) -> UserGroup:
        found = self.store.group(int(group_id)) if _is_id(group_id) else None
        if found is None:
            raise NotFound(f"Unknown user group '{group_id[:32]}'")
        return found

    def _user(self, user_id: str) -> User:
        found = self.store.user(int(user_id)) if _is_id(user_id) else None
        if found is None:
            raise NotFound(f"Unknown user '{user_id[:32]}'")
        return found

    def _check_groups(self, group_ids: list[int]) -> None:
        if len(group_ids) > MAX_GROUPS:
            raise InvalidDefinition(f"A user belongs to at most {MAX_GROUPS} groups")
        known = {g.id for g in self.store.groups()}
        unknown = sorted(set(group_ids) - known)
        if unknown:
            raise InvalidDefinition(f"Unknown user groups {unknown}")

    @staticmethod
    def _at_version(item: Any, version: int) -> Any:
        if item.version != version:
            raise VersionConflict(
                f"optimisticLock {version} is not the current version ({item.version}): read it again and retry"
            )
        return item


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 15


def _group_name(name: str) -> str:
    if not GROUP_PATTERN.fullmatch(name) or name == "*":
        raise InvalidDefinition(
            "A group's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _check_email(email: str) -> None:
    if email and not EMAIL_PATTERN.fullmatch(email):
        raise InvalidDefinition("email must be an address (name@domain)")


def _changed(current: list[Grant], given: list[Grant], remove: bool) -> list[Grant]:
    if remove:
        return [g for g in current if g not in given]
    return checked_grants([*current, *given])


def user_principal(user: User, groups: list[UserGroup]) -> Principal:
    """The principal a user acts as: its groups (by name) and its and their permissions."""
    if not user.active:
        raise Unauthenticated("User deactivated")
    member_of = [g for g in groups if g.id in user.groups_id]
    grants = checked_grants([*user.permissions, *(p for g in member_of for p in g.permissions)])
    if user.user_name == GUEST:
        grants = []  # read-only whatever its groups hold: it runs their reports, nothing more
    return Principal(
        kind="user",
        name=user.user_name,
        groups=tuple(sorted(g.name for g in member_of)),
        grants=tuple(grants),
        owner_id=user.owner_id,
        usage_key=user.usage_key,
        user_id=user.id,
    )
