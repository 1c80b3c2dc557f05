"""Who may do what: principals, permissions (seed 001's bitmask over scopes, seed 004's named ones) and
the one function that decides every request (`authorize`). Handlers ask it; none decides on its own.

A principal is an API token, a user (by an access token from the password grant) or a nonce session
(an embedded report view). Its permissions are the union of its own and its groups' (resolved when it
authenticates). The report rule that came first (a report's `groups`, `*` for all) is one of the ways
`authorize` lets a principal run a report, not a second check beside it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from reportserver.domain.errors import Forbidden, InvalidDefinition, Unauthenticated, shown

ALL_GROUPS = "*"
GUEST = "guest"  # seed 001's guest account: the user of this name, read-only


class AccessMode(enum.IntFlag):
    """Seed 001's access bitmask."""

    CREATE = 1 << 0
    READ = 1 << 1
    MODIFY = 1 << 2
    DELETE = 1 << 3


ALL_ACCESS = int(AccessMode.CREATE | AccessMode.READ | AccessMode.MODIFY | AccessMode.DELETE)


class Permission:
    """Seed 004's named permissions, and `admin` (everything, including users, groups and tokens)."""

    ADMIN = "admin"
    EXECUTE_SUBSCRIPTION = "execute_subscription"
    REFRESH_DATA = "refresh_data"
    ALL = frozenset({ADMIN, EXECUTE_SUBSCRIPTION, REFRESH_DATA})


class Scope:
    """Seed 001's scopes. Those that name one object take its id (`entityId`); the `all...` ones do not.
    Reports are seed 001's documents. Category, data model and scheduled job scopes are enforced on
    the objects they name."""

    ALL_CATEGORIES = "allCategories"
    CATEGORY = "category"
    ALL_DOCUMENTS = "allDocuments"
    DOCUMENTS_IN_CATEGORY = "documentsInCategory"
    DOCUMENT = "document"
    ALL_DATA_MODELS = "allDataModels"
    DATA_MODEL = "dataModel"
    ALL_SCHEDULED_JOBS = "allScheduledJobs"
    SCHEDULED_JOB = "scheduledJob"
    WITH_ENTITY = frozenset({CATEGORY, DOCUMENTS_IN_CATEGORY, DOCUMENT, DATA_MODEL, SCHEDULED_JOB})
    WITHOUT_ENTITY = frozenset({ALL_CATEGORIES, ALL_DOCUMENTS, ALL_DATA_MODELS, ALL_SCHEDULED_JOBS})
    OBJECT = WITH_ENTITY | WITHOUT_ENTITY
    # What an `all...` scope covers besides itself (a grant on every document covers one document).
    COVERS: dict[str, frozenset[str]] = {  # noqa: RUF012 - a constant
        ALL_DOCUMENTS: frozenset({DOCUMENT, DOCUMENTS_IN_CATEGORY}),
        ALL_CATEGORIES: frozenset({CATEGORY}),
        ALL_DATA_MODELS: frozenset({DATA_MODEL}),
        ALL_SCHEDULED_JOBS: frozenset({SCHEDULED_JOB}),
    }


EntityId = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]


