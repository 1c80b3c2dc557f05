"""API tokens: issuing, hashing, parsing the Authorization header and authenticating a caller.

Secrets are 256-bit random strings, so a plain SHA-256 is a safe one-way store (no dictionary to
attack) and fast enough to run on every request; only the hash is ever stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import secrets
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

import msgspec

from reportserver.domain.access import ALL_GROUPS, Grant, Permission, Principal, checked_grants, covers
from reportserver.domain.errors import AlreadyExists, Forbidden, InvalidDefinition, Unauthenticated, shown

__all__ = ["ALL_GROUPS", "Permission", "Principal"]

RESERVED_TOKEN_NAMES = frozenset({"api.user"})
TOKEN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GROUP_PATTERN = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")
EXPIRY_PERIODS_DAYS = (30, 60, 90)
MAX_EXPIRY = timedelta(days=366)
# A secret is `rsk_`, 43 random base62 characters (256 bits) and 6 more: the CRC32 of the random part in
# base62 (as GitHub's token formats do). Secret scanners find a leaked one by its shape
# (`rsk_[0-9A-Za-z]{49}`); a mistyped one fails its checksum and is refused before any lookup.
SECRET_PREFIX = "rsk_"  # noqa: S105 - a marker, not a secret
# Secrets issued before checksums: `rs_` and 43 characters of token_urlsafe(32), looked up until the last
# token that can have one has expired (checksums came on 2026-12-01; a token lives a year at most).
LEGACY_SECRET = re.compile(r"rs_[A-Za-z0-9_-]{43}")
LEGACY_SECRETS_UNTIL = datetime(2027, 12, 3, tzinfo=UTC)
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECRET_RANDOM_CHARS = 43  # 62**43 > 2**256
SECRET_CHECKSUM_CHARS = 6  # 62**6 > 2**32
_BASE62_SET = frozenset(BASE62)
MAX_HEADER_LENGTH = 4096
# An API key's value is 20 to 128 letters and digits (API Gateway's rule): this and the token id's 32 hex.
USAGE_KEY_PREFIX = "reportserver"
USAGE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{20,128}$")


class ApiToken(msgspec.Struct, kw_only=True):
    """A stored token. The secret itself is never kept: only its hash."""

    name: str
    secret_hash: str
    groups: list[str]
    permissions: list[str] = msgspec.field(default_factory=list)  # named permissions (seed 004)
    grants: list[Grant] = msgspec.field(default_factory=list)  # seed 001's bitmask permissions
    expires_at: datetime
    active: bool = True
    created_at: datetime
    created_by: str
    description: str = ""
    # Never reused: what a token owns (its export tickets) is owned by this, not by its name, so a token
    # deleted and re-created under the same name owns nothing of the old one's.
    token_id: str = ""
    # The token's API key in the API's usage plan (its own request rate and burst): the value the
    # authorizer hands API Gateway as `usageIdentifierKey`, and the key's id to delete it with the token.
    # Callers never send or see it. Empty: a token made before rate limits, which API Gateway refuses.
    usage_key: str = ""
    usage_key_id: str = ""
    # Who made it, as its owner id (a token's, a user's): a non-admin sees and manages its own tokens.
    # Empty: made on the command line (or before this was kept), so only an admin manages it.
    creator_id: str = ""
    last_used_at: datetime | None = None  # noted by the authorizer, to the hour (LAST_USE_PRECISION)

    @property
    def owner_id(self) -> str:
        # Tokens made before ids existed: their secret's hash is as unique, and changes with a new token.
        return self.token_id or f"h-{self.secret_hash[:32]}"

    def own_grants(self) -> list[Grant]:
        """Its named and bitmask permissions as one list (its groups' come on top when it authenticates)."""
        return checked_grants([*self.permissions, *self.grants])


class UsageKeys(Protocol):
    """Where a token's requests are counted: one API key per token in the API's usage plan."""

    def add(self, name: str, owner_id: str, value: str) -> str:
        """Create a key of this value in the usage plan for a token or user (`name`, `owner_id`: what
        its description says it is for); return the key's id."""
        ...

    def remove(self, key_id: str) -> None:
        """Delete a key (a deleted token's, or one whose token could not be stored); a missing one is fine."""
        ...


class TokenStore(Protocol):
    def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
        """The token of this name; `fresh`: read now, past any cache."""
        ...

    def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None: ...

    def create(self, token: ApiToken) -> None:
        """Store a new token; raise `AlreadyExists` if the name is taken."""
        ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the Authorization header carried: a name for Basic, none for Bearer."""

    name: str | None
    secret: str


def generate_secret(prefix: str = SECRET_PREFIX) -> str:
    """A checksummed secret: `prefix`, 43 random base62 characters, their CRC32 in base62. API tokens'
    secrets are `rsk_`; users' access tokens (`rsa_`) and embed nonces (`rsn_`) have the same form."""
    body = "".join(secrets.choice(BASE62) for _ in range(SECRET_RANDOM_CHARS))
    return prefix + body + _checksum(body)


def checksum_holds(secret: str, prefix: str) -> bool:
    """Whether `secret` has the form `generate_secret(prefix)` gives, its checksum holding."""
    body = secret[len(prefix) : -SECRET_CHECKSUM_CHARS]
    return (
        secret.startswith(prefix)
        and len(secret) == len(prefix) + SECRET_RANDOM_CHARS + SECRET_CHECKSUM_CHARS
        and _BASE62_SET.issuperset(secret[len(prefix) :])
        and _checksum(body) == secret[-SECRET_CHECKSUM_CHARS:]
    )


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(SECRET_CHECKSUM_CHARS):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def well_formed_secret(secret: str, now: datetime | None = None) -> bool:
    """Whether a presented secret could be one this server issued: of the checksummed form with a
    checksum that holds, or of the form issued before checksums while such tokens may live. Others are
    refused unread. (The checksum catches typos; it is public, so it is no defence against guesses.)"""
    if secret.startswith(SECRET_PREFIX):
        return checksum_holds(secret, SECRET_PREFIX)
    return LEGACY_SECRET.fullmatch(secret) is not None and (now is None or now < LEGACY_SECRETS_UNTIL)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_reserved(name: str) -> bool:
    """`api.user` in any letter case: DynamoDB keys are case-sensitive, people are not."""
    return name.lower() in RESERVED_TOKEN_NAMES


def basic_header(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode("ascii")


def parse_authorization(header: str | None) -> Credentials:
    """Read `Basic base64(name:secret)` or `Bearer secret`; anything else is a 401 with a reason."""
    if not header or not header.strip():
        raise Unauthenticated("Missing Authorization header")
    if len(header) > MAX_HEADER_LENGTH:
        raise Unauthenticated("Authorization header too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        if not value:
            raise Unauthenticated("Malformed Bearer credentials: empty token")
        return Credentials(name=None, secret=value)
    if scheme != "basic":
        raise Unauthenticated("Unsupported authorization scheme: use Basic or Bearer")
    if not value:
        raise Unauthenticated("Malformed Basic credentials: empty")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated("Malformed Basic credentials: not valid base64") from None
    name, colon, secret = decoded.partition(":")
    if not colon:
        raise Unauthenticated("Malformed Basic credentials: expected <token name>:<token secret>")
    if not name or not secret:
        raise Unauthenticated("Malformed Basic credentials: empty token name or secret")
    return Credentials(name=name, secret=secret)


# Compared against when a Basic name is unknown, so that a miss costs the same as a wrong secret.
_NO_SUCH_TOKEN_HASH = hash_secret(generate_secret())


def authenticate(header: str | None, store: TokenStore, now: datetime) -> ApiToken:
    """The live token an Authorization header names, or `Unauthenticated` with the reason."""
    credentials = parse_authorization(header)
    if credentials.name is not None and is_reserved(credentials.name):
        raise Unauthenticated(f"The {shown(credentials.name)} token is reserved for internal duties")
    if credentials.name is not None and not TOKEN_NAME_PATTERN.fullmatch(credentials.name):
        # No token can have this name (too long for a key, or other characters): refused unread.
        raise Unauthenticated("Invalid token")
    if not well_formed_secret(credentials.secret, now):
        # A mistyped secret (its checksum fails) or one of no form this server issues: refused unread.
        raise Unauthenticated("Invalid token")
    presented = hash_secret(credentials.secret)
    # Basic and Bearer alike are looked up by the secret's hash, and a Basic name is then compared: so a
    # wrong secret for a known name costs exactly what an unknown name does (one empty lookup), and no
    # timing tells which names exist. (Found: by name, a known one returned an item, ~2 ms slower.)
    token = store.find_by_secret_hash(presented)
    expected = token.secret_hash if token else _NO_SUCH_TOKEN_HASH
    if not hmac.compare_digest(presented, expected) or token is None:
        raise Unauthenticated("Invalid token")
    if credentials.name is not None and not hmac.compare_digest(credentials.name.encode(), token.name.encode()):
        raise Unauthenticated("Invalid token")
    # An index is read eventually consistently: a token deactivated a moment ago may still read active
    # there. The table itself, read consistently, decides (only for a right secret: no timing is told).
    token = store.find_by_name(token.name, fresh=True)
    if token is None or not hmac.compare_digest(presented, token.secret_hash):
        raise Unauthenticated("Invalid token")
    if is_reserved(token.name):
        raise Unauthenticated(f"The {token.name} token is reserved for internal duties")
    if not token.active:
        raise Unauthenticated("Token deactivated")
    if token.expires_at <= now:
        raise Unauthenticated("Token expired")
    return token


def token_principal(token: ApiToken, group_grants: Sequence[Grant] = ()) -> Principal:
    """The principal a token acts as: its groups, its own permissions and its groups' (`group_grants`)."""
    grants = checked_grants([*token.own_grants(), *group_grants])
    return Principal(
        kind="token",
        name=token.name,
        groups=tuple(token.groups),
        grants=tuple(grants),
        owner_id=token.owner_id,
        usage_key=token.usage_key,
        expires_at=int(token.expires_at.timestamp()),
    )


def token_expiry(now: datetime, days: int | None = None, on: date | None = None) -> datetime:
    """Expiry as seed 004 offers it: 30, 60 or 90 days, or a date within a year (end of that day, UTC)."""
    if (days is None) == (on is None):
        raise InvalidDefinition("Give either an expiry period in days or an expiry date, not both")
    if days is not None:
        if days not in EXPIRY_PERIODS_DAYS:
            raise InvalidDefinition(f"Expiry period must be one of {list(EXPIRY_PERIODS_DAYS)} days")
        return now + timedelta(days=days)
    assert on is not None
    expires = datetime.combine(on, time.max, tzinfo=UTC)
    if expires <= now:
        raise InvalidDefinition("Expiry date must be in the future")
    if expires - now > MAX_EXPIRY:
        raise InvalidDefinition("Expiry date must be within a year")
    return expires


MAX_DESCRIPTION = 500


def issue_token(
    store: TokenStore,
    usage: UsageKeys,
    *,
    name: str,
    groups: list[str],
    permissions: Sequence[str | Grant],
    expires_at: datetime,
    created_by: str,
    now: datetime,
    description: str = "",
    creator_id: str = "",
    creator: Principal | None = None,
    known_group: Callable[[str], bool] | None = None,
    carried: Callable[[str], Sequence[Grant]] = lambda _: (),
) -> tuple[ApiToken, str]:
    """Create a token, with its API key in the usage plan, and return it with its secret, which is
    shown once and never stored. The key comes first, so no stored token lacks one; a key whose token
    could not be stored is deleted again. `creator`: the principal asking (over the API), which cannot
    hand on more than it holds; None for the operator's command line. `known_group`: whether a group
    exists (the API refuses unknown ones); `carried`: the permissions a group carries."""
    _check_fields(name, description, groups, known_group)
    grants = checked_grants(permissions)
    if expires_at <= now or expires_at - now > MAX_EXPIRY:
        raise InvalidDefinition("Token expiry must be in the future and within a year")
    # A non-admin token cannot renew itself for ever by making its successor (an admin may make anyone).
    if (
        creator is not None
        and not creator.is_admin
        and creator.expires_at is not None
        and expires_at.timestamp() > creator.expires_at
    ):
        made_until = datetime.fromtimestamp(creator.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise InvalidDefinition(f"A token cannot outlive the token that makes it (it expires {made_until})")
    if creator is not None:
        lacking = covers(creator, groups, grants, carried)
        if lacking is not None:
            raise Forbidden(f"A token cannot have more rights than its creator: the {creator.label} lacks {lacking}")
    if store.find_by_name(name, fresh=True) is not None:
        raise AlreadyExists(f"A token named {name!r} already exists")
    secret = generate_secret()
    token_id = uuid.uuid4().hex
    token = ApiToken(
        name=name,
        secret_hash=hash_secret(secret),
        groups=sorted(set(groups)),
        permissions=[g.scope for g in grants if g.scope in Permission.ALL],
        grants=[g for g in grants if g.scope not in Permission.ALL],
        expires_at=expires_at,
        created_at=now,
        created_by=created_by,
        description=description,
        creator_id=creator_id,
        token_id=token_id,
        usage_key=f"{USAGE_KEY_PREFIX}{token_id}",
    )
    token.usage_key_id = usage.add(token.name, token.owner_id, token.usage_key)
    try:
        store.create(token)
    except Exception as failure:
        # The write may have landed with its answer lost (a retried PutItem then fails its condition):
        # read again before deleting the key of what may be a stored token.
        landed = _stored(store, token)
        if landed:
            return token, secret
        if landed is not None:  # surely not stored: its key goes (if that fails too, the first error stands)
            with contextlib.suppress(Exception):
                usage.remove(token.usage_key_id)
        if isinstance(failure, AlreadyExists):
            raise AlreadyExists(f"A token named {name!r} already exists") from None
        raise
    return token, secret


def _check_fields(name: str, description: str, groups: list[str], known_group: Callable[[str], bool] | None) -> None:
    if not TOKEN_NAME_PATTERN.fullmatch(name):
        raise InvalidDefinition(
            "Token name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if is_reserved(name):
        raise InvalidDefinition(f"The token name {name!r} is reserved for internal duties")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidDefinition(f"A token's description is at most {MAX_DESCRIPTION} characters")
    if not groups:
        raise InvalidDefinition("A token needs at least one group ('*' for all)")
    for group in groups:
        if not GROUP_PATTERN.fullmatch(group):
            raise InvalidDefinition(f"Invalid group name '{shown(group)}'")
        if known_group is not None and group != ALL_GROUPS and not known_group(group):
            raise InvalidDefinition(f"Unknown group '{group}'")


def _stored(store: TokenStore, token: ApiToken) -> bool | None:
    """Whether this very token is stored; None when that cannot be read (its key is then kept, and
    `token prune-keys` removes it if the token never landed)."""
    try:
        found = store.find_by_name(token.name, fresh=True)
    except Exception:
        return None
    return found is not None and found.token_id == token.token_id
