"""Tokens: header parsing, authentication, issuing and expiry."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reportserver.domain.access import Grant
from reportserver.domain.errors import AlreadyExists, InvalidDefinition, Unauthenticated
from reportserver.domain.tokens import (
    BASE62,
    LEGACY_SECRETS_UNTIL,
    MAX_EXPIRY,
    SECRET_PREFIX,
    USAGE_KEY_PATTERN,
    ApiToken,
    Permission,
    Principal,
    _checksum,
    authenticate,
    basic_header,
    generate_secret,
    hash_secret,
    issue_token,
    parse_authorization,
    token_expiry,
    token_principal,
    well_formed_secret,
)

from tests.fakes import MemoryTokenStore, MemoryUsageKeys

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def stored_token(store: MemoryTokenStore, name: str, secret: str, **overrides: object) -> ApiToken:
    values: dict[str, object] = {
        "name": name,
        "secret_hash": hash_secret(secret),
        "groups": ["*"],
        "permissions": [],
        "expires_at": NOW + timedelta(days=30),
        "created_at": NOW,
        "created_by": "test",
    }
    values.update(overrides)
    token = ApiToken(**values)  # type: ignore[arg-type]
    store.tokens[name] = token
    return token


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing Authorization header"),
        ("", "Missing Authorization header"),
        ("   ", "Missing Authorization header"),
        ("Digest abc", "Unsupported authorization scheme: use Basic or Bearer"),
        ("Basic", "Malformed Basic credentials: empty"),
        ("Basic !!!not-base64!!!", "Malformed Basic credentials: not valid base64"),
        (
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "Malformed Basic credentials: not valid base64",
        ),
        (
            "Basic " + b64("no-colon-here"),
            "Malformed Basic credentials: expected <token name>:<token secret>",
        ),
        ("Basic " + b64(":secret"), "Malformed Basic credentials: empty token name or secret"),
        ("Basic " + b64("name:"), "Malformed Basic credentials: empty token name or secret"),
        ("Bearer", "Malformed Bearer credentials: empty token"),
        ("Bearer " + "x" * 5000, "Authorization header too long"),
    ],
)
def test_malformed_authorization_is_rejected_with_its_reason(header: str | None, message: str) -> None:
    with pytest.raises(Unauthenticated) as raised:
        parse_authorization(header)
    assert raised.value.message == message


def test_basic_and_bearer_headers_are_parsed() -> None:
    assert parse_authorization("Basic " + b64("one-week:s3cr:et")).name == "one-week"
    assert parse_authorization("Basic " + b64("one-week:s3cr:et")).secret == "s3cr:et"
    assert (
        parse_authorization("bearer   rs_abc---------------------------------------- ").secret
        == "rs_abc----------------------------------------"
    )
    assert parse_authorization("Bearer rs_abc----------------------------------------").name is None


def test_valid_basic_token_gives_its_principal() -> None:
    store = MemoryTokenStore()
    token = stored_token(
        store,
        "finance-bot",
        "rs_good---------------------------------------",
        groups=["finance", "sales"],
        permissions=["refresh_data"],
    )
    found = authenticate(basic_header("finance-bot", "rs_good---------------------------------------"), store, NOW)
    assert token_principal(found) == Principal(
        "token",
        "finance-bot",
        ("finance", "sales"),
        (Grant("refresh_data"),),
        token.owner_id,
        expires_at=int(token.expires_at.timestamp()),
    )


def test_a_token_made_again_under_the_same_name_is_another_owner() -> None:
    # Found: tickets were owned by the token's name, so a re-created token inherited the old one's files.
    store = MemoryTokenStore()
    first, _ = issue(store, name="bot")
    store.tokens.pop("bot")
    second, secret = issue(store, name="bot")
    assert first.token_id and second.token_id and first.token_id != second.token_id
    assert authenticate(basic_header("bot", secret), store, NOW).token_id == second.token_id


def test_a_token_stored_before_ids_has_an_owner_of_its_own_secret() -> None:
    old = stored_token(MemoryTokenStore(), "old", "rs_a------------------------------------------")
    again = stored_token(MemoryTokenStore(), "old", "rs_b------------------------------------------")
    assert old.token_id == "" and old.owner_id != again.owner_id


@pytest.mark.parametrize("name", ["API.USER", "Api.User", "api.USER"])
def test_the_reserved_name_is_refused_in_any_letter_case(name: str) -> None:
    with pytest.raises(Unauthenticated, match="reserved"):
        authenticate(basic_header(name, "rs_x------------------------------------------"), MemoryTokenStore(), NOW)
    with pytest.raises(InvalidDefinition, match="reserved"):
        issue_token(
            MemoryTokenStore(),
            MemoryUsageKeys(),
            name=name,
            groups=["*"],
            permissions=[],
            expires_at=NOW + timedelta(days=1),
            created_by="t",
            now=NOW,
        )


@pytest.mark.parametrize("name", ["a" * 2100, "bot\n", "bot name", "\u0661bot"])
def test_a_name_no_token_can_have_is_refused_before_any_lookup(name: str) -> None:
    class Unreadable(MemoryTokenStore):
        def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
            raise AssertionError("looked up")

    with pytest.raises(Unauthenticated, match="Invalid token"):
        authenticate(basic_header(name, "rs_x------------------------------------------"), Unreadable(), NOW)


def test_valid_bearer_secret_finds_its_token_by_hash() -> None:
    store = MemoryTokenStore()
    stored_token(store, "bearer-bot", "rs_bearer-------------------------------------")
    assert authenticate("Bearer rs_bearer-------------------------------------", store, NOW).name == "bearer-bot"


@pytest.mark.parametrize(
    ("header", "overrides", "message"),
    [
        (basic_header("ghost", "rs_good---------------------------------------"), {}, "Invalid token"),
        (basic_header("bot", "rs_wrong--------------------------------------"), {}, "Invalid token"),
        ("Bearer rs_wrong--------------------------------------", {}, "Invalid token"),
        (
            basic_header("bot", "rs_good---------------------------------------"),
            {"expires_at": NOW - timedelta(seconds=1)},
            "Token expired",
        ),
        (basic_header("bot", "rs_good---------------------------------------"), {"expires_at": NOW}, "Token expired"),
        (basic_header("bot", "rs_good---------------------------------------"), {"active": False}, "Token deactivated"),
        (
            basic_header("api.user", "rs_good---------------------------------------"),
            {},
            "The api.user token is reserved for internal duties",
        ),
    ],
)
def test_bad_tokens_are_rejected(header: str, overrides: dict[str, object], message: str) -> None:
    store = MemoryTokenStore()
    stored_token(store, "bot", "rs_good---------------------------------------", **overrides)
    stored_token(store, "api.user", "rs_internal-----------------------------------")
    with pytest.raises(Unauthenticated) as raised:
        authenticate(header, store, NOW)
    assert raised.value.message == message


def test_reserved_token_cannot_be_used_even_with_its_right_secret() -> None:
    store = MemoryTokenStore()
    stored_token(store, "api.user", "rs_internal-----------------------------------")
    for header in (
        basic_header("api.user", "rs_internal-----------------------------------"),
        "Bearer rs_internal-----------------------------------",
    ):
        with pytest.raises(Unauthenticated, match="reserved"):
            authenticate(header, store, NOW)


def test_issued_token_stores_only_the_hash_and_authenticates() -> None:
    store = MemoryTokenStore()
    token, secret = issue_token(
        store,
        MemoryUsageKeys(),
        name="one-week",
        groups=["sales"],
        permissions=[Permission.EXECUTE_SUBSCRIPTION],
        expires_at=NOW + timedelta(days=7),
        created_by="admin@example.com",
        now=NOW,
    )
    assert secret.startswith("rsk_") and len(secret) == 53 and well_formed_secret(secret)
    # Its API key's value, as API Gateway takes one: 20 to 128 letters and digits, its own.
    assert USAGE_KEY_PATTERN.fullmatch(token.usage_key) and token.token_id in token.usage_key
    assert secret not in msgspec.json.encode(token).decode()
    assert token.secret_hash == hash_secret(secret)
    assert authenticate(basic_header("one-week", secret), store, NOW).groups == ["sales"]


def issue(store: MemoryTokenStore, usage: MemoryUsageKeys | None = None, **changes: object) -> tuple[ApiToken, str]:
    values: dict[str, object] = {
        "name": "ok",
        "groups": ["*"],
        "permissions": [],
        "expires_at": NOW + timedelta(days=30),
        "created_by": "t",
        "now": NOW,
    }
    values.update(changes)
    return issue_token(store, usage or MemoryUsageKeys(), **values)  # type: ignore[arg-type]


def test_two_issued_secrets_differ() -> None:
    store = MemoryTokenStore()
    assert issue(store, name="a")[1] != issue(store, name="b")[1]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "api.user"}, "reserved"),
        ({"name": "has space"}, "Token name must be"),
        ({"name": "with:colon"}, "Token name must be"),
        ({"name": ""}, "Token name must be"),
        ({"groups": []}, "at least one group"),
        ({"groups": ["bad group"]}, "Invalid group"),
        ({"permissions": ["root"]}, "Unknown permission or scope 'root'"),
        ({"expires_at": NOW - timedelta(days=1)}, "within a year"),
        ({"expires_at": NOW + timedelta(days=400)}, "within a year"),
    ],
)
def test_invalid_token_definitions_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        issue(MemoryTokenStore(), **changes)


def test_a_token_name_cannot_be_issued_twice() -> None:
    store = MemoryTokenStore()
    issue(store, name="dup")
    with pytest.raises(AlreadyExists, match="dup"):
        issue(store, name="dup")


@pytest.mark.parametrize("days", [30, 60, 90])
def test_expiry_periods_are_30_60_or_90_days(days: int) -> None:
    assert token_expiry(NOW, days=days) == NOW + timedelta(days=days)


def test_expiry_date_means_the_end_of_that_day() -> None:
    assert token_expiry(NOW, on=date(2027, 1, 31)) == datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "on", "message"),
    [
        (45, None, "must be one of"),
        (None, date(2026, 11, 21), "in the future"),
        (None, date(2028, 1, 1), "within a year"),
        (None, None, "either"),
        (30, date(2027, 1, 1), "either"),
    ],
)
def test_bad_expiry_is_refused(days: int | None, on: date | None, message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        token_expiry(NOW, days=days, on=on)


def test_a_token_is_stored_only_with_its_api_key_and_a_key_never_outlives_a_refused_token() -> None:
    store, usage = MemoryTokenStore(), MemoryUsageKeys()
    token, _ = issue(store, name="keyed", usage=usage)
    assert usage.keys == {token.usage_key_id: token.usage_key}

    class Unwritable(MemoryTokenStore):
        def create(self, token: ApiToken) -> None:
            raise OSError("DynamoDB is down")

    with pytest.raises(OSError, match="down"):
        issue(Unwritable(), name="lost", usage=usage)
    assert list(usage.keys) == [token.usage_key_id]  # the second key was deleted again

    class NoGateway(MemoryUsageKeys):
        def add(self, name: str, owner_id: str, value: str) -> str:
            raise OSError("API Gateway is down")

    with pytest.raises(OSError, match="API Gateway"):
        issue(store, name="unkeyed", usage=NoGateway())
    assert store.find_by_name("unkeyed") is None


def test_a_taken_name_makes_no_api_key() -> None:
    store, usage = MemoryTokenStore(), MemoryUsageKeys()
    issue(store, name="taken", usage=usage)
    with pytest.raises(AlreadyExists, match="already exists"):
        issue(store, name="taken", usage=usage)
    assert len(usage.keys) == 1


def test_a_write_that_landed_with_its_answer_lost_keeps_the_token_and_its_key() -> None:
    # A retried PutItem whose first try landed fails its own condition: the token is stored, and is kept.
    class LostAnswer(MemoryTokenStore):
        def create(self, token: ApiToken) -> None:
            super().create(token)
            raise AlreadyExists(token.name)

    store, usage = LostAnswer(), MemoryUsageKeys()
    token, secret = issue(store, name="landed", usage=usage)
    assert store.find_by_name("landed") is token and usage.keys == {token.usage_key_id: token.usage_key}
    assert authenticate(basic_header("landed", secret), store, NOW).token_id == token.token_id


def test_when_the_key_cannot_be_deleted_either_the_first_failure_is_reported() -> None:
    class Unwritable(MemoryTokenStore):
        def create(self, token: ApiToken) -> None:
            raise OSError("DynamoDB is down")

    class Stuck(MemoryUsageKeys):
        def remove(self, key_id: str) -> None:
            raise RuntimeError("API Gateway is down too")

    with pytest.raises(OSError, match="DynamoDB is down"):
        issue(Unwritable(), name="twice", usage=Stuck())


def test_a_key_is_kept_when_whether_its_token_landed_cannot_be_read() -> None:
    class Blind(MemoryTokenStore):
        def create(self, token: ApiToken) -> None:
            raise OSError("timed out")

        def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
            if fresh and name == "unknown" and getattr(self, "asked", False):
                raise OSError("still down")
            self.asked = True
            return None

    usage = MemoryUsageKeys()
    with pytest.raises(OSError, match="timed out"):
        issue(Blind(), name="unknown", usage=usage)
    assert len(usage.keys) == 1  # maybe stored: `token prune-keys` removes it if not


@given(st.integers(0, 48), st.sampled_from(BASE62))
def test_any_one_character_changed_in_a_secret_fails_its_checksum(position: int, replacement: str) -> None:
    secret = generate_secret()
    index = len(SECRET_PREFIX) + position
    assume(secret[index] != replacement)
    assert well_formed_secret(secret)
    assert not well_formed_secret(secret[:index] + replacement + secret[index + 1 :])


@given(st.integers(0, 47))
def test_two_neighbouring_characters_swapped_fail_the_checksum(position: int) -> None:
    secret = generate_secret()
    index = len(SECRET_PREFIX) + position
    assume(secret[index] != secret[index + 1])
    swapped = secret[:index] + secret[index + 1] + secret[index] + secret[index + 2 :]
    assert not well_formed_secret(swapped)


@pytest.mark.parametrize(
    "secret",
    [
        "rsk_",
        "rsk_" + "A" * 49,
        "rsk_" + "A" * 43 + "é" * 6,
        "ghp_" + "A" * 49,
        "plain-secret",
        "",
        lambda: generate_secret()[:-1],
        lambda: generate_secret() + "0",
        "rsk_" + "é" * 43 + "000000",  # not ASCII: refused, not a crash
        "rsk_" + "A-_" * 14 + "A" + _checksum("A-_" * 14 + "A"),  # a right checksum over non-base62
        "rsk_AB" + _checksum("AB"),  # a right checksum, the wrong length
        "rs_",
        "rs_ anything goes",
        "rs_" + "x" * 42,  # one short of the old form
    ],
)
def test_a_secret_of_no_issued_form_is_refused_before_any_lookup(secret: object) -> None:
    presented = secret() if callable(secret) else secret

    class Unreadable(MemoryTokenStore):
        def find_by_name(self, name: str, fresh: bool = False) -> ApiToken | None:
            raise AssertionError("looked up")

        def find_by_secret_hash(self, secret_hash: str) -> ApiToken | None:
            raise AssertionError("looked up")

    assert isinstance(presented, str)
    with pytest.raises(Unauthenticated, match="Invalid token"):
        authenticate(basic_header("bot", presented) if presented else "Bearer x", Unreadable(), NOW)
    if presented:
        with pytest.raises(Unauthenticated, match="Invalid token"):
            authenticate(f"Bearer {presented}", Unreadable(), NOW)


def test_secrets_issued_before_checksums_still_work_until_the_last_such_token_expired() -> None:
    store = MemoryTokenStore()
    stored_token(store, "old-bot", "rs_" + "x" * 43, expires_at=datetime(2028, 1, 1, tzinfo=UTC))
    assert authenticate(basic_header("old-bot", "rs_" + "x" * 43), store, NOW).name == "old-bot"
    assert authenticate("Bearer rs_" + "x" * 43, store, NOW).name == "old-bot"
    # No token made before 2026-12-01 lives past a year: from then on the old form is refused unread.
    assert LEGACY_SECRETS_UNTIL - datetime(2026, 12, 1, tzinfo=UTC) > MAX_EXPIRY
    with pytest.raises(Unauthenticated, match="Invalid token"):
        authenticate("Bearer rs_" + "x" * 43, store, LEGACY_SECRETS_UNTIL)


def test_the_checksum_is_crc32_in_base62_most_significant_digit_first() -> None:
    # Pinned, so that secret scanners outside can rely on the format.
    assert _checksum("x") == "2Zvt6B"
    value = 0
    for digit in _checksum("x"):
        value = value * 62 + BASE62.index(digit)
    assert value == zlib.crc32(b"x")
