"""From an Authorization header to the principal the authorizer hands on: an API token (Basic or
Bearer), or a user's access token (Bearer `rsa_...`). An embed nonce is no Bearer token."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from reportserver.domain.access import ALL_GROUPS, Grant, Principal
from reportserver.domain.embed import NONCE_PREFIX
from reportserver.domain.errors import Unauthenticated
from reportserver.domain.identity import UserDirectory, UserGroup
from reportserver.domain.sessions import SessionStore, authenticate_access_token, is_access_token
from reportserver.domain.token_admin import LAST_USE_PRECISION
from reportserver.domain.tokens import ApiToken, TokenStore, authenticate, parse_authorization, token_principal


def group_grants(groups: Iterable[UserGroup], names: Iterable[str]) -> list[Grant]:
    """The permissions the groups of these names carry (`*` names no group: it is every report)."""
    wanted = set(names)
    return [grant for group in groups if group.name in wanted for grant in group.permissions]


def acting_token(token: ApiToken, groups: Callable[[], Iterable[UserGroup]]) -> Principal:
    """The principal a token acts as, with its groups' permissions (the groups read only if it names one)."""
    named = [g for g in token.groups if g != ALL_GROUPS]  # `*` is every report, no group to read
    return token_principal(token, group_grants(groups(), named) if named else [])


@dataclass(frozen=True)
class Authenticator:
    tokens: TokenStore
    identity: UserDirectory
    sessions: SessionStore
    guest_enabled: bool = False
    note_use: Callable[[ApiToken, datetime], None] | None = None  # when a token was last used, to the hour

    def principal(self, header: str | None, now: datetime) -> Principal:
        credentials = parse_authorization(header)
        if credentials.name is None and is_access_token(credentials.secret):
            return authenticate_access_token(credentials.secret, self.sessions, self.identity, now, self.guest_enabled)
        if credentials.name is None and credentials.secret.startswith(NONCE_PREFIX):
            raise Unauthenticated("A nonce is not a Bearer token: it opens a report view once, as ?nonce=")
        token = authenticate(header, self.tokens, now)
        if self.note_use is not None and (token.last_used_at is None or token.last_used_at < now - LAST_USE_PRECISION):
            with contextlib.suppress(Exception):  # a note not written never refuses a caller
                self.note_use(token, now)
        return acting_token(token, self.identity.groups)
