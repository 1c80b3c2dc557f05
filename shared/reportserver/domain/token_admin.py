"""Tokens over the API (seeds 000 and 004) and on the command line: create, list, read, delete,
deactivate and activate. Tokens are never edited otherwise: delete and re-create (seed 000).

An admin manages every token. Any other principal but an embed session may make tokens of its own
(personal access tokens, seed 003), never with more than it holds (`access.covers`), and sees and
manages only those: another's token is not found (404), as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import msgspec

from reportserver.domain.access import Action, Grant, Principal, authorize
from reportserver.domain.errors import AlreadyExists, Forbidden, InvalidDefinition, NotFound, shown
from reportserver.domain.identity import UserGroup
from reportserver.domain.tokens import (
    TOKEN_NAME_PATTERN,
    ApiToken,
    TokenStore,
    UsageKeys,
    basic_header,
    issue_token,
    token_expiry,
)

LAST_USE_PRECISION = timedelta(hours=1)  # the authorizer notes a token's use at most this often
MAX_OWN_TOKENS = 50  # tokens a non-admin may have made (each is an API key, of which an account has a quota)


class TokenAdminStore(TokenStore, Protocol):
    def list_tokens(self) -> list[ApiToken]: ...

    def delete(self, name: str, secret_hash: str | None = None) -> bool: ...

    def set_active(self, token: ApiToken, active: bool) -> bool: ...


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /api/tokens/`: `expiry` is 30, 60 or 90 (days) or a date `YYYY-MM-DD` within a year."""

    name: str
    expiry: int | str = 90
    groups: list[str] = msgspec.field(default_factory=lambda: ["*"])
    permissions: list[Grant | str] = msgspec.field(default_factory=list)
    description: str = ""


def expiry_of(given: int | str, now: datetime) -> datetime:
    if isinstance(given, int):
        return token_expiry(now, days=given)
    try:
        on = date.fromisoformat(given) if len(given) == 10 else None
    except ValueError:
        on = None
    if on is None:
        raise InvalidDefinition("expiry must be 30, 60 or 90 (days) or a date as YYYY-MM-DD")
    return token_expiry(now, on=on)


def _seed_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def token_view(token: ApiToken, now: datetime) -> dict[str, Any]:
    """Seed 000's token list entry (its field names and formats), with permissions, description, and
    when it was last used (to the hour; null: not since this was recorded)."""
    return {
        "name": token.name,
        "active": "Y" if token.active else "N",
        "age_days": (now - token.created_at).days,
        "created": _seed_time(token.created_at),
        "created_by": token.created_by,
        "expiry": _seed_time(token.expires_at),
        "groups": ",".join(token.groups),
        "permissions": [*token.permissions, *(msgspec.to_builtins(g) for g in token.grants)],
        "description": token.description,
        "last_used": _seed_time(token.last_used_at) if token.last_used_at else None,
    }


def delete_token(store: TokenAdminStore, usage: UsageKeys, token: ApiToken) -> None:
    """Delete this very token (if the name was made again meanwhile, the new one stays), then its key."""
    if not store.delete(token.name, token.secret_hash):
        raise AlreadyExists(f"Token '{token.name}' changed while it was being deleted; nothing deleted")
    usage.remove(token.usage_key_id)  # after the token: a failure here leaves a key no token names


def set_token_active(store: TokenAdminStore, token: ApiToken, active: bool) -> None:
    if not store.set_active(token, active):
        raise AlreadyExists(f"Token '{token.name}' changed meanwhile; nothing changed")


@dataclass(frozen=True)
class TokenAdmin:
    store: TokenAdminStore
    usage: UsageKeys
    clock: Callable[[], datetime]
    groups: Callable[[], Sequence[UserGroup]]
    # Called once rights were taken away: the API's cached authorizer decisions are flushed.
    revoked: Callable[[], None] = lambda: None

    def create(self, principal: Principal, body: TokenRequest) -> dict[str, Any]:
        authorize(principal, Action.MANAGE_OWN_TOKENS)
        if not principal.is_admin:
            made = sum(1 for t in self.store.list_tokens() if t.creator_id == principal.owner_id)
            if made >= MAX_OWN_TOKENS:
                raise Forbidden(f"The {principal.label} has made {made} tokens, as many as it may: delete one first")
        groups = {g.name: g for g in self.groups()}
        now = self.clock()
        token, secret = issue_token(
            self.store,
            self.usage,
            name=body.name,
            groups=body.groups,
            permissions=body.permissions,
            expires_at=expiry_of(body.expiry, now),
            created_by=principal.label,
            creator_id=principal.owner_id,
            now=now,
            description=body.description,
            creator=principal,
            known_group=lambda name: name in groups,
            carried=lambda name: groups[name].permissions if name in groups else [],
        )
        return {
            "ok": True,
            "message": "The secret is shown this once: copy it now",
            "token": token_view(token, now),
            "secret": secret,
            "headers": {"basic": basic_header(token.name, secret), "bearer": f"Bearer {secret}"},
        }

    def list(self, principal: Principal) -> dict[str, Any]:
        authorize(principal, Action.MANAGE_OWN_TOKENS)
        now = self.clock()
        visible = [t for t in self.store.list_tokens() if self._sees(principal, t)]
        return {"ok": True, "message": "", "tokens": [token_view(t, now) for t in visible]}

    def get(self, principal: Principal, name: str) -> dict[str, Any]:
        return {"ok": True, "message": "", "token": token_view(self._visible(principal, name), self.clock())}

    def delete(self, principal: Principal, name: str) -> dict[str, Any]:
        token = self._visible(principal, name)
        delete_token(self.store, self.usage, token)
        self.revoke_made_by(token.owner_id)
        self.revoked()
        return {"ok": True, "message": f"Token '{name}' deleted"}

    def set_active(self, principal: Principal, name: str, active: bool) -> dict[str, Any]:
        token = self._visible(principal, name)
        set_token_active(self.store, token, active)
        if not active:
            self.revoke_made_by(token.owner_id)
        self.revoked()  # a cached refusal (or admission) goes too
        changed = msgspec.structs.replace(token, active=active)
        return {"ok": True, "message": "", "token": token_view(changed, self.clock())}

    def revoke_made_by(self, owner_id: str) -> int:
        """Deactivate the tokens this token or user made, and theirs in turn: what was handed on goes
        with its holder (deleted or deactivated). Returns how many were deactivated."""
        tokens = self.store.list_tokens()
        pending, seen, count = [owner_id], {owner_id}, 0
        while pending:
            creator = pending.pop()
            for token in tokens:
                if token.creator_id != creator or token.owner_id in seen:
                    continue
                seen.add(token.owner_id)
                pending.append(token.owner_id)
                if token.active and self.store.set_active(token, False):
                    count += 1
        return count

    def _visible(self, principal: Principal, name: str) -> ApiToken:
        authorize(principal, Action.MANAGE_OWN_TOKENS)
        token = self.store.find_by_name(name, fresh=True) if TOKEN_NAME_PATTERN.fullmatch(name) else None
        if token is None or not self._sees(principal, token):
            raise NotFound(f"Unknown token '{shown(name)}'")
        return token

    @staticmethod
    def _sees(principal: Principal, token: ApiToken) -> bool:
        return principal.is_admin or (bool(token.creator_id) and token.creator_id == principal.owner_id)
