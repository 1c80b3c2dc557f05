"""Users' access tokens: the OAuth 2.0 password grant (seed 001) and the Bearer check of what it issued.

An access token is an opaque checksummed secret (`rsa_...`) stored only as its hash, with a TTL; it is
revocable (deleted, or outdated by its user's password change or deactivation: `credential_epoch`).
Failed logins are counted per user name and per user name and address, each with an exponential
back-off: a guesser is slowed, while one who floods a real user's name from elsewhere holds that
user back for seconds at most (`PER_USER_MAX_SECONDS`), never for long.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from reportserver.domain.access import Principal
from reportserver.domain.backoff import LoginAttempts, count_failure, held_for
from reportserver.domain.errors import DomainError, Unauthenticated
from reportserver.domain.identity import GUEST, IdentityStore, User, UserDirectory, UserGroup, user_principal
from reportserver.domain.passwords import MAX_LENGTH, PasswordHasher
from reportserver.domain.tokens import checksum_holds, generate_secret, hash_secret

ACCESS_TOKEN_PREFIX = "rsa_"  # noqa: S105 - a marker
DEFAULT_LIFETIME_SECONDS = 1200
FREE_FAILURES = 3  # failures before any delay
PER_ADDRESS_MAX_SECONDS = 900
PER_USER_MAX_SECONDS = 30
PER_USER_FREE_FAILURES = 10
KNOWN_ADDRESS_FOR = timedelta(days=30)


class OAuthError(DomainError):
    """An RFC 6749 error: answered as `{"error": code, "error_description": message}` with `status`."""

    def __init__(self, code: str, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after


class AccessSession(msgspec.Struct, kw_only=True):
    token_hash: str
    user_id: int
    credential_epoch: int
    created_at: datetime
    expires_at: datetime


class SessionStore(Protocol):
    def put_session(self, session: AccessSession) -> None: ...

    def session(self, token_hash: str) -> AccessSession | None: ...


@dataclass(frozen=True)
class PasswordGrant:
    users: IdentityStore
    sessions: SessionStore
    attempts: LoginAttempts
    hasher: PasswordHasher
    clock: Callable[[], datetime]
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS
    # Seed 001's guest account: the user `guest` logs in with a blank password while this is on.
    guest_enabled: bool = False

    def token(self, form: dict[str, list[str]], source_ip: str) -> dict[str, object]:
        """`POST /oauth/token`: a form body in, the access token (or an RFC 6749 error) out."""
        grant_type = _one(form, "grant_type")
        if grant_type != "password":
            raise OAuthError("unsupported_grant_type", "Only grant_type=password is supported")
        user_name, password = _one(form, "username"), _one(form, "password")
        if not user_name or password is None or len(user_name) > 128 or len(password) > MAX_LENGTH:
            raise OAuthError("invalid_request", "Give username and password (once each) in the form body")
        now = self.clock()
        name = user_name.lower()
        keys = (f"user:{name}", f"addr:{name}:{source_ip}")
        # An address the user logged in from before is not held back by failures from elsewhere: a
        # flood from other addresses slows guessing but cannot lock the user out.
        familiar = self.attempts.remembered(f"known:{name}:{source_ip}", now)
        self._check_held(keys[1:] if familiar else keys, now)
        user = self.users.user_by_name(user_name)
        # One scrypt whether or not the user exists: the same answer in the same time.
        matched = self.hasher.verify(user.password_hash if user else None, password)
        if user is not None and user.user_name == GUEST:
            matched = self.guest_enabled and password == ""
        if user is None or not matched or not user.active:
            self._fail(keys, now)
            raise OAuthError("invalid_grant", "Wrong user name or password")
        for key in keys:
            self.attempts.clear(key)
        self.attempts.remember(f"known:{name}:{source_ip}", now + KNOWN_ADDRESS_FOR)
        secret = generate_secret(ACCESS_TOKEN_PREFIX)
        self.sessions.put_session(
            AccessSession(
                token_hash=hash_secret(secret),
                user_id=user.id,
                credential_epoch=user.credential_epoch,
                created_at=now,
                expires_at=now + timedelta(seconds=self.lifetime_seconds),
            )
        )
        return {"access_token": secret, "token_type": "bearer", "expires_in": self.lifetime_seconds}

    def _check_held(self, keys: tuple[str, ...], now: datetime) -> None:
        for key in keys:
            wait = held_for(self.attempts, key, now)
            if wait:
                raise OAuthError(
                    "invalid_grant", f"Too many failed logins; retry in {wait} s", status=429, retry_after=wait
                )

    def _fail(self, keys: tuple[str, str], now: datetime) -> None:
        user_key, address_key = keys
        count_failure(self.attempts, user_key, now, PER_USER_FREE_FAILURES, PER_USER_MAX_SECONDS)
        count_failure(self.attempts, address_key, now, FREE_FAILURES, PER_ADDRESS_MAX_SECONDS)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name) or []
    return values[0] if len(values) == 1 else None


def is_access_token(secret: str) -> bool:
    return secret.startswith(ACCESS_TOKEN_PREFIX)


def authenticate_access_token(
    secret: str,
    sessions: SessionStore,
    users: UserDirectory,
    now: datetime,
    guest_enabled: bool = False,
) -> Principal:
    """The user an access token acts for, read now (a deleted or deactivated user, a changed password:
    refused), or `Unauthenticated`."""
    if not checksum_holds(secret, ACCESS_TOKEN_PREFIX):
        raise Unauthenticated("Invalid access token")
    session = sessions.session(hash_secret(secret))
    if session is None or not hmac.compare_digest(session.token_hash, hash_secret(secret)):
        raise Unauthenticated("Invalid access token")
    if session.expires_at <= now:
        raise Unauthenticated("Access token expired")
    user = users.user(session.user_id)
    if user is None or user.credential_epoch != session.credential_epoch:
        raise Unauthenticated("Access token revoked")
    if not user.active:
        raise Unauthenticated("User deactivated")
    if user.user_name == GUEST and not guest_enabled:
        raise Unauthenticated("The guest account is off")
    return user_principal(user, _groups_of(users, user))


def _groups_of(users: UserDirectory, user: User) -> list[UserGroup]:
    return [g for g in users.groups() if g.id in user.groups_id] if user.groups_id else []