class Grant(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One permission as seed 001's bodies carry it: `{"accessMode": 2, "scope": "document", "entityId": 7}`;
    a named permission is its name as the scope, without a mode: `{"scope": "admin"}`."""

    scope: str
    accessMode: int = 0  # noqa: N815 - seed 001's field name
    entityId: int | None = None  # noqa: N815

    def encoded(self) -> str:
        return f"{self.scope}:{self.accessMode}:{'' if self.entityId is None else self.entityId}"

    @classmethod
    def decoded(cls, text: str) -> Grant:
        scope, mode, entity = text.split(":")
        return cls(scope, int(mode), int(entity) if entity else None)


def named(permission: str) -> Grant:
    return Grant(scope=permission)


def checked_grants(grants: Iterable[Grant | str]) -> list[Grant]:
    """Grants as given (objects, or named permissions as plain strings), validated: a refusal names
    the bad one. Sorted and without repeats, so that stored sets compare equal."""
    result: set[Grant] = set()
    for given in grants:
        grant = named(given) if isinstance(given, str) else given
        scope = grant.scope
        if scope in Permission.ALL:
            if grant.accessMode or grant.entityId is not None:
                raise InvalidDefinition(f"The named permission {scope!r} takes no accessMode or entityId")
        elif scope in Scope.OBJECT:
            if not 1 <= grant.accessMode <= ALL_ACCESS:
                raise InvalidDefinition(
                    f"accessMode of {scope!r} must be 1 to {ALL_ACCESS} (create = 1, read = 2, modify = 4, delete = 8)"
                )
            if scope in Scope.WITH_ENTITY and grant.entityId is None:
                raise InvalidDefinition(f"The scope {scope!r} names one object: give its entityId")
            if scope in Scope.WITHOUT_ENTITY and grant.entityId is not None:
                raise InvalidDefinition(f"The scope {scope!r} covers every object: it takes no entityId")
            if grant.entityId is not None and not 1 <= grant.entityId <= 2**53 - 1:
                raise InvalidDefinition(f"entityId of {scope!r} must be a positive whole number")
        else:
            allowed = sorted(Scope.OBJECT) + sorted(Permission.ALL)
            raise InvalidDefinition(f"Unknown permission or scope '{shown(scope)}'; allowed: {allowed}")
        result.add(grant)
    return sorted(result, key=lambda g: (g.scope, g.entityId or 0, g.accessMode))


PrincipalKind = Literal["token", "user", "nonce"]


class Action(enum.Enum):
    """What a request asks for; `authorize` decides it for a principal."""

    RUN_REPORT = "run_report"  # call it, export it, read its definition or a field's choices
    CREATE_NONCE = "create_nonce"  # an embed token for a report (or for what the caller may read)
    MANAGE_OWN_TOKENS = "manage_own_tokens"  # create, list, delete or deactivate tokens it made
    ADMIN = "admin"  # users, groups, every token, the audit log
    EXECUTE_SUBSCRIPTION = "execute_subscription"
    REFRESH_DATA = "refresh_data"


@dataclass(frozen=True, slots=True)
class ReportTarget:
    """What `authorize` needs to know of a report."""

    id: int
    groups: tuple[str, ...]
    category: str = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the authorizer resolved it and hands it to every handler."""

    kind: PrincipalKind
    name: str  # the token's name, the user's name, or the nonce session's creator
    groups: tuple[str, ...]
    grants: tuple[Grant, ...]
    owner_id: str  # what the caller's tickets and tokens are owned by
    usage_key: str = ""  # for API Gateway (the authorizer's usageIdentifierKey), never in the context
    only_report: int | None = None  # a nonce narrowed to one report
    user_id: int | None = None
    expires_at: int | None = None  # a token's expiry (epoch seconds): what it makes cannot outlive it

    @property
    def label(self) -> str:
        """How messages and logs name it: `token 'x'`, `user 'x'`, `embed session of 'x'`."""
        return f"embed session of '{self.name}'" if self.kind == "nonce" else f"{self.kind} '{self.name}'"

    @property
    def is_admin(self) -> bool:
        return named(Permission.ADMIN) in self.grants

    def holds(self, permission: str) -> bool:
        return self.is_admin or named(permission) in self.grants

    def to_context(self) -> dict[str, str]:
        """Authorizer context values must be strings, numbers or booleans: lists are joined."""
        return {
            "kind": self.kind,
            "name": self.name,
            "owner_id": self.owner_id,
            "groups": ",".join(self.groups),
            "grants": ",".join(g.encoded() for g in self.grants),
            "only_report": "" if self.only_report is None else str(self.only_report),
            "user_id": "" if self.user_id is None else str(self.user_id),
            "expires_at": "" if self.expires_at is None else str(self.expires_at),
        }

    @classmethod
    def from_context(cls, context: dict[str, object]) -> Principal:
        kind, name, owner = context.get("kind"), context.get("name"), context.get("owner_id")
        if kind not in ("token", "user", "nonce") or not isinstance(name, str) or not name:
            raise Unauthenticated("Request did not pass through the authorizer")
        if not isinstance(owner, str) or not owner:
            raise Unauthenticated("Request did not pass through the authorizer")
        only, user, expires = context.get("only_report"), context.get("user_id"), context.get("expires_at")
        return cls(
            kind=kind,
            name=name,
            groups=_split(context.get("groups")),
            grants=tuple(Grant.decoded(g) for g in _split(context.get("grants"))),
            owner_id=owner,
            only_report=int(only) if isinstance(only, str) and only else None,
            user_id=int(user) if isinstance(user, str) and user else None,
            expires_at=int(expires) if isinstance(expires, str) and expires else None,
        )


def _split(value: object) -> tuple[str, ...]:
    if not isinstance(value, str) or not value:
        return ()
    return tuple(part for part in value.split(",") if part)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


def decide(principal: Principal, action: Action, report: ReportTarget | None = None) -> Decision:
    """The one decision: whether this principal may do this (to this report)."""
    if principal.kind == "nonce":
        return _decide_embed(principal, action, report)
    if principal.is_admin:
        return Decision(True)
    return _RULES[action](principal, action, report)


def _read_rule(principal: Principal, action: Action, report: ReportTarget | None) -> Decision:
    if report is None:  # a nonce for whatever the caller may read; it narrows nothing it lacks
        return Decision(action is Action.CREATE_NONCE)
    if _may_read(principal, report):
        return Decision(True)
    return Decision(False, f"The {principal.label} may not run this report (not in its groups, no read permission)")


def _named_rule(principal: Principal, action: Action, _: ReportTarget | None) -> Decision:
    if principal.holds(action.value):
        return Decision(True)
    return Decision(False, f"The {principal.label} lacks the {action.value!r} permission")


def _own_tokens_rule(principal: Principal, action: Action, _: ReportTarget | None) -> Decision:
    if principal.kind == "user" and principal.name == GUEST:
        return Decision(False, "The guest account is read-only: it makes no tokens")
    return Decision(True)


_RULES = {
    Action.RUN_REPORT: _read_rule,
    Action.CREATE_NONCE: _read_rule,
    # Tokens of its own (never more than it holds: `covers`); an admin manages every token.
    Action.MANAGE_OWN_TOKENS: _own_tokens_rule,
    Action.EXECUTE_SUBSCRIPTION: _named_rule,
    Action.REFRESH_DATA: _named_rule,
    Action.ADMIN: _named_rule,
}


def _decide_embed(principal: Principal, action: Action, report: ReportTarget | None) -> Decision:
    """An embed session views reports, and only that: never tokens, users or other admin work."""
    if action is not Action.RUN_REPORT or report is None:
        return Decision(False, "An embed session may only view reports")
    if principal.only_report is not None and principal.only_report != report.id:
        return Decision(False, "This embed session is for another report")
    if principal.is_admin or _may_read(principal, report):
        return Decision(True)
    return Decision(False, f"The {principal.label} may not run this report")


def _may_read(principal: Principal, report: ReportTarget) -> bool:
    if ALL_GROUPS in principal.groups or ALL_GROUPS in report.groups:
        return True
    if not set(principal.groups).isdisjoint(report.groups):
        return True
    for grant in principal.grants:
        if not grant.accessMode & AccessMode.READ:
            continue
        if grant.scope == Scope.ALL_DOCUMENTS or (grant.scope == Scope.DOCUMENT and grant.entityId == report.id):
            return True
    return False


def authorize(principal: Principal, action: Action, report: ReportTarget | None = None) -> None:
    """`decide`, raising `Forbidden` (403, its reason as the message) when the answer is no."""
    decision = decide(principal, action, report)
    if not decision.allowed:
        raise Forbidden(decision.reason)


def covers(
    holder: Principal,
    groups: Iterable[str],
    grants: Iterable[Grant],
    carried: Callable[[str], Sequence[Grant]] = lambda _: (),
) -> str | None:
    """Whether `holder` holds every group and grant it would hand on (to a token it makes); None if so,
    else the first one it lacks, named. Only `admin` hands on `admin`.

    A group hands on its reports and the permissions it carries (`carried`): a holder in the group has
    both; one with `*` (every report) may hand on a group it is not in only if it holds every
    permission that group carries, for `*` is reports, not membership."""
    if holder.is_admin:
        return None
    held_groups = set(holder.groups)
    for group in groups:
        if group in held_groups:
            continue
        if group == ALL_GROUPS or ALL_GROUPS not in held_groups:
            return f"group {group!r}"
        lacking = _first_uncovered(holder, carried(group))
        if lacking is not None:
            return f"group {group!r}, which carries {lacking}"
    return _first_uncovered(holder, grants)


def _first_uncovered(holder: Principal, grants: Iterable[Grant]) -> str | None:
    for grant in grants:
        if not any(_grant_covers(mine, grant) for mine in holder.grants):
            if grant.scope in Permission.ALL:
                return f"permission {grant.scope!r}"
            return f"{grant.scope} permission (accessMode {grant.accessMode})"
    return None


def _grant_covers(mine: Grant, wanted: Grant) -> bool:
    if wanted.scope in Permission.ALL:
        return mine == wanted
    if wanted.accessMode & ~mine.accessMode:
        return False
    if mine.scope == wanted.scope:
        return mine.entityId == wanted.entityId
    return wanted.scope in Scope.COVERS.get(mine.scope, frozenset())


# Seed 001's object scopes: what a grant on every object of a kind, or on one, lets a principal do.
_OBJECT_SCOPES = {
    "dataModel": (Scope.ALL_DATA_MODELS, Scope.DATA_MODEL),
    "category": (Scope.ALL_CATEGORIES, Scope.CATEGORY),
    "document": (Scope.ALL_DOCUMENTS, Scope.DOCUMENT),
    "scheduledJob": (Scope.ALL_SCHEDULED_JOBS, Scope.SCHEDULED_JOB),
}
_MODE_WORDS = {
    AccessMode.CREATE: "create",
    AccessMode.READ: "read",
    AccessMode.MODIFY: "modify",
    AccessMode.DELETE: "delete",
}


def may_manage(
    principal: Principal,
    kind: Literal["dataModel", "category", "document", "scheduledJob"],
    mode: AccessMode,
    entity_id: int | None = None,
    category_id: int | None = None,
) -> bool:
    """Whether the principal may do `mode` to every object of `kind` or to the one `entity_id`: an admin
    may; an embed session may not; otherwise a grant with the mode's bit on the `all...` scope, on the
    object's own scope and id, or (a document) on `documentsInCategory` of its category."""
    if principal.kind == "nonce":
        return False
    if principal.is_admin:
        return True
    every, one = _OBJECT_SCOPES[kind]
    for grant in principal.grants:
        if not grant.accessMode & mode:
            continue
        if grant.scope == every:
            return True
        if entity_id is not None and grant.scope == one and grant.entityId == entity_id:
            return True
        if (
            kind == "document"
            and category_id is not None
            and grant.scope == Scope.DOCUMENTS_IN_CATEGORY
            and grant.entityId == category_id
        ):
            return True
    return False


def authorize_managing(
    principal: Principal,
    kind: Literal["dataModel", "category", "document", "scheduledJob"],
    mode: AccessMode,
    entity_id: int | None = None,
    category_id: int | None = None,
) -> None:
    """`may_manage`, raising `Forbidden` naming the permission it lacks."""
    if may_manage(principal, kind, mode, entity_id, category_id):
        return
    every, one = _OBJECT_SCOPES[kind]
    what = f"{one} {entity_id}" if entity_id is not None else f"every {one}"
    raise Forbidden(
        f"The {principal.label} may not {_MODE_WORDS[mode]} {what} (it needs accessMode {int(mode)} on {every!r}"
        + (f" or on {one!r} {entity_id})" if entity_id is not None else ")")
    )
